// Gemma (Gemma Team 2024) and Gemma-2 (Gemma Team 2024b) as Hugging Face's GemmaForCausalLM and
// Gemma2ForCausalLM compute them: embeddings scaled by sqrt(d_model) in the embedding dtype, RMSNorm
// with (1 + w) applied in float32 before the cast, GeGLU MLP, rotary, grouped-query attention, tied
// unembedding. Gemma-2 adds a norm after attention and after the MLP (TransformerLens's ln1_post /
// ln2_post, use_normalization_before_and_after), scores scaled by query_pre_attn_scalar^-0.5,
// tanh soft-capping of the attention scores and of the final logits, and sliding-window attention on
// the layers layer_types names (every even layer by default).
#include <algorithm>
#include <cmath>
#include <tuple>

#include "core/error.h"
#include "models/common.h"
#include "models/registry.h"
#include "models/rotary.h"

namespace mechscope::models {

namespace {

// What the Gemma-2 extras read from config.json (for Gemma-1: no capping, no window, 1/sqrt(d_head)).
struct GemmaSettings {
  bool v2 = false;
  double scale = 1.0;                           // on q.k
  double attn_softcap = 0.0, final_softcap = 0.0;  // 0 = none
  std::vector<int64_t> window;                  // per layer, 0 = full attention
};

// A positive finite number under `key`; `def` when the key is absent. With `nullable`, null means
// "off" and gives 0 (transformers' None for the soft-capping values).
double positive_number(const ModelConfig& cfg, const char* key, double def, bool nullable) {
  auto it = cfg.raw.find(key);
  if (it == cfg.raw.end()) return def;
  if (it->is_null()) {
    if (nullable) return 0.0;
    fail("config.json (", cfg.model_type, "): '", key, "' must be a positive number, got null");
  }
  double v = it->is_number() ? it->get<double>() : 0.0;
  if (!it->is_number() || !(v > 0) || !std::isfinite(v))
    fail("config.json (", cfg.model_type, "): '", key, "' must be a positive finite number", nullable ? " or null" : "",
         ", got ", it->dump());
  return v;
}

// Sliding-window size per layer: layer_types when given, else Gemma2Config's default (sliding on even
// layers: "sliding_attention" if (i + 1) % 2 else "full_attention"), sliding_window 4096 when absent.
std::vector<int64_t> gemma2_windows(const ModelConfig& cfg) {
  std::vector<bool> sliding(cfg.n_layers);
  auto types = cfg.raw.find("layer_types");
  if (types != cfg.raw.end() && !types->is_null()) {
    if (!types->is_array() || (int64_t)types->size() != cfg.n_layers)
      fail("config.json (", cfg.model_type, "): 'layer_types' must list one entry per layer (", cfg.n_layers, "), got ",
           types->dump());
    for (int64_t l = 0; l < cfg.n_layers; ++l) {
      const auto& t = (*types)[l];
      if (t != "sliding_attention" && t != "full_attention")
        fail("config.json (", cfg.model_type, "): 'layer_types'[", l, "] = ", t.dump(),
             " (expected \"full_attention\" or \"sliding_attention\")");
      sliding[l] = t == "sliding_attention";
    }
  } else {
    for (int64_t l = 0; l < cfg.n_layers; ++l) sliding[l] = (l + 1) % 2 != 0;
  }
  std::vector<int64_t> out(cfg.n_layers, 0);
  bool any = std::find(sliding.begin(), sliding.end(), true) != sliding.end();
  if (!any) return out;
  auto sw = cfg.raw.find("sliding_window");
  if (sw != cfg.raw.end() && sw->is_null())
    fail("config.json (", cfg.model_type, "): 'sliding_window' is null but layer_types has sliding_attention layers");
  int64_t window = cfg_int(cfg, "sliding_window", 4096);
  if (window <= 0) fail("config.json (", cfg.model_type, "): 'sliding_window' must be a positive integer, got ", window);
  for (int64_t l = 0; l < cfg.n_layers; ++l) out[l] = sliding[l] ? window : 0;
  return out;
}

GemmaSettings gemma_settings(const ModelConfig& cfg) {
  GemmaSettings s;
  s.v2 = cfg.model_type == "gemma2";
  if (!s.v2) {
    s.scale = 1.0 / std::sqrt((double)cfg.d_head);
    s.window.assign(cfg.n_layers, 0);
    return s;
  }
  // Gemma2Config's defaults (those of gemma-2-2b/9b) when a key is absent.
  s.scale = 1.0 / std::sqrt(positive_number(cfg, "query_pre_attn_scalar", 256, false));
  s.attn_softcap = positive_number(cfg, "attn_logit_softcapping", 50.0, true);
  s.final_softcap = positive_number(cfg, "final_logit_softcapping", 30.0, true);
  s.window = gemma2_windows(cfg);
  return s;
}

}  // namespace

void parse_gemma(ModelConfig& cfg) {
  cfg.d_model = cfg_int(cfg, "hidden_size");
  cfg.n_layers = cfg_int(cfg, "num_hidden_layers");
  cfg.n_heads = cfg_int(cfg, "num_attention_heads");
  cfg.n_kv_heads = cfg_int(cfg, "num_key_value_heads", cfg.n_heads);
  if (cfg.n_heads <= 0 || cfg.n_kv_heads <= 0 || cfg.n_heads % cfg.n_kv_heads != 0)
    fail("config.json (", cfg.model_type, "): num_attention_heads ", cfg.n_heads,
         " must be a positive multiple of num_key_value_heads ", cfg.n_kv_heads);
  // GemmaConfig / Gemma2Config default to 256 whatever hidden_size / heads is (gemma-7b: 3072 / 16 heads
  // of 256).
  cfg.d_head = cfg_int(cfg, "head_dim", 256);
  if (cfg.d_head <= 0) fail("config.json (", cfg.model_type, "): 'head_dim' must be positive, got ", cfg.d_head);
  cfg.d_mlp = cfg_int(cfg, "intermediate_size");
  if (cfg.d_mlp <= 0) fail("config.json (", cfg.model_type, "): 'intermediate_size' must be positive, got ", cfg.d_mlp);
  cfg.n_ctx = cfg_int(cfg, "max_position_embeddings", 8192);
  cfg.d_vocab = cfg_int(cfg, "vocab_size");
  // Gemma2MLP reads hidden_activation; GemmaMLP reads hidden_act (transformers >= 4.50; older
  // releases preferred hidden_activation there too).
  cfg.act_fn = cfg.model_type == "gemma2" ? cfg_string(cfg, "hidden_activation", "gelu_pytorch_tanh")
                                          : cfg_string(cfg, "hidden_act", "gelu_pytorch_tanh");
  cfg.eps = cfg_double(cfg, "rms_norm_eps", 1e-6);
  if (!(cfg.eps >= 0) || !std::isfinite(cfg.eps))
    fail("config.json (", cfg.model_type, "): 'rms_norm_eps' must be a finite number >= 0, got ", cfg.eps);
  cfg.tied_embeddings = cfg_bool(cfg, "tie_word_embeddings", true);
  cfg.gated_mlp = true;
  cfg.rotary = true;
  check_activation(cfg.act_fn);
  // EmbeddingGemma-style checkpoints attend both ways; that is another model than the causal LM.
  if (cfg_bool(cfg, "use_bidirectional_attention", false))
    fail("config.json (", cfg.model_type, "): 'use_bidirectional_attention' true (a bidirectional encoder) is not supported");
  parse_rope(cfg, cfg.d_head);
  gemma_settings(cfg);  // rejects malformed Gemma-2 values at load time
}

namespace {

// A Gemma RMSNorm's weight as the checkpoint has it and 1 + w in the norm's compute dtype.
struct GemmaNorm {
  at::Tensor w, w1;
};

struct GemmaBlock {
  GemmaNorm ln1, ln1_post, ln2, ln2_post;  // the posts only in Gemma-2
  at::Tensor q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b;
  at::Tensor gate_w, up_w, down_w;
};

// The Gemma-2 hook points TransformerLens adds (ln1_post / ln2_post), one set per block.
struct PostNormNames {
  std::string ln1_post_scale, ln1_post_normalized, ln2_post_scale, ln2_post_normalized;
  explicit PostNormNames(int layer) {
    std::string b = "blocks." + std::to_string(layer) + ".";
    ln1_post_scale = b + "ln1_post.hook_scale";
    ln1_post_normalized = b + "ln1_post.hook_normalized";
    ln2_post_scale = b + "ln2_post.hook_scale";
    ln2_post_normalized = b + "ln2_post.hook_normalized";
  }
};

// Gemma's RMSNorm (transformers' GemmaRMSNorm): normalised in float32 (float64 stays float64), times
// (1 + w) still in float32, then cast back; Llama casts before the weight, which differs in bfloat16.
// Hooks as rms_norm(): hook_scale [..., 1] and hook_normalized before the weight. x: [..., d].
at::Tensor gemma_norm(const at::Tensor& x, const GemmaNorm& n, double eps, const hooks::HookSet* hooks,
                      const std::string& scale_name, const std::string& normalized_name, int layer, int64_t pos0) {
  at::ScalarType in = x.scalar_type(), nd = n.w1.scalar_type();
  at::Tensor xf = x.to(nd);
  at::Tensor ms = xf.pow(2).mean(-1, true);
  if (!hooks || (!hooks->wants(scale_name) && !hooks->wants(normalized_name)))
    return (xf * at::rsqrt(ms + eps) * n.w1).to(in);
  at::Tensor scale = (ms + eps).sqrt();
  hooks->fire(scale_name, scale, layer, pos0);
  at::Tensor normalized = (xf / scale).to(in);
  hooks->fire(normalized_name, normalized, layer, pos0);
  return (normalized.to(nd) * n.w1).to(in);
}

class Gemma final : public HookedModel {
 public:
  Gemma(const ModelConfig& cfg, const io::Checkpoint& ckpt, const LoadOptions& opts) {
    cfg_ = cfg;
    dtype_ = opts.dtype;
    S_ = gemma_settings(cfg);
    // Gemma*ForCausalLM saves "model.layers.0…"; a bare Gemma*Model saves "layers.0…".
    std::string prefix = detect_prefix(ckpt, {"model.", ""}, "embed_tokens.weight", cfg.model_type);
    WeightLoader w(ckpt, prefix, dtype_);
    int64_t d = cfg.d_model, m = cfg.d_mlp, qd = cfg.n_heads * cfg.d_head, kvd = cfg.n_kv_heads * cfg.d_head;
    bool bias = cfg_bool(cfg, "attention_bias", false);
    at::ScalarType norm_dtype = dtype_ == at::kDouble ? at::kDouble : at::kFloat;
    auto norm = [&](const std::string& key) {
      at::Tensor t = w.get(key, {d});
      return GemmaNorm{t, 1.0 + t.to(norm_dtype)};
    };
    auto opt = [&](const std::string& key, int64_t n) { return bias ? w.get(key, {n}) : at::Tensor(); };
    embed_ = w.get("embed_tokens.weight", {cfg.d_vocab, d});
    for (int l = 0; l < cfg.n_layers; ++l) {
      std::string p = "layers." + std::to_string(l) + ".";
      std::string a = p + "self_attn.", f = p + "mlp.";
      GemmaBlock B;
      B.ln1 = norm(p + "input_layernorm.weight");
      if (S_.v2) {
        // Gemma-2's post_attention_layernorm follows attention; Gemma-1's is the MLP's pre-norm.
        B.ln1_post = norm(p + "post_attention_layernorm.weight");
        B.ln2 = norm(p + "pre_feedforward_layernorm.weight");
        B.ln2_post = norm(p + "post_feedforward_layernorm.weight");
      } else {
        B.ln2 = norm(p + "post_attention_layernorm.weight");
      }
      B.q_w = w.get(a + "q_proj.weight", {qd, d}), B.q_b = opt(a + "q_proj.bias", qd);
      B.k_w = w.get(a + "k_proj.weight", {kvd, d}), B.k_b = opt(a + "k_proj.bias", kvd);
      B.v_w = w.get(a + "v_proj.weight", {kvd, d}), B.v_b = opt(a + "v_proj.bias", kvd);
      B.o_w = w.get(a + "o_proj.weight", {d, qd}), B.o_b = opt(a + "o_proj.bias", d);
      B.gate_w = w.get(f + "gate_proj.weight", {m, d});
      B.up_w = w.get(f + "up_proj.weight", {m, d});
      B.down_w = w.get(f + "down_proj.weight", {d, m});
      blocks_.push_back(std::move(B));
      names_.emplace_back(l);
      post_names_.emplace_back(l);
    }
    final_norm_ = norm("norm.weight");
    WeightLoader root(ckpt, "", dtype_);
    lm_head_ = cfg.tied_embeddings ? embed_ : root.get("lm_head.weight", {cfg.d_vocab, d});
    inv_freq_ = rope_inv_freq(parse_rope(cfg, cfg.d_head));
    // transformers: torch.tensor(hidden_size ** 0.5, dtype=embeddings' dtype), so bfloat16 scales by
    // the rounded value (sqrt(3072) = 55.43 becomes 55.5).
    normalizer_ = at::scalar_tensor(std::sqrt((double)d), at::TensorOptions().dtype(dtype_));
  }

