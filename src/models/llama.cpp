// Llama (Touvron et al. 2023) as Hugging Face's LlamaForCausalLM computes it: RMSNorm, rotary
// position embeddings (default, linear or llama3 scaling), SwiGLU MLP, grouped-query attention, tied
// or untied unembedding. Mistral (sliding-window layers) and Qwen2 (biases on q/k/v) are the same
// code with other config keys.
#include <cmath>
#include <tuple>

#include "core/error.h"
#include "models/common.h"
#include "models/registry.h"
#include "models/rotary.h"

namespace mechscope::models {

void parse_llama(ModelConfig& cfg) {
  cfg.d_model = cfg_int(cfg, "hidden_size");
  cfg.n_layers = cfg_int(cfg, "num_hidden_layers");
  cfg.n_heads = cfg_int(cfg, "num_attention_heads");
  cfg.n_kv_heads = cfg_int(cfg, "num_key_value_heads", cfg.n_heads);
  if (cfg.n_heads <= 0 || cfg.n_kv_heads <= 0 || cfg.n_heads % cfg.n_kv_heads != 0)
    fail("config.json (", cfg.model_type, "): num_attention_heads ", cfg.n_heads,
         " must be a positive multiple of num_key_value_heads ", cfg.n_kv_heads);
  // head_dim may differ from hidden_size / heads (e.g. Mistral Nemo, Qwen3).
  cfg.d_head = cfg_int(cfg, "head_dim", cfg.d_model / cfg.n_heads);
  if (cfg.d_head <= 0) fail("config.json (", cfg.model_type, "): head_dim must be positive, got ", cfg.d_head);
  cfg.d_mlp = cfg_int(cfg, "intermediate_size");
  cfg.n_ctx = cfg_int(cfg, "max_position_embeddings", 2048);
  cfg.d_vocab = cfg_int(cfg, "vocab_size");
  cfg.act_fn = cfg_string(cfg, "hidden_act", "silu");
  cfg.eps = cfg_double(cfg, "rms_norm_eps", 1e-6);
  cfg.tied_embeddings = cfg_bool(cfg, "tie_word_embeddings", false);
  cfg.gated_mlp = true;
  cfg.rotary = true;
  check_activation(cfg.act_fn);
  parse_rope(cfg, cfg.d_head);  // rejects a malformed or unsupported rope configuration at load time
}

namespace {

struct LlamaBlock {
  at::Tensor ln1_w, q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b;
  at::Tensor ln2_w, gate_w, gate_b, up_w, up_b, down_w, down_b;
};

// Sliding-window size per layer (0 = full attention): `layer_types` when given (transformers >= 4.54),
// else Mistral's `sliding_window` on every layer, or Qwen2's on layers from `max_window_layers` on.
std::vector<int64_t> layer_windows(const ModelConfig& cfg) {
  std::vector<int64_t> out(cfg.n_layers, 0);
  int64_t window = cfg_int(cfg, "sliding_window", 0);
  auto types = cfg.raw.find("layer_types");
  if (types != cfg.raw.end() && types->is_array()) {
    if ((int64_t)types->size() != cfg.n_layers)
      fail("config.json (", cfg.model_type, "): layer_types has ", types->size(), " entries for ", cfg.n_layers, " layers");
    for (int64_t l = 0; l < cfg.n_layers; ++l) {
      const auto& t = (*types)[l];
      if (t == "sliding_attention") {
        if (window <= 0) fail("config.json (", cfg.model_type, "): layer ", l, " is sliding_attention but sliding_window is not set");
        out[l] = window;
      } else if (t != "full_attention") {
        fail("config.json (", cfg.model_type, "): layer_types[", l, "] = ", t.dump(),
             " (expected \"full_attention\" or \"sliding_attention\")");
      }
    }
    return out;
  }
  if (cfg.model_type == "mistral") std::fill(out.begin(), out.end(), window);
  if (cfg.model_type == "qwen2" && cfg_bool(cfg, "use_sliding_window", false))
    for (int64_t l = cfg_int(cfg, "max_window_layers", 0); l < cfg.n_layers; ++l) out[l] = window;
  return out;
}

class Llama final : public HookedModel {
 public:
  Llama(const ModelConfig& cfg, const io::Checkpoint& ckpt, const LoadOptions& opts) {
    cfg_ = cfg;
    dtype_ = opts.dtype;
    // LlamaForCausalLM saves "model.layers.0…"; a bare LlamaModel saves "layers.0…".
    std::string prefix = detect_prefix(ckpt, {"model.", ""}, "embed_tokens.weight", cfg.model_type);
    WeightLoader w(ckpt, prefix, dtype_);
    int64_t d = cfg.d_model, m = cfg.d_mlp, qd = cfg.n_heads * cfg.d_head, kvd = cfg.n_kv_heads * cfg.d_head;
    // Qwen2 always has q/k/v biases and no o_proj bias; Llama has all four when attention_bias is set.
    bool qkv_bias = cfg.model_type == "qwen2" || cfg_bool(cfg, "attention_bias", false);
    bool o_bias = cfg.model_type != "qwen2" && cfg_bool(cfg, "attention_bias", false);
    bool mlp_bias = cfg_bool(cfg, "mlp_bias", false);
    auto opt = [&](bool on, const std::string& key, std::vector<int64_t> shape) {
      return on ? w.get(key, std::move(shape)) : at::Tensor();
    };
    embed_ = w.get("embed_tokens.weight", {cfg.d_vocab, d});
    for (int l = 0; l < cfg.n_layers; ++l) {
      std::string p = "layers." + std::to_string(l) + ".";
      std::string a = p + "self_attn.", f = p + "mlp.";
      blocks_.push_back({w.get(p + "input_layernorm.weight", {d}),
                         w.get(a + "q_proj.weight", {qd, d}), opt(qkv_bias, a + "q_proj.bias", {qd}),
                         w.get(a + "k_proj.weight", {kvd, d}), opt(qkv_bias, a + "k_proj.bias", {kvd}),
                         w.get(a + "v_proj.weight", {kvd, d}), opt(qkv_bias, a + "v_proj.bias", {kvd}),
                         w.get(a + "o_proj.weight", {d, qd}), opt(o_bias, a + "o_proj.bias", {d}),
                         w.get(p + "post_attention_layernorm.weight", {d}),
                         w.get(f + "gate_proj.weight", {m, d}), opt(mlp_bias, f + "gate_proj.bias", {m}),
                         w.get(f + "up_proj.weight", {m, d}), opt(mlp_bias, f + "up_proj.bias", {m}),
                         w.get(f + "down_proj.weight", {d, m}), opt(mlp_bias, f + "down_proj.bias", {d})});
      names_.emplace_back(l);
    }
    norm_w_ = w.get("norm.weight", {d});
    WeightLoader root(ckpt, "", dtype_);
    lm_head_ = cfg.tied_embeddings ? embed_ : root.get("lm_head.weight", {cfg.d_vocab, d});
    inv_freq_ = rope_inv_freq(parse_rope(cfg, cfg.d_head));
    window_ = layer_windows(cfg);
  }

