#include "analysis/heads/profile.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "core/fs_guard.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include <cctype>

namespace mechscope::analysis::heads {

std::string PromptPair::where() const { return cat(file, ":", line); }

std::vector<std::string> Profile::emotions() const {
  std::vector<std::string> out;
  for (auto& [e, p] : pairs) out.push_back(e);
  return out;
}

namespace {
std::string known(const Profile& p) {
  std::string s;
  for (auto& e : p.emotions()) s += (s.empty() ? "" : ", ") + e;
  return s;
}
}  // namespace

const std::vector<PromptPair>& Profile::of(const std::string& emotion) const {
  auto it = pairs.find(emotion);
  if (it == pairs.end()) fail("unknown emotion '", emotion, "' in profile '", dir, "' (known: ", known(*this), ")");
  return it->second;
}

std::vector<std::string> Profile::select(const std::string& emotion_arg) const {
  if (emotion_arg == "all") return emotions();
  of(emotion_arg);
  return {emotion_arg};
}

std::vector<PromptPair> read_pairs(const std::string& path) {
  std::vector<PromptPair> out;
  // Line by line, a line longer than 16 MiB refused before it is held (issue 17).
  for_each_line(path, [&](const std::string& line, long long n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) return;
    std::string where = cat(path, ":", n);
    nlohmann::json j = parse_json(line, where);
    if (!j.is_object() || !j.contains("emotion") || !j.contains("neutral") || !j["emotion"].is_string() ||
        !j["neutral"].is_string())
      fail(where, ": expected {\"emotion\": \"...\", \"neutral\": \"...\"}");
    PromptPair p{j["emotion"].get<std::string>(), j["neutral"].get<std::string>(), n, path};
    if (p.emotion.empty() || p.neutral.empty()) fail(where, ": a prompt is empty");
    if (p.emotion == p.neutral) fail(where, ": the emotion and neutral prompts are identical (nothing to compare)");
    out.push_back(std::move(p));
  });
  if (out.empty()) fail("prompt file '", path, "' has no pairs");
  return out;
}

std::vector<PromptPair> read_prompt_lines(const std::string& path) {
  std::vector<PromptPair> out;
  for_each_line(path, [&](std::string line, long long n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos) return;
    std::string where = cat(path, ":", n);
    std::string text = line;
    // A line that opens like JSON must be JSON: a half-written JSONL line is an error, not a prompt.
    if (line[first] == '"' || line[first] == '{') {
      nlohmann::json j = parse_json(line, where);
      if (j.is_object()) {
        if (j.contains("text")) j = j["text"];
        else if (j.contains("prompt")) j = j["prompt"];
      }
      if (!j.is_string())
        fail(where, ": expected a prompt: plain text, a JSON string, or an object with a \"text\" string");
      text = j.get<std::string>();
    }
    if (text.empty()) fail(where, ": the prompt is empty");
    PromptPair p;
    p.emotion = text;
    p.line = n;
    p.file = path;
    out.push_back(std::move(p));
  });
  if (out.empty()) fail("prompt file '", path, "' has no prompts");
  return out;
}