  std::vector<std::string> hook_names() const override {
    if (!S_.v2) return standard_hook_names(cfg_.n_layers, true, true, false);
    std::vector<std::string> out{"hook_embed"};
    for (int l = 0; l < cfg_.n_layers; ++l) {
      const BlockHookNames& n = names_[l];
      const PostNormNames& p = post_names_[l];
      out.insert(out.end(), {n.resid_pre, n.ln1_scale, n.ln1_normalized, n.q, n.k, n.v, n.rot_q, n.rot_k,
                             n.attn_scores, n.pattern, n.z, n.result, p.ln1_post_scale, p.ln1_post_normalized,
                             n.attn_out, n.resid_mid, n.ln2_scale, n.ln2_normalized, n.mlp_pre, n.mlp_pre_linear,
                             n.mlp_post, p.ln2_post_scale, p.ln2_post_normalized, n.mlp_out, n.resid_post});
    }
    out.insert(out.end(), {"ln_final.hook_scale", "ln_final.hook_normalized"});
    return out;
  }

  at::Tensor embed(const at::Tensor& ids, RunContext& ctx) const override {
    int64_t past = ctx.cache ? ctx.cache->length() : 0;
    // TransformerLens folds the scale into W_E, so its hook_embed sees the scaled embedding too.
    at::Tensor tok = at::embedding(embed_, ids) * normalizer_;  // [b, p, d]
    fire(ctx.hooks, "hook_embed", tok, -1, past);
    return tok;
  }

