// GPT-2 (Radford et al. 2019) as Hugging Face's GPT2LMHeadModel computes it: learned position
// embeddings, pre-LayerNorm blocks, Conv1D weights stored [in, out], fused c_attn = [q | k | v],
// tied unembedding. distilgpt2 and gpt2-medium/large/xl are the same code.
#include <cmath>
#include <tuple>

#include "core/error.h"
#include "models/common.h"
#include "models/registry.h"

namespace mechscope::models {

void parse_gpt2(ModelConfig& cfg) {
  set_mha_heads(cfg, "n_embd", "n_head");
  cfg.n_layers = cfg_int(cfg, "n_layer");
  cfg.d_mlp = cfg_int(cfg, "n_inner", 4 * cfg.d_model);
  cfg.n_ctx = cfg_int(cfg, "n_positions", cfg_int(cfg, "n_ctx", 1024));
  cfg.d_vocab = cfg_int(cfg, "vocab_size");
  cfg.act_fn = cfg_string(cfg, "activation_function", "gelu_new");
  cfg.eps = cfg_double(cfg, "layer_norm_epsilon", 1e-5);
  cfg.tied_embeddings = cfg_bool(cfg, "tie_word_embeddings", true);
  check_activation(cfg.act_fn);
}

namespace {

struct Gpt2Block {
  at::Tensor ln1_w, ln1_b, c_attn_w, c_attn_b, c_proj_w, c_proj_b;
  at::Tensor ln2_w, ln2_b, fc_w, fc_b, proj_w, proj_b;
};

class Gpt2 final : public HookedModel {
 public:
  Gpt2(const ModelConfig& cfg, const io::Checkpoint& ckpt, const LoadOptions& opts) {
    cfg_ = cfg;
    dtype_ = opts.dtype;
    // save_pretrained writes "transformer.h.0…"; the hub's original gpt2 files have "h.0…".
    std::string prefix = detect_prefix(ckpt, {"transformer.", ""}, "wte.weight", "GPT-2");
    WeightLoader w(ckpt, prefix, dtype_);
    int64_t d = cfg.d_model, m = cfg.d_mlp;
    wte_ = w.get("wte.weight", {cfg.d_vocab, d});
    wpe_ = w.get("wpe.weight", {cfg.n_ctx, d});
    for (int l = 0; l < cfg.n_layers; ++l) {
      std::string p = "h." + std::to_string(l) + ".";
      blocks_.push_back({w.get(p + "ln_1.weight", {d}), w.get(p + "ln_1.bias", {d}),
                         w.get(p + "attn.c_attn.weight", {d, 3 * d}), w.get(p + "attn.c_attn.bias", {3 * d}),
                         w.get(p + "attn.c_proj.weight", {d, d}), w.get(p + "attn.c_proj.bias", {d}),
                         w.get(p + "ln_2.weight", {d}), w.get(p + "ln_2.bias", {d}),
                         w.get(p + "mlp.c_fc.weight", {d, m}), w.get(p + "mlp.c_fc.bias", {m}),
                         w.get(p + "mlp.c_proj.weight", {m, d}), w.get(p + "mlp.c_proj.bias", {d})});
      names_.emplace_back(l);
      double scale = cfg_bool(cfg, "scale_attn_weights", true) ? 1.0 / std::sqrt((double)cfg.d_head) : 1.0;
      if (cfg_bool(cfg, "scale_attn_by_inverse_layer_idx", false)) scale /= (l + 1);
      attn_scale_.push_back(scale);
    }
    lnf_w_ = w.get("ln_f.weight", {d});
    lnf_b_ = w.get("ln_f.bias", {d});
    // An untied head (tie_word_embeddings false) must be in the file; a tied one may be saved too.
    WeightLoader root(ckpt, "", dtype_);
    if (!cfg.tied_embeddings) lm_head_ = root.get("lm_head.weight", {cfg.d_vocab, d});
    else lm_head_ = wte_;
  }

  std::vector<std::string> hook_names() const override {
    return standard_hook_names(cfg_.n_layers, false, false, true);
  }

