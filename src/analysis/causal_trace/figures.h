// The figures of causal tracing: ROME's per-prompt heatmaps (plot_trace_heatmap), the average
// indirect effect rollups (average_causal_effects notebook) and the summaries of a run over many facts.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "analysis/causal_trace/causal_trace.h"
#include "report/figure.h"

namespace mechscope::analysis::causal_trace {

// ROME's plot_trace_heatmap: tokens down (subject tokens marked '*'), layers across, vmin = low score,
// Purples / Greens / Reds for all / mlp / attn, colour bar "p(answer)".
report::Figure trace_heatmap(const std::string& id, const at::Tensor& scores, const std::vector<std::string>& tokens,
                             int64_t subject_begin, int64_t subject_end, double low_score, const std::string& answer,
                             Kind kind, int window, const std::string& model_name);

// ROME's rollup: AIE = mean score − mean low score per token category and layer, clipped at 0,
// drawn from 0 to vmax (ROME scales every kind to the "all" plot's maximum).
report::Figure average_heatmap(const std::string& id, const AieAccumulator& acc, Kind kind, double vmax, int window,
                               const std::string& model_name);

// Per-fact summaries a run over many facts draws from.
struct FactSummary {
  std::string id;
  double low = 0, high = 0;
  std::vector<double> effect;  // per layer: score at the located token − low score
  int best_layer = 0;
  double best_effect = 0;
};

// AIE at the first subject token by layer: all three kinds overlaid, then each alone (± std bands).
report::Figure t0_aie_figure(const std::string& id, const std::vector<Kind>& kinds,
                             const std::vector<const AieAccumulator*>& accs, const std::string& model_name);

// Six panels: best-layer histogram, effect vs layer, mean effect per layer (± std), clean vs corrupted
// scores (log axes, y = x), CDF of the best effects with the median, summary statistics.
report::Figure aggregate_figure(const std::string& id, const std::vector<FactSummary>& facts, int n_layers,
                                const std::string& located, int facts_total, int facts_skipped);

// How often each layer is the best layer.
report::Figure layer_importance_figure(const std::string& id, const std::vector<FactSummary>& facts, int n_layers,
                                       const std::string& located);

}  // namespace mechscope::analysis::causal_trace
