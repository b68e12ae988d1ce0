// Gemma (Gemma Team 2024) and Gemma-2 (Gemma Team 2024b) as Hugging Face's GemmaForCausalLM and
// Gemma2ForCausalLM compute them: embeddings scaled by sqrt(d_model) in the embedding dtype, RMSNorm
// with (1 + w) applied in float32 before the cast, GeGLU MLP, rotary, grouped-query attention, tied
// unembedding. Gemma-2 adds a norm after attention and after the MLP (TransformerLens's ln1_post /
// ln2_post, use_normalization_before_and_after), scores scaled by query_pre_attn_scalar^-0.5,
// tanh soft-capping of the attention scores and of the final logits, and sliding-window attention on
// the layers layer_types names (every even layer by default).
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "models/decoder.h"
#include "models/registry.h"

namespace mechscope::models {

namespace {

// config.json beyond ModelConfig: the Gemma-2 extras (for Gemma-1: no capping, no window,
// 1/sqrt(d_head)) and rotary.
struct GemmaSettings {
  bool v2 = false;  // Gemma-2's post-norms (use_normalization_before_and_after)
  bool attention_bias = false;
  double scale = 1.0;                              // on q.k
  double attn_softcap = 0.0, final_softcap = 0.0;  // 0 = none
  std::vector<int64_t> window;                     // per layer, 0 = full attention
  RopeConfig rope;
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
  if (cfg.n_layers <= 0) return {};  // read_config refuses the size
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
  if (window <= 0)
    fail("config.json (", cfg.model_type, "): 'sliding_window' must be a positive integer, got ", window);
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

std::any parse_gemma(ModelConfig& cfg) {
  // GemmaConfig / Gemma2Config default head_dim to 256 whatever hidden_size / heads is (gemma-7b: 3072 / 16
  // heads of 256).
  set_gqa_heads(cfg, 256);
  cfg.n_layers = cfg_int(cfg, "num_hidden_layers");
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
    fail("config.json (", cfg.model_type,
         "): 'use_bidirectional_attention' true (a bidirectional encoder) is not supported");
  GemmaSettings g = gemma_settings(cfg);
  g.attention_bias = cfg_bool(cfg, "attention_bias", false);
  g.rope = parse_rope(cfg, cfg.d_head);
  return g;
}

struct GemmaWeights : DecoderWeights {
  at::Tensor norm, norm_1;  // the checkpoint's weight w, and 1 + w in the norm's compute dtype
};

// Norm weights as the checkpoint has them, and each as 1 + w (the _1 fields); the posts only in Gemma-2.
struct GemmaBlock {
  at::Tensor ln1, ln1_post, ln2, ln2_post, ln1_1, ln1_post_1, ln2_1, ln2_post_1;
  at::Tensor q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b;
  at::Tensor gate_w, up_w, down_w;
};

// Feature bits: which of the table\'s optional tensors a checkpoint has (TensorSpec::needs).
constexpr unsigned kUntied = 1;
constexpr unsigned kBias = 2;
constexpr unsigned kGemma1 = 4;
constexpr unsigned kGemma2 = 8;

using T = TensorTable<GemmaWeights, GemmaBlock>;
using namespace dims;
// Gemma*ForCausalLM saves "model.layers.0…"; a bare Gemma*Model saves "layers.0…". Gemma-2's
// post_attention_layernorm follows attention; Gemma-1's is the MLP's pre-norm.
const T kTable{"Gemma",
               {"model.", ""},
               {T::model(&GemmaWeights::embed, "{P}embed_tokens.weight", {V, D}),
                T::block(&GemmaBlock::ln1, "{P}layers.{L}.input_layernorm.weight", {D}),
                T::block(&GemmaBlock::ln1_post, "{P}layers.{L}.post_attention_layernorm.weight", {D}, kGemma2),
                T::block(&GemmaBlock::ln2, "{P}layers.{L}.pre_feedforward_layernorm.weight", {D}, kGemma2),
                T::block(&GemmaBlock::ln2_post, "{P}layers.{L}.post_feedforward_layernorm.weight", {D}, kGemma2),
                T::block(&GemmaBlock::ln2, "{P}layers.{L}.post_attention_layernorm.weight", {D}, kGemma1),
                T::block(&GemmaBlock::q_w, "{P}layers.{L}.self_attn.q_proj.weight", {Q, D}),
                T::block(&GemmaBlock::q_b, "{P}layers.{L}.self_attn.q_proj.bias", {Q}, kBias),
                T::block(&GemmaBlock::k_w, "{P}layers.{L}.self_attn.k_proj.weight", {KV, D}),
                T::block(&GemmaBlock::k_b, "{P}layers.{L}.self_attn.k_proj.bias", {KV}, kBias),
                T::block(&GemmaBlock::v_w, "{P}layers.{L}.self_attn.v_proj.weight", {KV, D}),
                T::block(&GemmaBlock::v_b, "{P}layers.{L}.self_attn.v_proj.bias", {KV}, kBias),
                T::block(&GemmaBlock::o_w, "{P}layers.{L}.self_attn.o_proj.weight", {D, Q}),
                T::block(&GemmaBlock::o_b, "{P}layers.{L}.self_attn.o_proj.bias", {D}, kBias),
                T::block(&GemmaBlock::gate_w, "{P}layers.{L}.mlp.gate_proj.weight", {M, D}),
                T::block(&GemmaBlock::up_w, "{P}layers.{L}.mlp.up_proj.weight", {M, D}),
                T::block(&GemmaBlock::down_w, "{P}layers.{L}.mlp.down_proj.weight", {D, M}),
                T::model(&GemmaWeights::norm, "{P}norm.weight", {D}),
                T::model(&GemmaWeights::unembed, "lm_head.weight", {V, D}, kUntied)}};

// Gemma's RMSNorm (transformers' GemmaRMSNorm): normalised in float32 (float64 stays float64), times
// (1 + w) = w1 still in float32, then cast back; Llama casts before the weight, which differs in
// bfloat16. Hooks as rms_norm(): hook_scale [..., 1] and hook_normalized before the weight. x: [..., d].
at::Tensor gemma_norm(const at::Tensor& x, const at::Tensor& w1, double eps, const BlockHooks& H,
                      const NormHookNames& names) {
  at::ScalarType in = x.scalar_type(), nd = w1.scalar_type();
  at::Tensor xf = x.to(nd);
  at::Tensor ms = xf.pow(2).mean(-1, true);
  if (!H.wants(names.scale) && !H.wants(names.normalized)) return (xf * at::rsqrt(ms + eps) * w1).to(in);
  at::Tensor scale = (ms + eps).sqrt();
  H.fire(names.scale, scale);
  at::Tensor normalized = (xf / scale).to(in);
  H.fire(names.normalized, normalized);
  return (normalized.to(nd) * w1).to(in);
}

unsigned gemma_features(const GemmaSettings& S) { return (S.attention_bias ? kBias : 0) | (S.v2 ? kGemma2 : kGemma1); }

class Gemma final : public DecoderModel<GemmaWeights, GemmaBlock> {
 public:
  Gemma(const ModelConfig& cfg, const GemmaSettings& S, const io::Checkpoint& ckpt, const LoadOptions& opts)
      : DecoderModel(cfg, ckpt, opts, kTable, gemma_features(S), kUntied), v2_(S.v2) {
    layout_.rotary = layout_.gated_mlp = true;
    layout_.post_norms = S.v2;
    for (int64_t w : S.window) attn_.push_back({S.scale, w, S.attn_softcap});
    final_softcap_ = S.final_softcap;
    inv_freq_ = rope_inv_freq(S.rope).to(device_);
    at::ScalarType norm_dtype = dtype_ == at::kDouble ? at::kDouble : at::kFloat;
    auto one_plus = [&](const at::Tensor& w) { return w.defined() ? 1.0 + w.to(norm_dtype) : at::Tensor(); };
    w_.norm_1 = one_plus(w_.norm);
    for (GemmaBlock& B : blocks_)
      B.ln1_1 = one_plus(B.ln1), B.ln1_post_1 = one_plus(B.ln1_post), B.ln2_1 = one_plus(B.ln2),
      B.ln2_post_1 = one_plus(B.ln2_post);
    // transformers: torch.tensor(hidden_size ** 0.5, dtype=embeddings' dtype), so bfloat16 scales by
    // the rounded value (sqrt(3072) = 55.43 becomes 55.5). TransformerLens folds the scale into W_E,
    // so its hook_embed sees the scaled embedding too.
    embed_scale_ = at::scalar_tensor(std::sqrt((double)cfg.d_model), at::TensorOptions().dtype(dtype_).device(device_));
  }

