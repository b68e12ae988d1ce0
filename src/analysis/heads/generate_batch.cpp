#include "analysis/heads/generate_batch.h"

#include <algorithm>

#include "core/error.h"

namespace mechscope::analysis::heads {

std::vector<std::vector<int64_t>> generate_greedy_batch(const models::HookedModel& model,
                                                        const std::vector<std::vector<int64_t>>& prompts,
                                                        int64_t max_new_tokens, std::optional<int64_t> eos,
                                                        const hooks::HookSet* hooks, int64_t batch_size) {
  const auto& cfg = model.config();
  if (!cfg.causal) fail(cfg.model_type, " is not a causal language model: it cannot generate");
  at::NoGradGuard no_grad;
  std::vector<std::vector<int64_t>> out(prompts.size());
  int64_t pad = cfg.pad_token_id.value_or(cfg.eos_token_id.value_or(0));
  for (size_t start = 0; start < prompts.size(); start += (size_t)batch_size) {
    size_t end = std::min(prompts.size(), start + (size_t)batch_size);
    int64_t b = (int64_t)(end - start), len = 0;
    for (size_t i = start; i < end; ++i) {
      if (prompts[i].empty()) fail("generation needs at least one prompt token");
      len = std::max<int64_t>(len, (int64_t)prompts[i].size());
    }
    // Left padding keeps every prompt's last token in the last column, where the next token is read.
    // Built on the host, sent to the model's device once per batch.
    at::Tensor ids = at::full({b, len}, pad, at::kLong), mask = at::zeros({b, len}, at::kLong);
    for (size_t i = start; i < end; ++i) {
      int64_t n = (int64_t)prompts[i].size(), r = (int64_t)(i - start);
      ids[r].narrow(0, len - n, n).copy_(at::tensor(prompts[i], at::kLong));
      mask[r].narrow(0, len - n, n).fill_(1);
    }
    ids = ids.to(model.device());
    mask = mask.to(model.device());
    models::KVCache cache;
    models::RunContext ctx;
    ctx.hooks = hooks;
    ctx.cache = &cache;
    std::vector<bool> done((size_t)b, false);
    for (int64_t step = 0; step < max_new_tokens; ++step) {
      ctx.attention_mask = mask;
      at::Tensor resid = model.embed(ids, ctx);
      for (int l = 0; l < cfg.n_layers; ++l) resid = model.block(l, resid, ctx);
      at::Tensor logits = model.unembed(model.final_norm(resid, ctx).select(1, -1));  // [b, vocab]
      at::Tensor next = logits.to(at::kDouble).argmax(-1);
      at::Tensor next_host = next.cpu().contiguous();  // the one copy back per step: b token ids
      const int64_t* nx = next_host.data_ptr<int64_t>();
      bool all_done = true;
      for (int64_t r = 0; r < b; ++r) {
        if (!done[(size_t)r]) {
          out[start + (size_t)r].push_back(nx[r]);
          if (eos && nx[r] == *eos) done[(size_t)r] = true;
        }
        all_done = all_done && done[(size_t)r];
      }
      if (all_done) break;
      ids = next.unsqueeze(1);
      mask = at::cat({mask, at::ones({b, 1}, mask.options())}, 1);
    }
  }
  return out;
}

}  // namespace mechscope::analysis::heads
