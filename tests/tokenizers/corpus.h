// Seeded test texts shared by the tokenizer tests, and a runner for the node reference scripts.
#pragma once
#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace mstest {

inline std::string u8(char32_t c) {
  std::string s;
  if (c < 0x80) s += char(c);
  else if (c < 0x800) s += char(0xC0 | (c >> 6)), s += char(0x80 | (c & 0x3F));
  else if (c < 0x10000) s += char(0xE0 | (c >> 12)), s += char(0x80 | ((c >> 6) & 0x3F)), s += char(0x80 | (c & 0x3F));
  else
    s += char(0xF0 | (c >> 18)), s += char(0x80 | ((c >> 12) & 0x3F)), s += char(0x80 | ((c >> 6) & 0x3F)),
        s += char(0x80 | (c & 0x3F));
  return s;
}

// Seeded texts covering the classes the GPT-2 pattern distinguishes. U+0085 and U+FEFF are left
// out: JavaScript's \s omits U+0085 and includes U+FEFF, the opposite of the Unicode White_Space
// property that HF `tokenizers` (Oniguruma) and tiktoken use, and mechscope follows HF there
// (checked separately in GPT2Split.UnicodeWhitespaceIsWhiteSpaceProperty).
inline std::vector<std::string> make_corpus(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  auto pick = [&](uint32_t k) { return rng() % k; };
  struct Range {
    char32_t lo, hi;
  };
  const std::vector<std::vector<Range>> scripts = {
      {{'a', 'z'}, {'A', 'Z'}},
      {{0xC0, 0xFF}, {0x100, 0x17F}},                          // Latin with accents (× and ÷ are symbols)
      {{0x3B1, 0x3C9}, {0x391, 0x3A9}, {0x386, 0x38F}},        // Greek
      {{0x430, 0x44F}, {0x410, 0x42F}},                        // Cyrillic
      {{0x627, 0x64A}, {0x64B, 0x652}},                        // Arabic letters and harakat (Mn)
      {{0x5D0, 0x5EA}, {0x5B0, 0x5BC}},                        // Hebrew letters and points
      {{0x905, 0x939}, {0x93E, 0x94D}},                        // Devanagari letters and matras
      {{0xE01, 0xE2E}, {0xE31, 0xE3A}, {0xE47, 0xE4E}},        // Thai
      {{0x4E00, 0x9FA5}},                                      // CJK
      {{0xAC00, 0xD7A3}},                                      // Hangul
      {{0x3041, 0x3096}, {0x30A1, 0x30FA}, {0x30FC, 0x30FC}},  // kana
      {{0x300, 0x36F}},                                        // combining marks
  };
  const std::vector<Range> digits = {{'0', '9'},   {0x660, 0x669},   {0x966, 0x96F}, {0xFF10, 0xFF19},
                                     {0xB2, 0xB3}, {0x2160, 0x216B}, {0xBC, 0xBE}};
  const std::vector<std::string> spaces = {
      " ",           "  ",       "   ",      "\t",       "\n",       "\n\n",     "\r\n",     "\r",
      "\v",          "\f",       " \n ",     "\t\t ",    u8(0xA0),   u8(0x1680), u8(0x2000), u8(0x2003),
      u8(0x2009),    u8(0x200A), u8(0x2028), u8(0x2029), u8(0x202F), u8(0x205F), u8(0x3000), " " + u8(0x3000),
      u8(0xA0) + " "};
  const std::vector<std::string> contractions = {"'s",  "'t", "'re", "'ve", "'m", "'ll", "'d", "'S",  "'T",  "'RE",
                                                 "'VE", "'M", "'LL", "'D",  "'",  "''",  "'x", " 's", "'Re", "'lL"};
  const std::vector<std::string> emoji = {u8(0x1F600),
                                          u8(0x1F680),
                                          u8(0x1F44D) + u8(0x1F3FD),
                                          u8(0x1F468) + u8(0x200D) + u8(0x1F469) + u8(0x200D) + u8(0x1F467),
                                          u8(0x1F1FA) + u8(0x1F1F8),
                                          u8(0x1F1EF) + u8(0x1F1F5),
                                          u8(0x2764) + u8(0xFE0F),
                                          "1" + u8(0xFE0F) + u8(0x20E3),
                                          u8(0x1F9D1) + u8(0x200D) + u8(0x1F4BB),
                                          u8(0x200B),
                                          u8(0x200D),
                                          u8(0x1F30D)};
  const std::string ascii_punct = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~";
  const std::vector<std::string> punct = {u8(0x201C), u8(0x201D), u8(0x2014), u8(0x2026), u8(0xAB),   u8(0xBB),
                                          u8(0xBF),   u8(0xA1),   u8(0x3001), u8(0x3002), u8(0x30FB), u8(0x20AC),
                                          u8(0xA3),   u8(0xA9),   u8(0x2122), u8(0xB1),   u8(0xD7),   u8(0xF7),
                                          u8(0x2192), u8(0x2211), u8(0x1C),   u8(0x7F),   u8(0x01)};
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) {
    std::string s;
    uint32_t segments = 1 + pick(12);
    for (uint32_t k = 0; k < segments; ++k) {
      switch (pick(8)) {
        case 0:
        case 1: {  // a word of one script
          const auto& sc = scripts[pick(scripts.size())];
          uint32_t len = 1 + pick(8);
          for (uint32_t c = 0; c < len; ++c) {
            const Range& r = sc[pick(sc.size())];
            s += u8(r.lo + pick(r.hi - r.lo + 1));
          }
          break;
        }
        case 2: {
          const Range& r = digits[pick(digits.size())];
          uint32_t len = 1 + pick(7);
          for (uint32_t c = 0; c < len; ++c) s += u8(r.lo + pick(r.hi - r.lo + 1));
          break;
        }
        case 3: s += spaces[pick(spaces.size())]; break;
        case 4: s += contractions[pick(contractions.size())]; break;
        case 5: s += emoji[pick(emoji.size())]; break;
        case 6: {
          uint32_t len = 1 + pick(3);
          for (uint32_t c = 0; c < len; ++c)
            s += pick(2) ? std::string(1, ascii_punct[pick(ascii_punct.size())]) : punct[pick(punct.size())];
          break;
        }
        default: s += " "; break;
      }
    }
    out.push_back(s);
  }
  return out;
}

