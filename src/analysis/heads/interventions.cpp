#include "analysis/heads/interventions.h"

#include "core/error.h"

namespace mechscope::analysis::heads {

HeadAblation parse_head_ablation(const std::string& s, const std::string& flag) {
  if (s == "zero") return HeadAblation::Zero;
  if (s == "mean") return HeadAblation::Mean;
  fail(flag, ": expected zero or mean, got '", s, "'");
}

std::string head_ablation_name(HeadAblation k) { return k == HeadAblation::Zero ? "zero" : "mean"; }

std::string z_hook(int64_t layer) { return "blocks." + std::to_string(layer) + ".attn.hook_z"; }

std::map<int64_t, at::Tensor> capture_z(const models::HookedModel& model, const at::Tensor& ids,
                                        const std::vector<int64_t>& layers) {
  at::NoGradGuard no_grad;
  hooks::HookSet hs;
  std::map<int64_t, at::Tensor> out;
  for (int64_t l : layers)
    hs.add(z_hook(l),
           [&out, l](at::Tensor& t, const hooks::HookContext&) { out[l] = t.detach().to(at::kFloat).clone(); });
  // Only the blocks up to the last requested layer matter: z of layer L does not depend on later ones.
  int64_t last = -1;
  for (int64_t l : layers) last = std::max(last, l);
  models::RunContext ctx;
  ctx.hooks = &hs;
  at::Tensor resid = model.embed(ids, ctx);
  for (int64_t l = 0; l <= last; ++l) resid = model.block((int)l, resid, ctx);
  for (int64_t l : layers)
    if (!out.count(l)) fail("the model fired no ", z_hook(l), " (its attention has no per-head output)");
  return out;
}

std::map<int64_t, at::Tensor> mean_z(const models::HookedModel& model, const std::vector<std::vector<int64_t>>& seqs,
                                     const std::vector<HeadRef>& heads) {
  if (seqs.empty()) fail("a mean ablation needs at least one sequence to take the mean over");
  auto by = heads_by_layer(heads);
  std::vector<int64_t> layers;
  for (auto& [l, hs] : by) layers.push_back(l);
  std::map<int64_t, at::Tensor> sum;
  int64_t count = 0;
  for (auto& s : seqs) {
    auto z = capture_z(model, at::tensor(s, at::kLong).unsqueeze(0).to(model.device()), layers);
    for (auto& [l, hs] : by) {
      // [1, pos, n_heads, d] -> [n_sel, d] summed over positions, in double so long sets stay exact.
      at::Tensor part =
          z[l].index_select(2, at::tensor(hs, at::kLong).to(z[l].device())).sum(at::IntArrayRef{0, 1}).to(at::kDouble);
      sum[l] = sum.count(l) ? sum[l] + part : part;
    }
    count += (int64_t)s.size();
  }
  for (auto& [l, t] : sum) t = (t / (double)count).to(at::kFloat);
  return sum;
}

void add_ablation(hooks::ScopedHooks& s, const std::vector<HeadRef>& heads, HeadAblation kind,
                  const std::map<int64_t, at::Tensor>& means) {
  for (auto& [l, hs] : heads_by_layer(heads)) {
    hooks::Select where{{}, hs};
    if (kind == HeadAblation::Zero) {
      s.add(z_hook(l), hooks::zero(where));
    } else {
      auto it = means.find(l);
      if (it == means.end() || it->second.size(0) != (int64_t)hs.size())
        fail("mean ablation of layer ", l, ": no mean z for its ", hs.size(), " heads");
      s.add(z_hook(l), hooks::fill(it->second, where));
    }
  }
}

void add_patch(hooks::ScopedHooks& s, const std::vector<HeadRef>& heads,
               const std::map<int64_t, at::Tensor>& source_z) {
  for (auto& [l, hs] : heads_by_layer(heads)) {
    auto it = source_z.find(l);
    if (it == source_z.end()) fail("head patch of layer ", l, ": no source z captured for that layer");
    s.add(z_hook(l), hooks::replace_with(it->second, {{}, hs}));
  }
}

}  // namespace mechscope::analysis::heads
