// GPT-Neo (Black et al. 2021) as Hugging Face's GPTNeoForCausalLM computes it: GPT-2's layout with
// nn.Linear weights, separate q/k/v projections without bias, attention scores NOT scaled by 1/sqrt(d)
// (the Mesh-TensorFlow original did not), and layers alternating global and local attention, a local
// layer seeing only the last `window_size` positions.
#include "core/error.h"
#include "models/decoder.h"
#include "models/registry.h"

namespace mechscope::models {

namespace {

// attention_layers when given (transformers writes it), else attention_types expanded:
// [[["global", "local"], 12]] -> global, local, global, ... (24 layers).
std::vector<std::string> attention_layers(const ModelConfig& cfg) {
  std::vector<std::string> out;
  auto layers = cfg.raw.find("attention_layers");
  auto types = cfg.raw.find("attention_types");
  auto bad = [&](const nlohmann::json& j) {
    fail("config.json (gpt_neo): attention_types must look like [[[\"global\", \"local\"], N]], got ", j.dump());
  };
  if (layers != cfg.raw.end() && layers->is_array() && !layers->empty()) {
    for (auto& t : *layers) {
      if (!t.is_string()) bad(*layers);
      out.push_back(t.get<std::string>());
    }
  } else if (types != cfg.raw.end() && types->is_array()) {
    for (auto& item : *types) {
      if (!item.is_array() || item.size() != 2 || !item[0].is_array() || !item[1].is_number_integer()) bad(*types);
      for (int64_t r = 0; r < item[1].get<int64_t>(); ++r)
        for (auto& t : item[0]) {
          if (!t.is_string()) bad(*types);
          out.push_back(t.get<std::string>());
        }
    }
  } else {
    fail("config.json (gpt_neo): missing 'attention_types' (or 'attention_layers')");
  }
  if ((int64_t)out.size() != cfg.n_layers)
    fail("config.json (gpt_neo): attention_types name ", out.size(), " layers, num_layers is ", cfg.n_layers);
  for (auto& t : out)
    if (t != "global" && t != "local")
      fail("config.json (gpt_neo): attention type '", t, "' (expected \"global\" or \"local\")");
  return out;
}

// config.json beyond ModelConfig.
struct NeoConfig {
  std::vector<int64_t> window;  // per layer: window_size on the local layers, 0 on the global ones
};

std::any parse_gpt_neo(ModelConfig& cfg) {
  set_mha_heads(cfg, "hidden_size", "num_heads");
  cfg.n_layers = cfg_int(cfg, "num_layers");
  cfg.d_mlp = cfg_int(cfg, "intermediate_size", 4 * cfg.d_model);
  cfg.n_ctx = cfg_int(cfg, "max_position_embeddings", 2048);
  cfg.d_vocab = cfg_int(cfg, "vocab_size");
  cfg.act_fn = cfg_string(cfg, "activation_function", "gelu_new");
  cfg.eps = cfg_double(cfg, "layer_norm_epsilon", 1e-5);
  cfg.tied_embeddings = cfg_bool(cfg, "tie_word_embeddings", true);
  check_activation(cfg.act_fn);
  NeoConfig n;
  int64_t window = cfg_int(cfg, "window_size", 256);
  for (auto& t : attention_layers(cfg)) n.window.push_back(t == "local" ? window : 0);
  return n;
}

struct NeoWeights : DecoderWeights {
  at::Tensor lnf_w, lnf_b;
};

struct NeoBlock {
  at::Tensor ln1_w, ln1_b, q_w, k_w, v_w, out_w, out_b;
  at::Tensor ln2_w, ln2_b, fc_w, fc_b, proj_w, proj_b;
};

// Feature bits: which of the table\'s optional tensors a checkpoint has (TensorSpec::needs).
constexpr unsigned kUntied = 1;

using T = TensorTable<NeoWeights, NeoBlock>;
using namespace dims;
const T kTable{
    "GPT-Neo",
    {"transformer.", ""},
    {T::model(&NeoWeights::embed, "{P}wte.weight", {V, D}), T::model(&NeoWeights::pos_embed, "{P}wpe.weight", {C, D}),
     T::block(&NeoBlock::ln1_w, "{P}h.{L}.ln_1.weight", {D}), T::block(&NeoBlock::ln1_b, "{P}h.{L}.ln_1.bias", {D}),
     T::block(&NeoBlock::q_w, "{P}h.{L}.attn.attention.q_proj.weight", {D, D}),
     T::block(&NeoBlock::k_w, "{P}h.{L}.attn.attention.k_proj.weight", {D, D}),
     T::block(&NeoBlock::v_w, "{P}h.{L}.attn.attention.v_proj.weight", {D, D}),
     T::block(&NeoBlock::out_w, "{P}h.{L}.attn.attention.out_proj.weight", {D, D}),
     T::block(&NeoBlock::out_b, "{P}h.{L}.attn.attention.out_proj.bias", {D}),
     T::block(&NeoBlock::ln2_w, "{P}h.{L}.ln_2.weight", {D}), T::block(&NeoBlock::ln2_b, "{P}h.{L}.ln_2.bias", {D}),
     T::block(&NeoBlock::fc_w, "{P}h.{L}.mlp.c_fc.weight", {M, D}),
     T::block(&NeoBlock::fc_b, "{P}h.{L}.mlp.c_fc.bias", {M}),
     T::block(&NeoBlock::proj_w, "{P}h.{L}.mlp.c_proj.weight", {D, M}),
     T::block(&NeoBlock::proj_b, "{P}h.{L}.mlp.c_proj.bias", {D}), T::model(&NeoWeights::lnf_w, "{P}ln_f.weight", {D}),
     T::model(&NeoWeights::lnf_b, "{P}ln_f.bias", {D}),
     T::model(&NeoWeights::unembed, "lm_head.weight", {V, D}, kUntied)}};

class GptNeo final : public DecoderModel<NeoWeights, NeoBlock> {
 public:
  GptNeo(const ModelConfig& cfg, const NeoConfig& n, const io::Checkpoint& ckpt, const LoadOptions& opts)
      : DecoderModel(cfg, ckpt, opts, kTable, 0, kUntied) {
    layout_.pos_embed = true;
    // Unscaled scores grow large: transformers computes them (and the softmax) in float32 whatever
    // the model's dtype, float64 included, and the pattern meets v in v's dtype.
    for (int64_t w : n.window) attn_.push_back({1.0, w, 0.0, true});
  }

