// The facts a `locate` run traces (one JSON object per line) and ROME's find_token_range.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tokenizers/tokenizer.h"

namespace mechscope::analysis::causal_trace {

struct Fact {
  int line = 0;    // 1-based line in the facts file
  std::string id;  // "id" (or ROME's "known_id"); "" when absent
  std::string prompt, subject;
  std::optional<std::string> answer;  // "answer" (or ROME's "attribute"): the expected prediction
};

struct FactsFile {
  std::vector<Fact> facts;
  std::vector<std::string> skipped;  // "line N: why" for each bad line passed over (skip_bad)
};

// Reads FACTS.jsonl: `prompt` and `subject` strings required, `answer` and `id` optional; blank lines
// ignored. A malformed line is an Error naming the file and line, or with skip_bad is reported in
// `skipped` and passed over. Error when no fact remains.
FactsFile read_facts(const std::string& path, bool skip_bad);

// ROME's find_token_range: the subject's first occurrence in the decoded prompt, mapped to the
// [begin, end) range of tokens covering it. Offsets come from decoding growing prefixes, so tokens
// that split a UTF-8 character still map right. Error naming subject and prompt when absent.
std::pair<int64_t, int64_t> find_token_range(const tokenizers::Tokenizer& tok, const std::vector<int64_t>& ids,
                                             const std::string& subject, const std::string& prompt);

// A fact id usable in a file name: characters other than letters, digits, '-', '_' and '.' become '_'.
std::string file_safe(const std::string& id);

// Error when a word of `text` becomes the tokenizer's unknown token: a subject or answer made of
// [UNK] would trace a different text than the one given. `what` names it ("subject", "--answer").
void check_known_words(const tokenizers::Tokenizer& tok, const std::string& text, const std::string& what);

}  // namespace mechscope::analysis::causal_trace
