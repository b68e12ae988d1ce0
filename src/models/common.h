// Pieces shared by the architectures: hook names per layer, checkpoint weight lookup with shape
// checks, LayerNorm/attention with TransformerLens hook semantics, activations.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "models/model.h"
#include "models/packed_runs.h"

namespace mechscope::models {

// The two hook points of a norm: hook_scale and hook_normalized.
struct NormHookNames {
  std::string scale, normalized;
};

// Hook point names of one block, built once so a forward pass allocates no strings. ln1_post /
// ln2_post are Gemma-2's post-norms, normalized_resid_post an encoder block's output.
struct BlockHookNames {
  std::string resid_pre, resid_mid, resid_post, attn_out, mlp_out;
  NormHookNames ln1, ln2, ln1_post, ln2_post;
  std::string q, k, v, rot_q, rot_k, attn_scores, pattern, z, result;
  std::string mlp_pre, mlp_pre_linear, mlp_post, normalized_resid_post;
  explicit BlockHookNames(int layer);
};

// ln_final.hook_scale / ln_final.hook_normalized.
const NormHookNames& ln_final_names();

// Where one call fires its hook points: the set (null = no hooks), the block's names (null outside
// the blocks), the layer (-1 outside the blocks) and the absolute position of index 0 along pos.
struct BlockHooks {
  const hooks::HookSet* set = nullptr;
  const BlockHookNames* names = nullptr;
  int layer = -1;
  int64_t pos0 = 0;
  void fire(const std::string& name, at::Tensor& t) const {
    if (set) set->fire(name, t, layer, pos0);
  }
  bool wants(const std::string& name) const { return set && set->wants(name); }
};

// The hooks of the norm after the last block (ln_final, an MLM head) for resid [b, n, d]: positions
// continue a KV cache's.
BlockHooks final_hooks(const RunContext& ctx, const at::Tensor& resid);

// Which optional points a model's blocks have, for the hook list in forward order.
struct HookLayout {
  bool pos_embed = false, rotary = false, gated_mlp = false, parallel_residual = false;
  bool post_norms = false;  // Gemma-2's ln1_post / ln2_post
};

// The names in forward order of a decoder with `n_layers` blocks.
std::vector<std::string> standard_hook_names(int n_layers, const HookLayout& layout);

// LayerNorm with TransformerLens hooks: hook_scale = sqrt(var + eps) [b, p, 1] and
// hook_normalized = (x - mean) / scale * w + b. x: [b, p, d].
at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, double eps, const BlockHooks& H,
                      const NormHookNames& names);

// RMSNorm (Zhang & Sennrich 2019) as Hugging Face's LlamaRMSNorm: computed in float32 (float64 stays
// float64) and cast back before the weight. hook_scale = sqrt(mean(x^2) + eps) [b, p, 1];
// hook_normalized = x / scale, before the weight, as TransformerLens's RMSNorm fires it (unlike its
// LayerNorm, whose hook_normalized includes weight and bias), so hooks written for TransformerLens
// see the same values.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w, double eps, const BlockHooks& H,
                    const NormHookNames& names);

// Additive attention bias [b or 1, 1, q, k]: 0 where query i (absolute position past + i) may attend
// key j, the lowest float where not (causal, padding keys, local window when window > 0).
at::Tensor attention_bias(const RunContext& ctx, int64_t batch, int64_t q_len, int64_t past, bool causal,
                          int64_t window, at::ScalarType dtype, const at::Device& device);

// Position ids for new tokens [b, n]: explicit ctx.position_ids, else from the attention mask
// (count of real tokens before each), else past .. past + n - 1.
at::Tensor position_ids(const RunContext& ctx, int64_t batch, int64_t n, int64_t past, const at::Device& device);

// Scaled dot-product attention with hooks on scores, pattern and z. softcap > 0 caps the scaled scores
// at softcap * tanh(scores / softcap) before the mask (Gemma-2's attn_logit_softcapping, as transformers
// and TransformerLens apply it; hook_attn_scores sees them capped and masked).
// q: [b, qp, h, dh]; k, v: [b, kp, h_kv, dh] (all keys, past included) -> z: [b, qp, h, dh].
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias,
                     double scale, const BlockHooks& H, double softcap = 0.0);

