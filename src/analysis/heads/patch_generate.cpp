#include "analysis/heads/patch_generate.h"

#include <algorithm>

#include "analysis/heads/generate_batch.h"
#include "analysis/heads/interventions.h"
#include "analysis/heads/screen.h"

namespace mechscope::analysis::heads {

std::vector<std::vector<int64_t>> generate_patched(const models::HookedModel& model,
                                                   const std::vector<AlignedPair>& pairs,
                                                   const std::vector<HeadRef>& heads, int64_t max_new_tokens,
                                                   std::optional<int64_t> eos, bool patch_generated_mean,
                                                   int64_t batch_size) {
  auto by = heads_by_layer(heads);
  std::vector<int64_t> layers;
  for (auto& [l, hs] : by) layers.push_back(l);
  std::vector<std::vector<int64_t>> out;
  for (size_t start = 0; start < pairs.size(); start += (size_t)batch_size) {
    size_t end = std::min(pairs.size(), start + (size_t)batch_size);
    int64_t b = (int64_t)(end - start), len = 0;
    for (size_t i = start; i < end; ++i) len = std::max<int64_t>(len, (int64_t)pairs[i].neutral_ids.size());
    // The batch is left-padded as generate_greedy_batch pads it: row r's prompt ends at column len - 1.
    std::map<int64_t, at::Tensor> src, gen_mean;
    for (size_t i = start; i < end; ++i) {
      int64_t r = (int64_t)(i - start), n = (int64_t)pairs[i].neutral_ids.size();
      auto ez = capture_z(model, at::tensor(pairs[i].emotion_ids, at::kLong).unsqueeze(0).to(model.device()), layers);
      auto nz = capture_z(model, at::tensor(pairs[i].neutral_ids, at::kLong).unsqueeze(0).to(model.device()), layers);
      for (int64_t l : layers) {
        at::Tensor sel = at::tensor(by[l], at::kLong).to(model.device());
        if (!src.count(l)) {
          src[l] = at::zeros({b, len, ez[l].size(2), ez[l].size(3)}, ez[l].options());
          gen_mean[l] = at::zeros({b, 1, (int64_t)by[l].size(), ez[l].size(3)}, ez[l].options());
        }
        src[l][r].narrow(0, len - n, n).copy_(aligned_source(ez[l], nz[l])[0]);
        gen_mean[l][r][0].copy_(ez[l][0].index_select(1, sel).mean(0));
      }
    }
    hooks::HookSet hs;
    std::vector<int64_t> gen_pos;
    for (int64_t p = len; p < len + max_new_tokens; ++p) gen_pos.push_back(p);
    for (int64_t l : layers) {
      // Only the prompt call (positions 0 .. len - 1) is patched; generated steps come after it.
      auto patch = hooks::replace_with(src[l], {{}, by[l]});
      hs.add(z_hook(l), [patch, len](at::Tensor& t, const hooks::HookContext& c) {
        if (c.pos0 < len) patch(t, c);
      });
      if (patch_generated_mean && !gen_pos.empty()) hs.add(z_hook(l), hooks::fill(gen_mean[l], {gen_pos, by[l]}));
    }
    std::vector<std::vector<int64_t>> prompts;
    for (size_t i = start; i < end; ++i) prompts.push_back(pairs[i].neutral_ids);
    auto part = generate_greedy_batch(model, prompts, max_new_tokens, eos, &hs, b);
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

}  // namespace mechscope::analysis::heads
