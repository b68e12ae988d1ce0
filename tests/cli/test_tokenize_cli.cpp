// `tokenize` on the model folders whose tokenizer.json is real (GPT-2 in both key layouts, BERT,
// DistilBERT), against the Hugging Face `tokenizers` references stored with each fixture.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "test_util.h"

using mstest::contains;
using mstest::run_cli;
using nlohmann::json;

namespace {

struct Folder {
  std::string name, model, reference, ids_key, tokens_key;
};
void PrintTo(const Folder& f, std::ostream* os) { *os << f.name; }

json tokenizer_reference(const Folder& f) {
  json j = json::parse(std::ifstream(mstest::fixture(f.reference)));
  return f.ids_key == "gpt2_ids" ? j["tokenizer"] : j;
}

struct TokenizeCli : ::testing::TestWithParam<Folder> {};

TEST_P(TokenizeCli, JsonlGivesTheReferenceIdsOfEveryText) {
  const Folder& f = GetParam();
  json ref = tokenizer_reference(f);
  std::string file = mstest::tmp_dir("tokenize-cli-" + f.name) + "/texts.jsonl";
  {
    std::ofstream out(file);
    for (const auto& t : ref["texts"]) out << t.dump() << "\n";
  }
  auto r = run_cli({"tokenize", "--model", mstest::fixture(f.model), "--jsonl", file});
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  size_t i = 0;
  for (; std::getline(lines, line); ++i) {
    ASSERT_LT(i, ref["texts"].size());
    EXPECT_EQ(json::parse(line), ref[f.ids_key][i]) << ref["texts"][i].dump();
  }
  EXPECT_EQ(i, ref["texts"].size());
}

TEST_P(TokenizeCli, JsonGivesTheReferenceTokens) {
  const Folder& f = GetParam();
  json ref = tokenizer_reference(f);
  for (size_t i : {0, 3, 9}) {  // plain words; contractions and numbers; a special-token string
    std::string text = ref["texts"][i].get<std::string>();
    auto r = run_cli({"tokenize", "--model", mstest::fixture(f.model), "--json", text});
    ASSERT_EQ(r.code, 0) << r.err;
    json j = json::parse(r.out);
    EXPECT_EQ(j["ids"], ref[f.ids_key][i]) << text;
    EXPECT_EQ(j["tokens"], ref[f.tokens_key][i]) << text;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, TokenizeCli,
    ::testing::Values(
        Folder{"gpt2", "gpt2/model", "gpt2/reference.json", "gpt2_ids", "gpt2_tokens"},
        Folder{"gpt2_hub_layout", "gpt2/model-hub-layout", "gpt2/reference.json", "gpt2_ids", "gpt2_tokens"},
        Folder{"bert", "bert/model", "bert/reference.json", "bert_ids", "bert_tokens"},
        Folder{"distilbert_sst", "distilbert_sst/model", "distilbert_sst/reference.json", "bert_ids", "bert_tokens"}),
    [](const auto& info) { return info.param.name; });

TEST(TokenizeCli, TextTableShowsTheRealGpt2Tokens) {
  // The README's example: the fixture's own tokenizer.json, no --tokenizer needed.
  auto r = run_cli({"tokenize", "--model", mstest::fixture("gpt2/model"), "After John and Mary went to the store"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "8 tokens")) << r.out;
  EXPECT_TRUE(contains(r.out, "5335  \" Mary\"")) << r.out;
}

}  // namespace
