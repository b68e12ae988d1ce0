// Token strings → labels a reader can see. Tokens come in any script and from byte-level BPE, so a
// label may be a space, a newline, part of a UTF-8 sequence, or GPT-2's byte-level form ("Ġthe").
#pragma once
#include <string>
#include <string_view>

namespace mechscope::report {

struct LabelStyle {
  bool dot_spaces = true;  // ' ' shown as '·' (else kept: invisible at the edge of a label)
  size_t max_chars = 0;    // > 0: longer labels cut to max_chars code points ending in '…'
};

// Decoded text (what a tokenizer's decode gives) → display label: spaces per style, '\n' → '⏎',
// '\t' → '⇥', other control characters → U+2400 pictures or \xNN, invalid UTF-8 bytes → \xNN (never
// tofu or a broken string), empty → '∅'.
std::string token_label(std::string_view text, const LabelStyle& style = {});

// GPT-2's byte-level alphabet ("Ġ" = space, "Ċ" = newline, "Ã©" = é) → the raw bytes it stands for.
// Characters outside that alphabet are kept as UTF-8.
std::string byte_level_decode(std::string_view token);

// token_label(byte_level_decode(token)).
std::string gpt2_token_label(std::string_view token, const LabelStyle& style = {});

// Sanitises arbitrary bytes into valid UTF-8 (invalid bytes → \xNN).
std::string valid_utf8(std::string_view s);

// Cuts to at most max_chars code points, ending in '…' when cut.
std::string truncate_label(std::string_view s, size_t max_chars);

}  // namespace mechscope::report
