// tokenizer.json "pre_tokenizer" -> PreTokenizer (HF tokenizers/src/pre_tokenizers).
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizers/byte_level.h"
#include "tokenizers/split.h"
#include "tokenizers/unicode.h"

namespace mechscope::tokenizers {

namespace {

bool bool_or(const nlohmann::json& j, const char* key, bool dflt) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? dflt : it->get<bool>();
}

// Splits every piece by the spans `find` gives, under one behaviour.
class SpanSplit : public PreTokenizer {
 public:
  using Find = std::function<std::vector<Span>(std::string_view)>;
  SpanSplit(Find find, SplitBehavior b, bool invert) : find_(std::move(find)), behavior_(b), invert_(invert) {}
  void pre_tokenize(Pieces& pieces) const override {
    split_pieces(pieces, [&](const std::string& s, auto&& emit) {
      for (auto [b, e] : apply_behavior(find_(s), behavior_, invert_)) emit(b, s.substr(b, e - b));
    });
  }

 private:
  Find find_;
  SplitBehavior behavior_;
  bool invert_;
};

class Chain : public PreTokenizer {
 public:
  explicit Chain(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  void pre_tokenize(Pieces& pieces) const override {
    for (const auto& s : steps_) s->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

// Spaces -> replacement, the replacement prepended per prepend_scheme ("first": only to the
// piece that starts the text), then split before each replacement (HF metaspace.rs).
class Metaspace : public PreTokenizer {
 public:
  Metaspace(std::string replacement, std::string scheme, bool split)
      : rep_(std::move(replacement)), scheme_(std::move(scheme)), split_(split) {}
  void pre_tokenize(Pieces& pieces) const override {
    Pieces out;
    for (auto& p : pieces) {
      if (p.added_id >= 0) {
        out.push_back(std::move(p));
        continue;
      }
      std::string t;
      for (char c : p.text) {
        if (c == ' ') t += rep_;
        else t += c;
      }
      if ((scheme_ == "always" || (scheme_ == "first" && p.at_start)) && t.compare(0, rep_.size(), rep_) != 0)
        t = rep_ + t;
      if (!split_) {
        if (!t.empty()) out.push_back(Piece{std::move(t), p.at_start, -1});
        continue;
      }
      auto spans = apply_behavior(spans_of_string(rep_, t), SplitBehavior::MergedWithNext, false);
      for (auto [b, e] : spans) out.push_back(Piece{t.substr(b, e - b), p.at_start && b == 0, -1});
    }
    pieces = std::move(out);
  }

 private:
  std::string rep_, scheme_;
  bool split_;
};

bool is_bert_punct(char32_t c) {
  return (c < 0x80 &&
          ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126))) ||
         uni::is_punctuation(c);
}

std::unique_ptr<PreTokenizer> chars(std::function<bool(char32_t)> pred, SplitBehavior b) {
  return std::make_unique<SpanSplit>([pred = std::move(pred)](std::string_view s) { return spans_of_chars(pred, s); },
                                     b, false);
}

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j) {
  if (j.is_null()) return nullptr;
  std::string type = j.at("type").get<std::string>();
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPreTokenizer>(bool_or(j, "add_prefix_space", true), bool_or(j, "use_regex", true));
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (const auto& p : j.at("pretokenizers"))
      if (auto s = make_pre_tokenizer(p)) steps.push_back(std::move(s));
    return std::make_unique<Chain>(std::move(steps));
  }
  if (type == "Split") {
    const auto& pat = j.at("pattern");
    SplitBehavior b = parse_behavior(j.at("behavior").get<std::string>());
    bool invert = bool_or(j, "invert", false);
    if (pat.contains("Regex")) {
      auto re = std::make_shared<Regex>(pat["Regex"].get<std::string>());
      return std::make_unique<SpanSplit>([re](std::string_view s) { return spans_of_regex(*re, s); }, b, invert);
    }
    if (pat.contains("String")) {
      std::string lit = pat["String"].get<std::string>();
      return std::make_unique<SpanSplit>([lit](std::string_view s) { return spans_of_string(lit, s); }, b, invert);
    }
    fail("pre_tokenizer Split: pattern ", pat.dump(), " is neither String nor Regex");
  }
  if (type == "Metaspace") {
    std::string rep = j.contains("replacement") ? j["replacement"].get<std::string>() : "\u2581";
    std::string scheme = "always";
    if (j.contains("prepend_scheme") && !j["prepend_scheme"].is_null()) {
      scheme = j["prepend_scheme"].get<std::string>();
      if (scheme != "always" && scheme != "first" && scheme != "never")
        fail("pre_tokenizer Metaspace: prepend_scheme '", scheme, "' is not supported");
    } else if (j.contains("add_prefix_space")) {
      scheme = bool_or(j, "add_prefix_space", true) ? "always" : "never";
    }
    return std::make_unique<Metaspace>(rep, scheme, bool_or(j, "split", true));
  }
  if (type == "Whitespace") {
    auto re = std::make_shared<Regex>("\\w+|[^\\w\\s]+");
    return std::make_unique<SpanSplit>([re](std::string_view s) { return spans_of_regex(*re, s); },
                                       SplitBehavior::Removed, true);
  }
  if (type == "WhitespaceSplit") return chars(uni::is_space, SplitBehavior::Removed);
  if (type == "BertPreTokenizer") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    steps.push_back(chars(uni::is_space, SplitBehavior::Removed));
    steps.push_back(chars(is_bert_punct, SplitBehavior::Isolated));
    return std::make_unique<Chain>(std::move(steps));
  }
  if (type == "Punctuation") {
    SplitBehavior b =
        j.contains("behavior") ? parse_behavior(j["behavior"].get<std::string>()) : SplitBehavior::Isolated;
    return chars(is_bert_punct, b);
  }
  if (type == "Digits") {
    return chars([](char32_t c) { return c >= '0' && c <= '9'; },
                 bool_or(j, "individual_digits", false) ? SplitBehavior::Isolated : SplitBehavior::Contiguous);
  }
  if (type == "CharDelimiterSplit") {
    std::string d = j.at("delimiter").get<std::string>();
    size_t i = 0;
    char32_t c = uni::next(d, i);
    return chars([c](char32_t x) { return x == c; }, SplitBehavior::Removed);
  }
  fail("pre_tokenizer type '", type,
       "' is not supported (supported: ByteLevel, Split, Metaspace, Whitespace, WhitespaceSplit, "
       "BertPreTokenizer, Punctuation, Digits, CharDelimiterSplit, Sequence)");
}

}  // namespace mechscope::tokenizers
