// Logit-weight statistics of SAE features (SAELens's analysis/feature_statistics.py, seed 004): for each
// feature f the distribution over the vocabulary of W_dec[f] · W_U, summarised by mean, population std,
// skewness = mean(z^3) and kurtosis = mean(z^4) (not excess), as get_stats_df computes them. The
// [d_sae, d_vocab] projection is streamed in feature blocks and never held whole.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <vector>

#include "models/model.h"

namespace mechscope::analysis::sae {

// processed: as TransformerLens's from_pretrained gives model.W_U by default (fold_ln folds ln_final's
// scale in, and for LayerNorm models centres each vocabulary column over d_model; center_unembed then
// centres each row over the vocabulary). raw: the checkpoint's own unembedding.
enum class UnembedMode { Processed, Raw };
UnembedMode parse_unembed_mode(const std::string& s);  // "processed" | "raw"; Error naming option("unembed")

struct Unembedding {
  at::Tensor W_U;             // [d_model, d_vocab] float32, on the model's device
  bool folded_scale = false;  // ln_final's scale folded in
  bool layer_norm = false;    // the final norm centres (LayerNorm), so W_U was centred over d_model
  std::string final_norm;     // "layernorm", "rmsnorm" or "none"
};

// W_U read through the HookedModel interface (unembed of the identity minus unembed of zero; the final
// norm's scale by probing final_norm with ±v, its kind by whether a constant shift changes its output),
// so every architecture works. Error when the unembedding is not affine (e.g. logit soft-capping) or
// the model has no LM head.
Unembedding unembedding(const models::HookedModel& model, UnembedMode mode);

struct FeatureStats {
  at::Tensor mean, std, skewness, kurtosis;  // [d_sae] float64, on the host
};

struct StatsOptions {
  bool cosine_sim = false;  // W_U's columns normalised to unit length first (SAELens's cosine_sim)
  int64_t block = 256;      // features per streamed block: memory ~ block * d_vocab * 12 bytes
  // Called with each block's projection [rows, d_vocab] (float32, on W_dec's device) and its first
  // feature, in order.
  std::function<void(int64_t first, const at::Tensor& projection)> on_block;
  // The moments as tensor ops on the projection's device (what a GPU runs) even on the CPU, where a
  // plain two-pass loop is the default; the tests check that the two agree.
  bool tensor_moments = false;
};

// W_dec: [d_sae, d_model], W_U: [d_model, d_vocab] -> per-feature moments, computed in double. The
// projection and the moments run on W_dec's device (W_U is moved there when it is elsewhere); the
// moments come back to the host once, after the last block.
FeatureStats logit_weight_stats(const at::Tensor& W_dec, const at::Tensor& W_U, const StatsOptions& opt = {});

// W_U with columns normalised when cosine_sim (get_W_U_W_dec_stats_df's W_U / W_U.norm(dim=0)).
at::Tensor prepare_unembed(const at::Tensor& W_U, bool cosine_sim);

// SAELens's get_all_stats_dfs: int(hook.split(".")[1]) + 1 for "post" hooks, else + 0; -1 when the hook
// name carries no layer.
int stats_layer(const std::string& hook_name);

// The URL get_neuronpedia_quick_list builds (https://neuronpedia.org/quick-list/?name=…&features=…),
// with urllib.parse.quote of the name and of json.dumps of [{"modelId", "layer", "index"}, …].
std::string neuronpedia_quick_list(const std::string& model_id, const std::string& sae_layer_id,
                                   const std::vector<int64_t>& features, const std::string& name = "temporary_list");
// Python's urllib.parse.quote with safe="/".
std::string url_quote(const std::string& s);

}  // namespace mechscope::analysis::sae

#include "analysis/sae/table.h"
#include "sae/sae.h"

namespace mechscope::analysis::sae {

// Every SAE in `dir`: the folder itself when it is one, else each immediate subfolder holding cfg.json
// or params.npz (one per hook point), ordered by stats_layer then hook name. Error when there is none.
std::vector<mechscope::sae::SAE> load_sae_dir(const std::string& dir, const mechscope::sae::LoadOptions& opts = {});

struct StatsRun {
  StatsTable table;
  Unembedding unembed;
  std::vector<at::Tensor> projections;  // per SAE [d_sae, d_vocab] when keep_projection, else empty
};

// Error naming the SAE when its d_in is not the model's d_model (the unembedding's input).
void check_d_in(const models::HookedModel& model, const std::vector<mechscope::sae::SAE>& saes);

// One SAE's part of compute_stats: its moments and, when keep_projection, its projection [d_sae, d_vocab]
// (on the host). Depends on nothing but the SAE and W_U, so any process computes the same numbers.
struct SaeStats {
  FeatureStats stats;
  at::Tensor projection;  // undefined unless keep_projection
};
SaeStats sae_stats(const mechscope::sae::SAE& sae, const Unembedding& unembed, bool cosine_sim, bool keep_projection,
                   int64_t block = 256);
// Appends the rows of SAE number `index` (its features in order) to run.table and its projection to
// run.projections when defined; called in SAE order.
void add_sae_rows(StatsRun& run, const mechscope::sae::SAE& sae, int index, const SaeStats& r);

// The statistics of every feature of every SAE (rows in SAE order, then feature order), each SAE's
// d_in checked against d_model.
StatsRun compute_stats(const models::HookedModel& model, const std::vector<mechscope::sae::SAE>& saes, UnembedMode mode,
                       bool cosine_sim, bool keep_projection, int64_t block = 256);

}  // namespace mechscope::analysis::sae
