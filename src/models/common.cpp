#include "models/common.h"

#include <cmath>
#include <limits>

#include "core/error.h"
#include "models/packed_runs.h"

namespace mechscope::models {

BlockHookNames::BlockHookNames(int layer) {
  std::string b = "blocks." + std::to_string(layer) + ".";
  resid_pre = b + "hook_resid_pre";
  resid_mid = b + "hook_resid_mid";
  resid_post = b + "hook_resid_post";
  attn_out = b + "hook_attn_out";
  mlp_out = b + "hook_mlp_out";
  for (auto [norm, name] : {std::pair{&ln1, "ln1"}, {&ln2, "ln2"}, {&ln1_post, "ln1_post"}, {&ln2_post, "ln2_post"}})
    *norm = {b + name + ".hook_scale", b + name + ".hook_normalized"};
  q = b + "attn.hook_q";
  k = b + "attn.hook_k";
  v = b + "attn.hook_v";
  rot_q = b + "attn.hook_rot_q";
  rot_k = b + "attn.hook_rot_k";
  attn_scores = b + "attn.hook_attn_scores";
  pattern = b + "attn.hook_pattern";
  z = b + "attn.hook_z";
  result = b + "attn.hook_result";
  mlp_pre = b + "mlp.hook_pre";
  mlp_pre_linear = b + "mlp.hook_pre_linear";
  mlp_post = b + "mlp.hook_post";
  normalized_resid_post = b + "hook_normalized_resid_post";
}

const NormHookNames& ln_final_names() {
  static const NormHookNames names{"ln_final.hook_scale", "ln_final.hook_normalized"};
  return names;
}

BlockHooks final_hooks(const RunContext& ctx, const at::Tensor& resid) {
  int64_t past = ctx.cache ? ctx.cache->length() - resid.size(1) : 0;
  return {ctx.hooks, nullptr, -1, past < 0 ? 0 : past};
}

std::vector<std::string> standard_hook_names(int n_layers, const HookLayout& L) {
  std::vector<std::string> out{"hook_embed"};
  if (L.pos_embed) out.push_back("hook_pos_embed");
  for (int l = 0; l < n_layers; ++l) {
    BlockHookNames n(l);
    out.insert(out.end(), {n.resid_pre, n.ln1.scale, n.ln1.normalized, n.q, n.k, n.v});
    if (L.rotary) out.insert(out.end(), {n.rot_q, n.rot_k});
    out.insert(out.end(), {n.attn_scores, n.pattern, n.z, n.result});
    if (L.post_norms) out.insert(out.end(), {n.ln1_post.scale, n.ln1_post.normalized});
    out.push_back(n.attn_out);
    if (!L.parallel_residual) out.push_back(n.resid_mid);
    out.insert(out.end(), {n.ln2.scale, n.ln2.normalized, n.mlp_pre});
    if (L.gated_mlp) out.push_back(n.mlp_pre_linear);
    out.push_back(n.mlp_post);
    if (L.post_norms) out.insert(out.end(), {n.ln2_post.scale, n.ln2_post.normalized});
    out.insert(out.end(), {n.mlp_out, n.resid_post});
  }
  out.insert(out.end(), {ln_final_names().scale, ln_final_names().normalized});
  return out;
}

at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, double eps, const BlockHooks& H,
                      const NormHookNames& names) {
  if (!H.wants(names.scale) && !H.wants(names.normalized)) return at::layer_norm(x, {x.size(-1)}, w, b, eps);
  at::Tensor centred = x - x.mean(-1, true);
  at::Tensor scale = (centred.pow(2).mean(-1, true) + eps).sqrt();
  H.fire(names.scale, scale);
  at::Tensor out = centred / scale;
  out = b.defined() ? at::addcmul(b, out, w) : out * w;
  H.fire(names.normalized, out);
  return out;
}

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w, double eps, const BlockHooks& H,
                    const NormHookNames& names) {
  at::ScalarType in = x.scalar_type();
  at::Tensor xf = in == at::kDouble ? x : x.to(at::kFloat);
  at::Tensor ms = xf.pow(2).mean(-1, true);
  if (!H.wants(names.scale) && !H.wants(names.normalized)) return w * (xf * at::rsqrt(ms + eps)).to(in);
  at::Tensor scale = (ms + eps).sqrt();
  H.fire(names.scale, scale);
  at::Tensor normalized = (xf / scale).to(in);
  H.fire(names.normalized, normalized);
  return w * normalized;
}

at::Tensor position_ids(const RunContext& ctx, int64_t batch, int64_t n, int64_t past, const at::Device& device) {
  if (ctx.position_ids.defined()) return ctx.position_ids.to(device);
  if (ctx.attention_mask.defined()) {
    at::Tensor pos = ctx.attention_mask.to(device, at::kLong).cumsum(1) - 1;
    pos = pos.clamp_min(0);
    return pos.narrow(1, pos.size(1) - n, n);
  }
  return at::arange(past, past + n, at::TensorOptions().dtype(at::kLong).device(device))
      .unsqueeze(0)
      .expand({batch, n});
}

