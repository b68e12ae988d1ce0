#include "models/common.h"

#include <cmath>
#include <limits>

#include "core/error.h"

namespace mechscope::models {

BlockHookNames::BlockHookNames(int layer) {
  std::string b = "blocks." + std::to_string(layer) + ".";
  resid_pre = b + "hook_resid_pre";
  resid_mid = b + "hook_resid_mid";
  resid_post = b + "hook_resid_post";
  attn_out = b + "hook_attn_out";
  mlp_out = b + "hook_mlp_out";
  ln1_scale = b + "ln1.hook_scale";
  ln1_normalized = b + "ln1.hook_normalized";
  ln2_scale = b + "ln2.hook_scale";
  ln2_normalized = b + "ln2.hook_normalized";
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
}

std::vector<std::string> standard_hook_names(int n_layers, bool rotary, bool gated_mlp, bool has_pos_embed,
                                             bool parallel_residual) {
  std::vector<std::string> out{"hook_embed"};
  if (has_pos_embed) out.push_back("hook_pos_embed");
  for (int l = 0; l < n_layers; ++l) {
    BlockHookNames n(l);
    out.insert(out.end(), {n.resid_pre, n.ln1_scale, n.ln1_normalized, n.q, n.k, n.v});
    if (rotary) out.insert(out.end(), {n.rot_q, n.rot_k});
    out.insert(out.end(), {n.attn_scores, n.pattern, n.z, n.result, n.attn_out});
    if (!parallel_residual) out.push_back(n.resid_mid);
    out.insert(out.end(), {n.ln2_scale, n.ln2_normalized, n.mlp_pre});
    if (gated_mlp) out.push_back(n.mlp_pre_linear);
    out.insert(out.end(), {n.mlp_post, n.mlp_out, n.resid_post});
  }
  out.insert(out.end(), {"ln_final.hook_scale", "ln_final.hook_normalized"});
  return out;
}

at::Tensor WeightLoader::get(const std::string& key, std::vector<int64_t> shape) const {
  std::string name = prefix_ + key;
  const io::TensorInfo& info = ckpt_.info(name);
  if (info.shape != shape)
    fail("tensor '", name, "' has shape ", at::IntArrayRef(info.shape), ", expected ", at::IntArrayRef(shape),
         " from config.json");
  return ckpt_.get(name, dtype_);
}

std::string detect_prefix(const io::Checkpoint& ckpt, const std::vector<std::string>& prefixes,
                          const std::string& probe, const std::string& arch) {
  std::string tried;
  for (auto& p : prefixes) {
    if (ckpt.has(p + probe)) return p;
    tried += (tried.empty() ? "'" : ", '") + p + probe + "'";
  }
  fail("checkpoint does not look like a ", arch, " model: none of ", tried, " found (files: ",
       ckpt.files().empty() ? std::string("none") : ckpt.files()[0], ")");
}

at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, double eps,
                      const hooks::HookSet* hooks, const std::string& scale_name,
                      const std::string& normalized_name, int layer, int64_t pos0) {
  if (!hooks || (!hooks->wants(scale_name) && !hooks->wants(normalized_name)))
    return at::layer_norm(x, {x.size(-1)}, w, b, eps);
  at::Tensor centred = x - x.mean(-1, true);
  at::Tensor scale = (centred.pow(2).mean(-1, true) + eps).sqrt();
  hooks->fire(scale_name, scale, layer, pos0);
  at::Tensor out = centred / scale;
  out = b.defined() ? at::addcmul(b, out, w) : out * w;
  hooks->fire(normalized_name, out, layer, pos0);
  return out;
}

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w, double eps, const hooks::HookSet* hooks,
                    const std::string& scale_name, const std::string& normalized_name, int layer, int64_t pos0) {
  at::ScalarType in = x.scalar_type();
  at::Tensor xf = in == at::kDouble ? x : x.to(at::kFloat);
  at::Tensor ms = xf.pow(2).mean(-1, true);
  if (!hooks || (!hooks->wants(scale_name) && !hooks->wants(normalized_name)))
    return w * (xf * at::rsqrt(ms + eps)).to(in);
  at::Tensor scale = (ms + eps).sqrt();
  hooks->fire(scale_name, scale, layer, pos0);
  at::Tensor normalized = (xf / scale).to(in);
  hooks->fire(normalized_name, normalized, layer, pos0);
  return w * normalized;
}

at::Tensor position_ids(const RunContext& ctx, int64_t batch, int64_t n, int64_t past) {
  if (ctx.position_ids.defined()) return ctx.position_ids;
  if (ctx.attention_mask.defined()) {
    at::Tensor pos = ctx.attention_mask.to(at::kLong).cumsum(1) - 1;
    pos = pos.clamp_min(0);
    return pos.narrow(1, pos.size(1) - n, n);
  }
  return at::arange(past, past + n, at::kLong).unsqueeze(0).expand({batch, n});
}