  std::vector<std::string> hook_names() const override {
    return standard_hook_names(cfg_.n_layers, true, true, false);
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
    auto [q, k, v] = attention_inputs(layer, resid, H, past);  // q [b, n, h, dh], k, v [b, n, h_kv, dh]
    // Rotated by absolute position.
    RopeAngles rope = rope_angles(inv_freq_, position_ids(ctx, b, n, past), q.scalar_type());
    q = apply_rope(q, rope);
    k = apply_rope(k, rope);
    fire(H, N.rot_q, q, layer, past);
    fire(H, N.rot_k, k, layer, past);
    cache_kv(ctx, layer, cfg_.n_layers, k, v);
    at::Tensor bias = attention_bias(ctx, b, n, past, true, window_[layer], q.scalar_type());
    at::Tensor z = attention(q, k, v, bias, 1.0 / std::sqrt((double)cfg_.d_head), H, N, layer, past);  // [b, n, h, dh]
    return after_attention(layer, resid, z, H, past);
  }

  // rows: [R, d] -> [R, d] (or [K, d] with P.keep); block() on packed runs (PackedRuns).
  at::Tensor block_packed(int layer, const at::Tensor& rows_in, const PackedRuns& P) const override {
    const BlockHookNames& N = names_[layer];
    at::Tensor resid = rows_in;
    auto [q, k, v] = attention_inputs(layer, resid, P.hooks, 0);  // [R, h or h_kv, dh]
    apply_rope_rows(q, k, inv_freq_, P.positions);
    fire(P.hooks, N.rot_q, q, layer, 0);
    fire(P.hooks, N.rot_k, k, layer, 0);
    at::Tensor z = packed_attention(q, k, v, P, 1.0 / std::sqrt((double)cfg_.d_head), window_[layer], N, layer);
    if (P.keep.defined()) resid = resid.index_select(0, P.keep);
    return after_attention(layer, resid, z, P.hooks, 0);
  }

  at::Tensor final_norm(const at::Tensor& resid, RunContext& ctx) const override {
    int64_t past = ctx.cache ? ctx.cache->length() - resid.size(1) : 0;
    return rms_norm(resid, norm_w_, cfg_.eps, ctx.hooks, "ln_final.hook_scale", "ln_final.hook_normalized", -1,
                    past < 0 ? 0 : past);
  }

  at::Tensor unembed(const at::Tensor& x, const at::Tensor& columns) const override {
    at::Tensor w = columns.defined() ? lm_head_.index_select(0, columns) : lm_head_;
    return at::matmul(x, w.t());
  }

