// The sentiment classifier (--sentiment-model) against the DistilBERT fixture's float64 class logits
// (transformers' DistilBertForSequenceClassification on four padded texts): P(POSITIVE) from the texts
// themselves, batched in any size, and the errors for models that are no sentiment classifier.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "analysis/sentiment/classifier.h"
#include "core/error.h"
#include "core/fs.h"
#include "io/safetensors.h"
#include "tensor_util.h"
#include "test_util.h"

using namespace mechscope;
namespace S = mechscope::analysis::sentiment;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The reference's P(POSITIVE) (label 1), from its float64 logits stored as float32.
std::vector<double> reference_positive() {
  auto ref = io::SafetensorsFile::open(mstest::fixture("distilbert_sst/reference.safetensors"));
  at::Tensor p = at::softmax(ref->get("logits").to(at::kDouble), 1).select(1, 1).contiguous();
  return {p.data_ptr<double>(), p.data_ptr<double>() + p.numel()};
}

std::vector<std::string> reference_texts() {
  auto j = nlohmann::json::parse(read_file(mstest::fixture("distilbert_sst/reference.json")));
  std::vector<std::string> t;
  for (int i = 0; i < 4; ++i) t.push_back(j["texts"][i]);
  return t;
}

TEST(SentimentClassifier, PositiveOfTheTextsEqualsTheFixtureInEveryBatchSize) {
  auto c = S::load_sentiment_classifier(mstest::fixture("distilbert_sst/model"), "--sentiment-model");
  EXPECT_EQ(c.positive, 1);
  EXPECT_EQ(c.label, "POSITIVE");
  auto want = reference_positive();
  for (int64_t batch : {1, 3, 32}) {
    auto got = S::classify_positive(c, reference_texts(), batch);
    ASSERT_EQ(got.positive.size(), 4u);
    EXPECT_EQ(got.truncated, 0);
    for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(got.positive[i], want[i], 1e-5 * want[i] + 1e-6) << batch << " " << i;
  }
  // The texts score differently, so a score that ignored its text would fail above.
  EXPECT_GT(std::abs(want[3] - want[0]), 0.1);
}

TEST(SentimentClassifier, ProbabilitiesOfTheFixtureIdsSumToOne) {
  auto c = S::load_sentiment_classifier(mstest::fixture("distilbert_sst/model"), "--sentiment-model");
  auto ref = io::SafetensorsFile::open(mstest::fixture("distilbert_sst/reference.safetensors"));
  at::Tensor ids = ref->get("input_ids"), mask = ref->get("attention_mask");
  std::vector<std::vector<int64_t>> seqs;
  for (int64_t i = 0; i < 4; ++i) seqs.push_back(mstest::to_vec(ids[i].masked_select(mask[i].to(at::kBool))));
  auto p = S::class_probabilities(*c.model, seqs, 2);
  at::Tensor want = at::softmax(ref->get("logits").to(at::kDouble), 1);
  for (int64_t i = 0; i < 4; ++i) {
    EXPECT_NEAR(p[i][0] + p[i][1], 1.0, 1e-12);
    for (int64_t k = 0; k < 2; ++k) EXPECT_NEAR(p[i][k], want[i][k].item<double>(), 1e-5) << i << " " << k;
  }
}

TEST(SentimentClassifier, LongTextsAreTruncatedKeepingTheClosingToken) {
  auto c = S::load_sentiment_classifier(mstest::fixture("distilbert_sst/model"), "--sentiment-model");
  std::string longer;
  for (int i = 0; i < 80; ++i) longer += "good ";
  auto got = S::classify_positive(c, {longer, "good"});
  EXPECT_EQ(got.truncated, 1);
  ASSERT_EQ(got.positive.size(), 2u);
  EXPECT_GT(got.positive[0], 0.0);
  EXPECT_LT(got.positive[0], 1.0);
}

TEST(SentimentClassifier, ModelsThatAreNoSentimentClassifierAreOneClearError) {
  std::string e = error_of([] { S::load_sentiment_classifier(mstest::fixture("gpt2/model"), "--sentiment-model"); });
  EXPECT_NE(e.find("--sentiment-model '"), std::string::npos) << e;
  EXPECT_NE(e.find("is not a sequence classifier (it is GPT2LMHeadModel)"), std::string::npos) << e;
  // A classifier whose labels name no POSITIVE class.
  std::string dir = mstest::tmp_dir("classifier-labels");
  std::string src = mstest::fixture("distilbert_sst/model");
  for (const char* f : {"model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt"})
    write_file_atomic(join_path(dir, f), read_file(join_path(src, f)));
  auto cfg = nlohmann::json::parse(read_file(join_path(src, "config.json")));
  cfg["id2label"] = {{"0", "LABEL_0"}, {"1", "LABEL_1"}};
  cfg["label2id"] = {{"LABEL_0", 0}, {"LABEL_1", 1}};
  write_file_atomic(join_path(dir, "config.json"), cfg.dump());
  e = error_of([&] { S::load_sentiment_classifier(dir, "--sentiment-model"); });
  EXPECT_NE(e.find("has no POSITIVE label in its config.json id2label (labels: LABEL_0, LABEL_1)"), std::string::npos)
      << e;
}

}  // namespace
