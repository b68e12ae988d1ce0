// GPT-NeoX (Black et al. 2022) and Pythia as Hugging Face's GPTNeoXForCausalLM computes them: fused
// query_key_value laid out per head ([h, 3, dh] along the output axis), rotary on the first
// rotary_pct of each head, parallel residual (attention and MLP both read the block input) or the
// sequential one, untied `embed_out`.
#include <cmath>
#include <tuple>

#include "core/error.h"
#include "models/common.h"
#include "models/registry.h"
#include "models/rotary.h"

namespace mechscope::models {

// GPTNeoXConfig's default when the file names no rotary fraction.
constexpr double kNeoxRotaryPct = 0.25;

void parse_gpt_neox(ModelConfig& cfg) {
  set_mha_heads(cfg, "hidden_size", "num_attention_heads");
  cfg.n_layers = cfg_int(cfg, "num_hidden_layers");
  cfg.d_mlp = cfg_int(cfg, "intermediate_size", 4 * cfg.d_model);
  cfg.n_ctx = cfg_int(cfg, "max_position_embeddings", 2048);
  cfg.d_vocab = cfg_int(cfg, "vocab_size");
  cfg.act_fn = cfg_string(cfg, "hidden_act", "gelu");
  cfg.eps = cfg_double(cfg, "layer_norm_eps", 1e-5);
  cfg.tied_embeddings = cfg_bool(cfg, "tie_word_embeddings", false);
  cfg.rotary = true;
  check_activation(cfg.act_fn);
  parse_rope(cfg, cfg.d_head, kNeoxRotaryPct);
}

namespace {

struct NeoxBlock {
  at::Tensor ln1_w, ln1_b, qkv_w, qkv_b, dense_w, dense_b;
  at::Tensor ln2_w, ln2_b, fc_w, fc_b, proj_w, proj_b;
};

class GptNeox final : public HookedModel {
 public:
  GptNeox(const ModelConfig& cfg, const io::Checkpoint& ckpt, const LoadOptions& opts) {
    cfg_ = cfg;
    dtype_ = opts.dtype;
    parallel_ = cfg_bool(cfg, "use_parallel_residual", true);
    // GPTNeoXForCausalLM saves "gpt_neox.layers.0…"; a bare GPTNeoXModel saves "layers.0…".
    std::string prefix = detect_prefix(ckpt, {"gpt_neox.", ""}, "embed_in.weight", "GPT-NeoX");
    WeightLoader w(ckpt, prefix, dtype_);
    int64_t d = cfg.d_model, m = cfg.d_mlp;
    bool attn_bias = cfg_bool(cfg, "attention_bias", true);
    auto bias = [&](const std::string& key, int64_t n) { return attn_bias ? w.get(key, {n}) : at::Tensor(); };
    embed_ = w.get("embed_in.weight", {cfg.d_vocab, d});
    for (int l = 0; l < cfg.n_layers; ++l) {
      std::string p = "layers." + std::to_string(l) + ".";
      blocks_.push_back({w.get(p + "input_layernorm.weight", {d}), w.get(p + "input_layernorm.bias", {d}),
                         w.get(p + "attention.query_key_value.weight", {3 * d, d}),
                         bias(p + "attention.query_key_value.bias", 3 * d),
                         w.get(p + "attention.dense.weight", {d, d}), bias(p + "attention.dense.bias", d),
                         w.get(p + "post_attention_layernorm.weight", {d}), w.get(p + "post_attention_layernorm.bias", {d}),
                         w.get(p + "mlp.dense_h_to_4h.weight", {m, d}), w.get(p + "mlp.dense_h_to_4h.bias", {m}),
                         w.get(p + "mlp.dense_4h_to_h.weight", {d, m}), w.get(p + "mlp.dense_4h_to_h.bias", {d})});
      names_.emplace_back(l);
    }
    lnf_w_ = w.get("final_layer_norm.weight", {d});
    lnf_b_ = w.get("final_layer_norm.bias", {d});
    WeightLoader root(ckpt, "", dtype_);
    unembed_ = cfg.tied_embeddings ? embed_ : root.get("embed_out.weight", {cfg.d_vocab, d});
    inv_freq_ = rope_inv_freq(parse_rope(cfg, cfg.d_head, kNeoxRotaryPct));
  }

