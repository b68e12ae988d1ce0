#include "report/label.h"

#include <cstdio>
#include <vector>

#include "core/utf8.h"

namespace mechscope::report {

std::string valid_utf8(std::string_view s) {
  std::string out;
  while (!s.empty()) {
    size_t bad = utf8::find_invalid(s);
    if (bad == std::string_view::npos) {
      out += s;
      break;
    }
    out += s.substr(0, bad);
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02X", (unsigned char)s[bad]);
    out += buf;
    s.remove_prefix(bad + 1);
  }
  return out;
}

std::string token_label(std::string_view text, const LabelStyle& style) {
  if (text.empty()) return "∅";
  std::string out;
  // Walk valid stretches; invalid bytes become \xNN so a token that ends inside a UTF-8 sequence
  // (byte-level BPE splits CJK and emoji) is still readable.
  std::string clean = valid_utf8(text);
  for (char32_t cp : utf8::decode(clean)) {
    if (cp == ' ' && style.dot_spaces) out += "·";
    else if (cp == '\n') out += "⏎";
    else if (cp == '\t') out += "⇥";
    else if (cp == '\r') out += "␍";
    else if (cp < 0x20) utf8::append(out, 0x2400 + cp);  // ␀ … ␟
    else if (cp == 0x7f) out += "␡";
    else if (cp >= 0x80 && cp < 0xa0) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", (unsigned)cp);
      out += buf;
    } else utf8::append(out, cp);
  }
  if (style.max_chars > 0) out = truncate_label(out, style.max_chars);
  return out;
}

std::string byte_level_decode(std::string_view token) {
  // GPT-2's bytes_to_unicode: printable bytes map to themselves, the other 68 bytes (0-32, 127-160, 173)
  // to U+0100 upwards in byte order.
  static const std::vector<int> unicode_to_byte = [] {
    std::vector<int> inv(0x200, -1);
    int n = 0;
    for (int b = 0; b < 256; b++) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      if (printable) inv[b] = b;
      else inv[0x100 + n++] = b;
    }
    return inv;
  }();
  std::string clean = valid_utf8(token);
  std::string out;
  for (char32_t cp : utf8::decode(clean)) {
    if (cp < unicode_to_byte.size() && unicode_to_byte[cp] >= 0) out += char(unicode_to_byte[cp]);
    else utf8::append(out, cp);
  }
  return out;
}

std::string gpt2_token_label(std::string_view token, const LabelStyle& style) {
  return token_label(byte_level_decode(token), style);
}

std::string truncate_label(std::string_view s, size_t max_chars) {
  std::string clean = valid_utf8(s);
  auto cps = utf8::decode(clean);
  if (cps.size() <= max_chars) return clean;
  cps.resize(max_chars > 0 ? max_chars - 1 : 0);
  return utf8::encode(cps) + "…";
}

}  // namespace mechscope::report
