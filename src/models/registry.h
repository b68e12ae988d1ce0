// The architecture table (as llama.cpp's LLM_ARCH table): HF model_type -> display name, config parser
// and builder. Adding an architecture = one file with its tensor table (tensor_table.h), typed config,
// block maths and its Architecture row, + one line here and one in registry.cpp.
#pragma once
#include <any>
#include <memory>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "models/model.h"

namespace mechscope::models {

struct ModelType {
  const char* model_type;    // config.json's model_type
  const char* display_name;  // in figures and reports ("GPT-2"); null: the model_type itself
};

struct Architecture {
  std::vector<ModelType> model_types;  // the model_type values served by this builder
  // Reads every config.json key the family uses, once: the architecture-independent fields into cfg
  // (model_type / raw already set) and the family's own typed config into the value returned, which
  // build() receives. Error naming the key for a bad value.
  std::any (*parse)(ModelConfig& cfg);
  std::unique_ptr<HookedModel> (*build)(const ModelConfig& cfg, const std::any& family, const io::Checkpoint& ckpt,
                                        const LoadOptions& opts);
};

const std::vector<Architecture>& architectures();

// The name figures and reports give a model_type ("GPT-2", "Llama"): its display name, else the
// model_type itself ("GPT" when empty).
std::string display_name(const std::string& model_type);

// config.json accessors with errors naming the key and the file's model_type.
int64_t cfg_int(const ModelConfig& cfg, const char* key);
int64_t cfg_int(const ModelConfig& cfg, const char* key, int64_t def);  // def when absent or null
double cfg_double(const ModelConfig& cfg, const char* key, double def);
bool cfg_bool(const ModelConfig& cfg, const char* key, bool def);
std::string cfg_string(const ModelConfig& cfg, const char* key, const std::string& def);

// Multi-head attention sizes: n_heads from `heads_key`, n_kv_heads = n_heads, d_head = d_model /
// n_heads; Error naming both keys when the width is not a positive multiple of the heads.
void set_mha_heads(ModelConfig& cfg, const char* width_key, const char* heads_key);
// Grouped-query attention sizes (Llama-style keys): d_model from hidden_size, n_heads from
// num_attention_heads, n_kv_heads from num_key_value_heads (default n_heads), d_head from head_dim
// (default `default_head_dim`, 0: hidden_size / heads); Error naming the key when they do not fit.
void set_gqa_heads(ModelConfig& cfg, int64_t default_head_dim);

// The rows, one per architecture file.
const Architecture& gpt2_architecture();        // gpt2, distilgpt2, gpt2-medium/large/xl; both key layouts
const Architecture& gpt_neo_architecture();     // alternating global/local attention, unscaled scores
const Architecture& gpt_neox_architecture();    // Pythia: fused per-head QKV, partial rotary, parallel residual
const Architecture& llama_architecture();       // llama, mistral, qwen2: RMSNorm, rotary, SwiGLU, GQA
const Architecture& gemma_architecture();       // gemma, gemma2: (1 + w) RMSNorms, GeGLU, scaled embeddings
const Architecture& bert_architecture();        // BertModel / ForMaskedLM / ForSequenceClassification
const Architecture& distilbert_architecture();  // DistilBertModel / ForSequenceClassification

// A classifier's labels from config.json's id2label (LABEL_i where it has none), for `n` classes;
// Error naming the key when id2label has another count or ids outside 0 .. n - 1.
std::vector<std::string> read_labels(const ModelConfig& cfg, int64_t n);

}  // namespace mechscope::models
