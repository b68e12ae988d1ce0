// A small backtracking regex engine over code points, enough for the Split/Replace patterns of
// real tokenizer.json files (GPT-2, GPT-NeoX, Llama 3, cl100k-style): alternation with
// leftmost-first semantics (as Oniguruma and fancy-regex), groups (?:...) (?i:...), classes
// with ranges, negation, \p{..} \P{..} \s \S \d \D \w \W, quantifiers ? * + {m,n} (greedy, lazy
// ?, possessive + on single-character atoms), lookahead (?=...) (?!...), ^ $ and `.`.
// Anything else is an Error naming the pattern, never a silently different match.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mechscope::tokenizers {

class Regex {
 public:
  explicit Regex(const std::string& pattern);
  ~Regex();
  Regex(Regex&&) noexcept;

  // Non-overlapping matches left to right, as byte ranges [begin, end) of valid UTF-8 `text`.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;
  const std::string& pattern() const { return pattern_; }

  struct Node;

 private:
  std::string pattern_;
  std::unique_ptr<Node> root_;
};

}  // namespace mechscope::tokenizers