// Seeded texts for the property test against HF `tokenizers` (whose regexes and Unicode tables are
// Rust's, so unlike make_corpus nothing is left out): the classes make_corpus covers, plus what
// normalizers and added-token matching distinguish (case and accents, compatibility forms, controls,
// format characters, whitespace runs) and the strings in `specials` embedded in the text, whole,
// cut short, or with spaces around them.
inline std::vector<std::string> make_mixed_corpus(size_t n, uint32_t seed, const std::vector<std::string>& specials) {
  std::mt19937 rng(seed);
  auto pick = [&](size_t k) { return static_cast<size_t>(rng() % k); };
  std::vector<std::string> base = make_corpus(n, seed ^ 0x9E3779B9u);
  struct Range {
    char32_t lo, hi;
  };
  const std::vector<std::vector<Range>> words = {
      {{'a', 'z'}},
      {{'A', 'Z'}},
      {{'A', 'Z'}, {'a', 'z'}, {0xC0, 0xDE}, {0xDF, 0xFF}},
      {{0x100, 0x17F}, {0x180, 0x24F}},  // Latin Extended-A/B (İ, ı, ſ, ǅ ...)
      {{0x1E00, 0x1EFF}},                // precomposed Vietnamese
      {{0xFB00, 0xFB06}, {0xFF21, 0xFF3A}, {0xFF41, 0xFF5A}, {0x2460, 0x2473}},    // ligatures, full width, ①
      {{0x410, 0x44F}, {0x400, 0x40F}},                                            // Cyrillic upper and lower
      {{0x621, 0x64A}, {0x660, 0x669}},                                            // Arabic
      {{0x4E00, 0x9FFF}, {0x3400, 0x4DBF}, {0x20000, 0x2A6DF}, {0xF900, 0xFAFF}},  // CJK incl. ext. B
      {{0x1100, 0x1112}, {0x1161, 0x1175}, {0xAC00, 0xD7A3}, {0x3131, 0x318E}},    // Hangul jamo, syllables
      {{0x3041, 0x3096}, {0x30A1, 0x30FA}, {0xFF66, 0xFF9D}},                      // kana, half width
      {{0x391, 0x3A9}, {0x3B1, 0x3C9}, {0x1F00, 0x1FFF}},                          // Greek incl. polytonic
  };
  const std::vector<std::string> marks = {u8(0x301), u8(0x300),  u8(0x308), u8(0x327),
                                          u8(0x30C), u8(0x20DD), u8(0x93C), u8(0x3099)};
  const std::vector<std::string> odd = {
      std::string(1, '\0'), u8(0x01),   u8(0x1F),   u8(0x7F),   u8(0x85),   u8(0xAD),    u8(0x200B),
      u8(0x200C),           u8(0x200D), u8(0x200E), u8(0x2060), u8(0xFEFF), u8(0xFFFD),  u8(0xE000),
      u8(0xF8FF),           u8(0x180E), u8(0x2028), u8(0x2029), u8(0xFFFC), u8(0x1D400), u8(0xE0041)};
  const std::vector<std::string> spaces = {" ",        "\t",       "\n",       "\r",       "\r\n",     "\v",
                                           "\f",       u8(0xA0),   u8(0x1680), u8(0x2002), u8(0x2007), u8(0x200A),
                                           u8(0x202F), u8(0x205F), u8(0x3000), u8(0x85)};
  const std::vector<std::string> emoji = {
      u8(0x1F600),
      u8(0x1F44B) + u8(0x1F3FF),
      u8(0x1F469) + u8(0x200D) + u8(0x1F4BB),
      u8(0x1F3F3) + u8(0xFE0F) + u8(0x200D) + u8(0x1F308),
      u8(0x1F468) + u8(0x200D) + u8(0x2764) + u8(0xFE0F) + u8(0x200D) + u8(0x1F48B) + u8(0x200D) + u8(0x1F468),
      u8(0x1F1E9) + u8(0x1F1EA),
      "#" + u8(0xFE0F) + u8(0x20E3),
      u8(0x263A),
      u8(0x263A) + u8(0xFE0F),
      u8(0x1FAE0)};
  const std::string punct = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
  std::vector<std::string> out = {"",  " ", "  ", "\n", "\t \n",    u8(0x3000),
                                  "a", "A", "'s", "1",  "\xC3\xA9", "e\xCC\x81"};
  for (const auto& t : specials) out.insert(out.end(), {t, " " + t, t + " ", " " + t + " "});
  out.resize(std::min(out.size(), n));
  out.reserve(n);
  for (size_t i = out.size(); i < n; ++i) {
    std::string s = pick(3) == 0 ? base[i] : std::string();
    size_t segments = 1 + pick(14);
    for (size_t k = 0; k < segments; ++k) {
      switch (pick(10)) {
        case 0:
        case 1:
        case 2: {
          const auto& w = words[pick(words.size())];
          for (size_t c = 0, len = 1 + pick(9); c < len; ++c) {
            const Range& r = w[pick(w.size())];
            s += u8(static_cast<char32_t>(r.lo + pick(r.hi - r.lo + 1)));
            if (pick(12) == 0) s += marks[pick(marks.size())];
          }
          break;
        }
        case 3:
          for (size_t c = 0, len = 1 + pick(9); c < len; ++c) s += char('0' + pick(10));
          break;
        case 4:
          for (size_t c = 0, len = 1 + pick(5); c < len; ++c) s += spaces[pick(spaces.size())];
          break;
        case 5: s += emoji[pick(emoji.size())]; break;
        case 6:
          for (size_t c = 0, len = 1 + pick(4); c < len; ++c) s += punct[pick(punct.size())];
          break;
        case 7: s += odd[pick(odd.size())]; break;
        case 8: {
          if (specials.empty()) break;
          std::string t = specials[pick(specials.size())];
          size_t how = pick(6);
          if (how == 0 && t.size() > 1) t.pop_back();
          if (how == 1) t = " " + t + " ";
          if (how == 2) t = t + t;
          if (how == 3) t = "x" + t + "y";
          s += t;
          break;
        }
        case 9: {
          if (pick(4)) {
            s += " ";
            break;
          }
          // A word near WordPiece's max_input_chars_per_word (100) and long enough to stress BPE merges.
          const auto& w = words[pick(words.size())];
          const Range& r = w[pick(w.size())];
          for (size_t c = 0, len = 90 + pick(21); c < len; ++c)
            s += u8(static_cast<char32_t>(r.lo + pick(r.hi - r.lo + 1)));
          break;
        }
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace mstest