  at::Tensor final_norm(const at::Tensor& resid, RunContext& ctx) const override {
    return layer_norm(resid, w_.lnf_w, w_.lnf_b, cfg_.eps, final_hooks(ctx, resid), ln_final_names());
  }

 private:
  // ln_1 and the q, k, v projections -> [..., h, dh].
  QKV attention_inputs(at::Tensor& resid, const BlockHooks& H) const override {
    const NeoBlock& B = blocks_[H.layer];
    H.fire(H.names->resid_pre, resid);
    at::Tensor x = layer_norm(resid, B.ln1_w, B.ln1_b, cfg_.eps, H, H.names->ln1);
    return project_qkv(x, {B.q_w, {}}, {B.k_w, {}}, {B.v_w, {}}, cfg_.n_heads, cfg_.n_heads, H);
  }

  // out_proj of z [..., h, dh], the residual add, ln_2 and the MLP.
  at::Tensor after_attention(const at::Tensor& resid, const at::Tensor& z, const BlockHooks& H) const override {
    const NeoBlock& B = blocks_[H.layer];
    return residual(resid, attention_out(z, B.out_w, B.out_b, H), H, false, [&](const at::Tensor& mid) {
      at::Tensor x = layer_norm(mid, B.ln2_w, B.ln2_b, cfg_.eps, H, H.names->ln2);
      return mlp(x, {B.fc_w, B.fc_b}, {}, {B.proj_w, B.proj_b}, cfg_.act_fn, H);
    });
  }
};

std::unique_ptr<HookedModel> build_gpt_neo(const ModelConfig& cfg, const std::any& family, const io::Checkpoint& ckpt,
                                           const LoadOptions& opts) {
  return std::make_unique<GptNeo>(cfg, std::any_cast<const NeoConfig&>(family), ckpt, opts);
}

}  // namespace

const Architecture& gpt_neo_architecture() {
  static const Architecture a{{{"gpt_neo", "GPT-Neo"}}, parse_gpt_neo, build_gpt_neo};
  return a;
}

}  // namespace mechscope::models