  at::Tensor embed(const at::Tensor& ids, RunContext& ctx) const override {
    int64_t past = ctx.cache ? ctx.cache->length() : 0;
    at::Tensor pos = position_ids(ctx, ids.size(0), ids.size(1), past);
    at::Tensor tok = at::embedding(wte_, ids);  // [b, p, d]
    fire(ctx.hooks, "hook_embed", tok, -1, past);
    at::Tensor pe = at::embedding(wpe_, pos);
    fire(ctx.hooks, "hook_pos_embed", pe, -1, past);
    return tok + pe;
  }

  at::Tensor block(int layer, const at::Tensor& resid_in, RunContext& ctx) const override {
    int64_t b = resid_in.size(0), n = resid_in.size(1), past = cache_past(ctx, layer);
    at::Tensor resid = resid_in;
    auto [q, k, v] = attention_inputs(layer, resid, ctx.hooks, past);  // [b, n, h, dh]
    cache_kv(ctx, layer, cfg_.n_layers, k, v);
    at::Tensor bias = attention_bias(ctx, b, n, past, true, 0, resid.scalar_type());
    at::Tensor z = attention(q, k, v, bias, attn_scale_[layer], ctx.hooks, names_[layer], layer, past);
    return after_attention(layer, resid, z, ctx.hooks, past);
  }

  // rows: [R, d] -> [R, d] (or [K, d] with P.keep); the same block with every run's rows in one GEMM
  // per weight and attention batched over runs on full-length keys (the base run's, overwritten
  // where recomputed).
  at::Tensor block_packed(int layer, const at::Tensor& rows_in, const PackedRuns& P) const override {
    at::Tensor resid = rows_in;
    auto [q, k, v] = attention_inputs(layer, resid, P.hooks, 0);  // [R, h, dh]
    at::Tensor z = packed_attention(q, k, v, P, attn_scale_[layer], 0, names_[layer], layer);
    if (P.keep.defined()) resid = resid.index_select(0, P.keep);
    return after_attention(layer, resid, z, P.hooks, 0);
  }

  at::Tensor final_norm(const at::Tensor& resid, RunContext& ctx) const override {
    int64_t past = ctx.cache ? ctx.cache->length() - resid.size(1) : 0;
    return layer_norm(resid, lnf_w_, lnf_b_, cfg_.eps, ctx.hooks, "ln_final.hook_scale", "ln_final.hook_normalized",
                      -1, past < 0 ? 0 : past);
  }

  at::Tensor unembed(const at::Tensor& x, const at::Tensor& columns) const override {
    at::Tensor w = columns.defined() ? lm_head_.index_select(0, columns) : lm_head_;
    return at::matmul(x, w.t());
  }

  std::vector<std::pair<std::string, at::Tensor>> parameters() const override {
    std::vector<std::pair<std::string, at::Tensor>> out{{"transformer.wte.weight", wte_}, {"transformer.wpe.weight", wpe_}};
    for (size_t l = 0; l < blocks_.size(); ++l) {
      const Gpt2Block& B = blocks_[l];
      std::string p = "transformer.h." + std::to_string(l) + ".";
      for (auto& [k, t] : std::vector<std::pair<std::string, at::Tensor>>{
               {"ln_1.weight", B.ln1_w}, {"ln_1.bias", B.ln1_b}, {"attn.c_attn.weight", B.c_attn_w},
               {"attn.c_attn.bias", B.c_attn_b}, {"attn.c_proj.weight", B.c_proj_w}, {"attn.c_proj.bias", B.c_proj_b},
               {"ln_2.weight", B.ln2_w}, {"ln_2.bias", B.ln2_b}, {"mlp.c_fc.weight", B.fc_w}, {"mlp.c_fc.bias", B.fc_b},
               {"mlp.c_proj.weight", B.proj_w}, {"mlp.c_proj.bias", B.proj_b}})
        out.emplace_back(p + k, t);
    }
    out.emplace_back("transformer.ln_f.weight", lnf_w_);
    out.emplace_back("transformer.ln_f.bias", lnf_b_);
    if (!cfg_.tied_embeddings) out.emplace_back("lm_head.weight", lm_head_);
    return out;
  }

