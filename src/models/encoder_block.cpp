#include "models/encoder_block.h"

#include <cmath>

#include "core/error.h"

namespace mechscope::models {

const NormHookNames& embed_ln_names() {
  static const NormHookNames names{"embed.ln.hook_scale", "embed.ln.hook_normalized"};
  return names;
}

std::vector<std::string> encoder_hook_names(int n_layers, bool token_types, bool mlm_head) {
  std::vector<std::string> out{"embed.hook_embed", "embed.hook_pos_embed"};
  if (token_types) out.push_back("embed.hook_token_type_embed");
  out.insert(out.end(), {embed_ln_names().scale, embed_ln_names().normalized});
  for (int l = 0; l < n_layers; ++l) {
    BlockHookNames n(l);
    out.insert(out.end(), {n.resid_pre, n.q, n.k, n.v, n.attn_scores, n.pattern, n.z, n.result, n.attn_out, n.resid_mid,
                           n.ln1.scale, n.ln1.normalized, n.mlp_pre, n.mlp_post, n.mlp_out, n.resid_post, n.ln2.scale,
                           n.ln2.normalized, n.normalized_resid_post});
  }
  if (mlm_head) out.insert(out.end(), {"mlm_head.ln.hook_scale", "mlm_head.ln.hook_normalized"});
  return out;
}

int64_t classifier_labels(const io::Checkpoint& ckpt, const char* arch, int64_t d_model) {
  std::vector<int64_t> n = ckpt.info("classifier.weight").shape;
  if (n.size() != 2 || n[1] != d_model)
    fail(arch, ": classifier.weight has shape ", at::IntArrayRef(n), ", expected [n_labels, ", d_model, "]");
  return n[0];
}

at::Tensor encoder_block(const EncoderBlockWeights& B, const ModelConfig& cfg, const BlockHookNames& N, int layer,
                         const at::Tensor& resid_in, RunContext& ctx) {
  int64_t b = resid_in.size(0), n = resid_in.size(1), h = cfg.n_heads, dh = cfg.d_head;
  int64_t past = cache_past(ctx, layer);
  BlockHooks H{ctx.hooks, &N, layer, past};
  at::Tensor resid = resid_in;
  H.fire(N.resid_pre, resid);

  // Attention over every real token (padding keys masked): [b, n, d] -> q, k, v [b, n, h, dh].
  auto [q, k, v] = fire_qkv(
      {at::linear(resid, B.q_w, B.q_b).view({b, n, h, dh}), at::linear(resid, B.k_w, B.k_b).view({b, n, h, dh}),
       at::linear(resid, B.v_w, B.v_b).view({b, n, h, dh})},
      H);
  cache_kv(ctx, layer, cfg.n_layers, k, v);
  at::Tensor bias = attention_bias(ctx, b, n, past, false, 0, resid.scalar_type(), resid.device());
  at::Tensor z = attention(q, k, v, bias, 1.0 / std::sqrt((double)dh), H);
  at::Tensor attn_out = attention_out(z, B.o_w, B.o_b, H);
  H.fire(N.attn_out, attn_out);
  at::Tensor mid = resid + attn_out;
  H.fire(N.resid_mid, mid);

  // Post-LayerNorm: ln1 normalises resid_mid, the MLP reads that and ln2 normalises the sum
  // (TransformerLens's BertBlock: hook_resid_post is before ln2, the block output after).
  at::Tensor x = layer_norm(mid, B.ln1_w, B.ln1_b, cfg.eps, H, N.ln1);
  at::Tensor mlp_out = mlp(x, {B.fc_w, B.fc_b}, {}, {B.proj_w, B.proj_b}, cfg.act_fn, H);  // [b, n, d]
  H.fire(N.mlp_out, mlp_out);
  at::Tensor sum = x + mlp_out;
  H.fire(N.resid_post, sum);
  at::Tensor out = layer_norm(sum, B.ln2_w, B.ln2_b, cfg.eps, H, N.ln2);
  H.fire(N.normalized_resid_post, out);
  return out;
}

}  // namespace mechscope::models
