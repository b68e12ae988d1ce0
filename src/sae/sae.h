// Sparse autoencoders as SAELens defines them: the config fields that change the maths, the weights
// (W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in], threshold [d_sae] for
// JumpReLU) and the log10 feature sparsity when the release ships one. Loaded from SAELens's on-disk
// format (cfg.json + sae_weights.safetensors [+ sparsity.safetensors]), from the local Hugging Face
// cache, or from Gemma Scope's params.npz.
#pragma once
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace mechscope::sae {

enum class Architecture { Standard, JumpReLU, TopK };
// SAELens's normalize_activations. ExpectedAverageOnlyIn is a no-op at run time in SAELens unless the
// release directory gives a scaling factor to fold; a folder on disk carries none, so it stays a no-op.
enum class Normalize { None, ExpectedAverageOnlyIn, ConstantNormRescale, LayerNorm };

struct SAEConfig {
  Architecture architecture = Architecture::Standard;
  int64_t d_in = 0, d_sae = 0;
  int64_t k = 0;          // TopK only
  std::string hook_name;  // TransformerLens name, e.g. blocks.8.hook_resid_pre
  int hook_layer = -1;    // from the hook name ("blocks.L."), -1 for hook_embed and the like
  bool apply_b_dec_to_input = true;
  Normalize normalize = Normalize::None;
  bool reshape_hook_z = false;  // hook_z SAEs see [.., n_heads * d_head]
  std::string model_name, neuronpedia_id;
  nlohmann::json raw;  // cfg.json as read (empty for params.npz)
};

struct SAE {
  SAEConfig cfg;
  at::Tensor W_enc, b_enc, W_dec, b_dec, threshold;  // float32 (or as loaded with a dtype option)
  at::Tensor log_sparsity;                           // [d_sae] when shipped, else undefined
  std::string source;                                // the folder or file it came from
};

struct LoadOptions {
  std::string hook_name;  // overrides cfg.json's, required for a params.npz whose path names no hook
  at::ScalarType dtype = at::kFloat;
};

// `spec` is a folder with cfg.json + sae_weights.safetensors or with params.npz, a params.npz file, or
// "ORG/REPO/SUBFOLDER..." found in the local Hugging Face cache (the repo's snapshot + subfolder, as
// SAELens's from_pretrained downloads it: e.g. jbloom/GPT2-Small-SAEs-Reformatted/blocks.8.hook_resid_pre),
// or RELEASE/SAE_ID for the SAELens releases mechscope knows (gpt2-small-res-jb/blocks.8.hook_resid_pre),
// which also sets model_name and neuronpedia_id as SAELens's directory does. A Gemma Scope params.npz
// takes its hook from its path as SAELens's gemma_2 loader does (layer_N of a -res / -mlp / -att repo;
// a -res repo's embedding folder is hook_embed, its W_enc divided and W_dec multiplied by sqrt(d_in)).
// Error naming the file and key for a missing file, unknown architecture or normalisation, a weight
// whose shape disagrees with d_in / d_sae, or a config without a hook name.
SAE load_sae(const std::string& spec, const LoadOptions& opts = {});

// Parses a cfg.json (any SAELens version: pre-6 flat fields, hook_point, activation_fn_str "topk",
// 6.x "metadata"/"meta"). `what` names the file in errors.
SAEConfig parse_config(const nlohmann::json& j, const std::string& what);

const char* architecture_name(Architecture a);

// Moves the weights (and log_sparsity) to `device` once, for encode/decode where the model runs (a
// no-op when they are there already).
void to_device(SAE& sae, const at::Device& device);
// The device the SAE's weights are on.
inline at::Device device_of(const SAE& sae) { return sae.W_enc.defined() ? sae.W_enc.device() : at::Device(at::kCPU); }

// Per-input state of the run-time normalisations (constant_norm_rescale, layer_norm) that decode
// needs to undo what encode did; empty for the others.
struct NormState {
  at::Tensor in_mul, out_mul, shift;  // x_in = (x - shift) * in_mul; out = y * out_mul + shift
};

// x: [..., d_in] -> feature activations [..., d_sae] on the SAE's device (x is moved there when it is
// elsewhere; SAELens encode: normalise, subtract b_dec when
// apply_b_dec_to_input, W_enc + b_enc, then ReLU / JumpReLU (relu(h) * (h > threshold)) / TopK(k) + ReLU).
at::Tensor encode(const SAE& sae, const at::Tensor& x, NormState* state = nullptr);
// acts: [..., d_sae] -> reconstruction [..., d_in] (acts W_dec + b_dec, then the normalisation undone).
at::Tensor decode(const SAE& sae, const at::Tensor& acts, const NormState* state = nullptr);
// x: [..., d_in] -> decode(encode(x)).
at::Tensor reconstruct(const SAE& sae, const at::Tensor& x);

// Writes `sae` in SAELens's format into `dir` (cfg.json, sae_weights.safetensors, and
// sparsity.safetensors when log_sparsity is set), each file atomically, from host copies of the weights.
void save_sae(const SAE& sae, const std::string& dir);

}  // namespace mechscope::sae
