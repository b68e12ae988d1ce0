// Activation patching (Meng et al. 2022; Wang et al. 2022's IOI circuit; TransformerLens's
// get_act_patch_* family), ablations with the same machinery, and attribution patching (Nanda 2023).
//
//   PromptPair pair{clean_ids, corrupt_ids, {MetricKind::LogitDiff, answer_id, wrong_id}};
//   PatchResult r = patch(model, {pair}, {"resid_pre", "z_all_pos"}, {});
//   r.targets[0].values  // [layers, positions] raw metric of each patched run
//   r.normalised(0)      // (patched - corrupt) / (clean - corrupt)
//
// The exact method reuses the base run (keys/values and residual stream) so a patch at (layer L,
// position p) recomputes layers >= L at positions >= p only, packs the rows of all cells into one
// batch that each cell joins at its layer, and computes only the rows and logits the metric needs; Method::Naive runs one full
// hooked forward per cell (as TransformerLens does) and is the reference in tests.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "models/model.h"

namespace mechscope::analysis::patching {

// ---- metrics -------------------------------------------------------------------------------------

enum class MetricKind { LogitDiff, Prob, LogProb };
MetricKind parse_metric(const std::string& s);  // "logit-diff" | "prob" | "logprob"; Error otherwise
std::string metric_name(MetricKind k);

struct Metric {
  MetricKind kind = MetricKind::LogitDiff;
  int64_t answer = -1;    // token id
  int64_t wrong = -1;     // token id (logit difference only)
  int64_t position = -1;  // query position the metric reads; negative counts from the end
  // Prob / LogProb of a set of tokens (P = sum of their probabilities) when non-empty; `answer` is then
  // unused. One logsumexp per row and a gather of these columns: no [rows, vocab] log-softmax.
  std::vector<int64_t> answers;
};

// The vocabulary columns the metric needs (undefined: all, for prob/logprob's normaliser).
at::Tensor metric_columns(const Metric& m, const at::Device& device);
// logits: [runs, cols] at the metric position (cols as metric_columns says) -> [runs] float64.
at::Tensor metric_from_logits(const Metric& m, const at::Tensor& logits);
// Absolute metric position in a prompt of n tokens; Error when out of range.
int64_t metric_position(const Metric& m, int64_t n);

// ---- targets -------------------------------------------------------------------------------------

// What is patched, named as the issue/TransformerLens's get_act_patch_* functions:
//   resid_pre resid_mid resid_post attn_out mlp_out   [layer, pos]
//   z q k v                                             [layer, pos, head]   (k, v: kv heads)
//   z_all_pos q_all_pos k_all_pos v_all_pos             [layer, head]
//   pattern                                             [layer, head, dest_pos]
//   pattern_all_pos                                     [layer, head]
// "block_every" expands to resid_pre, attn_out, mlp_out.
struct TargetSpec {
  std::string name;  // as above
  std::string hook;  // hook point suffix ("hook_resid_pre", "attn.hook_z", ...)
  bool by_pos = false;
  bool by_head = false;
  bool pattern = false;  // [batch, head, q, k] activation; by_pos indexes the query (destination) axis
  bool kv = false;       // head axis counts kv heads
};
TargetSpec target_spec(const std::string& name);  // Error listing the targets when unknown
// Splits "resid_pre,attn_out,block_every" and expands block_every; Error on an unknown name.
std::vector<std::string> parse_targets(const std::string& list);
std::vector<std::string> all_target_names();
// Result shape of a target for a model with a prompt of n tokens.
std::vector<int64_t> target_shape(const TargetSpec& t, const models::ModelConfig& cfg, int64_t n);
// Axis names of that shape ("layer", "pos", "head", "dest_pos").
std::vector<std::string> target_axes(const TargetSpec& t);

// ---- the sweep engine ----------------------------------------------------------------------------

// One patched run: the base run with the activation `hook` of block `layer`, at `pos` (-1: every
// position) and `head` (-1: every head), replaced by the source's values.
struct Edit {
  int layer = 0;
  std::string point;  // full hook name, "blocks.3.attn.hook_z"
  int64_t pos = -1, head = -1;
  bool pattern = false;
};

// A forward pass kept for reuse: residual stream into every block, keys/values, activations at the
// cached points, and the metric.
struct BaseRun {
  at::Tensor ids;                          // [1, n]
  std::vector<at::Tensor> resid_pre;       // per layer [1, n, d]
  models::KVCache kv;                      // per layer [1, n_kv, n, d_head]
  at::Tensor token_type_ids;               // [1, n] segments (BERT); undefined = all 0
  std::map<std::string, at::Tensor> acts;  // the requested hook points
  double metric = 0;
};
BaseRun base_run(const models::HookedModel& model, const at::Tensor& ids, const Metric& metric,
                 const std::vector<std::string>& points, const at::Tensor& token_type_ids = {});

enum class Method { Exact, Naive, Attribution };
Method parse_method(const std::string& s);  // "exact" | "naive" | "attribution"
std::string method_name(Method m);

struct SweepOptions {
  bool skip_noops = true;                 // a cell whose source values equal the base run's bit for bit is the base run
  int64_t max_rows = 0;                   // packed rows per batch; 0 = the shared packed budget (packed::budget)
  bool use_packed = true;                 // the model's block_packed when it has one (false: the generic path)
  std::function<void(int64_t)> on_cells;  // called with the number of cells just finished (progress)
};

// Metric of each patched run: cells [C] -> [C] float64. `source` maps each edited hook point to a
// tensor of the activation's shape (batch 1) whose values are written in.
at::Tensor run_cells(const models::HookedModel& model, const BaseRun& base,
                     const std::map<std::string, at::Tensor>& source, const std::vector<Edit>& cells,
                     const Metric& metric, Method method, const SweepOptions& opt = {});

// The cells of a target in result order (row-major over target_shape).
std::vector<Edit> target_cells(const TargetSpec& t, const models::ModelConfig& cfg, int64_t n);
// Hook names a target's cells edit.
std::vector<std::string> target_points(const TargetSpec& t, const models::ModelConfig& cfg);

// ---- patching ------------------------------------------------------------------------------------

struct PromptPair {
  std::vector<int64_t> clean, corrupt;
  Metric metric;                                    // answer/wrong per pair
  std::vector<int64_t> clean_types, corrupt_types;  // token type ids (BERT segments); empty = all 0
};

struct TargetResult {
  std::string name;
  std::vector<std::string> axes;
  at::Tensor values;  // raw metric, shape target_shape, float64; averaged over pairs
  at::Tensor exact;   // attribution runs may carry the exact values too (undefined otherwise)
  double seconds = 0;
};

struct PatchResult {
  double clean_metric = 0, corrupt_metric = 0;  // averaged over pairs
  int64_t n_pos = 0;
  std::vector<TargetResult> targets;
  double base_seconds = 0;
  int64_t cells = 0, skipped_noop = 0;
  at::Tensor normalised(size_t i) const;  // (values - corrupt) / (clean - corrupt)
};

struct PatchOptions {
  Method method = Method::Exact;
  SweepOptions sweep;
  bool also_exact = false;  // with Method::Attribution: compute exact patching too, for comparison
};

// Patches clean activations into the corrupt run. Every pair must have clean and corrupt of equal
// length, and all pairs one length when a target has a position axis (Error otherwise).
PatchResult patch(const models::HookedModel& model, const std::vector<PromptPair>& pairs,
                  const std::vector<std::string>& targets, const PatchOptions& opt);
// patch() in its parts, for running pairs on different processes (issue 18): check_pairs is its checks,
// patch_pair one pair's result (not averaged), and add_pair adds one pair's result to the average over
// n_pairs. Adding every pair's result in pair order to an empty PatchResult gives patch()'s result bit
// for bit, whichever process computed each pair.
void check_pairs(const std::vector<PromptPair>& pairs, const std::vector<std::string>& targets);
PatchResult patch_pair(const models::HookedModel& model, const PromptPair& pair,
                       const std::vector<std::string>& targets, const PatchOptions& opt);
void add_pair(PatchResult& average, const PatchResult& one, size_t n_pairs);

// ---- ablation ------------------------------------------------------------------------------------

enum class AblationKind { Zero, Mean, Resample };
AblationKind parse_ablation(const std::string& s);  // "zero" | "mean" | "resample"
std::string ablation_name(AblationKind k);

struct AblationResult {
  double clean_metric = 0;
  int64_t n_pos = 0;
  std::vector<TargetResult> targets;  // values: metric(ablated) - metric(clean), averaged over references for resample
};

// Ablates each cell of each target in the run on `ids`. Mean: the mean activation over `reference`
// (per position when all have the prompt's length, else over positions too; patterns need the same
// length). Resample: each reference prompt's activation in turn (same length as the prompt), averaged.
// token_types: the prompt's segments (BERT; empty = all 0); the references run with type 0.
AblationResult ablate(const models::HookedModel& model, const std::vector<int64_t>& ids, const Metric& metric,
                      const std::vector<std::string>& targets, AblationKind kind,
                      const std::vector<std::vector<int64_t>>& reference, Method method, const SweepOptions& sweep = {},
                      const std::vector<int64_t>& token_types = {});

// ablate() in its parts, for running it on different processes (issue 18), as patch_pair/add_pair are
// patch()'s. Setup: the checks, the clean run, and the source of zero/mean ablation (mean: every
// reference's run); ablation_source: the source of run k (0 for zero/mean; reference k's activations
// for resample); ablation_values: one target's cells under one source; ablation_result: values[t][k]
// added in k order and divided by their number, in the target's shape. Going through them in any
// order, on any process, gives ablate()'s result bit for bit.
struct AblationSetup {
  std::vector<TargetSpec> specs;
  std::vector<std::string> points;
  Metric metric;
  Method method = Method::Exact;
  AblationKind kind = AblationKind::Zero;
  int64_t n = 0;
  size_t n_sources = 1;  // runs averaged: 1, or the references for resample
  BaseRun base;
  std::map<std::string, at::Tensor> shared_source;  // zero, mean
};
AblationSetup ablation_setup(const models::HookedModel& model, const std::vector<int64_t>& ids, const Metric& metric,
                             const std::vector<std::string>& targets, AblationKind kind,
                             const std::vector<std::vector<int64_t>>& reference, Method method,
                             const std::vector<int64_t>& token_types = {});
std::map<std::string, at::Tensor> ablation_source(const models::HookedModel& model, const AblationSetup& setup,
                                                  const std::vector<std::vector<int64_t>>& reference, size_t k);
// metric(ablated) - metric(clean) of every cell of target t: [cells] float64.
at::Tensor ablation_values(const models::HookedModel& model, const AblationSetup& setup, size_t t,
                           const std::map<std::string, at::Tensor>& source, const SweepOptions& sweep = {});
AblationResult ablation_result(const models::HookedModel& model, const AblationSetup& setup,
                               const std::vector<std::vector<at::Tensor>>& values, const std::vector<double>& seconds);

// ---- attribution patching ------------------------------------------------------------------------

// (clean - corrupt) . d metric / d act at the corrupt run, summed over each cell: [target shape] per
// target, an estimate of metric(patched) - metric(corrupt).
std::vector<at::Tensor> attribution(const models::HookedModel& model, const BaseRun& clean,
                                    const at::Tensor& corrupt_ids, const Metric& metric,
                                    const std::vector<TargetSpec>& targets, double* corrupt_metric = nullptr,
                                    const at::Tensor& corrupt_types = {});

}  // namespace mechscope::analysis::patching
