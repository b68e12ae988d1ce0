// ROME's causal tracing (Meng et al. 2022, kmeng01/rome experiments/causal_trace.py), with ROME's
// exact semantics: a batch of the clean prompt and `samples` copies whose subject token embeddings
// (hook_embed: token embeddings, before position embeddings) get numpy-legacy noise, re-drawn from
// RandomState(seed) for every traced run; one state restored from the clean run per cell; score =
// mean over the corrupted rows of softmax(last-position logits)[answer].
//
// Two implementations give the same numbers: `naive` runs ROME's way (one full forward of 1 + samples
// rows per cell), the fast one reuses the corrupted run below and before the restored state and
// batches many cells per forward (ARCHITECTURE.md, "What makes it fast").
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "models/model.h"

namespace mechscope::analysis::causal_trace {

// all: the block output (resid_post) at one layer; mlp / attn: that sublayer's output at a window of
// layers [L - w/2, L + w/2) clipped to the model (ROME's trace_important_window).
enum class Kind { All, Mlp, Attn };
const char* kind_name(Kind k);          // "all", "mlp", "attn"
Kind parse_kind(const std::string& s);  // Error naming the value otherwise
std::vector<Kind> parse_kinds(const std::string& list, const std::string& flag = option("kinds"));

// ROME's noise rules (causal_trace.py main): "s<k>" k × the std of subject token embeddings
// ("s" alone = s1), a plain number (absolute level of Gaussian noise), "u<x>" uniform(-x, x),
// "t<d>" Student-t with d > 2 degrees of freedom scaled to the subjects' embedding std
// (sqrt((d - 2) / d) × σ × standard_t(d), ROME's variance matching, here per coordinate).
struct NoiseRule {
  enum Type { StdMultiple, Absolute, Uniform, StudentT } type = StdMultiple;
  double value = 3;  // k, the level, x, or d
  std::string text;  // as given
  bool needs_embedding_std() const { return type == StdMultiple || type == StudentT; }
};
// "a=<x>" / "a<x>" is an absolute level too. With bare_number_is_std (the seed's --noise-level 3.0), a
// plain number means s<number>. Errors name `flag` and quote `s` as given.
NoiseRule parse_noise(const std::string& s, const std::string& flag = option("noise"), bool bare_number_is_std = false);

// The noise actually drawn: scale × (randn | uniform(-1, 1) | standard_t(df)).
struct Noise {
  enum Dist { Gaussian, Uniform, StudentT } dist = Gaussian;
  double scale = 0.1;
  double df = 0;
  bool replace = false;  // ROME's --replace: the embedding is replaced by the noise instead of shifted
};
// Error when the resolved scale would overflow float32 activations (above 1e15).
Noise resolve_noise(const NoiseRule& rule, double embedding_std);

// numpy.random.RandomState(seed) drawing [samples, subject_len, d_model] (C order) as ROME does,
// times the scale: float64.
at::Tensor draw_noise(const Noise& noise, uint32_t seed, int64_t samples, int64_t subject_len, int64_t d_model);

// ROME's collect_embedding_std: the (unbiased) std over all token-embedding entries of the given
// token sequences (each subject encoded alone).
double embedding_std(const models::HookedModel& model, const std::vector<std::vector<int64_t>>& seqs);

struct TraceOptions {
  int samples = 10;
  int window = 10;
  Noise noise;
  uint32_t seed = 1;
  std::vector<Kind> kinds{Kind::All, Kind::Mlp, Kind::Attn};
  bool naive = false;
  // Fast path: at most this many packed rows (run × position) per batch; 0 = about 8 MB of residual
  // stream (bigger batches spend more time moving memory than they gain in GEMM speed).
  int64_t max_batch_tokens = 0;
  // Fast path through the model's block_packed (false: the packed engine's generic path through
  // block() on full-length runs, the same numbers; for checking).
  bool use_packed = true;
  std::function<void(int64_t)> on_cells;  // called with the number of cells just finished (progress)
  // ROME's `expect`: when set and false for the answer, no cell is traced (TraceResult::rejected).
  std::function<bool(int64_t answer_id)> accept;
};

struct TraceInput {
  std::vector<int64_t> ids;
  int64_t subject_begin = 0, subject_end = 0;  // [begin, end) token range of the subject
  std::optional<int64_t> answer;               // default: the clean run's top token
};

struct TraceResult {
  int64_t answer_id = 0;
  double high_score = 0;  // p(answer) on the clean prompt
  double low_score = 0;   // mean p(answer) over the corrupted copies, nothing restored
  std::vector<Kind> kinds;
  std::vector<at::Tensor> scores;      // per kind: [tokens, layers] float64
  at::Tensor clean_probs;              // [d_vocab] softmax of the clean run's last position
  std::string method;                  // "fast", or "naive" (asked for, or a model without block_packed)
  bool rejected = false;               // TraceOptions::accept refused the answer: scores are empty
  const at::Tensor& of(Kind k) const;  // Error when that kind was not traced
};

// Layers restored for a window cell centred at `layer`: [max(0, layer - w/2), min(n, layer + ceil(w/2))).
std::pair<int, int> window_range(int layer, int window, int n_layers);

// Error unless `model` is a causal language model with an output head: ROME's scores are the
// probability of the next token after the prompt, which an encoder (BERT) does not predict.
void check_traceable(const models::HookedModel& model);

// Validates the input (subject range inside the prompt, ids), runs the clean and corrupted runs and
// every cell of every kind.
TraceResult trace(const models::HookedModel& model, const TraceInput& in, const TraceOptions& opt);

// ROME's average_causal_effects notebook: per fact, rows of its [token, layer] scores grouped into
// first subject token, middle subject tokens, last subject token, first subsequent token, further
// tokens, last token; pooled over facts (middle/further rows each count once).
extern const char* const kCategoryNames[6];
struct CategoryRows {
  std::vector<int64_t> rows[6];
};
CategoryRows categories(int64_t n_tokens, int64_t subject_begin, int64_t subject_end);

struct AieAccumulator {
  // scores: [tokens, layers]; adds the fact's rows to each category and its low/high score.
  void add(const at::Tensor& scores, int64_t subject_begin, int64_t subject_end, double low, double high);
  int64_t facts() const { return (int64_t)low.size(); }
  // [6, layers]: mean score per category (NaN where a category has no row); its population std
  // (ROME's result_std); the population std of the indirect effects (score - that fact's low score);
  // AIE = mean - mean low score.
  at::Tensor mean() const;
  at::Tensor std() const;
  at::Tensor effect_std() const;
  at::Tensor aie() const;
  double mean_low() const;
  double mean_high() const;
  int64_t rows(int c) const { return (int64_t)data[c].size(); }

  std::vector<at::Tensor> data[6];  // each [layers] float64
  std::vector<double> data_low[6];  // the low score of the fact each row came from
  std::vector<double> low, high;
};

}  // namespace mechscope::analysis::causal_trace
