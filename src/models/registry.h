// The architecture table (as llama.cpp's LLM_ARCH table): HF model_type -> config parser + builder.
// Adding an architecture = one file with these two functions + one row in registry.cpp.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "models/model.h"

namespace mechscope::models {

struct Architecture {
  std::vector<std::string> model_types;  // config.json model_type values served by this builder
  // Fills the typed fields of cfg from cfg.raw (model_type/raw already set).
  void (*parse)(ModelConfig& cfg);
  std::unique_ptr<HookedModel> (*build)(const ModelConfig& cfg, const io::Checkpoint& ckpt, const LoadOptions& opts);
};

const std::vector<Architecture>& architectures();

// config.json accessors with errors naming the key and the file's model_type.
int64_t cfg_int(const ModelConfig& cfg, const char* key);
int64_t cfg_int(const ModelConfig& cfg, const char* key, int64_t def);  // def when absent or null
double cfg_double(const ModelConfig& cfg, const char* key, double def);
bool cfg_bool(const ModelConfig& cfg, const char* key, bool def);
std::string cfg_string(const ModelConfig& cfg, const char* key, const std::string& def);

// Multi-head attention sizes: n_heads from `heads_key`, n_kv_heads = n_heads, d_head = d_model /
// n_heads; Error naming both keys when the width is not a positive multiple of the heads.
void set_mha_heads(ModelConfig& cfg, const char* width_key, const char* heads_key);

// GPT-2 family (gpt2, distilgpt2, gpt2-medium/large/xl; both key layouts).
void parse_gpt2(ModelConfig& cfg);
std::unique_ptr<HookedModel> build_gpt2(const ModelConfig& cfg, const io::Checkpoint& ckpt, const LoadOptions& opts);

// GPT-Neo (gpt_neo): alternating global/local attention, unscaled scores.
void parse_gpt_neo(ModelConfig& cfg);
std::unique_ptr<HookedModel> build_gpt_neo(const ModelConfig& cfg, const io::Checkpoint& ckpt, const LoadOptions& opts);

// GPT-NeoX / Pythia (gpt_neox): fused per-head QKV, partial rotary, parallel residual.
void parse_gpt_neox(ModelConfig& cfg);
std::unique_ptr<HookedModel> build_gpt_neox(const ModelConfig& cfg, const io::Checkpoint& ckpt, const LoadOptions& opts);

// Llama family (llama, mistral, qwen2): RMSNorm, rotary, SwiGLU, grouped-query attention.
void parse_llama(ModelConfig& cfg);
std::unique_ptr<HookedModel> build_llama(const ModelConfig& cfg, const io::Checkpoint& ckpt, const LoadOptions& opts);

// Gemma (gemma, gemma2): (1 + w) RMSNorms, GeGLU, sqrt(d_model)-scaled embeddings; Gemma-2 adds post-norms,
// soft-capping, query_pre_attn_scalar and alternating sliding-window layers.
void parse_gemma(ModelConfig& cfg);
std::unique_ptr<HookedModel> build_gemma(const ModelConfig& cfg, const io::Checkpoint& ckpt, const LoadOptions& opts);

// BERT (bert): BertModel / BertForMaskedLM / BertForSequenceClassification, post-LayerNorm encoder.
void parse_bert(ModelConfig& cfg);
std::unique_ptr<HookedModel> build_bert(const ModelConfig& cfg, const io::Checkpoint& ckpt, const LoadOptions& opts);

// DistilBERT (distilbert): DistilBertModel / DistilBertForSequenceClassification.
void parse_distilbert(ModelConfig& cfg);
std::unique_ptr<HookedModel> build_distilbert(const ModelConfig& cfg, const io::Checkpoint& ckpt, const LoadOptions& opts);

// A classifier's labels from config.json's id2label (LABEL_i where it has none), for `n` classes;
// Error naming the key when id2label has another count or ids outside 0 .. n - 1.
std::vector<std::string> read_labels(const ModelConfig& cfg, int64_t n);

}  // namespace mechscope::models
