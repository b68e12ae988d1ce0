// A text corpus for `mechscope train --corpus`: JSONL of {"text": ...}, and the word-level tokenizer
// built from it (a Hugging Face tokenizer.json that transformers and the npm `tokenizers` load).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mechscope::analysis {

struct TextCorpus {
  std::string path;
  std::vector<std::string> texts;
  std::vector<int64_t> lines;  // 1-based line of each text in the file, for error messages
};

// Reads `path`; blank lines are skipped. Error naming the file (and line) when it is missing, holds
// no text, or a line is not JSON, not an object with a string "text", or has an empty text.
TextCorpus read_corpus(const std::string& path);

// A WordLevel tokenizer.json covering every word of the corpus: specials <|endoftext|> (0, the
// BOS/EOS), [UNK] (1), [PAD] (2), then the words by falling count (ties in byte order). Words are
// what HF's pre-tokenizer Sequence[WhitespaceSplit, Punctuation(Isolated)] makes of the text (after a
// Lowercase normalizer when `lowercase`), so "can't" -> can ' t and "me." -> me . ; decoding joins
// tokens with spaces, as HF does without a decoder. Error naming the file and line of a text that
// gives no word at all.
nlohmann::json build_word_tokenizer(const TextCorpus& corpus, bool lowercase);

}  // namespace mechscope::analysis
