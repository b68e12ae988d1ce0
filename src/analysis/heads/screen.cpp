#include "analysis/heads/screen.h"

#include <algorithm>

#include "analysis/heads/interventions.h"
#include "analysis/patching/patching.h"
#include "core/error.h"

namespace mechscope::analysis::heads {

namespace P = mechscope::analysis::patching;

ScreenScore parse_screen_score(const std::string& s, const std::string& flag) {
  if (s == "keyword-attention") return ScreenScore::KeywordAttention;
  if (s == "output-norm") return ScreenScore::OutputNorm;
  if (s == "causal") return ScreenScore::Causal;
  fail(flag, ": expected keyword-attention, output-norm or causal, got '", s, "'");
}

std::string screen_score_name(ScreenScore s) {
  switch (s) {
    case ScreenScore::KeywordAttention: return "keyword-attention";
    case ScreenScore::OutputNorm: return "output-norm";
    default: return "causal";
  }
}

namespace {

void need_after(int64_t end, size_t n) {
  if (end >= (int64_t)n) fail("a prompt pair has no token after its emotional phrase (nothing reads the phrase)");
}

// One forward of ids capturing `suffix` of every layer: per layer the activation, batch 1.
std::vector<at::Tensor> capture_all(const models::HookedModel& model, const std::vector<int64_t>& ids,
                                    const std::string& suffix) {
  at::NoGradGuard no_grad;
  const auto& cfg = model.config();
  std::vector<at::Tensor> out(cfg.n_layers);
  hooks::HookSet hs;
  hs.add("blocks.*." + suffix,
         [&out](at::Tensor& t, const hooks::HookContext& c) { out[c.layer] = t.detach().to(at::kDouble); });
  models::RunContext ctx;
  ctx.hooks = &hs;
  at::Tensor resid = model.embed(at::tensor(ids, at::kLong).unsqueeze(0).to(model.device()), ctx);
  for (int l = 0; l < cfg.n_layers; ++l) resid = model.block(l, resid, ctx);
  for (int l = 0; l < cfg.n_layers; ++l)
    if (!out[l].defined()) fail("the model fired no blocks.", l, ".", suffix);
  return out;
}

// pattern [1, heads, q, k] -> [heads]: mean over queries >= end of the mass on keys [begin, end).
at::Tensor phrase_mass(const at::Tensor& pattern, int64_t begin, int64_t end) {
  int64_t n = pattern.size(2);
  return pattern[0].narrow(1, end, n - end).narrow(2, begin, end - begin).sum(2).mean(1);
}

}  // namespace

at::Tensor keyword_attention_scores(const models::HookedModel& model, const std::vector<AlignedPair>& pairs) {
  const auto& cfg = model.config();
  // Summed on the model's device; the scores come back to the host once.
  at::Tensor sum =
      at::zeros({cfg.n_layers, cfg.n_heads}, at::TensorOptions().dtype(at::kDouble).device(model.device()));
  for (auto& p : pairs) {
    need_after(p.emotion_phrase_end, p.emotion_ids.size());
    need_after(p.neutral_phrase_end, p.neutral_ids.size());
    auto e = capture_all(model, p.emotion_ids, "attn.hook_pattern");
    auto n = capture_all(model, p.neutral_ids, "attn.hook_pattern");
    for (int64_t l = 0; l < cfg.n_layers; ++l)
      sum[l] += phrase_mass(e[l], p.emotion_phrase_begin, p.emotion_phrase_end) -
                phrase_mass(n[l], p.neutral_phrase_begin, p.neutral_phrase_end);
  }
  return (sum / (double)std::max<size_t>(pairs.size(), 1)).cpu();
}

at::Tensor output_norm_scores(const models::HookedModel& model, const std::vector<AlignedPair>& pairs) {
  const auto& cfg = model.config();
  // Summed on the model's device; the scores come back to the host once.
  at::Tensor sum =
      at::zeros({cfg.n_layers, cfg.n_heads}, at::TensorOptions().dtype(at::kDouble).device(model.device()));
  // result [1, pos, heads, d_model] -> [heads]: mean norm over positions >= end.
  auto mean_norm = [](const at::Tensor& r, int64_t end) {
    return r[0].narrow(0, end, r.size(1) - end).norm(2, {2}).mean(0);
  };
  for (auto& p : pairs) {
    need_after(p.emotion_phrase_end, p.emotion_ids.size());
    need_after(p.neutral_phrase_end, p.neutral_ids.size());
    auto e = capture_all(model, p.emotion_ids, "attn.hook_result");
    auto n = capture_all(model, p.neutral_ids, "attn.hook_result");
    for (int64_t l = 0; l < cfg.n_layers; ++l)
      sum[l] += mean_norm(e[l], p.emotion_phrase_end) - mean_norm(n[l], p.neutral_phrase_end);
  }
  return (sum / (double)std::max<size_t>(pairs.size(), 1)).cpu();
}

at::Tensor aligned_source(const at::Tensor& emotion_z, const at::Tensor& neutral_z) {
  int64_t ne = emotion_z.size(1), nn = neutral_z.size(1), m = std::min(ne, nn);
  at::Tensor src = neutral_z.clone();
  src.narrow(1, nn - m, m).copy_(emotion_z.narrow(1, ne - m, m));
  return src;
}

at::Tensor causal_scores(const models::HookedModel& model, const std::vector<AlignedPair>& pairs,
                         std::vector<int64_t> keyword_ids) {
  const auto& cfg = model.config();
  std::sort(keyword_ids.begin(), keyword_ids.end());  // a token counted twice would double its probability
  keyword_ids.erase(std::unique(keyword_ids.begin(), keyword_ids.end()), keyword_ids.end());
  if (keyword_ids.empty()) fail("the causal screen needs at least one keyword token");
  for (int64_t k : keyword_ids)
    if (k < 0 || k >= cfg.d_vocab) fail("keyword token id ", k, " is outside the vocabulary (", cfg.d_vocab, ")");
  std::vector<int64_t> layers;
  std::vector<std::string> points;
  for (int64_t l = 0; l < cfg.n_layers; ++l) {
    layers.push_back(l);
    points.push_back(z_hook(l));
  }
  auto spec = P::target_spec("z_all_pos");
  at::Tensor sum = at::zeros({cfg.n_layers * cfg.n_heads}, at::kDouble);
  // log of the total keyword probability: one sweep reads every keyword from the same logits row.
  P::Metric metric{P::MetricKind::LogProb, -1, -1, -1, keyword_ids};
  for (auto& p : pairs) {
    at::NoGradGuard no_grad;
    int64_t n = (int64_t)p.neutral_ids.size();
    at::Tensor ids = at::tensor(p.neutral_ids, at::kLong).unsqueeze(0).to(model.device());
    P::BaseRun base = P::base_run(model, ids, metric, points);
    auto ez = capture_z(model, at::tensor(p.emotion_ids, at::kLong).unsqueeze(0).to(model.device()), layers);
    std::map<std::string, at::Tensor> source;
    for (int64_t l = 0; l < cfg.n_layers; ++l)
      source[z_hook(l)] = aligned_source(ez[l].to(base.acts.at(z_hook(l)).scalar_type()), base.acts.at(z_hook(l)));
    auto cells = P::target_cells(spec, cfg, n);
    sum += P::run_cells(model, base, source, cells, metric, P::Method::Exact) - base.metric;
  }
  return (sum / (double)std::max<size_t>(pairs.size(), 1)).view({cfg.n_layers, cfg.n_heads});
}

}  // namespace mechscope::analysis::heads
