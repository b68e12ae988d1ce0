#include "analysis/train/corpus.h"

#include <algorithm>
#include <map>
#include <sstream>

#include "core/fs_guard.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "tokenizers/pipeline.h"

namespace mechscope::analysis {

TextCorpus read_corpus(const std::string& path) {
  if (!file_exists(path)) fail(option("corpus"), " '", path, "' does not exist");
  TextCorpus c;
  c.path = path;
  // Line by line, a line longer than 16 MiB refused before it is held (issue 17).
  for_each_line(path, [&](const std::string& line, long long n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) return;
    std::string where = cat(path, ":", n);
    nlohmann::json j = parse_json(line, where);
    if (!j.is_object() || !j.contains("text") || !j["text"].is_string()) fail(where, ": expected {\"text\": \"...\"}");
    std::string t = j["text"].get<std::string>();
    if (t.empty()) fail(where, ": the text is empty");
    c.texts.push_back(std::move(t));
    c.lines.push_back(n);
  });
  if (c.texts.empty()) fail(option("corpus"), " '", path, "' has no texts (expected JSONL lines {\"text\": \"...\"})");
  return c;
}

nlohmann::json build_word_tokenizer(const TextCorpus& corpus, bool lowercase) {
  using nlohmann::json;
  json normalizer = lowercase ? json{{"type", "Lowercase"}} : json(nullptr);
  json pre = {{"type", "Sequence"},
              {"pretokenizers", {{{"type", "WhitespaceSplit"}}, {{"type", "Punctuation"}, {"behavior", "Isolated"}}}}};
  // The words come from the same normalizer and pre-tokenizer objects the loader builds from this
  // JSON, so the vocabulary is exactly what encoding the corpus asks for.
  auto norm = tokenizers::make_normalizer(normalizer);
  auto split = tokenizers::make_pre_tokenizer(pre);
  std::map<std::string, int64_t> count;
  for (size_t i = 0; i < corpus.texts.size(); ++i) {
    tokenizers::Pieces pieces{{norm ? norm->normalize(corpus.texts[i]) : corpus.texts[i], true, -1}};
    split->pre_tokenize(pieces);
    if (pieces.empty())
      fail(corpus.path, ":", corpus.lines[i], ": the text has no tokens (only whitespace or control characters)");
    for (auto& p : pieces) count[p.text]++;
  }
  const char* specials[] = {"<|endoftext|>", "[UNK]", "[PAD]"};
  std::vector<std::pair<std::string, int64_t>> words(count.begin(), count.end());
  std::stable_sort(words.begin(), words.end(), [](auto& a, auto& b) { return a.second > b.second; });
  json vocab = json::object(), added = json::array();
  int64_t next = 0;
  for (const char* s : specials) {
    added.push_back({{"id", next},
                     {"content", s},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
    vocab[s] = next++;
  }
  for (auto& [w, n] : words)
    if (!vocab.contains(w)) vocab[w] = next++;
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer", normalizer},
          {"pre_tokenizer", pre},
          {"post_processor", nullptr},
          {"decoder", nullptr},
          {"model", {{"type", "WordLevel"}, {"vocab", vocab}, {"unk_token", "[UNK]"}}}};
}

}  // namespace mechscope::analysis
