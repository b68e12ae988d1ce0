// The seed's TSEA figures: Manhattan plots (one facet per token set, the top-n features labelled when
// above the threshold, as manhattan_plot_enrichment_scores), the scatter of two sets' enrichment with
// marginal histograms, and per feature the logit-weight histograms of tokens in and out of a set
// (plot_top_k_feature_projections_by_token_and_category). Scores are plotted as -log(1 - score).
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "analysis/sae/token_sets.h"
#include "report/figure.h"

namespace mechscope::analysis::sae {

// scores: [n_sets, n_features] for `features`; `rows`: which sets (rows of scores) go in this plot.
report::Figure manhattan_figure(const at::Tensor& scores, const std::vector<TokenSet>& sets,
                                const std::vector<size_t>& rows, const std::vector<int64_t>& features,
                                double label_threshold, int top_n, const std::string& id, const std::string& title);

report::Figure pair_figure(const at::Tensor& scores, const std::vector<TokenSet>& sets, size_t a, size_t b,
                           const std::vector<int64_t>& features, const std::string& id);

// projection: [V] logit weights of `feature`; tokens: display strings for the hover text.
report::Figure projection_by_category_figure(const at::Tensor& projection, const TokenSet& set, int64_t feature,
                                             double score, const std::string& id);

}  // namespace mechscope::analysis::sae
