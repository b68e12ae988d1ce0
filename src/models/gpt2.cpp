// GPT-2 (Radford et al. 2019) as Hugging Face's GPT2LMHeadModel computes it: learned position
// embeddings, pre-LayerNorm blocks, Conv1D weights stored [in, out], fused c_attn = [q | k | v],
// tied unembedding. distilgpt2 and gpt2-medium/large/xl are the same code.
#include <cmath>

#include "core/error.h"
#include "models/decoder.h"
#include "models/registry.h"

namespace mechscope::models {

namespace {

// config.json beyond ModelConfig.
struct Gpt2Config {
  std::vector<double> attn_scale;  // per layer: scale_attn_weights, scale_attn_by_inverse_layer_idx
};

std::any parse_gpt2(ModelConfig& cfg) {
  set_mha_heads(cfg, "n_embd", "n_head");
  cfg.n_layers = cfg_int(cfg, "n_layer");
  cfg.d_mlp = cfg_int(cfg, "n_inner", 4 * cfg.d_model);
  cfg.n_ctx = cfg_int(cfg, "n_positions", cfg_int(cfg, "n_ctx", 1024));
  cfg.d_vocab = cfg_int(cfg, "vocab_size");
  cfg.act_fn = cfg_string(cfg, "activation_function", "gelu_new");
  cfg.eps = cfg_double(cfg, "layer_norm_epsilon", 1e-5);
  cfg.tied_embeddings = cfg_bool(cfg, "tie_word_embeddings", true);
  check_activation(cfg.act_fn);
  Gpt2Config g;
  bool scaled = cfg_bool(cfg, "scale_attn_weights", true),
       by_layer = cfg_bool(cfg, "scale_attn_by_inverse_layer_idx", false);
  for (int64_t l = 0; l < cfg.n_layers; ++l)
    g.attn_scale.push_back((scaled ? 1.0 / std::sqrt((double)cfg.d_head) : 1.0) / (by_layer ? l + 1 : 1));
  return g;
}

struct Gpt2Weights : DecoderWeights {
  at::Tensor lnf_w, lnf_b;
};

struct Gpt2Block {
  at::Tensor ln1_w, ln1_b, c_attn_w, c_attn_b, c_proj_w, c_proj_b;
  at::Tensor ln2_w, ln2_b, fc_w, fc_b, proj_w, proj_b;
};

// Feature bits: which of the table\'s optional tensors a checkpoint has (TensorSpec::needs).
constexpr unsigned kUntied = 1;

using T = TensorTable<Gpt2Weights, Gpt2Block>;
using namespace dims;
// save_pretrained writes "transformer.h.0…"; the hub's original gpt2 files have "h.0…". An untied head
// (tie_word_embeddings false) must be in the file; a tied one may be saved too.
const T kTable{
    "GPT-2",
    {"transformer.", ""},
    {T::model(&Gpt2Weights::embed, "{P}wte.weight", {V, D}), T::model(&Gpt2Weights::pos_embed, "{P}wpe.weight", {C, D}),
     T::block(&Gpt2Block::ln1_w, "{P}h.{L}.ln_1.weight", {D}), T::block(&Gpt2Block::ln1_b, "{P}h.{L}.ln_1.bias", {D}),
     T::block(&Gpt2Block::c_attn_w, "{P}h.{L}.attn.c_attn.weight", {D, 3 * D}),
     T::block(&Gpt2Block::c_attn_b, "{P}h.{L}.attn.c_attn.bias", {3 * D}),
     T::block(&Gpt2Block::c_proj_w, "{P}h.{L}.attn.c_proj.weight", {D, D}),
     T::block(&Gpt2Block::c_proj_b, "{P}h.{L}.attn.c_proj.bias", {D}),
     T::block(&Gpt2Block::ln2_w, "{P}h.{L}.ln_2.weight", {D}), T::block(&Gpt2Block::ln2_b, "{P}h.{L}.ln_2.bias", {D}),
     T::block(&Gpt2Block::fc_w, "{P}h.{L}.mlp.c_fc.weight", {D, M}),
     T::block(&Gpt2Block::fc_b, "{P}h.{L}.mlp.c_fc.bias", {M}),
     T::block(&Gpt2Block::proj_w, "{P}h.{L}.mlp.c_proj.weight", {M, D}),
     T::block(&Gpt2Block::proj_b, "{P}h.{L}.mlp.c_proj.bias", {D}),
     T::model(&Gpt2Weights::lnf_w, "{P}ln_f.weight", {D}), T::model(&Gpt2Weights::lnf_b, "{P}ln_f.bias", {D}),
     T::model(&Gpt2Weights::unembed, "lm_head.weight", {V, D}, kUntied)}};

class Gpt2 final : public DecoderModel<Gpt2Weights, Gpt2Block> {
 public:
  Gpt2(const ModelConfig& cfg, const Gpt2Config& g, const io::Checkpoint& ckpt, const LoadOptions& opts)
      : DecoderModel(cfg, ckpt, opts, kTable, 0, kUntied) {
    layout_.pos_embed = true;
    for (double s : g.attn_scale) attn_.push_back({s});
  }

