#include "models/generate.h"

#include <random>

#include "core/error.h"

namespace mechscope::models {

int64_t choose_token(const at::Tensor& logits_in, const GenerateOptions& opts, double draw) {
  // On the host, once per token: the choice is made there anyway, and the same float64 maths as on the CPU.
  at::Tensor logits = logits_in.to(at::Device(at::kCPU), at::kDouble);
  if (opts.temperature <= 0) return logits.argmax().item<int64_t>();
  logits = logits / opts.temperature;
  const double neg = -std::numeric_limits<double>::infinity();
  if (opts.top_k > 0 && opts.top_k < logits.size(0)) {
    double kth = std::get<0>(logits.topk(opts.top_k)).min().item<double>();
    logits = logits.masked_fill(logits < kth, neg);
  }
  if (opts.top_p < 1.0) {
    // Nucleus as transformers' TopPLogitsWarper: keep the smallest set of most likely tokens whose
    // probability reaches top_p (the most likely token is always kept).
    auto [sorted, order] = logits.sort(/*dim=*/0, /*descending=*/true);
    at::Tensor cum = at::softmax(sorted, 0).cumsum(0);
    at::Tensor remove = (cum - at::softmax(sorted, 0)) >= opts.top_p;  // mass before this token already enough
    remove[0] = false;
    logits = logits.index_put({order.masked_select(remove)}, at::scalar_tensor(neg, at::kDouble));
  }
  at::Tensor probs = at::softmax(logits, 0).cumsum(0);
  int64_t idx =
      at::searchsorted(probs, at::scalar_tensor(draw * probs[-1].item<double>(), at::kDouble)).item<int64_t>();
  return std::min<int64_t>(idx, logits.size(0) - 1);
}

std::vector<int64_t> generate(const HookedModel& model, const std::vector<int64_t>& prompt,
                              const GenerateOptions& opts) {
  if (prompt.empty()) fail("generation needs at least one prompt token");
  const ModelConfig& cfg = model.config();
  if (!cfg.causal) fail(cfg.model_type, " is not a causal language model: it cannot generate");
  std::mt19937_64 rng(opts.seed);
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  at::NoGradGuard no_grad;
  KVCache cache;
  RunContext ctx;
  ctx.hooks = opts.hooks;
  ctx.cache = &cache;
  std::vector<int64_t> out;
  // The prompt goes to the model's device once; each step after sends one id there and brings one back.
  at::Tensor ids = at::tensor(prompt, at::kLong).unsqueeze(0).to(model.device());
  for (int64_t step = 0; step < opts.max_new_tokens; ++step) {
    at::Tensor resid = model.embed(ids, ctx);
    for (int l = 0; l < cfg.n_layers; ++l) resid = model.block(l, resid, ctx);
    at::Tensor last = model.final_norm(resid, ctx).select(1, -1);  // [1, d]
    at::Tensor logits = model.unembed(last).squeeze(0);
    int64_t next = choose_token(logits, opts, uni(rng));
    out.push_back(next);
    if (opts.eos_token_id && next == *opts.eos_token_id) break;
    ids = at::full({1, 1}, next, at::TensorOptions().dtype(at::kLong).device(model.device()));
  }
  return out;
}

void pad_batch(const std::vector<std::vector<int64_t>>& seqs, int64_t pad_id, at::Tensor& ids, at::Tensor& mask) {
  size_t len = 0;
  for (auto& s : seqs) len = std::max(len, s.size());
  ids = at::full({(int64_t)seqs.size(), (int64_t)len}, pad_id, at::kLong);
  mask = at::zeros({(int64_t)seqs.size(), (int64_t)len}, at::kLong);
  for (size_t i = 0; i < seqs.size(); ++i) {
    ids[i].narrow(0, 0, seqs[i].size()).copy_(at::tensor(seqs[i], at::kLong));
    mask[i].narrow(0, 0, seqs[i].size()).fill_(1);
  }
}

}  // namespace mechscope::models
