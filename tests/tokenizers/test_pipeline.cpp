// The tokenizer.json pipeline against Hugging Face `tokenizers` output stored with each fixture
// (tests/fixtures/tokenizers/*/reference.json): ids with special tokens, tokens, decoded text
// with and without special tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "test_util.h"
#include "tokenizers/hf_tokenizer.h"
#include "tokenizers/tokenizer.h"

using namespace mechscope;
using namespace mechscope::tokenizers;
using nlohmann::json;

namespace {

json read_json(const std::string& path) {
  std::ifstream f(path);
  return json::parse(f);
}

void check_reference(const std::string& name) {
  SCOPED_TRACE(name);
  auto tok = load_tokenizer(mstest::fixture("tokenizers/" + name));
  const HfTokenizer& hf = as_hf(*tok);
  json ref = read_json(mstest::fixture("tokenizers/" + name + "/reference.json"));
  const auto& texts = ref["texts"];
  ASSERT_GT(texts.size(), 0u);
  size_t bad = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    std::string text = texts[i].get<std::string>();
    auto want = ref["ids"][i].get<std::vector<int64_t>>();
    auto ids = hf.encode_with_special(text);
    bool ok = ids == want;
    EXPECT_EQ(ids, want) << "text " << i << ": " << json(text).dump();
    if (!ok && ++bad > 5) break;
    EXPECT_EQ(hf.tokens(want), ref["tokens"][i].get<std::vector<std::string>>()) << text;
    EXPECT_EQ(hf.decode(want), ref["decoded"][i].get<std::string>()) << json(text).dump();
    EXPECT_EQ(hf.decode(want, true), ref["decoded_skip_special"][i].get<std::string>()) << json(text).dump();
  }
}

// A BERT-family tokenizer loaded from `dir` against the HF `tokenizers` references of `ref_dir`:
// ids with [CLS]/[SEP], tokens, and decode skipping the special tokens.
void check_bert(const std::string& dir, const std::string& ref_dir) {
  auto tok = load_tokenizer(dir);
  const HfTokenizer& hf = as_hf(*tok);
  json ref = read_json(ref_dir + "/reference.json");
  ASSERT_EQ(ref["texts"].size(), 10u);
  for (size_t i = 0; i < ref["texts"].size(); ++i) {
    std::string text = ref["texts"][i].get<std::string>();
    auto want = ref["bert_ids"][i].get<std::vector<int64_t>>();
    EXPECT_EQ(encode_with_special(*tok, text), want) << json(text).dump();
    EXPECT_EQ(hf.tokens(want), ref["bert_tokens"][i].get<std::vector<std::string>>()) << json(text).dump();
    EXPECT_EQ(hf.decode(want, true), ref["bert_decoded"][i].get<std::string>()) << json(text).dump();
  }
}

// Copies `files` of a fixture folder into a fresh directory (to load vocab.txt without tokenizer.json).
std::string copy_of(const std::string& rel, const std::string& name, std::initializer_list<const char*> files) {
  std::string dir = mstest::tmp_dir(name);
  for (const char* f : files) {
    std::ifstream in(mstest::fixture(rel + "/" + f), std::ios::binary);
    std::ofstream(dir + "/" + f, std::ios::binary) << in.rdbuf();
  }
  return dir;
}

}  // namespace

TEST(Pipeline, Llama2Style) { check_reference("llama2_style"); }
TEST(Pipeline, Llama3Style) { check_reference("llama3_style"); }
TEST(Pipeline, NeoxStyle) { check_reference("neox_style"); }
TEST(Pipeline, WordLevel) { check_reference("wordlevel"); }

TEST(Pipeline, BertTokenizerJson) { check_bert(mstest::fixture("bert/model"), mstest::fixture("bert")); }
TEST(Pipeline, DistilBertTokenizerJson) {
  check_bert(mstest::fixture("distilbert_sst/model"), mstest::fixture("distilbert_sst"));
}

TEST(Pipeline, BertBareVocabTxtMatchesTokenizerJson) {
  // vocab.txt + tokenizer_config.json alone become the tokenizer.json BertConverter writes.
  for (const char* family : {"bert", "distilbert_sst"}) {
    SCOPED_TRACE(family);
    std::string rel = std::string(family) + "/model";
    check_bert(copy_of(rel, std::string("vocab-txt-") + family, {"vocab.txt", "tokenizer_config.json"}),
               mstest::fixture(family));
  }
}

TEST(Pipeline, BertVocabTxtWordPiece) {
  // Ids are vocab.txt line numbers (0-based); words split greedily longest-first.
  std::string dir = copy_of("bert/model", "bert-real-vocab", {"vocab.txt"});
  auto tok = load_tokenizer(dir);
  std::vector<std::string> vocab;
  {
    std::ifstream v(dir + "/vocab.txt");
    std::string l;
    while (std::getline(v, l)) vocab.push_back(l);
  }
  auto line_of = [&](const std::string& w) {
    auto it = std::find(vocab.begin(), vocab.end(), w);
    EXPECT_NE(it, vocab.end()) << w;
    return int64_t(it - vocab.begin());
  };
  EXPECT_EQ(tok->encode("COME, seem!"),
            (std::vector<int64_t>{line_of("come"), line_of(","), line_of("seem"), line_of("!")}));
  EXPECT_EQ(tok->encode("bottle"), (std::vector<int64_t>{line_of("bott"), line_of("##le")}));
  EXPECT_EQ(encode_with_special(*tok, "come").front(), line_of("[CLS]"));
  EXPECT_EQ(encode_with_special(*tok, "come").back(), line_of("[SEP]"));
  EXPECT_EQ(tok->decode(tok->encode("come , seem !")), "come, seem!");
}

TEST(Pipeline, UnsupportedComponentsNameTheType) {
  auto expect_error = [](const json& j, const std::string& needle) {
    try {
      HfTokenizer t(j, "test.json");
      ADD_FAILURE() << "no error for " << j.dump();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  json base = {{"model", {{"type", "WordLevel"}, {"vocab", {{"a", 0}}}, {"unk_token", "a"}}}};
  json j = base;
  j["normalizer"] = {{"type", "Precompiled"}, {"precompiled_charsmap", ""}};
  expect_error(j, "Precompiled");
  j = base;
  j["pre_tokenizer"] = {{"type", "UnicodeScripts"}};
  expect_error(j, "UnicodeScripts");
  j = base;
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(?<=a)b"}}}, {"behavior", "Isolated"}};
  expect_error(j, "(?<=a)b");
  j = base;
  j["model"] = {{"type", "Unigram"}, {"vocab", json::array()}};
  expect_error(j, "Unigram");
  j = base;
  j["decoder"] = {{"type", "CTC"}};
  expect_error(j, "CTC");
}