  at::Tensor block(int layer, const at::Tensor& resid_in, RunContext& ctx) const override {
    const BlockHookNames& N = names_[layer];
    const hooks::HookSet* H = ctx.hooks;
    int64_t b = resid_in.size(0), n = resid_in.size(1), past = cache_past(ctx, layer);
    at::Tensor resid = resid_in;
    auto [q, k, v] = attention_inputs(layer, resid, H, past);  // q [b, n, h, dh], k, v [b, n, h_kv, dh]
    RopeAngles rope = rope_angles(inv_freq_, position_ids(ctx, b, n, past), q.scalar_type());
    q = apply_rope(q, rope);
    k = apply_rope(k, rope);
    fire(H, N.rot_q, q, layer, past);
    fire(H, N.rot_k, k, layer, past);
    cache_kv(ctx, layer, cfg_.n_layers, k, v);
    at::Tensor bias = attention_bias(ctx, b, n, past, true, S_.window[layer], q.scalar_type());
    at::Tensor z = attention(q, k, v, bias, S_.scale, H, N, layer, past, S_.attn_softcap);  // [b, n, h, dh]
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
    at::Tensor z = packed_attention(q, k, v, P, S_.scale, S_.window[layer], N, layer, S_.attn_softcap);
    if (P.keep.defined()) resid = resid.index_select(0, P.keep);
    return after_attention(layer, resid, z, P.hooks, 0);
  }