at::Tensor attention_bias(const RunContext& ctx, int64_t batch, int64_t q_len, int64_t past, bool causal,
                          int64_t window, at::ScalarType dtype, const at::Device& device) {
  int64_t k_len = past + q_len;
  auto opts = at::TensorOptions().dtype(at::kLong).device(device);
  at::Tensor qpos = at::arange(past, k_len, opts).unsqueeze(1);  // [q, 1]
  at::Tensor kpos = at::arange(0, k_len, opts).unsqueeze(0);     // [1, k]
  at::Tensor allowed = at::ones({q_len, k_len}, opts.dtype(at::kBool));
  if (causal) allowed = kpos <= qpos;
  if (window > 0) allowed = allowed.logical_and(kpos > qpos - window);
  allowed = allowed.view({1, 1, q_len, k_len});
  if (ctx.attention_mask.defined()) {
    if (ctx.attention_mask.size(1) != k_len)
      fail("attention mask covers ", ctx.attention_mask.size(1), " tokens, the run has ", k_len);
    allowed = allowed.logical_and(ctx.attention_mask.to(device, at::kBool).view({batch, 1, 1, k_len}));
  }
  // The lowest finite value, as Hugging Face uses: a fully masked row (a padding query) stays finite.
  at::Tensor bias = at::zeros(allowed.sizes(), opts.dtype(dtype));
  // (The dtype's own lowest: float's overflows bfloat16 and half.)
  double lowest = dtype == at::kBFloat16 ? (double)std::numeric_limits<c10::BFloat16>::lowest()
                  : dtype == at::kHalf   ? (double)std::numeric_limits<c10::Half>::lowest()
                                         : (double)std::numeric_limits<float>::lowest();
  return bias.masked_fill_(allowed.logical_not(), lowest);
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias,
                     double scale, const BlockHooks& H, double softcap) {
  int64_t n_heads = q.size(2), n_kv = k.size(2);
  at::Tensor qh = q.transpose(1, 2);  // [b, h, qp, dh]
  at::Tensor kh = k.transpose(1, 2);  // [b, h_kv, kp, dh]
  at::Tensor vh = v.transpose(1, 2);
  if (n_kv != n_heads) {  // grouped-query attention: each kv head serves n_heads / n_kv query heads
    kh = kh.repeat_interleave(n_heads / n_kv, 1);
    vh = vh.repeat_interleave(n_heads / n_kv, 1);
  }
  at::Tensor scores = at::matmul(qh, kh.transpose(-1, -2));
  if (scale != 1.0) scores = scores * scale;
  if (softcap > 0) scores = at::tanh(scores / softcap) * softcap;
  scores = scores + bias;
  H.fire(H.names->attn_scores, scores);
  at::Tensor pattern = at::softmax(scores, -1);
  H.fire(H.names->pattern, pattern);
  at::Tensor z = at::matmul(pattern.to(vh.scalar_type()), vh).transpose(1, 2);  // [b, qp, h, dh]
  H.fire(H.names->z, z);
  return z;
}

at::Tensor packed_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const PackedRuns& runs,
                            double scale, int64_t window, const BlockHooks& H, double softcap) {
  // Hooks after attention would see only the kept rows, not the packed layout they are promised.
  if (runs.keep.defined() && H.set && !H.set->empty())
    fail("block_packed: PackedRuns::keep cannot be combined with hooks");
  int64_t C = runs.n_runs, n = runs.n_pos, h = q.size(1), dh = q.size(2);
  // [C, h, n, dh]: each run's base keys/values with its recomputed rows written over them.
  auto full = [&](const at::Tensor& base, const at::Tensor& mine) {
    int64_t hk = base.size(1);
    at::Tensor f = runs.base_index.defined() ? base.index_select(0, runs.base_index).transpose(1, 2)
                                             : base[0].transpose(0, 1).unsqueeze(0).expand({C, n, hk, dh});
    f = f.reshape({C * n, hk, dh}).index_copy(0, runs.rows, mine).view({C, n, hk, dh}).transpose(1, 2);
    return hk == h ? f : f.repeat_interleave(h / hk, 1);  // grouped-query attention, as attention()
  };
  at::Tensor kf = full(runs.base.k[H.layer], k), vf = full(runs.base.v[H.layer], v);
  // Queries before a run's start are zeros: those rows of the pattern are not meaningful.
  at::Tensor qf =
      at::zeros({C * n, h, dh}, q.options()).index_copy_(0, runs.rows, q).view({C, n, h, dh}).transpose(1, 2);
  at::Tensor scores = at::matmul(qf, kf.to(q.scalar_type()).transpose(-1, -2));
  if (scale != 1.0) scores = scores * scale;
  if (softcap > 0) scores = at::tanh(scores / softcap) * softcap;
  RunContext plain;
  scores = scores + attention_bias(plain, 1, n, 0, true, window, scores.scalar_type(), scores.device());
  H.fire(H.names->attn_scores, scores);
  at::Tensor pattern = at::softmax(scores, -1);
  H.fire(H.names->pattern, pattern);
  at::Tensor z = at::matmul(pattern.to(vf.scalar_type()), vf).transpose(1, 2).reshape({C * n, h, dh});
  z = z.index_select(0, runs.keep.defined() ? runs.rows.index_select(0, runs.keep) : runs.rows);
  H.fire(H.names->z, z);
  return z;
}

