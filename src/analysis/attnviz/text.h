// Tokens as text: where each token's characters sit in the decoded sequence, so a word can be matched
// over all of its word pieces (WordPiece "cap ##y ##bara", BPE "Ġcap ybara").
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tokenizers/tokenizer.h"

namespace mechscope::analysis::attnviz {

struct TokenText {
  std::string text;                              // the decoded sequence
  std::vector<std::pair<size_t, size_t>> spans;  // per token: [begin, end) in `text` (empty: no characters)
};
// Spans from the decodes of successive prefixes (decoders are prefix-stable for whole tokens).
TokenText token_text(const tokenizers::Tokenizer& tok, const std::vector<int64_t>& ids);

// Every token holding a character of a whole-word occurrence of `word` (ASCII case-insensitive; word
// boundaries at characters that are not letters or digits), ascending.
std::vector<int64_t> match_word(const TokenText& t, const std::string& word);

}  // namespace mechscope::analysis::attnviz