  at::Tensor final_norm(const at::Tensor& resid, RunContext& ctx) const override {
    int64_t past = ctx.cache ? ctx.cache->length() - resid.size(1) : 0;
    return gemma_norm(resid, final_norm_, cfg_.eps, ctx.hooks, "ln_final.hook_scale", "ln_final.hook_normalized", -1,
                      past < 0 ? 0 : past);
  }

  // Soft-capping is per logit, so a subset of columns caps as the full row would.
  at::Tensor unembed(const at::Tensor& x, const at::Tensor& columns) const override {
    at::Tensor w = columns.defined() ? lm_head_.index_select(0, columns) : lm_head_;
    at::Tensor logits = at::matmul(x, w.t());
    if (S_.final_softcap > 0) logits = at::tanh(logits / S_.final_softcap) * S_.final_softcap;
    return logits;
  }

  std::vector<std::pair<std::string, at::Tensor>> parameters() const override {
    std::vector<std::pair<std::string, at::Tensor>> out{{"model.embed_tokens.weight", embed_}};
    for (size_t l = 0; l < blocks_.size(); ++l) {
      const GemmaBlock& B = blocks_[l];
      std::string p = "model.layers." + std::to_string(l) + ".";
      std::vector<std::pair<std::string, at::Tensor>> named{{"input_layernorm.weight", B.ln1.w}};
      if (S_.v2) {
        named.insert(named.end(), {{"post_attention_layernorm.weight", B.ln1_post.w},
                                   {"pre_feedforward_layernorm.weight", B.ln2.w},
                                   {"post_feedforward_layernorm.weight", B.ln2_post.w}});
      } else {
        named.emplace_back("post_attention_layernorm.weight", B.ln2.w);
      }
      named.insert(named.end(), {{"self_attn.q_proj.weight", B.q_w}, {"self_attn.q_proj.bias", B.q_b},
                                 {"self_attn.k_proj.weight", B.k_w}, {"self_attn.k_proj.bias", B.k_b},
                                 {"self_attn.v_proj.weight", B.v_w}, {"self_attn.v_proj.bias", B.v_b},
                                 {"self_attn.o_proj.weight", B.o_w}, {"self_attn.o_proj.bias", B.o_b},
                                 {"mlp.gate_proj.weight", B.gate_w}, {"mlp.up_proj.weight", B.up_w},
                                 {"mlp.down_proj.weight", B.down_w}});
      for (auto& [k, t] : named)
        if (t.defined()) out.emplace_back(p + k, t);
    }
    out.emplace_back("model.norm.weight", final_norm_.w);
    if (!cfg_.tied_embeddings) out.emplace_back("lm_head.weight", lm_head_);
    return out;
  }

