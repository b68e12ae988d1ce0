#include "analysis/causal_trace/facts.h"

#include <nlohmann/json.hpp>

#include <fstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/utf8.h"

namespace mechscope::analysis::causal_trace {

static std::string field_string(const nlohmann::json& j, const std::string& key) {
  const auto& v = j.at(key);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<long long>());
  fail("\"", key, "\" must be a string");
}

static Fact parse_fact(const std::string& text, int line) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    std::string what = e.what();
    auto pos = what.find("] ");
    fail("not valid JSON (", pos == std::string::npos ? what : what.substr(pos + 2), ")");
  }
  if (!j.is_object()) fail("expected a JSON object with \"prompt\" and \"subject\"");
  Fact f;
  f.line = line;
  for (const char* key : {"prompt", "subject"}) {
    if (!j.contains(key)) fail("missing \"", key, "\"");
    if (!j[key].is_string()) fail("\"", key, "\" must be a string");
  }
  f.prompt = j["prompt"].get<std::string>();
  f.subject = j["subject"].get<std::string>();
  if (f.prompt.empty()) fail("\"prompt\" is empty");
  if (f.subject.empty()) fail("\"subject\" is empty");
  for (const char* key : {"answer", "attribute", "target"})
    if (j.contains(key) && !j[key].is_null()) {
      f.answer = field_string(j, key);
      break;
    }
  for (const char* key : {"id", "known_id", "case_id"})
    if (j.contains(key) && !j[key].is_null()) {
      f.id = field_string(j, key);
      break;
    }
  return f;
}

FactsFile read_facts(const std::string& path, bool skip_bad) {
  std::string text = read_file(path);
  FactsFile out;
  size_t start = 0;
  int line = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string s = text.substr(start, end - start);
    start = end + 1;
    ++line;
    if (!s.empty() && s.back() == '\r') s.pop_back();
    if (s.find_first_not_of(" \t") == std::string::npos) continue;
    try {
      size_t bad = utf8::find_invalid(s);
      if (bad != std::string::npos) fail("not valid UTF-8 (byte ", bad, ")");
      out.facts.push_back(parse_fact(s, line));
    } catch (const Error& e) {
      std::string msg = cat(path, ":", line, ": ", e.what());
      if (!skip_bad) fail(msg, " (pass --skip-bad to report and skip bad lines)");
      out.skipped.push_back(msg);
    }
  }
  if (out.facts.empty())
    fail(path, ": no facts", out.skipped.empty() ? "" : " left after skipping bad lines",
         " (expected one JSON object per line with \"prompt\" and \"subject\")");
  return out;
}

std::pair<int64_t, int64_t> find_token_range(const tokenizers::Tokenizer& tok, const std::vector<int64_t>& ids,
                                             const std::string& subject, const std::string& prompt) {
  // ROME: whole = "".join(decode([t]) for t in ids); char_loc = whole.index(subject); then the first
  // token whose end passes char_loc, and the first whose end reaches char_loc + len(subject).
  std::vector<size_t> ends;
  std::vector<int64_t> prefix;
  for (int64_t id : ids) {
    prefix.push_back(id);
    ends.push_back(tok.decode(prefix).size());
  }
  std::string whole = tok.decode(ids);
  size_t loc = subject.empty() ? std::string::npos : whole.find(subject);
  if (loc == std::string::npos) fail("subject '", subject, "' is not in the prompt '", prompt, "'");
  int64_t b = -1, e = -1;
  for (size_t i = 0; i < ends.size(); ++i) {
    if (b < 0 && ends[i] > loc) b = (int64_t)i;
    if (e < 0 && ends[i] >= loc + subject.size()) {
      e = (int64_t)i + 1;
      break;
    }
  }
  if (b < 0 || e < 0) fail("subject '", subject, "' could not be mapped to tokens of the prompt '", prompt, "'");
  return {b, e};
}

std::string file_safe(const std::string& id) {
  std::string s;
  for (char c : id) s += (isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.') ? c : '_';
  return s;
}

}  // namespace mechscope::analysis::causal_trace
