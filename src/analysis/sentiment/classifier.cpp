#include "analysis/sentiment/classifier.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cctype>

#include "core/error.h"
#include "io/checkpoint.h"
#include "tokenizers/encoding.h"

namespace mechscope::analysis::sentiment {

namespace {
std::string upper(std::string s) {
  for (char& c : s) c = (char)std::toupper((unsigned char)c);
  return s;
}
}  // namespace

SentimentClassifier load_sentiment_classifier(const std::string& model, const std::string& flag,
                                              const at::Device& device) {
  SentimentClassifier c;
  c.name = model;
  c.dir = io::resolve_model_dir(model);
  models::LoadOptions lo;
  lo.device = device;
  c.model = models::load_model(c.dir, lo);
  const auto& cfg = c.model->config();
  if (!c.model->has_classifier())
    fail(flag, " '", model, "' is not a sequence classifier (it is ",
         cfg.architecture.empty() ? cfg.model_type : cfg.architecture,
         "); give a DistilBertForSequenceClassification or BertForSequenceClassification checkpoint");
  std::string labels;
  for (size_t i = 0; i < cfg.labels.size(); ++i) {
    labels += (labels.empty() ? "" : ", ") + cfg.labels[i];
    if (upper(cfg.labels[i]) == "POSITIVE") c.positive = (int64_t)i, c.label = cfg.labels[i];
  }
  if (c.label.empty())
    fail(flag, " '", model, "' has no POSITIVE label in its config.json id2label (labels: ", labels,
         "); P(POSITIVE) needs a sentiment classifier");
  if (!tokenizers::has_tokenizer(c.dir)) fail(flag, " '", model, "' has no tokenizer (tokenizer.json or vocab.txt)");
  c.tokenizer = tokenizers::load_tokenizer(c.dir);
  return c;
}

std::vector<std::vector<double>> class_probabilities(const models::HookedModel& model,
                                                     const std::vector<std::vector<int64_t>>& ids, int64_t batch_size) {
  at::NoGradGuard no_grad;
  const auto& cfg = model.config();
  std::vector<std::vector<double>> out;
  for (size_t b0 = 0; b0 < ids.size(); b0 += (size_t)batch_size) {
    size_t b1 = std::min(ids.size(), b0 + (size_t)batch_size);
    int64_t len = 0;
    for (size_t i = b0; i < b1; ++i) len = std::max<int64_t>(len, (int64_t)ids[i].size());
    int64_t pad = cfg.pad_token_id.value_or(0);
    at::Tensor x = at::full({(int64_t)(b1 - b0), len}, pad, at::kLong),
               mask = at::zeros({(int64_t)(b1 - b0), len}, at::kLong);
    for (size_t i = b0; i < b1; ++i) {
      int64_t n = (int64_t)ids[i].size();
      x[(int64_t)(i - b0)].narrow(0, 0, n).copy_(at::tensor(ids[i], at::kLong));
      mask[(int64_t)(i - b0)].narrow(0, 0, n).fill_(1);
    }
    models::RunContext ctx;
    ctx.attention_mask = mask;
    at::Tensor r = model.embed(x, ctx);
    for (int l = 0; l < cfg.n_layers; ++l) r = model.block(l, r, ctx);
    at::Tensor p = at::softmax(model.classify(model.final_norm(r, ctx), ctx).to(at::kDouble), 1).cpu().contiguous();
    for (int64_t i = 0; i < p.size(0); ++i) {
      const double* row = p[i].data_ptr<double>();
      out.emplace_back(row, row + p.size(1));
    }
  }
  return out;
}

ClassifierScores classify_positive(const SentimentClassifier& c, const std::vector<std::string>& texts,
                                   int64_t batch_size) {
  ClassifierScores s;
  int64_t n_ctx = c.model->config().n_ctx;
  std::vector<std::vector<int64_t>> ids;
  tokenizers::EncodeOptions o;
  for (auto& t : texts) {
    auto e = tokenizers::encode_input(*c.tokenizer, t, o).ids;
    // As the pipeline with truncation=True: the text's tail goes, the closing special token stays.
    if (n_ctx > 0 && (int64_t)e.size() > n_ctx) {
      int64_t last = e.back();
      e.resize((size_t)n_ctx - 1);
      e.push_back(last);
      ++s.truncated;
    }
    ids.push_back(std::move(e));
  }
  for (auto& p : class_probabilities(*c.model, ids, batch_size)) s.positive.push_back(p[(size_t)c.positive]);
  return s;
}

}  // namespace mechscope::analysis::sentiment
