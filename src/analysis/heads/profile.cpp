#include "analysis/heads/profile.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include <cctype>

namespace mechscope::analysis::heads {

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
  std::istringstream in(read_file(path));
  std::vector<PromptPair> out;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::string where = cat(path, ":", n);
    nlohmann::json j = parse_json(line, where);
    if (!j.is_object() || !j.contains("emotion") || !j.contains("neutral") || !j["emotion"].is_string() ||
        !j["neutral"].is_string())
      fail(where, ": expected {\"emotion\": \"...\", \"neutral\": \"...\"}");
    PromptPair p{j["emotion"].get<std::string>(), j["neutral"].get<std::string>(), n};
    if (p.emotion.empty() || p.neutral.empty()) fail(where, ": a prompt is empty");
    if (p.emotion == p.neutral) fail(where, ": the emotion and neutral prompts are identical (nothing to compare)");
    out.push_back(std::move(p));
  }
  if (out.empty()) fail("prompt file '", path, "' has no pairs");
  return out;
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
      if (!w.is_string() || w.get<std::string>().empty()) fail(kw, ": '", e, "' has a keyword that is not a non-empty string");
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
