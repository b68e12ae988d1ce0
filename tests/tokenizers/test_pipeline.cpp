// The tokenizer.json pipeline against Hugging Face `tokenizers` output stored with each fixture
// (tests/fixtures/tokenizers/*/reference.json): ids with special tokens, tokens, decoded text
// with and without special tokens.
#include <gtest/gtest.h>

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
    EXPECT_EQ(hf.decode(want, true), ref["decoded_skip_special"][i].get<std::string>())
        << json(text).dump();
  }
}

void check_bert_ids(const std::string& dir, const std::string& ref_dir) {
  auto tok = load_tokenizer(dir);
  json ref = read_json(ref_dir + "/reference.json");
  for (size_t i = 0; i < ref["texts"].size(); ++i) {
    std::string text = ref["texts"][i].get<std::string>();
    EXPECT_EQ(encode_with_special(*tok, text), ref["bert_ids"][i].get<std::vector<int64_t>>())
        << json(text).dump();
  }
}

}  // namespace

TEST(Pipeline, Llama2Style) { check_reference("llama2_style"); }
TEST(Pipeline, Llama3Style) { check_reference("llama3_style"); }
TEST(Pipeline, NeoxStyle) { check_reference("neox_style"); }
TEST(Pipeline, WordLevel) { check_reference("wordlevel"); }

TEST(Pipeline, BertTokenizerJson) {
  check_bert_ids(mstest::fixture("tokenizers/bert"), mstest::fixture("tokenizers/bert"));
}
TEST(Pipeline, DistilBertTokenizerJson) {
  check_bert_ids(mstest::fixture("tokenizers/distilbert_sst"),
                 mstest::fixture("tokenizers/distilbert_sst"));
}

TEST(Pipeline, BertBareVocabTxtMatchesTokenizerJson) {
  // The fixture's tokenizer.json holds a 5-token vocab (its vocab.txt has 3,959 lines), so the
  // reference ids come from those 5 tokens: write them as a vocab.txt and load it bare.
  json tj = read_json(mstest::fixture("tokenizers/bert/tokenizer.json"));
  std::vector<std::string> lines(tj["model"]["vocab"].size());
  for (auto it = tj["model"]["vocab"].begin(); it != tj["model"]["vocab"].end(); ++it)
    lines.at(it.value().get<size_t>()) = it.key();
  std::string dir = mstest::tmp_dir("bert-vocab-txt");
  {
    std::ofstream v(dir + "/vocab.txt");
    for (const auto& l : lines) v << l << "\n";
    std::ifstream c(mstest::fixture("tokenizers/bert/tokenizer_config.json"));
    std::ofstream(dir + "/tokenizer_config.json") << c.rdbuf();
  }
  check_bert_ids(dir, mstest::fixture("tokenizers/bert"));
}

TEST(Pipeline, BertVocabTxtWordPiece) {
  // The real 3,959-line vocab: ids are line numbers (0-based), words split greedily longest-first.
  std::string dir = mstest::tmp_dir("bert-real-vocab");
  for (const char* f : {"vocab.txt", "tokenizer_config.json"}) {
    std::ifstream in(mstest::fixture(std::string("tokenizers/bert/") + f));
    std::ofstream(dir + "/" + f) << in.rdbuf();
  }
  auto tok = load_tokenizer(dir);
  std::vector<std::string> vocab;
  {
    std::ifstream v(dir + "/vocab.txt");
    std::string l;
    while (std::getline(v, l)) vocab.push_back(l);
  }
  auto line_of = [&](const std::string& w) {
    return int64_t(std::find(vocab.begin(), vocab.end(), w) - vocab.begin());
  };
  ASSERT_LT(line_of("come"), int64_t(vocab.size()));
  EXPECT_EQ(tok->encode("COME, seem!"),
            (std::vector<int64_t>{line_of("come"), line_of(","), line_of("seem"), line_of("!")}));
  EXPECT_EQ(encode_with_special(*tok, "come").front(), line_of("[CLS]"));
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