// block_packed's attention: q [R, h, dh], k, v [R, h_kv, dh] of the packed rows (after rotary; GQA
// when h_kv < h). Each run attends over all n_pos keys/values, its base run's (runs.base at `layer`,
// row base_index[r]) with its own rows written over them; causal, local window when window > 0.
// Scores are taken in q's dtype (the keys converted to it: GPT-Neo's float32 scores) and the pattern
// meets v in v's dtype. Fires (H: runs.hooks, pos0 0) attn_scores and pattern [n_runs, h, n_pos, n_pos]
// and z -> z [R, h, dh], or with runs.keep only the kept rows' [K, h, dh]. softcap as attention().
at::Tensor packed_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const PackedRuns& runs,
                            double scale, int64_t window, const BlockHooks& H, double softcap = 0.0);

// Output projection of z [..., h, dh] with W_O in nn.Linear layout [d_model, h * dh] (bias may be
// undefined) -> [..., d_model]. Computes and fires hook_result [..., h, d_model] only when asked.
at::Tensor attention_out(const at::Tensor& z, const at::Tensor& w, const at::Tensor& bias, const BlockHooks& H);

// Normalised residual [..., d_model] -> logits [..., rows of w] through the unembedding w [d_vocab,
// d_model], or only its `columns` rows when given.
at::Tensor unembed_rows(const at::Tensor& w, const at::Tensor& x, const at::Tensor& columns);

// An nn.Linear's weight [out, in] and bias [out] (undefined: none).
struct Linear {
  at::Tensor w, b;
};

struct QKV {
  at::Tensor q, k, v;
};

// Fires hook_q, hook_k, hook_v on q, k, v [..., heads, dh] (a hook may replace them) and returns them.
QKV fire_qkv(QKV qkv, const BlockHooks& H);
// x [..., d] -> q [..., n_heads, dh] and k, v [..., n_kv_heads, dh] through three projections, hooks fired.
QKV project_qkv(const at::Tensor& x, const Linear& q, const Linear& k, const Linear& v, int64_t n_heads,
                int64_t n_kv_heads, const BlockHooks& H);

// The MLP of x [..., d] -> [..., d], before hook_mlp_out: out(act(in(x))), or with `gate_linear`
// (gated MLPs: SwiGLU, GeGLU; Shazeer 2020) out(act(in(x)) * gate_linear(x)). Fires hook_pre (the
// activation's input), hook_pre_linear and hook_post.
at::Tensor mlp(const at::Tensor& x, const Linear& in, const Linear& gate_linear, const Linear& out,
               const std::string& act_fn, const BlockHooks& H);

// The residual stream around a block's two sublayers, given attn_out [..., d] and the MLP sublayer as
// a function of its input [..., d] -> [..., d] (norm included): sequential, mid = resid + attn_out
// (hook_resid_mid) and out = mid + mlp(mid); parallel (GPT-J, NeoX), out = resid + attn_out +
// mlp(resid), without resid_mid. Fires hook_attn_out, hook_mlp_out, hook_resid_post.
template <class Mlp>
at::Tensor residual(const at::Tensor& resid, at::Tensor attn_out, const BlockHooks& H, bool parallel, Mlp&& mlp_of) {
  const BlockHookNames& N = *H.names;
  H.fire(N.attn_out, attn_out);
  at::Tensor mid = resid;
  if (!parallel) {
    mid = resid + attn_out;
    H.fire(N.resid_mid, mid);
  }
  at::Tensor mlp_out = mlp_of(mid);
  H.fire(N.mlp_out, mlp_out);
  at::Tensor out = parallel ? resid + attn_out + mlp_out : mid + mlp_out;
  H.fire(N.resid_post, out);
  return out;
}

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

}  // namespace mechscope::models
