// UTF-8 helpers shared by tokenizers, the CLI (input validation) and figure labels.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mechscope::utf8 {

// Byte offset of the first invalid sequence (overlong, surrogate, > U+10FFFF, truncated), or npos.
size_t find_invalid(std::string_view s);
inline bool valid(std::string_view s) { return find_invalid(s) == std::string_view::npos; }

// Decodes valid UTF-8 into code points (call valid() first: invalid bytes decode as U+FFFD).
std::vector<char32_t> decode(std::string_view s);
void append(std::string& out, char32_t cp);
std::string encode(const std::vector<char32_t>& cps);

}  // namespace mechscope::utf8