  std::vector<std::string> hook_names() const override {
    return standard_hook_names(cfg_.n_layers, true, false, false, parallel_);
  }

  at::Tensor embed(const at::Tensor& ids, RunContext& ctx) const override {
    int64_t past = ctx.cache ? ctx.cache->length() : 0;
    at::Tensor tok = at::embedding(embed_, ids);  // [b, p, d]
    fire(ctx.hooks, "hook_embed", tok, -1, past);
    return tok;
  }

  at::Tensor block(int layer, const at::Tensor& resid_in, RunContext& ctx) const override {
    const BlockHookNames& N = names_[layer];
    const hooks::HookSet* H = ctx.hooks;
    int64_t b = resid_in.size(0), n = resid_in.size(1), past = cache_past(ctx, layer);
    at::Tensor resid = resid_in;
    auto [q, k, v] = attention_inputs(layer, resid, H, past);  // [b, n, h, dh]
    RopeAngles rope = rope_angles(inv_freq_, position_ids(ctx, b, n, past), q.scalar_type());
    q = apply_rope(q, rope);
    k = apply_rope(k, rope);
    fire(H, N.rot_q, q, layer, past);
    fire(H, N.rot_k, k, layer, past);
    cache_kv(ctx, layer, cfg_.n_layers, k, v);
    at::Tensor bias = attention_bias(ctx, b, n, past, true, 0, q.scalar_type());
    at::Tensor z = attention(q, k, v, bias, 1.0 / std::sqrt((double)cfg_.d_head), H, N, layer, past);
    return after_attention(layer, resid, z, H, past);
  }

  // rows: [R, d] -> [R, d] (or [K, d] with P.keep); block() on packed runs (PackedRuns).
  at::Tensor block_packed(int layer, const at::Tensor& rows_in, const PackedRuns& P) const override {
    const BlockHookNames& N = names_[layer];
    at::Tensor resid = rows_in;
    auto [q, k, v] = attention_inputs(layer, resid, P.hooks, 0);  // [R, h, dh]
    apply_rope_rows(q, k, inv_freq_, P.positions);
    fire(P.hooks, N.rot_q, q, layer, 0);
    fire(P.hooks, N.rot_k, k, layer, 0);
    at::Tensor z = packed_attention(q, k, v, P, 1.0 / std::sqrt((double)cfg_.d_head), 0, N, layer);
    if (P.keep.defined()) resid = resid.index_select(0, P.keep);
    return after_attention(layer, resid, z, P.hooks, 0);
  }

  at::Tensor final_norm(const at::Tensor& resid, RunContext& ctx) const override {
    int64_t past = ctx.cache ? ctx.cache->length() - resid.size(1) : 0;
    return layer_norm(resid, lnf_w_, lnf_b_, cfg_.eps, ctx.hooks, "ln_final.hook_scale", "ln_final.hook_normalized",
                      -1, past < 0 ? 0 : past);
  }

  at::Tensor unembed(const at::Tensor& x, const at::Tensor& columns) const override {
    at::Tensor w = columns.defined() ? unembed_.index_select(0, columns) : unembed_;
    return at::matmul(x, w.t());
  }

  std::vector<std::pair<std::string, at::Tensor>> parameters() const override {
    std::vector<std::pair<std::string, at::Tensor>> out{{"gpt_neox.embed_in.weight", embed_}};
    for (size_t l = 0; l < blocks_.size(); ++l) {
      const NeoxBlock& B = blocks_[l];
      std::string p = "gpt_neox.layers." + std::to_string(l) + ".";
      for (auto& [k, t] : std::vector<std::pair<std::string, at::Tensor>>{
               {"input_layernorm.weight", B.ln1_w}, {"input_layernorm.bias", B.ln1_b},
               {"attention.query_key_value.weight", B.qkv_w}, {"attention.query_key_value.bias", B.qkv_b},
               {"attention.dense.weight", B.dense_w}, {"attention.dense.bias", B.dense_b},
               {"post_attention_layernorm.weight", B.ln2_w}, {"post_attention_layernorm.bias", B.ln2_b},
               {"mlp.dense_h_to_4h.weight", B.fc_w}, {"mlp.dense_h_to_4h.bias", B.fc_b},
               {"mlp.dense_4h_to_h.weight", B.proj_w}, {"mlp.dense_4h_to_h.bias", B.proj_b}})
        if (t.defined()) out.emplace_back(p + k, t);
    }
    out.emplace_back("gpt_neox.final_layer_norm.weight", lnf_w_);
    out.emplace_back("gpt_neox.final_layer_norm.bias", lnf_b_);
    if (!cfg_.tied_embeddings) out.emplace_back("embed_out.weight", unembed_);
    return out;
  }

