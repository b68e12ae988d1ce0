#include "analysis/causal_trace/facts.h"

#include <nlohmann/json.hpp>

#include <fstream>

#include "core/error.h"
#include "core/json.h"
#include "core/fs.h"
#include "core/fs_guard.h"
#include "core/utf8.h"

namespace mechscope::analysis::causal_trace {

static std::string field_string(const nlohmann::json& j, const std::string& key) {
  const auto& v = j.at(key);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<long long>());
  fail("\"", key, "\" must be a string");
}

static Fact parse_fact(const std::string& text, int line) {
  nlohmann::json j = parse_json(text, "the line");
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
  FactsFile out;
  // Line by line with a bound: a 100 MB line is refused, naming it, before it is held or parsed.
  for_each_line(path, [&](std::string s, long long line) {
    if (!s.empty() && s.back() == '\r') s.pop_back();
    if (s.find_first_not_of(" \t") == std::string::npos) return;
    try {
      size_t bad = utf8::find_invalid(s);
      if (bad != std::string::npos) fail("not valid UTF-8 (byte ", bad, ")");
      out.facts.push_back(parse_fact(s, (int)line));
    } catch (const Error& e) {
      std::string msg = cat(path, ":", line, ": ", e.raw());
      if (!skip_bad) fail(msg, " (pass ", option("skip_bad"), " to report and skip bad lines)");
      out.skipped.push_back(msg);
    }
  });
  if (out.facts.empty())
    fail(path, ": no facts", out.skipped.empty() ? "" : " left after skipping bad lines",
         " (expected one JSON object per line with \"prompt\" and \"subject\")");
  return out;
}

void check_known_words(const tokenizers::Tokenizer& tok, const std::string& text, const std::string& what) {
  auto unk = tok.unk_id();
  if (!unk) return;
  size_t i = 0;
  while (i < text.size()) {
    size_t b = text.find_first_not_of(" \t\r\n", i);
    if (b == std::string::npos) break;
    size_t e = text.find_first_of(" \t\r\n", b);
    if (e == std::string::npos) e = text.size();
    std::string word = text.substr(b, e - b);
    for (int64_t id : tok.encode(word))
      if (id == *unk)
        fail(what, " '", text, "': the word '", word, "' is not in the tokenizer's vocabulary (it becomes ",
             tok.id_to_token(*unk), ")");
    i = e;
  }
}

std::pair<int64_t, int64_t> find_token_range(const tokenizers::Tokenizer& tok, const std::vector<int64_t>& ids,
                                             const std::string& subject, const std::string& prompt) {
  check_known_words(tok, subject, "subject");
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
  // No '.': the id becomes part of figure ids and file stems, where a dot would start an extension.
  for (char c : id) s += (isalnum((unsigned char)c) || c == '-' || c == '_') ? c : '_';
  return s;
}

}  // namespace mechscope::analysis::causal_trace
