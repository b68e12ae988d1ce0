// The HookedModel interface every architecture implements (one file per architecture, registered by
// Hugging Face `model_type`). Analyses talk to models only through this header.
//
// A forward pass is split into embed -> blocks -> unembed so analyses can re-run only the layers a
// patch can change (ARCHITECTURE.md, "What makes it fast"); forward() composes them.
#pragma once
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hooks/hooks.h"

namespace mechscope::models {

// Architecture-independent sizes, named as TransformerLens's HookedTransformerConfig.
struct ModelConfig {
  std::string model_type;    // HF model_type ("gpt2", ...)
  std::string architecture;  // HF architectures[0] when given
  int64_t n_layers = 0, d_model = 0, n_heads = 0, n_kv_heads = 0, d_head = 0, d_mlp = 0;
  int64_t n_ctx = 0, d_vocab = 0;
  std::string act_fn;  // "gelu_new", "gelu", "relu", "silu", ...
  double eps = 1e-5;
  bool causal = true;      // false for encoders (BERT)
  bool gated_mlp = false;  // SwiGLU-style: mlp.hook_pre_linear exists
  bool rotary = false;     // hook_rot_q / hook_rot_k exist
  bool tied_embeddings = false;
  int64_t n_token_types = 0;        // BERT's type_vocab_size; 0 = the model takes no token type ids
  std::vector<std::string> labels;  // a classifier's id2label, in id order (empty for other models)
  std::optional<int64_t> bos_token_id, eos_token_id, pad_token_id;
  nlohmann::json raw;  // config.json as read
};

// Keys/values of earlier positions, per layer: [batch, n_kv_heads, past, d_head] (after rotary).
struct KVCache {
  std::vector<at::Tensor> k, v;
  int64_t length() const { return k.empty() || !k[0].defined() ? 0 : k[0].size(2); }
};

// What one call needs besides the residual stream.
struct RunContext {
  const hooks::HookSet* hooks = nullptr;  // may be null: no hooks
  // [batch, past + pos] 1 for real tokens, 0 for padding (keys that must never be attended to).
  // Undefined = every token is real.
  at::Tensor attention_mask;
  // [batch, pos] position ids of the new tokens. Undefined = past .. past + pos - 1, or, with an
  // attention_mask, the count of real tokens before each one (left padding keeps positions right).
  at::Tensor position_ids;
  // [batch, pos] token type ids (BERT). Undefined = zeros.
  at::Tensor token_type_ids;
  KVCache* cache = nullptr;  // when set: attends to cached keys/values and appends the new ones
};

// The packed fast path's protocol (models/packed_runs.h): an engine detail of the patching and tracing
// sweeps, kept out of this interface's header.
struct PackedRuns;

class HookedModel {
 public:
  virtual ~HookedModel() = default;
  const ModelConfig& config() const { return cfg_; }

  // Every hook point this model fires, in forward order (for `mechscope info`).
  virtual std::vector<std::string> hook_names() const = 0;

  // ids: [batch, pos] int64 -> resid_pre of block 0: [batch, pos, d_model].
  virtual at::Tensor embed(const at::Tensor& ids, RunContext& ctx) const = 0;
  // resid: [batch, pos, d_model] -> resid_post of `layer`.
  virtual at::Tensor block(int layer, const at::Tensor& resid, RunContext& ctx) const = 0;
  // resid_post of the last block: [batch, pos, d_model] -> ln_final output (hooks fired).
  virtual at::Tensor final_norm(const at::Tensor& resid, RunContext& ctx) const = 0;
  // Normalised residual [..., d_model] -> logits [..., d_vocab] (or a subset of columns when
  // `columns` is given: [..., columns.size(0)]).
  virtual at::Tensor unembed(const at::Tensor& x, const at::Tensor& columns = {}) const = 0;

  // Packed fast path for patching sweeps (models/packed_runs.h). rows: [R, d_model] resid_pre of
  // `layer` -> resid_post [R, d_model]. Optional: the default returns an undefined tensor and callers fall back to block()
  // on full-length runs (correct for every architecture, only slower).
  virtual at::Tensor block_packed(int layer, const at::Tensor& rows, const PackedRuns& runs) const { return {}; }

  // False for checkpoints without an output head (a bare BertModel): unembed() and forward() then
  // throw an Error, and callers that only want activations run embed/block/final_norm themselves.
  virtual bool has_lm_head() const { return true; }

  // A sequence-classification head (BertForSequenceClassification, DistilBertForSequenceClassification):
  // config().labels names its classes. Such models have no language-model head.
  virtual bool has_classifier() const { return false; }
  // Output of the last block [batch, pos, d_model] -> class logits [batch, n_labels], from the first
  // ([CLS]) position as transformers does. The default throws an Error (no classification head).
  virtual at::Tensor classify(const at::Tensor& resid, RunContext& ctx) const;

  // Full forward: ids [batch, pos] -> logits [batch, pos, d_vocab].
  at::Tensor forward(const at::Tensor& ids, RunContext& ctx) const;

  // Every parameter by its HF checkpoint name (for parameter counts and saving).
  virtual std::vector<std::pair<std::string, at::Tensor>> parameters() const = 0;
  int64_t parameter_count() const;
  at::ScalarType dtype() const { return dtype_; }
  // Where the weights are: every tensor a caller passes in (ids, masks, patches) must be there too,
  // and what the model makes itself (positions, masks) is made there.
  at::Device device() const { return device_; }

 protected:
  ModelConfig cfg_;
  at::ScalarType dtype_ = at::kFloat;
  at::Device device_ = at::kCPU;
};

struct LoadOptions {
  at::ScalarType dtype = at::kFloat;  // compute dtype; weights stored otherwise are converted
  // Weights are read to host memory (mapped from the safetensors) and copied to it once, at load.
  at::Device device = at::kCPU;
};

// Opens `model` (directory or hub id in the HF cache), reads config.json and builds the architecture
// named by model_type. Error listing the supported types when unknown.
std::unique_ptr<HookedModel> load_model(const std::string& model, const LoadOptions& opts = {});

// Reads config.json of `dir` into a ModelConfig (no weights). Error when malformed.
ModelConfig read_config(const std::string& dir);

// The model types load_model accepts.
std::vector<std::string> supported_model_types();

}  // namespace mechscope::models