  at::Tensor final_norm(const at::Tensor& resid, RunContext& ctx) const override {
    return layer_norm(resid, w_.lnf_w, w_.lnf_b, cfg_.eps, final_hooks(ctx, resid), ln_final_names());
  }

 private:
  // Conv1D: x [..., in] @ w [in, out] + bias.
  static at::Tensor conv1d(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias) {
    auto shape = x.sizes().vec();
    shape.back() = w.size(1);
    return at::addmm(bias, x.reshape({-1, x.size(-1)}), w).view(shape);
  }

  // ln_1 and the fused c_attn -> q, k, v [..., h, dh].
  QKV attention_inputs(at::Tensor& resid, const BlockHooks& H) const override {
    const Gpt2Block& B = blocks_[H.layer];
    const BlockHookNames& N = *H.names;
    H.fire(N.resid_pre, resid);
    at::Tensor x = layer_norm(resid, B.ln1_w, B.ln1_b, cfg_.eps, H, N.ln1);
    auto shape = resid.sizes().vec();
    shape.back() = 3;
    shape.push_back(cfg_.n_heads);
    shape.push_back(cfg_.d_head);
    at::Tensor qkv = conv1d(x, B.c_attn_w, B.c_attn_b).view(shape);  // [..., 3, h, dh]
    return fire_qkv({qkv.select(-3, 0), qkv.select(-3, 1), qkv.select(-3, 2)}, H);
  }

  // c_proj of z [..., h, dh] (per head as hook_result when hooked), the residual add, ln_2 and the MLP.
  at::Tensor after_attention(const at::Tensor& resid, const at::Tensor& z, const BlockHooks& H) const override {
    const Gpt2Block& B = blocks_[H.layer];
    const BlockHookNames& N = *H.names;
    int64_t h = cfg_.n_heads, dh = cfg_.d_head, d = cfg_.d_model;
    at::Tensor attn_out;
    if (H.wants(N.result)) {
      // Per-head contributions: z_h @ W_O[h] with W_O = c_proj viewed [h, dh, d].
      at::Tensor result = at::einsum("...he,hed->...hd", {z, B.c_proj_w.view({h, dh, d})});
      H.fire(N.result, result);
      attn_out = result.sum(-2) + B.c_proj_b;
    } else {
      attn_out = conv1d(z.flatten(-2), B.c_proj_w, B.c_proj_b);
    }
    return residual(resid, attn_out, H, false, [&](const at::Tensor& mid) {
      at::Tensor pre = conv1d(layer_norm(mid, B.ln2_w, B.ln2_b, cfg_.eps, H, N.ln2), B.fc_w, B.fc_b);
      H.fire(N.mlp_pre, pre);
      at::Tensor post = activation(pre, cfg_.act_fn);
      H.fire(N.mlp_post, post);
      return conv1d(post, B.proj_w, B.proj_b);
    });
  }
};

std::unique_ptr<HookedModel> build_gpt2(const ModelConfig& cfg, const std::any& family, const io::Checkpoint& ckpt,
                                        const LoadOptions& opts) {
  return std::make_unique<Gpt2>(cfg, std::any_cast<const Gpt2Config&>(family), ckpt, opts);
}

}  // namespace

const Architecture& gpt2_architecture() {
  static const Architecture a{{{"gpt2", "GPT-2"}}, parse_gpt2, build_gpt2};
  return a;
}

}  // namespace mechscope::models
