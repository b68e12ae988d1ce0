// Head-level interventions on `blocks.L.attn.hook_z` ([batch, pos, n_heads, d_head], the head's output
// before W_O), so an ablated or patched head changes exactly its own contribution to hook_attn_out.
// These are the primitives behind `generate --ablate-heads`, `run --patch-heads` and `heads ablate/patch`.
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

#include "analysis/heads/head_spec.h"
#include "hooks/hooks.h"
#include "models/model.h"

namespace mechscope::analysis::heads {

// zero: z set to 0. mean: z set to its mean over every position of a reference set of sequences run
// without interventions (mean_z); the reference set is the caller's choice and is reported with it.
enum class HeadAblation { Zero, Mean };
HeadAblation parse_head_ablation(const std::string& s, const std::string& flag);  // "zero" | "mean"
std::string head_ablation_name(HeadAblation k);

std::string z_hook(int64_t layer);  // "blocks.L.attn.hook_z"

// ids [batch, pos] -> per requested layer, z of every head: [batch, pos, n_heads, d_head] (float,
// detached), from one forward with no interventions.
std::map<int64_t, at::Tensor> capture_z(const models::HookedModel& model, const at::Tensor& ids,
                                        const std::vector<int64_t>& layers);

// Per layer of `heads`, the mean of the selected heads' z over all positions of all `seqs` (each run
// alone, so no padding enters the mean): [n_selected_heads_of_layer, d_head], heads ascending.
std::map<int64_t, at::Tensor> mean_z(const models::HookedModel& model, const std::vector<std::vector<int64_t>>& seqs,
                                     const std::vector<HeadRef>& heads);

// Registers the ablation of `heads` on `s` (one hook per layer). It applies to every call, so with a
// KV cache the generated positions are ablated too. Mean needs `means` from mean_z for the same heads.
void add_ablation(hooks::ScopedHooks& s, const std::vector<HeadRef>& heads, HeadAblation kind,
                  const std::map<int64_t, at::Tensor>& means = {});

// Registers the patch of `heads`: their z at every position is replaced by source_z (from capture_z on
// the source ids; batch 1 or the run's batch, at least as many positions as the run covers).
void add_patch(hooks::ScopedHooks& s, const std::vector<HeadRef>& heads, const std::map<int64_t, at::Tensor>& source_z);

}  // namespace mechscope::analysis::heads
