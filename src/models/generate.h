// Autoregressive generation with a KV cache: greedy (as Hugging Face `generate(do_sample=False)`)
// or sampled with temperature / top-k / top-p from a seeded generator.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "models/model.h"

namespace mechscope::models {

struct GenerateOptions {
  int64_t max_new_tokens = 20;
  double temperature = 0;  // 0 = greedy
  int64_t top_k = 0;       // 0 = off
  double top_p = 1.0;      // 1 = off
  uint64_t seed = 0;
  std::optional<int64_t> eos_token_id;    // stop after generating it
  const hooks::HookSet* hooks = nullptr;  // fired on every step (positions are absolute: pos0)
};

// prompt: token ids -> the new ids (not including the prompt).
std::vector<int64_t> generate(const HookedModel& model, const std::vector<int64_t>& prompt,
                              const GenerateOptions& opts);

// Chooses the next token from logits [d_vocab] (float) by opts; `draw` is a uniform in [0, 1).
int64_t choose_token(const at::Tensor& logits, const GenerateOptions& opts, double draw);

// Right-pads sequences into ids [batch, max_len] (pad with pad_id) and a mask [batch, max_len].
void pad_batch(const std::vector<std::vector<int64_t>>& seqs, int64_t pad_id, at::Tensor& ids, at::Tensor& mask);

}  // namespace mechscope::models
