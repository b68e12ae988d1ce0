// Pieces shared by the architectures: hook names per layer, checkpoint weight lookup with shape
// checks, LayerNorm/attention with TransformerLens hook semantics, activations.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "models/model.h"

namespace mechscope::models {

// Hook point names of one block, built once so a forward pass allocates no strings.
struct BlockHookNames {
  std::string resid_pre, resid_mid, resid_post, attn_out, mlp_out;
  std::string ln1_scale, ln1_normalized, ln2_scale, ln2_normalized;
  std::string q, k, v, rot_q, rot_k, attn_scores, pattern, z, result;
  std::string mlp_pre, mlp_pre_linear, mlp_post;
  explicit BlockHookNames(int layer);
};

// The names in forward order for a model with `n_layers` blocks (flags add optional points).
std::vector<std::string> standard_hook_names(int n_layers, bool rotary, bool gated_mlp, bool has_pos_embed,
                                             bool parallel_residual = false);

// Fetches weights by HF key with the expected shape, converting to the compute dtype.
class WeightLoader {
 public:
  WeightLoader(const io::Checkpoint& ckpt, std::string prefix, at::ScalarType dtype)
      : ckpt_(ckpt), prefix_(std::move(prefix)), dtype_(dtype) {}
  // prefix + key; Error naming the tensor and both shapes when they differ, or when missing.
  at::Tensor get(const std::string& key, std::vector<int64_t> shape) const;
  bool has(const std::string& key) const { return ckpt_.has(prefix_ + key); }
  const std::string& prefix() const { return prefix_; }

 private:
  const io::Checkpoint& ckpt_;
  std::string prefix_;
  at::ScalarType dtype_;
};

// The first of `prefixes` under which `probe` exists in the checkpoint; Error listing them if none.
std::string detect_prefix(const io::Checkpoint& ckpt, const std::vector<std::string>& prefixes,
                          const std::string& probe, const std::string& arch);

// LayerNorm with TransformerLens hooks: hook_scale = sqrt(var + eps) [b, p, 1] and
// hook_normalized = (x - mean) / scale * w + b. x: [b, p, d].
at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, double eps,
                      const hooks::HookSet* hooks, const std::string& scale_name,
                      const std::string& normalized_name, int layer, int64_t pos0);

// RMSNorm (Zhang & Sennrich 2019) as Hugging Face's LlamaRMSNorm: computed in float32 (float64 stays
// float64) and cast back before the weight. hook_scale = sqrt(mean(x^2) + eps) [b, p, 1];
// hook_normalized = x / scale, before the weight, as TransformerLens's RMSNorm fires it (unlike its
// LayerNorm, whose hook_normalized includes weight and bias), so hooks written for TransformerLens
// see the same values.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w, double eps, const hooks::HookSet* hooks,
                    const std::string& scale_name, const std::string& normalized_name, int layer, int64_t pos0);

// Additive attention bias [b or 1, 1, q, k]: 0 where query i (absolute position past + i) may attend
// key j, the lowest float where not (causal, padding keys, local window when window > 0).
at::Tensor attention_bias(const RunContext& ctx, int64_t batch, int64_t q_len, int64_t past, bool causal,
                          int64_t window, at::ScalarType dtype);

// Position ids for new tokens [b, n]: explicit ctx.position_ids, else from the attention mask
// (count of real tokens before each), else past .. past + n - 1.
at::Tensor position_ids(const RunContext& ctx, int64_t batch, int64_t n, int64_t past);

// Scaled dot-product attention with hooks on scores, pattern and z. softcap > 0 caps the scaled scores
// at softcap * tanh(scores / softcap) before the mask (Gemma-2's attn_logit_softcapping, as transformers
// and TransformerLens apply it; hook_attn_scores sees them capped and masked).
// q: [b, qp, h, dh]; k, v: [b, kp, h_kv, dh] (all keys, past included) -> z: [b, qp, h, dh].
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias,
                     double scale, const hooks::HookSet* hooks, const BlockHookNames& names, int layer, int64_t pos0,
                     double softcap = 0.0);

// block_packed's attention: q [R, h, dh], k, v [R, h_kv, dh] of the packed rows (after rotary; GQA
// when h_kv < h). Each run attends over all n_pos keys/values, its base run's (runs.base at `layer`,
// row base_index[r]) with its own rows written over them; causal, local window when window > 0.
// Scores are taken in q's dtype (the keys converted to it: GPT-Neo's float32 scores) and the pattern
// meets v in v's dtype. Fires attn_scores and pattern [n_runs, h, n_pos, n_pos] and z -> z [R, h, dh],
// or with runs.keep only the kept rows' [K, h, dh]. softcap as attention().
at::Tensor packed_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const PackedRuns& runs,
                            double scale, int64_t window, const BlockHookNames& names, int layer, double softcap = 0.0);

// Output projection of z [..., h, dh] with W_O in nn.Linear layout [d_model, h * dh] (bias may be
// undefined) -> [..., d_model]. Computes and fires hook_result [..., h, d_model] only when asked.
at::Tensor attention_out(const at::Tensor& z, const at::Tensor& w, const at::Tensor& bias, const hooks::HookSet* hooks,
                         const BlockHookNames& names, int layer, int64_t pos0);

// x [..., heads * dh] -> [..., heads, dh] (a view).
at::Tensor split_heads(const at::Tensor& x, int64_t heads);

// Keys/values already cached for `layer` (0 without a cache).
int64_t cache_past(const RunContext& ctx, int layer);
// With ctx.cache: appends k, v [b, n, h_kv, dh] for `layer` and replaces them with all keys/values
// [b, past + n, h_kv, dh]. Without: leaves them as they are.
void cache_kv(RunContext& ctx, int layer, int64_t n_layers, at::Tensor& k, at::Tensor& v);

at::Tensor activation(const at::Tensor& x, const std::string& act_fn);
// Error naming the supported ones when `act_fn` is not one activation() computes (config parsing).
void check_activation(const std::string& act_fn);

inline void fire(const hooks::HookSet* h, const std::string& name, at::Tensor& t, int layer, int64_t pos0) {
  if (h) h->fire(name, t, layer, pos0);
}

}  // namespace mechscope::models
