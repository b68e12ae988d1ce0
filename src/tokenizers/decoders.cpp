// tokenizer.json "decoder" -> Decoder (HF tokenizers/src/decoders).
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/utf8.h"
#include "tokenizers/byte_level.h"
#include "tokenizers/regex.h"
#include "tokenizers/unicode.h"

namespace mechscope::tokenizers {

namespace {

using Tokens = std::vector<std::string>;

struct Fn : Decoder {
  std::function<void(Tokens&, bool)> f;
  explicit Fn(std::function<void(Tokens&, bool)> g) : f(std::move(g)) {}
  void decode_chain(Tokens& t, bool escape) const override { f(t, escape); }
};

std::unique_ptr<Decoder> fn(std::function<void(Tokens&, bool)> f) { return std::make_unique<Fn>(std::move(f)); }

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  std::string out;
  size_t prev = 0;
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, prev)) {
    out.append(s, prev, p - prev).append(to);
    prev = p + from.size();
  }
  return out.append(s, prev, std::string::npos);
}

std::string wordpiece_cleanup(std::string s) {
  static const std::pair<const char*, const char*> rules[] = {
      {" .", "."},   {" ?", "?"},           {" !", "!"},   {" ,", ","},     {" ' ", "'"},   {" n't", "n't"},
      {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [a, b] : rules) s = replace_all(std::move(s), a, b);
  return s;
}

// "<0xNN>" -> NN, or -1.
int byte_token(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  int v = 0;
  for (int k = 3; k < 5; ++k) {
    char c = t[k];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                   : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

void byte_fallback(Tokens& toks, bool escape) {
  Tokens out;
  std::string bytes;
  size_t nbytes = 0;
  auto flush = [&] {
    if (!nbytes) return;
    if (utf8::valid(bytes)) out.push_back(bytes);
    else if (escape) out.push_back(uni::escape_invalid(bytes));
    else
      for (size_t k = 0; k < nbytes; ++k) out.push_back("\xEF\xBF\xBD");  // one per byte, as HF
    bytes.clear();
    nbytes = 0;
  };
  for (auto& t : toks) {
    int b = byte_token(t);
    if (b >= 0) {
      bytes += static_cast<char>(b);
      ++nbytes;
      continue;
    }
    flush();
    out.push_back(std::move(t));
  }
  flush();
  toks = std::move(out);
}

bool bool_or(const nlohmann::json& j, const char* key, bool dflt) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? dflt : it->get<bool>();
}

}  // namespace

std::unique_ptr<Decoder> make_decoder(const nlohmann::json& j) {
  if (j.is_null()) return nullptr;
  std::string type = j.at("type").get<std::string>();
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "ByteFallback") return fn(byte_fallback);
  if (type == "Fuse") {
    return fn([](Tokens& t, bool) {
      std::string all;
      for (const auto& s : t) all += s;
      t.assign(1, all);
    });
  }
  if (type == "WordPiece") {
    std::string prefix = j.contains("prefix") ? j["prefix"].get<std::string>() : "##";
    bool cleanup = bool_or(j, "cleanup", true);
    return fn([prefix, cleanup](Tokens& toks, bool) {
      for (size_t i = 0; i < toks.size(); ++i) {
        auto& t = toks[i];
        if (i != 0) {
          if (t.compare(0, prefix.size(), prefix) == 0) t.erase(0, prefix.size());
          else t = " " + t;
        }
        if (cleanup) t = wordpiece_cleanup(std::move(t));
      }
    });
  }
  if (type == "Metaspace") {
    std::string rep = j.contains("replacement") ? j["replacement"].get<std::string>() : "\u2581";
    bool strip_first = true;
    if (j.contains("prepend_scheme") && !j["prepend_scheme"].is_null())
      strip_first = j["prepend_scheme"].get<std::string>() != "never";
    else if (j.contains("add_prefix_space")) strip_first = bool_or(j, "add_prefix_space", true);
    return fn([rep, strip_first](Tokens& toks, bool) {
      // Every replacement in the first token is dropped (not only a leading one), as HF does.
      for (size_t i = 0; i < toks.size(); ++i)
        toks[i] = replace_all(std::move(toks[i]), rep, i == 0 && strip_first ? "" : " ");
    });
  }
  if (type == "Replace") {
    const auto& pat = j.at("pattern");
    std::string content = j.at("content").get<std::string>();
    if (pat.contains("String")) {
      std::string lit = pat["String"].get<std::string>();
      return fn([lit, content](Tokens& toks, bool) {
        for (auto& t : toks) t = replace_all(std::move(t), lit, content);
      });
    }
    if (pat.contains("Regex")) {
      auto re = std::make_shared<Regex>(pat["Regex"].get<std::string>());
      return fn([re, content](Tokens& toks, bool) {
        for (auto& t : toks) {
          std::string out;
          size_t prev = 0;
          for (auto [b, e] : re->find_all(t)) {
            out.append(t, prev, b - prev).append(content);
            prev = e;
          }
          t = out.append(t, prev, std::string::npos);
        }
      });
    }
    fail("decoder Replace: pattern ", pat.dump(), " is neither String nor Regex");
  }
  if (type == "Strip") {
    std::string content = j.at("content").get<std::string>();
    size_t start = j.value("start", size_t{0}), stop = j.value("stop", size_t{0});
    return fn([content, start, stop](Tokens& toks, bool) {
      for (auto& t : toks) {
        for (size_t k = 0; k < start && t.compare(0, content.size(), content) == 0; ++k) t.erase(0, content.size());
        for (size_t k = 0; k < stop && t.size() >= content.size() &&
                           t.compare(t.size() - content.size(), content.size(), content) == 0;
             ++k)
          t.erase(t.size() - content.size());
      }
    });
  }
  if (type == "BPEDecoder") {
    std::string suffix = j.contains("suffix") ? j["suffix"].get<std::string>() : "</w>";
    return fn([suffix](Tokens& toks, bool) {
      for (size_t i = 0; i < toks.size(); ++i)
        toks[i] = replace_all(std::move(toks[i]), suffix, i + 1 == toks.size() ? "" : " ");
    });
  }
  if (type == "Sequence") {
    std::vector<std::shared_ptr<Decoder>> steps;
    for (const auto& d : j.at("decoders"))
      if (auto s = make_decoder(d)) steps.push_back(std::move(s));
    return fn([steps](Tokens& toks, bool escape) {
      for (const auto& s : steps) s->decode_chain(toks, escape);
    });
  }
  fail("decoder type '", type,
       "' is not supported (supported: ByteLevel, ByteFallback, Fuse, WordPiece, Metaspace, "
       "Replace, Strip, BPEDecoder, Sequence)");
}

}  // namespace mechscope::tokenizers