void override_prompts(Profile& p, const std::string& emotion, const std::string& emotion_file,
                      const std::string& neutral_file) {
  std::vector<PromptPair> cur = p.of(emotion);
  std::vector<PromptPair> e, n;
  if (!emotion_file.empty()) e = read_prompt_lines(emotion_file);
  if (!neutral_file.empty()) n = read_prompt_lines(neutral_file);
  if (!e.empty() && !n.empty() && e.size() != n.size())
    fail(option("emotion_prompts"), " '", emotion_file, "' has ", e.size(), " prompts but ", option("neutral_prompts"),
         " '", neutral_file, "' has ", n.size(), ": they are read as pairs, line by line");
  auto check = [&](const std::vector<PromptPair>& v, const std::string& flag, const std::string& file) {
    if (!v.empty() && !(e.size() && n.size()) && v.size() != cur.size())
      fail(flag, " '", file, "' has ", v.size(), " prompts but the ", emotion, " pairs it replaces one side of (",
           cur.empty() ? std::string("none") : cur[0].file, ") are ", cur.size(), ": give both ",
           option("emotion_prompts"), " and ", option("neutral_prompts"), ", or as many prompts as pairs");
  };
  check(e, option("emotion_prompts"), emotion_file);
  check(n, option("neutral_prompts"), neutral_file);
  size_t count = !e.empty() ? e.size() : !n.empty() ? n.size() : cur.size();
  std::vector<PromptPair> out(count);
  for (size_t i = 0; i < count; ++i) {
    PromptPair& o = out[i];
    const PromptPair& src = !e.empty() ? e[i] : !n.empty() ? n[i] : cur[i];
    o.emotion = !e.empty() ? e[i].emotion : cur[i].emotion;
    o.neutral = !n.empty() ? n[i].emotion : cur[i].neutral;
    o.line = src.line;
    o.file = src.file;
    if (o.emotion == o.neutral)
      fail(o.where(), ": the emotion and neutral prompts of pair ", i + 1, " are identical (nothing to compare)");
  }
  p.pairs[emotion] = std::move(out);
}

Profile load_profile(const std::string& dir) {
  namespace fs = std::filesystem;
  if (!dir_exists(dir)) fail("profile '", dir, "' is not a directory");
  Profile p;
  p.dir = dir;
  std::vector<std::string> files;
  for (auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".jsonl") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  if (files.empty()) fail("profile '", dir, "' has no <emotion>.jsonl files");
  for (auto& f : files) p.pairs[fs::path(f).stem().string()] = read_pairs(f);
  std::string kw = join_path(dir, "keywords.json");
  if (!file_exists(kw)) fail("profile '", dir, "' has no keywords.json");
  nlohmann::json j = parse_json(read_file(kw), kw);
  if (!j.is_object()) fail(kw, ": expected {\"<emotion>\": [\"keyword\", ...]}");
  for (auto& [e, list] : j.items()) {
    if (!list.is_array()) fail(kw, ": '", e, "' is not a list of keywords");
    for (auto& w : list) {
      if (!w.is_string() || w.get<std::string>().empty())
        fail(kw, ": '", e, "' has a keyword that is not a non-empty string");
      p.keywords[e].push_back(w.get<std::string>());
    }
  }
  for (auto& e : p.emotions())
    if (!p.keywords.count(e)) fail(kw, " has no keywords for emotion '", e, "'");
  return p;
}

AlignedPair align_pair(std::vector<int64_t> e, std::vector<int64_t> n) {
  AlignedPair a;
  size_t m = std::min(e.size(), n.size()), pre = 0, suf = 0;
  while (pre < m && e[pre] == n[pre]) ++pre;
  while (suf < m - pre && e[e.size() - 1 - suf] == n[n.size() - 1 - suf]) ++suf;
  a.emotion_phrase_begin = a.neutral_phrase_begin = (int64_t)pre;
  a.emotion_phrase_end = (int64_t)(e.size() - suf);
  a.neutral_phrase_end = (int64_t)(n.size() - suf);
  a.offset = (int64_t)e.size() - (int64_t)n.size();
  a.emotion_ids = std::move(e);
  a.neutral_ids = std::move(n);
  return a;
}

namespace {
bool word_char(unsigned char c) { return c >= 0x80 || std::isalnum(c) || c == '_'; }
std::string ascii_lower(std::string s) {
  for (char& c : s) c = (char)std::tolower((unsigned char)c);
  return s;
}
}  // namespace

int64_t count_keywords(const std::string& text, const std::vector<std::string>& keywords) {
  std::string t = ascii_lower(text);
  int64_t count = 0;
  for (auto& k : keywords) {
    std::string w = ascii_lower(k);
    for (size_t at = t.find(w); at != std::string::npos; at = t.find(w, at + 1)) {
      bool left = at == 0 || !word_char((unsigned char)t[at - 1]);
      bool right = at + w.size() == t.size() || !word_char((unsigned char)t[at + w.size()]);
      count += left && right;
    }
  }
  return count;
}

}  // namespace mechscope::analysis::heads
