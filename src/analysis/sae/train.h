// Training a standard ReLU SAE (SAELens's StandardTrainingSAE recipe): activations harvested from a
// model at one hook point, b_dec initialised to their mean, W_dec rows at unit norm with W_enc = W_dec^T,
// loss = sum_d (x_hat - x)^2 + l1 * sum_f |a_f| ||W_dec[f]|| averaged over the batch, Adam, the gradient
// component parallel to each decoder row removed and the rows renormalised after every step,
// dead-feature tracking, seeded batches (a resumed run sees the same ones), saved in SAELens's format.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <vector>

#include "analysis/train/train.h"  // DataParallel
#include "models/model.h"
#include "sae/sae.h"

namespace mechscope::analysis::sae {

struct HarvestOptions {
  int64_t max_seqs = 64;      // sequences per forward
  int64_t max_tokens = 8192;  // padded tokens per forward (a longer sequence runs alone)
  // Over several processes (issue 18): each runs every size-th forward and the rows are summed over
  // all of them (the others' zero), so every process ends with the activations one process harvests.
  DataParallel parallel;
};

// Runs the sequences through the model in batches (longest first, right-padded, padding masked, so each
// row equals the sequence's own forward) and returns every real position's activation at each hook, in
// corpus order: hook -> [n_tokens, d] float32 (hook_z flattened over heads).
std::vector<at::Tensor> harvest_activations(const models::HookedModel& model,
                                            const std::vector<std::vector<int64_t>>& seqs,
                                            const std::vector<std::string>& hooks, const HarvestOptions& opt = {});

struct SaeTrainOptions {
  int64_t d_sae = 0;
  double l1 = 1e-3;  // l1_coefficient
  double lr = 3e-4;
  int64_t steps = 2000;
  int64_t batch = 512;        // activations per step, drawn with replacement from the harvest
  int64_t dead_window = 500;  // a feature that has not fired in this many steps counts as dead
  int64_t checkpoint_every = 500;
  int64_t log_every = 100;
  uint64_t seed = 0;
  bool resume = false;         // continue from <checkpoint_dir>/state.json when present
  std::string checkpoint_dir;  // empty: no checkpoints
  // Data-parallel (issue 18): every process holds the same activations; each takes every size-th row
  // of each step's batch, and the gradients, the fired features and the logged sums are summed over all
  // of them, so any number of processes trains the SAE one process trains (to float reduction order).
  // Rank 0's starting state (initialisation or checkpoint) is given to all; rank 0 alone checkpoints.
  DataParallel parallel;
};

struct SaeTrainStatus {
  int64_t step = 0;
  double loss = 0, mse = 0, l1_loss = 0, l0 = 0, explained_variance = 0;
  int64_t dead = 0;
};

struct SaeTrainResult {
  mechscope::sae::SAE sae;          // cfg filled from `base`, weights trained, log_sparsity set
  std::vector<SaeTrainStatus> log;  // every log_every steps and the last
  int64_t resumed_from = 0;
};

// acts: [n, d_in] activations; `base` gives the config fields (hook_name, model_name...) of the result.
SaeTrainResult train_sae(const at::Tensor& acts, const mechscope::sae::SAEConfig& base, const SaeTrainOptions& opt,
                         const std::function<void(const SaeTrainStatus&)>& on_log = {});

}  // namespace mechscope::analysis::sae
