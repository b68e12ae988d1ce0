// AttentionViz (Yeh et al., "AttentionViz: A Global View of Transformer Attention", IEEE VIS 2023; seed
// 003): every head's queries and keys as the attention uses them, checked against the model's own
// pattern, normalised without changing attention (key translation; queries × c, keys × 1/c), and
// embedded jointly (PCA, Barnes-Hut t-SNE) per head, per layer or over the whole model.
//
//   auto ex = extract(model, texts, {0, 1});            // q, k per layer; recomputed pattern checked
//   auto groups = scope_groups(Scope::Layer, ex, heads);
//   for (auto& g : groups) { auto n = normalize(ex, g, opts); auto p = project(points(ex, g, n), popt); }
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "models/model.h"

namespace mechscope::analysis::attnviz {

// How a family turns q·k into scores, from the model's config in this one place: scores =
// softcap(q·k × scale) masked (causal, local window, padding keys). A family whose rule is not the one
// written here is caught by extract()'s check against hook_pattern, never silently drawn wrong.
struct AttentionRule {
  double scale = 1;  // GPT-Neo: 1 (unscaled); Gemma-2: query_pre_attn_scalar^-1/2; else 1/sqrt(d_head)
  bool causal = true;
  int64_t window = 0;  // local attention: keys j > i - window only (0: none)
  double softcap = 0;  // Gemma-2 attn_logit_softcapping: cap · tanh(s / cap) (0: none)
};
AttentionRule attention_rule(const models::ModelConfig& cfg, int layer);

// One input sequence: ids and optional token types (BERT segments; empty = zeros).
struct Input {
  std::vector<int64_t> ids;
  std::vector<int64_t> token_types;
};

struct Extracted {
  int64_t n_texts = 0, n_pos = 0, n_heads = 0, d_head = 0;
  std::vector<int64_t> lengths;      // real tokens per text
  std::vector<int> layers;           // the layers extracted, in order
  std::vector<AttentionRule> rules;  // per extracted layer
  at::Device device = at::kCPU;      // where q, k and pattern are: the model's device until to_host()
  // Per extracted layer, float64, padding positions zero:
  std::vector<at::Tensor> q, k;         // [text, pos, n_heads, d_head]; k expanded to the query heads (GQA)
  std::vector<at::Tensor> pattern;      // [text, n_heads, pos, pos]: the model's hook_pattern (padding rows zero)
  std::vector<double> max_diff;         // |recomputed - hook_pattern| over real query rows
  at::Tensor allowed(size_t li) const;  // [text, pos, pos] bool on `device`: query i of a text may attend key j
  // q, k and pattern copied to the host once (for the figures and the files), `device` then the CPU.
  void to_host();
};

// Runs the texts as one right-padded batch with hooks on q, k (hook_rot_* on rotary models) and
// hook_pattern of `layers`, recomputes softmax(rule(q·k)) from them and compares with the pattern.
// What the hooks read stays on the model's device (normalisation and PCA run there).
// Error naming the layer, the family and the difference when it exceeds `tolerance`.
Extracted extract(const models::HookedModel& model, const std::vector<Input>& texts, const std::vector<int>& layers,
                  double tolerance = 1e-4);

// The texts of several extractions of the same layers (each of one or more texts) as one, in order: each
// part's q, k and pattern copied into the joint right-padded tensors (padding zero, as extract() leaves
// it), the check's difference the largest of the parts'. The CLI extracts one text at a time, so any
// process (an MPI rank, issue 18) computes a text exactly as another would.
Extracted join_texts(const std::vector<Extracted>& parts);

// softmax(rule(q·k)) with the mask: q, k [text, pos, heads, d] -> [text, heads, pos, pos] (rows of
// padding queries zero).
at::Tensor recompute_pattern(const at::Tensor& q, const at::Tensor& k, const at::Tensor& allowed,
                             const AttentionRule& rule);

enum class Scope { Head, Layer, Model };
Scope parse_scope(const std::string& s);  // head | layer | model
std::string scope_name(Scope s);

// The (layer index into Extracted, head) pairs normalised and embedded together.
struct Group {
  std::string name;  // "L3 H5", "L3", "model"
  std::vector<std::pair<size_t, int64_t>> members;
};
std::vector<Group> scope_groups(Scope scope, const Extracted& ex, const std::vector<int64_t>& heads);

enum class Mode { Paper, Search, None };
Mode parse_mode(const std::string& s);  // paper | search | none
std::string mode_name(Mode m);

struct Range {
  double lo = 0, hi = 0;
  int steps = 1;
};
Range parse_range(const std::string& s, const std::string& flag);  // "LO:HI:STEPS"

struct NormalizeOptions {
  Mode mode = Mode::Paper;
  Range search_a{-1, 1, 21};     // keys += a (every coordinate), linear grid
  Range search_c{0.25, 4, 17};   // log-spaced grid
  Range paper_c{0.01, 100, 81};  // log-spaced coarse grid, then golden-section refinement
};

// What normalisation chose for one group, and the criteria before and after.
struct Normalization {
  std::vector<double> translation;  // added to every key [d_head] (paper: query centroid - key centroid)
  double a = 0;                     // search: the scalar added to every key coordinate
  double c = 1;                     // queries × c, keys × 1/c
  // Paper criterion: attention-weighted Pearson correlation of q·k with -|q - k| over allowed pairs.
  double weighted_corr_before = 0, weighted_corr_after = 0;
  // Seed criterion: |Pearson correlation| of q·k with the cosine distance 1 - cos(q, k) (unweighted).
  double cosine_corr_before = 0, cosine_corr_after = 0;
  double c_effect = 0;            // search: spread of the criterion over c at the chosen a (0: c is inert)
  double max_pattern_change = 0;  // |pattern(normalised) - pattern(raw)|, recomputed
  std::string note;
};

// Normalises the members of `g` jointly: one translation and one c for all of them.
// q_out / k_out receive the normalised [text, pos, heads, d] for each extracted layer (allocated on
// first use as copies of ex.q / ex.k).
Normalization normalize(const Extracted& ex, const Group& g, const NormalizeOptions& opt,
                        std::vector<at::Tensor>& q_out, std::vector<at::Tensor>& k_out);

// normalize() for every group, the groups in parallel on the CPU (each is small work: one thread per
// group beats many threads per tiny op), one after another on a GPU; q_out / k_out as normalize(). The
// pair statistics are made where ex is; the criteria (scalar searches over c and a) run on host copies
// of them, one per group and stage.
std::vector<Normalization> normalize_all(const Extracted& ex, const std::vector<Group>& groups,
                                         const NormalizeOptions& opt, std::vector<at::Tensor>& q_out,
                                         std::vector<at::Tensor>& k_out);

// The criteria on given vectors: q, k [text, pos, d], attention and allowed [text, pos, pos].
double weighted_corr(const at::Tensor& q, const at::Tensor& k, const at::Tensor& attn, const at::Tensor& allowed,
                     double c = 1);
double cosine_corr(const at::Tensor& q, const at::Tensor& k, const at::Tensor& allowed);

// Points of a group, in a fixed order: for each member, for each text, the real query positions then
// the real key positions.
struct PointSet {
  at::Tensor x;  // [n, d] float64
  struct Meta {
    size_t layer_index;
    int64_t head, text, pos;
    bool key;
  };
  std::vector<Meta> meta;
};
PointSet points(const Extracted& ex, const Group& g, const std::vector<at::Tensor>& q,
                const std::vector<at::Tensor>& k);

// Exact PCA: centred x [n, d] -> the first `dims` principal coordinates [n, dims] (x projected on the
// top eigenvectors of its d x d scatter matrix, which equals U·S of the thin SVD; each component's sign
// fixed so its largest-magnitude loading is positive); variance ratios out. Runs on x's device; the
// coordinates come back to the host in one copy.
at::Tensor pca(const at::Tensor& x, int dims, std::vector<double>* explained = nullptr);

struct TsneOptions {
  double perplexity = 30;
  double theta = 0.5;  // Barnes-Hut accuracy (0 = exact gradient)
  int iterations = 1000;
  double learning_rate = 0;  // 0: max(n / early_exaggeration / 4, 50) (sklearn's "auto")
  double early_exaggeration = 12;
  int exaggeration_iters = 250;
  uint64_t seed = 0;
};
// Barnes-Hut t-SNE (van der Maaten 2014) to 2-D: x [n, d] -> [n, 2]. Error when n < 3 or the
// perplexity is not below n - 1. A tree code on the host: x is copied there once.
at::Tensor tsne(const at::Tensor& x, const TsneOptions& opt);

enum class Projection { Pca, Tsne };
// PCA (dims components) or t-SNE (2-D) of every point set, the sets in parallel (on the CPU; PCA on a
// GPU runs them one after another there); PCA's variance ratios into `explained` when given. The
// coordinates are on the host.
std::vector<at::Tensor> project_all(const std::vector<PointSet>& pts, Projection how, int dims, const TsneOptions& opt,
                                    std::vector<std::vector<double>>* explained = nullptr);

// Lines from each query to keys: the top key, the top K, or the smallest set holding mass P.
struct LineRule {
  enum Kind { Top1, TopK, Mass } kind = Top1;
  int k = 1;
  double mass = 0.5;
};
LineRule parse_lines(const std::string& s);  // top1 | topk:K | mass:P
struct Link {
  int64_t text, query, key;
  double attention;
  bool top;  // the query's top key
};
// attn [text, pos, pos] of one head, lengths per text -> the links of every real query.
std::vector<Link> links(const at::Tensor& attn, const at::Tensor& allowed, const std::vector<int64_t>& lengths,
                        const LineRule& rule);

}  // namespace mechscope::analysis::attnviz
