// The ByteLevel components: pre-tokenizer (GPT-2 regex split + byte alphabet), decoder and
// post-processor (which only trims offsets in HF, so leaves ids alone).
#include "tokenizers/byte_level.h"

#include "core/error.h"
#include "tokenizers/unicode.h"

namespace mechscope::tokenizers {

namespace {

struct Alphabet {
  std::array<std::string, 256> to_char;
  std::array<int16_t, 324> to_byte;  // mapped code points are all < 256 + 68
  Alphabet() {
    to_byte.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      char32_t c = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      std::string s;
      if (c < 0x80) {
        s += static_cast<char>(c);
      } else {
        s += static_cast<char>(0xC0 | (c >> 6));
        s += static_cast<char>(0x80 | (c & 0x3F));
      }
      to_char[b] = s;
      to_byte[c] = static_cast<int16_t>(b);
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet a;
  return a;
}

enum Cls : uint8_t { kLetter, kNumber, kSpace, kOther };

Cls classify(char32_t c) {
  if (uni::is_letter(c)) return kLetter;
  if (uni::is_number(c)) return kNumber;
  if (uni::is_space(c)) return kSpace;
  return kOther;
}

}  // namespace

const std::array<std::string, 256>& byte_to_char() { return alphabet().to_char; }

int char_to_byte(char32_t c) { return c < 324 ? alphabet().to_byte[c] : -1; }

void bytes_to_chars(std::string_view bytes, std::string& out) {
  const auto& t = alphabet().to_char;
  for (unsigned char b : bytes) out += t[b];
}

void gpt2_split(std::string_view text, std::vector<std::string_view>& out) {
  thread_local std::vector<char32_t> cp;
  thread_local std::vector<Cls> cls;
  thread_local std::vector<size_t> at;  // byte offset of each code point, plus the end
  cp.clear(), cls.clear(), at.clear();
  for (size_t i = 0; i < text.size();) {
    at.push_back(i);
    char32_t c = uni::next(text, i);
    cp.push_back(c);
    cls.push_back(classify(c));
  }
  at.push_back(text.size());
  const size_t n = cp.size();
  auto run = [&](size_t j, Cls k) {
    while (j < n && cls[j] == k) ++j;
    return j;
  };
  size_t i = 0;
  while (i < n) {
    size_t end = 0;
    if (cp[i] == '\'' && i + 1 < n) {
      char32_t a = cp[i + 1], b = i + 2 < n ? cp[i + 2] : 0;
      if (a == 's' || a == 't' || a == 'm' || a == 'd') end = i + 2;
      else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) end = i + 3;
    }
    if (!end) {
      // ` ?X+` for X in letter/number/other: the optional space is ASCII space only.
      size_t j = (cp[i] == ' ' && i + 1 < n && cls[i + 1] != kSpace) ? i + 1 : i;
      if (cls[j] != kSpace) {
        end = run(j, cls[j]);
      } else {
        // \s+(?!\S) backtracks to leave the last space before a non-space; \s+ takes one.
        size_t k = run(i, kSpace);
        end = (k == n || k - i == 1) ? k : k - 1;
      }
    }
    out.push_back(text.substr(at[i], at[end] - at[i]));
    i = end;
  }
}

// ---- components -------------------------------------------------------------------------------

ByteLevelPreTokenizer::ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
    : add_prefix_space_(add_prefix_space), use_regex_(use_regex) {}

void ByteLevelPreTokenizer::pre_tokenize(Pieces& pieces) const {
  thread_local std::vector<std::string_view> words;
  split_pieces(pieces, [&](const std::string& text, auto&& emit) {
    std::string prefixed;
    std::string_view s = text;
    if (add_prefix_space_ && (s.empty() || s[0] != ' ')) {
      prefixed = " " + text;
      s = prefixed;
    }
    words.clear();
    if (use_regex_) gpt2_split(s, words);
    else words.push_back(s);
    for (auto w : words) {
      std::string mapped;
      mapped.reserve(w.size() * 2);
      bytes_to_chars(w, mapped);
      emit(static_cast<size_t>(w.data() - s.data()), std::move(mapped));
    }
  });
}

void ByteLevelDecoder::decode_chain(std::vector<std::string>& tokens, bool escape) const {
  std::string bytes;
  for (const auto& t : tokens) {
    // A token with a character outside the alphabet (an added token) is taken as raw UTF-8.
    std::string mine;
    bool ok = true;
    for (size_t i = 0; i < t.size() && ok;) {
      int b = char_to_byte(uni::next(t, i));
      if (b < 0) ok = false;
      else mine += static_cast<char>(b);
    }
    bytes += ok ? mine : t;
  }
  tokens.assign(1, escape ? uni::escape_invalid(bytes) : uni::lossy(bytes));
}

}  // namespace mechscope::tokenizers
