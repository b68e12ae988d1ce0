// Checkpoint tensor names per architecture, as llama.cpp's LLM_TENSOR_NAMES: one table of {key pattern,
// shape, field} rows from which a model both loads its weights (shape checked, the tensor and the file
// named when it is missing or mis-shaped) and lists them in parameters(). Shapes are written in the
// typed config's sizes, so a table reads as the checkpoint's layout.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "io/checkpoint.h"
#include "models/model.h"

namespace mechscope::models {

// A size a shape is written in: a ModelConfig field, or a classifier's label count (from the checkpoint).
enum class Size : uint8_t { d_model, d_mlp, q_dim, kv_dim, vocab, ctx, token_types, labels };
struct Dim {
  Size size;
  int64_t times = 1;
};
constexpr Dim operator*(int64_t n, Dim d) { return {d.size, n * d.times}; }

namespace dims {
// d_model, d_mlp, n_heads * d_head, n_kv_heads * d_head, d_vocab, n_ctx, n_token_types, labels.
constexpr Dim D{Size::d_model}, M{Size::d_mlp}, Q{Size::q_dim}, KV{Size::kv_dim}, V{Size::vocab}, C{Size::ctx},
    TT{Size::token_types}, N{Size::labels};
}  // namespace dims

// One tensor: its key ("{P}" = the model prefix the checkpoint uses, "{L}" = the layer), its shape,
// the feature bits it needs (0: every checkpoint of the architecture has it) and its field, in the
// model's weights G or, for keys with "{L}", in each block's weights B.
template <class G, class B>
struct TensorSpec {
  const char* key;
  std::vector<Dim> shape;
  at::Tensor G::*model = nullptr;
  at::Tensor B::*block = nullptr;
  unsigned needs = 0;
  const char* alt = nullptr;  // the key older checkpoints use instead (loading only)
};

template <class G, class B>
struct TensorTable {
  const char* arch;                     // for errors: "GPT-2"
  std::vector<std::string> prefixes;    // tried in order for {P}; parameters() writes the first
  std::vector<TensorSpec<G, B>> specs;  // in parameters() order; the first tells which prefix the file uses

  static TensorSpec<G, B> model(at::Tensor G::*f, const char* key, std::vector<Dim> shape, unsigned needs = 0,
                                const char* alt = nullptr) {
    return {key, std::move(shape), f, nullptr, needs, alt};
  }
  static TensorSpec<G, B> block(at::Tensor B::*f, const char* key, std::vector<Dim> shape, unsigned needs = 0) {
    return {key, std::move(shape), nullptr, f, needs, nullptr};
  }
};

// What loading a table needs besides the table.
struct TableContext {
  const io::Checkpoint& ckpt;
  const ModelConfig& cfg;
  at::ScalarType dtype;          // weights are converted to it
  unsigned features = 0;         // which optional tensors this checkpoint has
  int64_t n_labels = 0;          // Size::labels
  at::Device device = at::kCPU;  // weights are copied there
};

// The key of `pattern` under `prefix` at `layer`.
std::string tensor_key(const char* pattern, const std::string& prefix, int layer);
// The first of `prefixes` under which `probe` (a pattern) is in the checkpoint; Error listing the
// keys tried and the file when none is.
std::string find_prefix(const io::Checkpoint& ckpt, const std::vector<std::string>& prefixes, const char* probe,
                        const char* arch);
// The tensor under `key` (else `alt` when given and present) with the shape `dims` gives, in c.dtype
// on c.device;
// Error naming the tensor, the file and both shapes when they differ, or the tensor and the file
// when it is missing.
at::Tensor fetch_tensor(const TableContext& c, const std::string& key, const std::string& alt,
                        const std::vector<Dim>& dims);

// Fills g and one B per layer from the checkpoint: every row whose feature bits c.features has.
template <class G, class B>
void load_tensors(const TensorTable<G, B>& t, const TableContext& c, G& g, std::vector<B>& blocks) {
  std::string prefix = find_prefix(c.ckpt, t.prefixes, t.specs.front().key, t.arch);
  blocks.resize(c.cfg.n_layers);
  for (const auto& s : t.specs) {
    if ((c.features & s.needs) != s.needs) continue;
    std::string alt = s.alt ? tensor_key(s.alt, prefix, -1) : std::string();
    if (s.model) g.*s.model = fetch_tensor(c, tensor_key(s.key, prefix, -1), alt, s.shape);
    for (int l = 0; s.block && l < (int)blocks.size(); ++l)
      blocks[l].*s.block = fetch_tensor(c, tensor_key(s.key, prefix, l), "", s.shape);
  }
}

// Every tensor load_tensors filled, by its key under the first prefix, in table order with each run
// of block rows repeated per layer (layer 0's, then layer 1's, ...), as save_pretrained names them.
template <class G, class B>
std::vector<std::pair<std::string, at::Tensor>> named_tensors(const TensorTable<G, B>& t, unsigned features, const G& g,
                                                              const std::vector<B>& blocks) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  const std::string& prefix = t.prefixes.front();
  auto has = [&](const TensorSpec<G, B>& s) { return (features & s.needs) == s.needs; };
  for (size_t i = 0; i < t.specs.size();) {
    if (t.specs[i].model) {
      if (has(t.specs[i])) out.emplace_back(tensor_key(t.specs[i].key, prefix, -1), g.*t.specs[i].model);
      ++i;
      continue;
    }
    size_t end = i;
    while (end < t.specs.size() && t.specs[end].block) ++end;
    for (int l = 0; l < (int)blocks.size(); ++l)
      for (size_t j = i; j < end; ++j)
        if (has(t.specs[j])) out.emplace_back(tensor_key(t.specs[j].key, prefix, l), blocks[l].*t.specs[j].block);
    i = end;
  }
  return out;
}

}  // namespace mechscope::models