 private:
  // The block up to rotary, for resid [..., d] (hook_resid_pre may replace it): input_layernorm and
  // query_key_value (per head: q | k | v) -> q, k, v [..., h, dh], hooks fired.
  std::tuple<at::Tensor, at::Tensor, at::Tensor> attention_inputs(int layer, at::Tensor& resid, const hooks::HookSet* H,
                                                                  int64_t pos0) const {
    const NeoxBlock& B = blocks_[layer];
    const BlockHookNames& N = names_[layer];
    int64_t dh = cfg_.d_head;
    fire(H, N.resid_pre, resid, layer, pos0);
    at::Tensor x = layer_norm(resid, B.ln1_w, B.ln1_b, cfg_.eps, H, N.ln1_scale, N.ln1_normalized, layer, pos0);
    at::Tensor qkv = split_heads(at::linear(x, B.qkv_w, B.qkv_b), cfg_.n_heads);  // [..., h, 3 * dh]
    at::Tensor q = qkv.narrow(-1, 0, dh), k = qkv.narrow(-1, dh, dh), v = qkv.narrow(-1, 2 * dh, dh);
    fire(H, N.q, q, layer, pos0);
    fire(H, N.k, k, layer, pos0);
    fire(H, N.v, v, layer, pos0);
    return {q, k, v};
  }

  // The block after attention, for z [..., h, dh] and resid [..., d]: dense, then the MLP. Parallel
  // residual (GPT-J style): the MLP reads the block input, not resid_mid, which then does not exist.
  at::Tensor after_attention(int layer, const at::Tensor& resid, const at::Tensor& z, const hooks::HookSet* H,
                             int64_t pos0) const {
    const NeoxBlock& B = blocks_[layer];
    const BlockHookNames& N = names_[layer];
    at::Tensor attn_out = attention_out(z, B.dense_w, B.dense_b, H, N, layer, pos0);
    fire(H, N.attn_out, attn_out, layer, pos0);
    at::Tensor mlp_in = resid;
    if (!parallel_) {
      mlp_in = resid + attn_out;
      fire(H, N.resid_mid, mlp_in, layer, pos0);
    }
    at::Tensor x = layer_norm(mlp_in, B.ln2_w, B.ln2_b, cfg_.eps, H, N.ln2_scale, N.ln2_normalized, layer, pos0);
    at::Tensor pre = at::linear(x, B.fc_w, B.fc_b);  // [..., d_mlp]
    fire(H, N.mlp_pre, pre, layer, pos0);
    at::Tensor post = activation(pre, cfg_.act_fn);
    fire(H, N.mlp_post, post, layer, pos0);
    at::Tensor mlp_out = at::linear(post, B.proj_w, B.proj_b);
    fire(H, N.mlp_out, mlp_out, layer, pos0);
    at::Tensor out = parallel_ ? resid + attn_out + mlp_out : mlp_in + mlp_out;
    fire(H, N.resid_post, out, layer, pos0);
    return out;
  }

  bool parallel_ = true;
  at::Tensor embed_, lnf_w_, lnf_b_, unembed_, inv_freq_;
  std::vector<NeoxBlock> blocks_;
  std::vector<BlockHookNames> names_;
};

}  // namespace

std::unique_ptr<HookedModel> build_gpt_neox(const ModelConfig& cfg, const io::Checkpoint& ckpt, const LoadOptions& opts) {
  return std::make_unique<GptNeox>(cfg, ckpt, opts);
}

}  // namespace mechscope::models