at::Tensor attention_out(const at::Tensor& z, const at::Tensor& w, const at::Tensor& bias, const BlockHooks& H) {
  if (!H.wants(H.names->result)) return at::linear(z.flatten(-2), w, bias);
  int64_t h = z.size(-2), dh = z.size(-1), d = w.size(0);
  at::Tensor result = at::einsum("...he,dhe->...hd", {z, w.view({d, h, dh})});
  H.fire(H.names->result, result);
  at::Tensor out = result.sum(-2);
  return bias.defined() ? out + bias : out;
}

at::Tensor unembed_rows(const at::Tensor& w, const at::Tensor& x, const at::Tensor& columns) {
  return at::matmul(x, (columns.defined() ? w.index_select(0, columns) : w).t());
}

QKV fire_qkv(QKV qkv, const BlockHooks& H) {
  H.fire(H.names->q, qkv.q);
  H.fire(H.names->k, qkv.k);
  H.fire(H.names->v, qkv.v);
  return qkv;
}

QKV project_qkv(const at::Tensor& x, const Linear& q, const Linear& k, const Linear& v, int64_t n_heads,
                int64_t n_kv_heads, const BlockHooks& H) {
  return fire_qkv({split_heads(at::linear(x, q.w, q.b), n_heads), split_heads(at::linear(x, k.w, k.b), n_kv_heads),
                   split_heads(at::linear(x, v.w, v.b), n_kv_heads)},
                  H);
}

at::Tensor mlp(const at::Tensor& x, const Linear& in, const Linear& gate_linear, const Linear& out,
               const std::string& act_fn, const BlockHooks& H) {
  const BlockHookNames& N = *H.names;
  at::Tensor pre = at::linear(x, in.w, in.b);  // [..., d_mlp]
  H.fire(N.mlp_pre, pre);
  at::Tensor post = activation(pre, act_fn);
  if (gate_linear.w.defined()) {
    at::Tensor pre_linear = at::linear(x, gate_linear.w, gate_linear.b);
    H.fire(N.mlp_pre_linear, pre_linear);
    post = post * pre_linear;
  }
  H.fire(N.mlp_post, post);
  return at::linear(post, out.w, out.b);
}

at::Tensor split_heads(const at::Tensor& x, int64_t heads) {
  auto shape = x.sizes().vec();
  shape.back() /= heads;
  shape.insert(shape.end() - 1, heads);
  return x.view(shape);
}

int64_t cache_past(const RunContext& ctx, int layer) {
  return ctx.cache && (int64_t)ctx.cache->k.size() > layer && ctx.cache->k[layer].defined()
             ? ctx.cache->k[layer].size(2)
             : 0;
}

void cache_kv(RunContext& ctx, int layer, int64_t n_layers, at::Tensor& k, at::Tensor& v) {
  if (!ctx.cache) return;
  KVCache& c = *ctx.cache;
  if ((int64_t)c.k.size() <= layer) c.k.resize(n_layers), c.v.resize(n_layers);
  bool past = c.k[layer].defined();
  at::Tensor kt = k.transpose(1, 2), vt = v.transpose(1, 2);  // [b, h_kv, n, dh]
  c.k[layer] = past ? at::cat({c.k[layer], kt}, 2) : kt.contiguous();
  c.v[layer] = past ? at::cat({c.v[layer], vt}, 2) : vt.contiguous();
  k = c.k[layer].transpose(1, 2);
  v = c.v[layer].transpose(1, 2);
}

at::Tensor activation(const at::Tensor& x, const std::string& act_fn) {
  if (act_fn == "gelu_new" || act_fn == "gelu_pytorch_tanh" || act_fn == "gelu_fast") return at::gelu(x, "tanh");
  if (act_fn == "gelu") return at::gelu(x);
  if (act_fn == "relu") return at::relu(x);
  if (act_fn == "silu" || act_fn == "swish") return at::silu(x);
  check_activation(act_fn);
  fail("activation '", act_fn, "' has no kernel");  // unreachable: check_activation knows the list above
}

void check_activation(const std::string& act_fn) {
  for (const char* known : {"gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu", "relu", "silu", "swish"})
    if (act_fn == known) return;
  fail("unsupported activation function '", act_fn,
       "' (supported: gelu_new, gelu_pytorch_tanh, gelu_fast, gelu, relu, silu)");
}

}  // namespace mechscope::models