  at::Tensor final_norm(const at::Tensor& resid, RunContext& ctx) const override {
    return gemma_norm(resid, w_.norm_1, cfg_.eps, final_hooks(ctx, resid), ln_final_names());
  }

 private:
  // input_layernorm and the projections -> q [..., h, dh], k, v [..., h_kv, dh].
  QKV attention_inputs(at::Tensor& resid, const BlockHooks& H) const override {
    const GemmaBlock& B = blocks_[H.layer];
    H.fire(H.names->resid_pre, resid);
    at::Tensor x = gemma_norm(resid, B.ln1_1, cfg_.eps, H, H.names->ln1);
    return project_qkv(x, {B.q_w, B.q_b}, {B.k_w, B.k_b}, {B.v_w, B.v_b}, cfg_.n_heads, cfg_.n_kv_heads, H);
  }

  // o_proj (Gemma-2: then its post-norm, before hook_attn_out as TransformerLens fires it: what is
  // added to the residual), the residual add, and the GeGLU MLP down(gelu_tanh(gate(x)) * up(x))
  // (Gemma-2: then its post-norm).
  at::Tensor after_attention(const at::Tensor& resid, const at::Tensor& z, const BlockHooks& H) const override {
    const GemmaBlock& B = blocks_[H.layer];
    const BlockHookNames& N = *H.names;
    at::Tensor attn_out = attention_out(z, B.o_w, B.o_b, H);
    if (v2_) attn_out = gemma_norm(attn_out, B.ln1_post_1, cfg_.eps, H, N.ln1_post);
    return residual(resid, attn_out, H, false, [&](const at::Tensor& mid) {
      at::Tensor x = gemma_norm(mid, B.ln2_1, cfg_.eps, H, N.ln2);
      at::Tensor out = mlp(x, {B.gate_w, {}}, {B.up_w, {}}, {B.down_w, {}}, cfg_.act_fn, H);
      return v2_ ? gemma_norm(out, B.ln2_post_1, cfg_.eps, H, N.ln2_post) : out;
    });
  }

  bool v2_;
};

std::unique_ptr<HookedModel> build_gemma(const ModelConfig& cfg, const std::any& family, const io::Checkpoint& ckpt,
                                         const LoadOptions& opts) {
  return std::make_unique<Gemma>(cfg, std::any_cast<const GemmaSettings&>(family), ckpt, opts);
}

}  // namespace

const Architecture& gemma_architecture() {
  static const Architecture a{{{"gemma", nullptr}, {"gemma2", nullptr}}, parse_gemma, build_gemma};
  return a;
}

}  // namespace mechscope::models