at::Tensor attention_bias(const RunContext& ctx, int64_t batch, int64_t q_len, int64_t past, bool causal,
                          int64_t window, at::ScalarType dtype) {
  int64_t k_len = past + q_len;
  auto opts = at::TensorOptions().dtype(at::kLong);
  at::Tensor qpos = at::arange(past, k_len, opts).unsqueeze(1);  // [q, 1]
  at::Tensor kpos = at::arange(0, k_len, opts).unsqueeze(0);     // [1, k]
  at::Tensor allowed = at::ones({q_len, k_len}, at::kBool);
  if (causal) allowed = kpos <= qpos;
  if (window > 0) allowed = allowed.logical_and(kpos > qpos - window);
  allowed = allowed.view({1, 1, q_len, k_len});
  if (ctx.attention_mask.defined()) {
    if (ctx.attention_mask.size(1) != k_len)
      fail("attention mask covers ", ctx.attention_mask.size(1), " tokens, the run has ", k_len);
    allowed = allowed.logical_and(ctx.attention_mask.to(at::kBool).view({batch, 1, 1, k_len}));
  }
  // The lowest finite value, as Hugging Face uses: a fully masked row (a padding query) stays finite.
  at::Tensor bias = at::zeros(allowed.sizes(), at::TensorOptions().dtype(dtype));
  // (The dtype's own lowest: float's overflows bfloat16 and half.)
  double lowest = dtype == at::kBFloat16 ? (double)std::numeric_limits<c10::BFloat16>::lowest()
                  : dtype == at::kHalf   ? (double)std::numeric_limits<c10::Half>::lowest()
                                         : (double)std::numeric_limits<float>::lowest();
  return bias.masked_fill_(allowed.logical_not(), lowest);
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias,
                     double scale, const hooks::HookSet* hooks, const BlockHookNames& names, int layer, int64_t pos0,
                     double softcap) {
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
  fire(hooks, names.attn_scores, scores, layer, pos0);
  at::Tensor pattern = at::softmax(scores, -1);
  fire(hooks, names.pattern, pattern, layer, pos0);
  at::Tensor z = at::matmul(pattern.to(vh.scalar_type()), vh).transpose(1, 2);  // [b, qp, h, dh]
  fire(hooks, names.z, z, layer, pos0);
  return z;
}

at::Tensor packed_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const PackedRuns& runs,
                            double scale, int64_t window, const BlockHookNames& names, int layer, double softcap) {
  const hooks::HookSet* hooks = runs.hooks;
  // Hooks after attention would see only the kept rows, not the packed layout they are promised.
  if (runs.keep.defined() && hooks && !hooks->empty()) fail("block_packed: PackedRuns::keep cannot be combined with hooks");
  int64_t C = runs.n_runs, n = runs.n_pos, h = q.size(1), dh = q.size(2);
  // [C, h, n, dh]: each run's base keys/values with its recomputed rows written over them.
  auto full = [&](const at::Tensor& base, const at::Tensor& mine) {
    int64_t hk = base.size(1);
    at::Tensor f = runs.base_index.defined() ? base.index_select(0, runs.base_index).transpose(1, 2)
                                             : base[0].transpose(0, 1).unsqueeze(0).expand({C, n, hk, dh});
    f = f.reshape({C * n, hk, dh}).index_copy(0, runs.rows, mine).view({C, n, hk, dh}).transpose(1, 2);
    return hk == h ? f : f.repeat_interleave(h / hk, 1);  // grouped-query attention, as attention()
  };
  at::Tensor kf = full(runs.base.k[layer], k), vf = full(runs.base.v[layer], v);
  // Queries before a run's start are zeros: those rows of the pattern are not meaningful.
  at::Tensor qf = at::zeros({C * n, h, dh}, q.options()).index_copy_(0, runs.rows, q).view({C, n, h, dh}).transpose(1, 2);
  at::Tensor scores = at::matmul(qf, kf.to(q.scalar_type()).transpose(-1, -2));
  if (scale != 1.0) scores = scores * scale;
  if (softcap > 0) scores = at::tanh(scores / softcap) * softcap;
  RunContext plain;
  scores = scores + attention_bias(plain, 1, n, 0, true, window, scores.scalar_type());
  fire(hooks, names.attn_scores, scores, layer, 0);
  at::Tensor pattern = at::softmax(scores, -1);
  fire(hooks, names.pattern, pattern, layer, 0);
  at::Tensor z = at::matmul(pattern.to(vf.scalar_type()), vf).transpose(1, 2).reshape({C * n, h, dh});
  z = z.index_select(0, runs.keep.defined() ? runs.rows.index_select(0, runs.keep) : runs.rows);
  fire(hooks, names.z, z, layer, 0);
  return z;
}

at::Tensor attention_out(const at::Tensor& z, const at::Tensor& w, const at::Tensor& bias, const hooks::HookSet* hooks,
                         const BlockHookNames& names, int layer, int64_t pos0) {
  if (!hooks || !hooks->wants(names.result)) return at::linear(z.flatten(-2), w, bias);
  int64_t h = z.size(-2), dh = z.size(-1), d = w.size(0);
  at::Tensor result = at::einsum("...he,dhe->...hd", {z, w.view({d, h, dh})});
  hooks->fire(names.result, result, layer, pos0);
  at::Tensor out = result.sum(-2);
  return bias.defined() ? out + bias : out;
}

at::Tensor split_heads(const at::Tensor& x, int64_t heads) {
  auto shape = x.sizes().vec();
  shape.back() /= heads;
  shape.insert(shape.end() - 1, heads);
  return x.view(shape);
}

int64_t cache_past(const RunContext& ctx, int layer) {
  return ctx.cache && (int64_t)ctx.cache->k.size() > layer && ctx.cache->k[layer].defined()
             ? ctx.cache->k[layer].size(2) : 0;
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
  fail("unsupported activation function '", act_fn, "' (supported: gelu_new, gelu_pytorch_tanh, gelu_fast, gelu, relu, silu)");
}

}  // namespace mechscope::models
