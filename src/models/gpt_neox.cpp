// GPT-NeoX (Black et al. 2022) and Pythia as Hugging Face's GPTNeoXForCausalLM computes them: fused
// query_key_value laid out per head ([h, 3, dh] along the output axis), rotary on the first
// rotary_pct of each head, parallel residual (attention and MLP both read the block input) or the
// sequential one, untied `embed_out`.
#include <cmath>

#include "core/error.h"
#include "models/decoder.h"
#include "models/registry.h"

namespace mechscope::models {

namespace {

// GPTNeoXConfig's default when the file names no rotary fraction.
constexpr double kNeoxRotaryPct = 0.25;

// config.json beyond ModelConfig.
struct NeoxConfig {
  bool parallel_residual = true;  // use_parallel_residual
  bool attention_bias = true;
  RopeConfig rope;
};

std::any parse_gpt_neox(ModelConfig& cfg) {
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
  return NeoxConfig{cfg_bool(cfg, "use_parallel_residual", true), cfg_bool(cfg, "attention_bias", true),
                    parse_rope(cfg, cfg.d_head, kNeoxRotaryPct)};
}

struct NeoxWeights : DecoderWeights {
  at::Tensor lnf_w, lnf_b;
};

struct NeoxBlock {
  at::Tensor ln1_w, ln1_b, qkv_w, qkv_b, dense_w, dense_b;
  at::Tensor ln2_w, ln2_b, fc_w, fc_b, proj_w, proj_b;
};

// Feature bits: which of the table\'s optional tensors a checkpoint has (TensorSpec::needs).
constexpr unsigned kUntied = 1;
constexpr unsigned kAttnBias = 2;

using T = TensorTable<NeoxWeights, NeoxBlock>;
using namespace dims;
// GPTNeoXForCausalLM saves "gpt_neox.layers.0…"; a bare GPTNeoXModel saves "layers.0…".
const T kTable{"GPT-NeoX",
               {"gpt_neox.", ""},
               {T::model(&NeoxWeights::embed, "{P}embed_in.weight", {V, D}),
                T::block(&NeoxBlock::ln1_w, "{P}layers.{L}.input_layernorm.weight", {D}),
                T::block(&NeoxBlock::ln1_b, "{P}layers.{L}.input_layernorm.bias", {D}),
                T::block(&NeoxBlock::qkv_w, "{P}layers.{L}.attention.query_key_value.weight", {3 * D, D}),
                T::block(&NeoxBlock::qkv_b, "{P}layers.{L}.attention.query_key_value.bias", {3 * D}, kAttnBias),
                T::block(&NeoxBlock::dense_w, "{P}layers.{L}.attention.dense.weight", {D, D}),
                T::block(&NeoxBlock::dense_b, "{P}layers.{L}.attention.dense.bias", {D}, kAttnBias),
                T::block(&NeoxBlock::ln2_w, "{P}layers.{L}.post_attention_layernorm.weight", {D}),
                T::block(&NeoxBlock::ln2_b, "{P}layers.{L}.post_attention_layernorm.bias", {D}),
                T::block(&NeoxBlock::fc_w, "{P}layers.{L}.mlp.dense_h_to_4h.weight", {M, D}),
                T::block(&NeoxBlock::fc_b, "{P}layers.{L}.mlp.dense_h_to_4h.bias", {M}),
                T::block(&NeoxBlock::proj_w, "{P}layers.{L}.mlp.dense_4h_to_h.weight", {D, M}),
                T::block(&NeoxBlock::proj_b, "{P}layers.{L}.mlp.dense_4h_to_h.bias", {D}),
                T::model(&NeoxWeights::lnf_w, "{P}final_layer_norm.weight", {D}),
                T::model(&NeoxWeights::lnf_b, "{P}final_layer_norm.bias", {D}),
                T::model(&NeoxWeights::unembed, "embed_out.weight", {V, D}, kUntied)}};

class GptNeox final : public DecoderModel<NeoxWeights, NeoxBlock> {
 public:
  GptNeox(const ModelConfig& cfg, const NeoxConfig& x, const io::Checkpoint& ckpt, const LoadOptions& opts)
      : DecoderModel(cfg, ckpt, opts, kTable, x.attention_bias ? kAttnBias : 0, kUntied) {
    parallel_ = x.parallel_residual;
    layout_.rotary = true;
    layout_.parallel_residual = parallel_;
    attn_.assign(cfg.n_layers, {1.0 / std::sqrt((double)cfg.d_head)});
    inv_freq_ = rope_inv_freq(x.rope).to(device_);
  }

  at::Tensor final_norm(const at::Tensor& resid, RunContext& ctx) const override {
    return layer_norm(resid, w_.lnf_w, w_.lnf_b, cfg_.eps, final_hooks(ctx, resid), ln_final_names());
  }

 private:
  // input_layernorm and query_key_value (per head: q | k | v) -> q, k, v [..., h, dh].
  QKV attention_inputs(at::Tensor& resid, const BlockHooks& H) const override {
    const NeoxBlock& B = blocks_[H.layer];
    const BlockHookNames& N = *H.names;
    int64_t dh = cfg_.d_head;
    H.fire(N.resid_pre, resid);
    at::Tensor x = layer_norm(resid, B.ln1_w, B.ln1_b, cfg_.eps, H, N.ln1);
    at::Tensor qkv = split_heads(at::linear(x, B.qkv_w, B.qkv_b), cfg_.n_heads);  // [..., h, 3 * dh]
    return fire_qkv({qkv.narrow(-1, 0, dh), qkv.narrow(-1, dh, dh), qkv.narrow(-1, 2 * dh, dh)}, H);
  }

  // dense, then the MLP. Parallel residual (GPT-J style): the MLP reads the block input, not
  // resid_mid, which then does not exist.
  at::Tensor after_attention(const at::Tensor& resid, const at::Tensor& z, const BlockHooks& H) const override {
    const NeoxBlock& B = blocks_[H.layer];
    return residual(resid, attention_out(z, B.dense_w, B.dense_b, H), H, parallel_, [&](const at::Tensor& mlp_in) {
      at::Tensor x = layer_norm(mlp_in, B.ln2_w, B.ln2_b, cfg_.eps, H, H.names->ln2);
      return mlp(x, {B.fc_w, B.fc_b}, {}, {B.proj_w, B.proj_b}, cfg_.act_fn, H);
    });
  }

  bool parallel_ = true;
};

std::unique_ptr<HookedModel> build_gpt_neox(const ModelConfig& cfg, const std::any& family, const io::Checkpoint& ckpt,
                                            const LoadOptions& opts) {
  return std::make_unique<GptNeox>(cfg, std::any_cast<const NeoxConfig&>(family), ckpt, opts);
}

}  // namespace

const Architecture& gpt_neox_architecture() {
  static const Architecture a{{{"gpt_neox", "GPT-NeoX"}}, parse_gpt_neox, build_gpt_neox};
  return a;
}

}  // namespace mechscope::models