 private:
  // Conv1D: x [..., in] @ w [in, out] + bias.
  static at::Tensor conv1d(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias) {
    auto shape = x.sizes().vec();
    shape.back() = w.size(1);
    return at::addmm(bias, x.reshape({-1, x.size(-1)}), w).view(shape);
  }

  // The block up to attention, for resid [..., d] (hook_resid_pre may replace it): ln_1 and the fused
  // c_attn -> q, k, v [..., h, dh], hooks fired.
  std::tuple<at::Tensor, at::Tensor, at::Tensor> attention_inputs(int layer, at::Tensor& resid, const hooks::HookSet* H,
                                                                  int64_t pos0) const {
    const Gpt2Block& B = blocks_[layer];
    const BlockHookNames& N = names_[layer];
    fire(H, N.resid_pre, resid, layer, pos0);
    at::Tensor x = layer_norm(resid, B.ln1_w, B.ln1_b, cfg_.eps, H, N.ln1_scale, N.ln1_normalized, layer, pos0);
    auto shape = resid.sizes().vec();
    shape.back() = 3;
    shape.push_back(cfg_.n_heads);
    shape.push_back(cfg_.d_head);
    at::Tensor qkv = conv1d(x, B.c_attn_w, B.c_attn_b).view(shape);  // [..., 3, h, dh]
    at::Tensor q = qkv.select(-3, 0), k = qkv.select(-3, 1), v = qkv.select(-3, 2);
    fire(H, N.q, q, layer, pos0);
    fire(H, N.k, k, layer, pos0);
    fire(H, N.v, v, layer, pos0);
    return {q, k, v};
  }

  // The block after attention: c_proj of z [..., h, dh] (per head as hook_result when hooked), the
  // residual add, ln_2 and the MLP, for resid [..., d].
  at::Tensor after_attention(int layer, const at::Tensor& resid, const at::Tensor& z, const hooks::HookSet* H,
                             int64_t pos0) const {
    const Gpt2Block& B = blocks_[layer];
    const BlockHookNames& N = names_[layer];
    int64_t h = cfg_.n_heads, dh = cfg_.d_head, d = cfg_.d_model;
    at::Tensor attn_out;
    if (H && H->wants(N.result)) {
      // Per-head contributions: z_h @ W_O[h] with W_O = c_proj viewed [h, dh, d].
      at::Tensor result = at::einsum("...he,hed->...hd", {z, B.c_proj_w.view({h, dh, d})});
      H->fire(N.result, result, layer, pos0);
      attn_out = result.sum(-2) + B.c_proj_b;
    } else {
      attn_out = conv1d(z.flatten(-2), B.c_proj_w, B.c_proj_b);
    }
    fire(H, N.attn_out, attn_out, layer, pos0);
    at::Tensor mid = resid + attn_out;
    fire(H, N.resid_mid, mid, layer, pos0);
    at::Tensor x = layer_norm(mid, B.ln2_w, B.ln2_b, cfg_.eps, H, N.ln2_scale, N.ln2_normalized, layer, pos0);
    at::Tensor pre = conv1d(x, B.fc_w, B.fc_b);
    fire(H, N.mlp_pre, pre, layer, pos0);
    at::Tensor post = activation(pre, cfg_.act_fn);
    fire(H, N.mlp_post, post, layer, pos0);
    at::Tensor mlp_out = conv1d(post, B.proj_w, B.proj_b);
    fire(H, N.mlp_out, mlp_out, layer, pos0);
    at::Tensor out = mid + mlp_out;
    fire(H, N.resid_post, out, layer, pos0);
    return out;
  }

  at::Tensor wte_, wpe_, lnf_w_, lnf_b_, lm_head_;
  std::vector<Gpt2Block> blocks_;
  std::vector<BlockHookNames> names_;
  std::vector<double> attn_scale_;
};

}  // namespace

std::unique_ptr<HookedModel> build_gpt2(const ModelConfig& cfg, const io::Checkpoint& ckpt, const LoadOptions& opts) {
  return std::make_unique<Gpt2>(cfg, ckpt, opts);
}

}  // namespace mechscope::models
