// tokenizer.json "normalizer" -> Normalizer (HF tokenizers/src/normalizers).
#include <utf8proc.h>

#include <cstdlib>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/utf8.h"
#include "tokenizers/pipeline.h"
#include "tokenizers/regex.h"
#include "tokenizers/unicode.h"

namespace mechscope::tokenizers {

namespace {

std::string unicode_form(std::string_view s, int options) {
  utf8proc_uint8_t* out = nullptr;
  auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), static_cast<utf8proc_ssize_t>(s.size()),
                        &out, static_cast<utf8proc_option_t>(options | UTF8PROC_STABLE));
  if (n < 0) fail("normalizer: ", utf8proc_errmsg(n));
  std::string r(reinterpret_cast<char*>(out), static_cast<size_t>(n));
  std::free(out);
  return r;
}

template <typename F>
std::string map_chars(std::string_view s, F&& f) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) f(uni::next(s, i), out);
  return out;
}

// Rust's char::to_lowercase, per character: the one unconditional multi-character mapping is
// U+0130 -> "i\u0307".
std::string lowercase(std::string_view s) {
  return map_chars(s, [](char32_t c, std::string& out) {
    if (c == 0x130) {
      out += "i\xCC\x87";
      return;
    }
    utf8::append(out, uni::to_lower(c));
  });
}

bool is_mark(char32_t c) {
  auto k = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_MC || k == UTF8PROC_CATEGORY_ME;
}

struct Fn : Normalizer {
  std::function<std::string(std::string_view)> f;
  explicit Fn(std::function<std::string(std::string_view)> g) : f(std::move(g)) {}
  std::string normalize(std::string_view s) const override { return f(s); }
};

std::unique_ptr<Normalizer> fn(std::function<std::string(std::string_view)> f) {
  return std::make_unique<Fn>(std::move(f));
}

std::string bert(std::string_view in, bool clean, bool chinese, bool strip, bool lower) {
  std::string s(in);
  if (clean) {
    s = map_chars(s, [](char32_t c, std::string& out) {
      // HF removes controls (Cc Cf Co, not \t \n \r) before mapping whitespace, so U+0085 goes.
      // Unassigned code points (Cn) stay, as HF `tokenizers` keeps them (U+0378, U+50000, and
      // U+FAF6, which is then spaced as a CJK compatibility ideograph).
      if (c == 0 || c == 0xFFFD) return;
      if (c == '\t' || c == '\n' || c == '\r') {
        out += ' ';
        return;
      }
      auto k = utf8proc_category(static_cast<utf8proc_int32_t>(c));
      if (k >= UTF8PROC_CATEGORY_CC) return;  // Cc Cf Cs Co
      if (uni::is_space(c)) out += ' ';
      else utf8::append(out, c);
    });
  }
  if (chinese) {
    s = map_chars(s, [](char32_t c, std::string& out) {
      if (uni::is_cjk(c)) out += ' ', utf8::append(out, c), out += ' ';
      else utf8::append(out, c);
    });
  }
  if (strip) {
    s = map_chars(unicode_form(s, UTF8PROC_DECOMPOSE), [](char32_t c, std::string& out) {
      if (!uni::is_mark_nonspacing(c)) utf8::append(out, c);
    });
  }
  if (lower) s = lowercase(s);
  return s;
}

bool bool_or(const nlohmann::json& j, const char* key, bool dflt) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? dflt : it->get<bool>();
}

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j) {
  if (j.is_null()) return nullptr;
  std::string type = j.at("type").get<std::string>();
  if (type == "NFC") return fn([](std::string_view s) { return unicode_form(s, UTF8PROC_COMPOSE); });
  if (type == "NFD") return fn([](std::string_view s) { return unicode_form(s, UTF8PROC_DECOMPOSE); });
  if (type == "NFKC") return fn([](std::string_view s) { return unicode_form(s, UTF8PROC_COMPOSE | UTF8PROC_COMPAT); });
  if (type == "NFKD")
    return fn([](std::string_view s) { return unicode_form(s, UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT); });
  if (type == "Lowercase") return fn(lowercase);
  if (type == "StripAccents") {
    return fn([](std::string_view s) {
      return map_chars(s, [](char32_t c, std::string& out) {
        if (!is_mark(c)) utf8::append(out, c);
      });
    });
  }
  if (type == "Strip") {
    bool left = bool_or(j, "strip_left", true), right = bool_or(j, "strip_right", true);
    return fn([left, right](std::string_view s) {
      auto cps = utf8::decode(s);
      size_t a = 0, b = cps.size();
      while (left && a < b && uni::is_space(cps[a])) ++a;
      while (right && b > a && uni::is_space(cps[b - 1])) --b;
      return utf8::encode(std::vector<char32_t>(cps.begin() + a, cps.begin() + b));
    });
  }
  if (type == "Prepend" || type == "Append") {
    std::string add = j.at(type == "Prepend" ? "prepend" : "append").get<std::string>();
    bool front = type == "Prepend";
    return fn([add, front](std::string_view s) {
      if (s.empty()) return std::string();
      return front ? add + std::string(s) : std::string(s) + add;
    });
  }
  if (type == "Replace") {
    const auto& pat = j.at("pattern");
    std::string content = j.at("content").get<std::string>();
    if (pat.contains("String")) {
      std::string lit = pat["String"].get<std::string>();
      return fn([lit, content](std::string_view s) {
        std::string out;
        size_t prev = 0;
        if (!lit.empty()) {
          for (size_t p = s.find(lit); p != std::string_view::npos; p = s.find(lit, prev)) {
            out.append(s.substr(prev, p - prev)).append(content);
            prev = p + lit.size();
          }
        }
        return out.append(s.substr(prev));
      });
    }
    if (pat.contains("Regex")) {
      auto re = std::make_shared<Regex>(pat["Regex"].get<std::string>());
      return fn([re, content](std::string_view s) {
        std::string out;
        size_t prev = 0;
        for (auto [b, e] : re->find_all(s)) {
          out.append(s.substr(prev, b - prev)).append(content);
          prev = e;
        }
        return out.append(s.substr(prev));
      });
    }
    fail("normalizer Replace: pattern ", pat.dump(), " is neither String nor Regex");
  }
  if (type == "BertNormalizer") {
    bool clean = bool_or(j, "clean_text", true), chinese = bool_or(j, "handle_chinese_chars", true);
    bool lower = bool_or(j, "lowercase", true);
    bool strip = bool_or(j, "strip_accents", lower);  // null follows lowercase, as in HF
    return fn([=](std::string_view s) { return bert(s, clean, chinese, strip, lower); });
  }
  if (type == "Sequence") {
    std::vector<std::shared_ptr<Normalizer>> steps;
    for (const auto& n : j.at("normalizers"))
      if (auto s = make_normalizer(n)) steps.push_back(std::move(s));
    return fn([steps](std::string_view s) {
      std::string t(s);
      for (const auto& n : steps) t = n->normalize(t);
      return t;
    });
  }
  fail("normalizer type '", type,
       "' is not supported (supported: NFC, NFD, NFKC, NFKD, Lowercase, StripAccents, Strip, "
       "Prepend, Append, Replace, BertNormalizer, Sequence)");
}

}  // namespace mechscope::tokenizers
