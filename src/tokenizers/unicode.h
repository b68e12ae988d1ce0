// Unicode predicates and UTF-8 helpers the tokenizer pipeline shares. Categories come from
// utf8proc; "space" is the Unicode White_Space property, which is what \s means in the regex
// engines Hugging Face `tokenizers` uses (Oniguruma, Rust `regex`).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace mechscope::tokenizers::uni {

bool is_letter(char32_t c);           // \p{L}
bool is_number(char32_t c);           // \p{N}
bool is_space(char32_t c);            // \s = White_Space
bool is_word(char32_t c);             // \w (Rust regex: Alphabetic, M, Nd, Pc, Join_Control)
bool is_punctuation(char32_t c);      // \p{P}
bool is_mark_nonspacing(char32_t c);  // Mn
bool is_control(char32_t c);          // C* except \t \n \r (BERT's notion)
bool is_cjk(char32_t c);              // BERT's CJK ideograph blocks
char32_t to_lower(char32_t c);
char32_t to_upper(char32_t c);

// Decodes the code point at s[i] (s valid UTF-8) and advances i.
inline char32_t next(std::string_view s, size_t& i) {
  unsigned char c = s[i];
  if (c < 0x80) {
    ++i;
    return c;
  }
  int n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
  char32_t cp = c & (0x7F >> n);
  for (int k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += n;
  return cp;
}
inline size_t char_len(unsigned char lead) { return lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2; }

// Bytes -> text, each maximal invalid subsequence replaced by U+FFFD (Rust's
// String::from_utf8_lossy, Python's errors="replace").
std::string lossy(std::string_view bytes);
// Bytes -> text with valid sequences kept and every byte of an invalid one shown as \xNN.
std::string escape_invalid(std::string_view bytes);

}  // namespace mechscope::tokenizers::uni