  std::vector<std::pair<std::string, at::Tensor>> parameters() const override {
    std::vector<std::pair<std::string, at::Tensor>> out{{"model.embed_tokens.weight", embed_}};
    for (size_t l = 0; l < blocks_.size(); ++l) {
      const LlamaBlock& B = blocks_[l];
      std::string p = "model.layers." + std::to_string(l) + ".";
      for (auto& [k, t] : std::vector<std::pair<std::string, at::Tensor>>{
               {"input_layernorm.weight", B.ln1_w}, {"self_attn.q_proj.weight", B.q_w}, {"self_attn.q_proj.bias", B.q_b},
               {"self_attn.k_proj.weight", B.k_w}, {"self_attn.k_proj.bias", B.k_b}, {"self_attn.v_proj.weight", B.v_w},
               {"self_attn.v_proj.bias", B.v_b}, {"self_attn.o_proj.weight", B.o_w}, {"self_attn.o_proj.bias", B.o_b},
               {"post_attention_layernorm.weight", B.ln2_w}, {"mlp.gate_proj.weight", B.gate_w},
               {"mlp.gate_proj.bias", B.gate_b}, {"mlp.up_proj.weight", B.up_w}, {"mlp.up_proj.bias", B.up_b},
               {"mlp.down_proj.weight", B.down_w}, {"mlp.down_proj.bias", B.down_b}})
        if (t.defined()) out.emplace_back(p + k, t);
    }
    out.emplace_back("model.norm.weight", norm_w_);
    if (!cfg_.tied_embeddings) out.emplace_back("lm_head.weight", lm_head_);
    return out;
  }

 private:
  // The block up to rotary, for resid [..., d] (hook_resid_pre may replace it): the RMSNorm and the
  // projections -> q [..., h, dh], k, v [..., h_kv, dh], hooks fired.
  std::tuple<at::Tensor, at::Tensor, at::Tensor> attention_inputs(int layer, at::Tensor& resid, const hooks::HookSet* H,
                                                                  int64_t pos0) const {
    const LlamaBlock& B = blocks_[layer];
    const BlockHookNames& N = names_[layer];
    fire(H, N.resid_pre, resid, layer, pos0);
    at::Tensor x = rms_norm(resid, B.ln1_w, cfg_.eps, H, N.ln1_scale, N.ln1_normalized, layer, pos0);
    at::Tensor q = split_heads(at::linear(x, B.q_w, B.q_b), cfg_.n_heads);
    at::Tensor k = split_heads(at::linear(x, B.k_w, B.k_b), cfg_.n_kv_heads);
    at::Tensor v = split_heads(at::linear(x, B.v_w, B.v_b), cfg_.n_kv_heads);
    fire(H, N.q, q, layer, pos0);
    fire(H, N.k, k, layer, pos0);
    fire(H, N.v, v, layer, pos0);
    return {q, k, v};
  }

  // The block after attention, for z [..., h, dh] and resid [..., d]: o_proj, the residual add and
  // the SwiGLU MLP (Shazeer 2020): down(act(gate(x)) * up(x)).
  at::Tensor after_attention(int layer, const at::Tensor& resid, const at::Tensor& z, const hooks::HookSet* H,
                             int64_t pos0) const {
    const LlamaBlock& B = blocks_[layer];
    const BlockHookNames& N = names_[layer];
    at::Tensor attn_out = attention_out(z, B.o_w, B.o_b, H, N, layer, pos0);
    fire(H, N.attn_out, attn_out, layer, pos0);
    at::Tensor mid = resid + attn_out;
    fire(H, N.resid_mid, mid, layer, pos0);
    at::Tensor x = rms_norm(mid, B.ln2_w, cfg_.eps, H, N.ln2_scale, N.ln2_normalized, layer, pos0);
    at::Tensor pre = at::linear(x, B.gate_w, B.gate_b);
    fire(H, N.mlp_pre, pre, layer, pos0);
    at::Tensor pre_linear = at::linear(x, B.up_w, B.up_b);
    fire(H, N.mlp_pre_linear, pre_linear, layer, pos0);
    at::Tensor post = activation(pre, cfg_.act_fn) * pre_linear;
    fire(H, N.mlp_post, post, layer, pos0);
    at::Tensor mlp_out = at::linear(post, B.down_w, B.down_b);
    fire(H, N.mlp_out, mlp_out, layer, pos0);
    at::Tensor out = mid + mlp_out;
    fire(H, N.resid_post, out, layer, pos0);
    return out;
  }

  at::Tensor embed_, norm_w_, lm_head_, inv_freq_;
  std::vector<LlamaBlock> blocks_;
  std::vector<BlockHookNames> names_;
  std::vector<int64_t> window_;
};

}  // namespace

std::unique_ptr<HookedModel> build_llama(const ModelConfig& cfg, const io::Checkpoint& ckpt, const LoadOptions& opts) {
  return std::make_unique<Llama>(cfg, ckpt, opts);
}

}  // namespace mechscope::models