 private:
  // The block up to rotary, for resid [..., d] (hook_resid_pre may replace it): input_layernorm and
  // the projections -> q [..., h, dh], k, v [..., h_kv, dh], hooks fired.
  std::tuple<at::Tensor, at::Tensor, at::Tensor> attention_inputs(int layer, at::Tensor& resid, const hooks::HookSet* H,
                                                                  int64_t pos0) const {
    const GemmaBlock& B = blocks_[layer];
    const BlockHookNames& N = names_[layer];
    fire(H, N.resid_pre, resid, layer, pos0);
    at::Tensor x = gemma_norm(resid, B.ln1, cfg_.eps, H, N.ln1_scale, N.ln1_normalized, layer, pos0);
    at::Tensor q = split_heads(at::linear(x, B.q_w, B.q_b), cfg_.n_heads);
    at::Tensor k = split_heads(at::linear(x, B.k_w, B.k_b), cfg_.n_kv_heads);
    at::Tensor v = split_heads(at::linear(x, B.v_w, B.v_b), cfg_.n_kv_heads);
    fire(H, N.q, q, layer, pos0);
    fire(H, N.k, k, layer, pos0);
    fire(H, N.v, v, layer, pos0);
    return {q, k, v};
  }

  // The block after attention, for z [..., h, dh] and resid [..., d]: o_proj (Gemma-2: then its
  // post-norm, before hook_attn_out as TransformerLens fires it: what is added to the residual), the
  // residual add, and the GeGLU MLP down(gelu_tanh(gate(x)) * up(x)) (Gemma-2: then its post-norm).
  at::Tensor after_attention(int layer, const at::Tensor& resid, const at::Tensor& z, const hooks::HookSet* H,
                             int64_t pos0) const {
    const GemmaBlock& B = blocks_[layer];
    const BlockHookNames& N = names_[layer];
    const PostNormNames& P = post_names_[layer];
    at::Tensor attn_out = attention_out(z, B.o_w, B.o_b, H, N, layer, pos0);
    if (S_.v2) attn_out = gemma_norm(attn_out, B.ln1_post, cfg_.eps, H, P.ln1_post_scale, P.ln1_post_normalized, layer, pos0);
    fire(H, N.attn_out, attn_out, layer, pos0);
    at::Tensor mid = resid + attn_out;
    fire(H, N.resid_mid, mid, layer, pos0);
    at::Tensor x = gemma_norm(mid, B.ln2, cfg_.eps, H, N.ln2_scale, N.ln2_normalized, layer, pos0);
    at::Tensor pre = at::linear(x, B.gate_w);
    fire(H, N.mlp_pre, pre, layer, pos0);
    at::Tensor pre_linear = at::linear(x, B.up_w);
    fire(H, N.mlp_pre_linear, pre_linear, layer, pos0);
    at::Tensor post = activation(pre, cfg_.act_fn) * pre_linear;
    fire(H, N.mlp_post, post, layer, pos0);
    at::Tensor mlp_out = at::linear(post, B.down_w);
    if (S_.v2) mlp_out = gemma_norm(mlp_out, B.ln2_post, cfg_.eps, H, P.ln2_post_scale, P.ln2_post_normalized, layer, pos0);
    fire(H, N.mlp_out, mlp_out, layer, pos0);
    at::Tensor out = mid + mlp_out;
    fire(H, N.resid_post, out, layer, pos0);
    return out;
  }

  GemmaSettings S_;
  at::Tensor embed_, lm_head_, inv_freq_, normalizer_;
  GemmaNorm final_norm_;
  std::vector<GemmaBlock> blocks_;
  std::vector<BlockHookNames> names_;
  std::vector<PostNormNames> post_names_;
};

}  // namespace

std::unique_ptr<HookedModel> build_gemma(const ModelConfig& cfg, const io::Checkpoint& ckpt, const LoadOptions& opts) {
  return std::make_unique<Gemma>(cfg, ckpt, opts);
}

}  // namespace mechscope::models
