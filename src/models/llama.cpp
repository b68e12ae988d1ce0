// Llama (Touvron et al. 2023) as Hugging Face's LlamaForCausalLM computes it: RMSNorm, rotary
// position embeddings (default, linear or llama3 scaling), SwiGLU MLP, grouped-query attention, tied
// or untied unembedding. Mistral (sliding-window layers) and Qwen2 (biases on q/k/v) are the same
// code with other config keys.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "models/decoder.h"
#include "models/registry.h"

namespace mechscope::models {

namespace {

// Sliding-window size per layer (0 = full attention): `layer_types` when given (transformers >= 4.54),
// else Mistral's `sliding_window` on every layer, or Qwen2's on layers from `max_window_layers` on.
std::vector<int64_t> layer_windows(const ModelConfig& cfg) {
  if (cfg.n_layers <= 0) return {};  // read_config refuses the size
  std::vector<int64_t> out(cfg.n_layers, 0);
  int64_t window = cfg_int(cfg, "sliding_window", 0);
  auto types = cfg.raw.find("layer_types");
  if (types != cfg.raw.end() && types->is_array()) {
    if ((int64_t)types->size() != cfg.n_layers)
      fail("config.json (", cfg.model_type, "): layer_types has ", types->size(), " entries for ", cfg.n_layers,
           " layers");
    for (int64_t l = 0; l < cfg.n_layers; ++l) {
      const auto& t = (*types)[l];
      if (t == "sliding_attention") {
        if (window <= 0)
          fail("config.json (", cfg.model_type, "): layer ", l, " is sliding_attention but sliding_window is not set");
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
    for (int64_t l = std::max<int64_t>(cfg_int(cfg, "max_window_layers", 0), 0); l < cfg.n_layers; ++l) out[l] = window;
  return out;
}

// config.json beyond ModelConfig.
struct LlamaConfig {
  bool qkv_bias = false, o_bias = false, mlp_bias = false;
  std::vector<int64_t> window;  // per layer, 0 = full attention
  RopeConfig rope;
};

std::any parse_llama(ModelConfig& cfg) {
  // head_dim may differ from hidden_size / heads (e.g. Mistral Nemo, Qwen3).
  set_gqa_heads(cfg, 0);
  cfg.n_layers = cfg_int(cfg, "num_hidden_layers");
  cfg.d_mlp = cfg_int(cfg, "intermediate_size");
  cfg.n_ctx = cfg_int(cfg, "max_position_embeddings", 2048);
  cfg.d_vocab = cfg_int(cfg, "vocab_size");
  cfg.act_fn = cfg_string(cfg, "hidden_act", "silu");
  cfg.eps = cfg_double(cfg, "rms_norm_eps", 1e-6);
  cfg.tied_embeddings = cfg_bool(cfg, "tie_word_embeddings", false);
  cfg.gated_mlp = true;
  cfg.rotary = true;
  check_activation(cfg.act_fn);
  LlamaConfig L;
  // Qwen2 always has q/k/v biases and no o_proj bias; Llama has all four when attention_bias is set.
  bool attention_bias = cfg_bool(cfg, "attention_bias", false);
  L.qkv_bias = cfg.model_type == "qwen2" || attention_bias;
  L.o_bias = cfg.model_type != "qwen2" && attention_bias;
  L.mlp_bias = cfg_bool(cfg, "mlp_bias", false);
  L.window = layer_windows(cfg);
  L.rope = parse_rope(cfg, cfg.d_head);  // rejects a malformed or unsupported rope configuration at load time
  return L;
}

struct LlamaWeights : DecoderWeights {
  at::Tensor norm_w;
};

struct LlamaBlock {
  at::Tensor ln1_w, q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b;
  at::Tensor ln2_w, gate_w, gate_b, up_w, up_b, down_w, down_b;
};

// Feature bits: which of the table\'s optional tensors a checkpoint has (TensorSpec::needs).
constexpr unsigned kUntied = 1;
constexpr unsigned kQkvBias = 2;
constexpr unsigned kOBias = 4;
constexpr unsigned kMlpBias = 8;

using T = TensorTable<LlamaWeights, LlamaBlock>;
using namespace dims;
// LlamaForCausalLM saves "model.layers.0…"; a bare LlamaModel saves "layers.0…".
const T kTable{"Llama",
               {"model.", ""},
               {T::model(&LlamaWeights::embed, "{P}embed_tokens.weight", {V, D}),
                T::block(&LlamaBlock::ln1_w, "{P}layers.{L}.input_layernorm.weight", {D}),
                T::block(&LlamaBlock::q_w, "{P}layers.{L}.self_attn.q_proj.weight", {Q, D}),
                T::block(&LlamaBlock::q_b, "{P}layers.{L}.self_attn.q_proj.bias", {Q}, kQkvBias),
                T::block(&LlamaBlock::k_w, "{P}layers.{L}.self_attn.k_proj.weight", {KV, D}),
                T::block(&LlamaBlock::k_b, "{P}layers.{L}.self_attn.k_proj.bias", {KV}, kQkvBias),
                T::block(&LlamaBlock::v_w, "{P}layers.{L}.self_attn.v_proj.weight", {KV, D}),
                T::block(&LlamaBlock::v_b, "{P}layers.{L}.self_attn.v_proj.bias", {KV}, kQkvBias),
                T::block(&LlamaBlock::o_w, "{P}layers.{L}.self_attn.o_proj.weight", {D, Q}),
                T::block(&LlamaBlock::o_b, "{P}layers.{L}.self_attn.o_proj.bias", {D}, kOBias),
                T::block(&LlamaBlock::ln2_w, "{P}layers.{L}.post_attention_layernorm.weight", {D}),
                T::block(&LlamaBlock::gate_w, "{P}layers.{L}.mlp.gate_proj.weight", {M, D}),
                T::block(&LlamaBlock::gate_b, "{P}layers.{L}.mlp.gate_proj.bias", {M}, kMlpBias),
                T::block(&LlamaBlock::up_w, "{P}layers.{L}.mlp.up_proj.weight", {M, D}),
                T::block(&LlamaBlock::up_b, "{P}layers.{L}.mlp.up_proj.bias", {M}, kMlpBias),
                T::block(&LlamaBlock::down_w, "{P}layers.{L}.mlp.down_proj.weight", {D, M}),
                T::block(&LlamaBlock::down_b, "{P}layers.{L}.mlp.down_proj.bias", {D}, kMlpBias),
                T::model(&LlamaWeights::norm_w, "{P}norm.weight", {D}),
                T::model(&LlamaWeights::unembed, "lm_head.weight", {V, D}, kUntied)}};

unsigned llama_features(const LlamaConfig& L) {
  return (L.qkv_bias ? kQkvBias : 0) | (L.o_bias ? kOBias : 0) | (L.mlp_bias ? kMlpBias : 0);
}

class Llama final : public DecoderModel<LlamaWeights, LlamaBlock> {
 public:
  Llama(const ModelConfig& cfg, const LlamaConfig& L, const io::Checkpoint& ckpt, const LoadOptions& opts)
      : DecoderModel(cfg, ckpt, opts, kTable, llama_features(L), kUntied) {
    layout_.rotary = layout_.gated_mlp = true;
    for (int64_t w : L.window) attn_.push_back({1.0 / std::sqrt((double)cfg.d_head), w});
    inv_freq_ = rope_inv_freq(L.rope).to(device_);
  }

  at::Tensor final_norm(const at::Tensor& resid, RunContext& ctx) const override {
    return rms_norm(resid, w_.norm_w, cfg_.eps, final_hooks(ctx, resid), ln_final_names());
  }

 private:
  // The RMSNorm and the projections -> q [..., h, dh], k, v [..., h_kv, dh].
  QKV attention_inputs(at::Tensor& resid, const BlockHooks& H) const override {
    const LlamaBlock& B = blocks_[H.layer];
    H.fire(H.names->resid_pre, resid);
    at::Tensor x = rms_norm(resid, B.ln1_w, cfg_.eps, H, H.names->ln1);
    return project_qkv(x, {B.q_w, B.q_b}, {B.k_w, B.k_b}, {B.v_w, B.v_b}, cfg_.n_heads, cfg_.n_kv_heads, H);
  }

  // o_proj, the residual add and the SwiGLU MLP (Shazeer 2020): down(act(gate(x)) * up(x)).
  at::Tensor after_attention(const at::Tensor& resid, const at::Tensor& z, const BlockHooks& H) const override {
    const LlamaBlock& B = blocks_[H.layer];
    return residual(resid, attention_out(z, B.o_w, B.o_b, H), H, false, [&](const at::Tensor& mid) {
      at::Tensor x = rms_norm(mid, B.ln2_w, cfg_.eps, H, H.names->ln2);
      return mlp(x, {B.gate_w, B.gate_b}, {B.up_w, B.up_b}, {B.down_w, B.down_b}, cfg_.act_fn, H);
    });
  }
};

std::unique_ptr<HookedModel> build_llama(const ModelConfig& cfg, const std::any& family, const io::Checkpoint& ckpt,
                                         const LoadOptions& opts) {
  return std::make_unique<Llama>(cfg, std::any_cast<const LlamaConfig&>(family), ckpt, opts);
}

}  // namespace

const Architecture& llama_architecture() {
  static const Architecture a{
      {{"llama", "Llama"}, {"mistral", "Mistral"}, {"qwen2", "Qwen2"}}, parse_llama, build_llama};
  return a;
}

}  // namespace mechscope::models
