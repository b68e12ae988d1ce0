// GPT-2's byte-level alphabet and pre-tokenizer regex, shared by the ByteLevel pre-tokenizer,
// decoder and post-processor.
#pragma once
#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizers/pipeline.h"

namespace mechscope::tokenizers {

// Byte b -> the printable character GPT-2 uses for it (UTF-8), as in openai/gpt-2 encoder.py.
const std::array<std::string, 256>& byte_to_char();
// The inverse; -1 for a code point that is not in the alphabet.
int char_to_byte(char32_t c);
// Appends the byte-level form of `bytes` to out.
void bytes_to_chars(std::string_view bytes, std::string& out);

// Splits valid UTF-8 by the GPT-2 pattern, implemented by hand on code points:
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// The matches cover the text (every code point is a letter, number, space or other).
void gpt2_split(std::string_view text, std::vector<std::string_view>& out);

// HF's ByteLevel pre-tokenizer: optional leading space, GPT-2 split, bytes -> alphabet.
class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex);
  void pre_tokenize(Pieces& pieces) const override;

 private:
  bool add_prefix_space_, use_regex_;
};

// Alphabet -> bytes over all tokens at once, invalid UTF-8 replaced by U+FFFD.
class ByteLevelDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens, bool escape) const override;
};

}  // namespace mechscope::tokenizers
