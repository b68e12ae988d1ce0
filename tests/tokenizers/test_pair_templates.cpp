// Post-processors on one text and on a pair: special tokens, token type ids and each text's range, as
// Hugging Face tokenizers' TemplateProcessing / BertProcessing / RobertaProcessing / Sequence give them
// (expected values from their definitions: Bert [CLS] A [SEP] B [SEP] with B's part type 1; RoBERTa
// <s> A </s> </s> B </s>, every type 0; no post-processor: A B, types 0 then 1).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "core/error.h"
#include "test_util.h"
#include "tokenizers/encoding.h"
#include "tokenizers/hf_tokenizer.h"

using namespace mechscope;
using json = nlohmann::json;
using V = std::vector<int64_t>;

namespace {

// The BERT fixture's tokenizer with another post-processor: "a" = 69, "b" = 70, [CLS] = 2, [SEP] = 3.
tokenizers::HfTokenizer bert_with(const json& post) {
  json j = json::parse(std::ifstream(mstest::fixture("bert/model/tokenizer.json")));
  j["post_processor"] = post;
  return tokenizers::HfTokenizer(j, "test tokenizer.json");
}

tokenizers::Encoding pair_ab(const tokenizers::HfTokenizer& t, bool special = true) {
  std::string_view b = "b";
  return t.encode_full("a", &b, special);
}

TEST(PairTemplates, BertProcessing) {
  auto t = bert_with(json::parse(R"({"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]})"));
  auto e = pair_ab(t);
  EXPECT_EQ(e.ids, (V{2, 69, 3, 70, 3}));
  EXPECT_EQ(e.type_ids, (V{0, 0, 0, 1, 1}));
  EXPECT_EQ(std::make_pair(e.a_begin, e.a_end), std::make_pair(size_t(1), size_t(2)));
  EXPECT_EQ(std::make_pair(e.b_begin, e.b_end), std::make_pair(size_t(3), size_t(4)));
  auto single = t.encode_full("a", nullptr, true);
  EXPECT_EQ(single.ids, (V{2, 69, 3}));
  EXPECT_EQ(single.type_ids, (V{0, 0, 0}));
  EXPECT_EQ(single.b_begin, 3u);
}

TEST(PairTemplates, RobertaProcessingHasOneTokenType) {
  auto t = bert_with(json::parse(R"({"type": "RobertaProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2],
                                     "trim_offsets": true, "add_prefix_space": true})"));
  auto e = pair_ab(t);
  EXPECT_EQ(e.ids, (V{2, 69, 3, 3, 70, 3}));
  EXPECT_EQ(e.type_ids, (V{0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(e.b_begin, 4u);
}

TEST(PairTemplates, TemplateProcessingFixturesAndTheirTypeIds) {
  // The fixture's own template (TemplateProcessing) is BertProcessing's.
  json j = json::parse(std::ifstream(mstest::fixture("bert/model/tokenizer.json")));
  tokenizers::HfTokenizer bert(j, "bert");
  auto e = pair_ab(bert);
  EXPECT_EQ(e.ids, (V{2, 69, 3, 70, 3}));
  EXPECT_EQ(e.type_ids, (V{0, 0, 0, 1, 1}));
  // Llama 3's pair template is A B with B of type 1, and <|begin_of_text|> only on single texts.
  auto l3 = tokenizers::load_tokenizer(mstest::fixture("tokenizers/llama3_style/tokenizer.json"));
  auto a = tokenizers::encode_input(*l3, "a", {});
  auto ab = tokenizers::encode_input(*l3, "a", {}, std::string("b"));
  EXPECT_EQ(a.ids.front(), 0);
  EXPECT_EQ(a.a_begin, 1u);
  EXPECT_EQ(ab.a_begin, 0u);
  EXPECT_EQ(ab.ids.size(), 2u);
  EXPECT_EQ(ab.type_ids, (V{0, 1}));
}

TEST(PairTemplates, WithoutSpecialTokensOrPostProcessorTheTextsAreConcatenated) {
  json j = json::parse(std::ifstream(mstest::fixture("bert/model/tokenizer.json")));
  tokenizers::HfTokenizer bert(j, "bert");
  auto plain = pair_ab(bert, false);
  EXPECT_EQ(plain.ids, (V{69, 70}));
  EXPECT_EQ(plain.type_ids, (V{0, 1}));
  auto none = bert_with(json());
  EXPECT_EQ(pair_ab(none).ids, (V{69, 70}));
  EXPECT_EQ(pair_ab(none).type_ids, (V{0, 1}));
  // A Sequence skips ByteLevel and applies the template to the pair.
  auto seq = bert_with(json::parse(R"({"type": "Sequence", "processors": [
      {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
      {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]}]})"));
  EXPECT_EQ(pair_ab(seq).ids, (V{2, 69, 3, 70, 3}));
  EXPECT_EQ(pair_ab(seq).type_ids, (V{0, 0, 0, 1, 1}));
}

TEST(PairTemplates, NoPairTemplateIsAClearError) {
  auto t = bert_with(json::parse(R"({"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
      "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]}}})"));
  EXPECT_EQ(t.encode_full("a", nullptr, true).ids, (V{2, 69}));
  try {
    pair_ab(t);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no \"pair\" template"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("test tokenizer.json"), std::string::npos) << e.what();
  }
}

TEST(EncodeInput, PrependBosOnlyWhereTheTokenizerDidNotStartWithASpecialToken) {
  json j = json::parse(std::ifstream(mstest::fixture("bert/model/tokenizer.json")));
  tokenizers::HfTokenizer bert(j, "bert");
  tokenizers::EncodeOptions o;
  o.prepend_bos = true;
  o.bos_fallback = 4;  // BERT names no BOS: the model's bos_token_id
  auto e = tokenizers::encode_input(bert, "a", o);
  EXPECT_EQ(e.ids, (V{2, 69, 3}));  // [CLS] already first
  o.special_tokens = false;
  e = tokenizers::encode_input(bert, "a", o, std::string("b"));
  EXPECT_EQ(e.ids, (V{4, 69, 70}));
  EXPECT_EQ(e.type_ids, (V{0, 0, 1}));
  EXPECT_EQ(std::make_pair(e.a_begin, e.b_begin), std::make_pair(size_t(1), size_t(2)));
  o.bos_fallback.reset();
  EXPECT_THROW(tokenizers::encode_input(bert, "a", o), Error);
}

}  // namespace
