// Running a model with an SAE spliced in at its hook point (SAELens's HookedSAETransformer with
// use_error_term), and the standard evaluation of an SAE on a corpus.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <vector>

#include "hooks/hooks.h"
#include "models/model.h"
#include "sae/sae.h"

namespace mechscope::sae {

struct SpliceOptions {
  // Adds x - decode(encode(x)) of the unedited SAE, so the model sees its own activation except for what
  // edit_features changes (SAELens's use_error_term).
  bool use_error_term = false;
  // Edits the feature activations [..., d_sae] in place before decoding (e.g. zero or clamp a feature).
  std::function<void(at::Tensor& acts)> edit_features;
};

// A hook that replaces the activation by the SAE's reconstruction ([b, p, d_in]; hook_z SAEs flatten
// [b, p, heads, d_head] and restore it), on the SAE's device (to_device it to the model's once; the
// result goes back to the activation's device). Error naming the hook and both sizes when the activation's
// size is not the SAE's d_in. The hook refers to `sae`, which must outlive it.
hooks::HookFn splice(const SAE& sae, SpliceOptions opts = {});

// Error when the SAE's hook is not one of the model's hook points, or when the hook's activation size
// (from the model config) is not the SAE's d_in. Names the SAE, the hook and both sizes.
void check_compatible(const SAE& sae, const models::HookedModel& model);

struct EvalResult {
  int64_t n_tokens = 0;           // activations evaluated (every position of every sequence)
  int64_t n_predictions = 0;      // next-token predictions in the CE losses
  double l0 = 0;                  // mean number of active features per token
  double mse = 0;                 // mean over tokens and d_in of (x_hat - x)^2
  double l2_per_token = 0;        // mean over tokens of ||x_hat - x||^2 (SAELens's per-token L2)
  double explained_variance = 0;  // 1 - sum ||x_hat - x||^2 / sum ||x - mean(x)||^2 (SAELens's)
  double ce_clean = 0, ce_spliced = 0, ce_zero_ablated = 0;  // mean next-token cross-entropy (nats)
  double ce_loss_score = 0;                                  // (ce_zero - ce_spliced) / (ce_zero - ce_clean)
};

// Runs every sequence (token ids) three times: clean, with the SAE spliced in (no error term), and
// with the hook's activation zeroed. Sequences shorter than 2 tokens count for L0/MSE only. Runs on the
// model's device (the SAE is moved there when it is elsewhere); the sums come back once, at the end.
EvalResult evaluate(const models::HookedModel& model, const SAE& sae,
                    const std::vector<std::vector<int64_t>>& sequences);

}  // namespace mechscope::sae
