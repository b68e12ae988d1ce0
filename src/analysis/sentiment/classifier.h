// A Hugging Face sequence classifier as a sentiment scorer (`--sentiment-model`): any
// DistilBertForSequenceClassification / BertForSequenceClassification checkpoint, each text scored as
// P(POSITIVE) = softmax(class logits)[the label named POSITIVE], as transformers' sentiment-analysis
// pipeline reports it for distilbert-base-uncased-finetuned-sst-2-english (the seed's default).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/model.h"
#include "tokenizers/tokenizer.h"

namespace mechscope::analysis::sentiment {

struct SentimentClassifier {
  std::string dir;   // resolved model directory
  std::string name;  // as the user gave it (directory or hub id)
  std::unique_ptr<models::HookedModel> model;
  std::unique_ptr<tokenizers::Tokenizer> tokenizer;
  int64_t positive = 0;  // class index of the POSITIVE label
  std::string label;     // that label as id2label spells it
};

// Loads `model` (directory or hub id in the HF cache) with its tokenizer. Error naming `flag` and the
// model when it is not a sequence classifier, has no tokenizer, or has no label named POSITIVE
// (case-insensitive) in id2label (the labels are listed).
SentimentClassifier load_sentiment_classifier(const std::string& model, const std::string& flag,
                                              const at::Device& device = at::kCPU);

struct ClassifierScores {
  std::vector<double> positive;  // P(POSITIVE) per text
  int64_t truncated = 0;         // texts cut to the model's context (the tail dropped, [SEP] kept)
};

// texts (valid UTF-8) -> P(POSITIVE) of each, encoded as tokenizer(text) with special tokens, right-padded
// batches of `batch_size` with an attention mask (padding changes no score).
ClassifierScores classify_positive(const SentimentClassifier& c, const std::vector<std::string>& texts,
                                   int64_t batch_size = 32);

// ids (each already encoded with special tokens) -> class probabilities [n, n_labels] float64, batched.
std::vector<std::vector<double>> class_probabilities(const models::HookedModel& model,
                                                     const std::vector<std::vector<int64_t>>& ids,
                                                     int64_t batch_size = 32);

}  // namespace mechscope::analysis::sentiment
