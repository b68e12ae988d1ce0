// Token-set enrichment analysis (SAELens's analysis/tsea.py, after GSEA): rank the vocabulary by a
// feature's logit weights, walk it adding 1/|S| on a member of the set S and subtracting 1/(V - |S|)
// otherwise, and score the largest absolute running sum (calculate_batch_enrichment_scores).
#pragma once
#include <ATen/ATen.h>

#include <vector>

#include "analysis/sae/token_sets.h"

namespace mechscope::analysis::sae {

// projection: [n_features, V] logit weights -> scores [n_sets, n_features] (double). Ties in a row are
// ranked by token id (a stable descending sort). An empty set scores 1, as SAELens's formula gives.
at::Tensor enrichment_scores(const at::Tensor& projection, const std::vector<TokenSet>& sets);

// enrichment_scores as tensor ops on the projection's device (a stable descending sort per row, the
// ranks of each set's members gathered and sorted, the walk's peaks evaluated at once): what a GPU runs,
// the same numbers as the CPU's radix route; the result [n_sets, n_features] float64 stays on that device.
at::Tensor enrichment_scores_tensor(const at::Tensor& projection, const std::vector<TokenSet>& sets);

// The same for rows W_dec[features] W_U, computed `block` features at a time (never [n_features, V] at
// once) on W_dec's device (the radix route on the CPU, enrichment_scores_tensor elsewhere or with
// `tensor_route`), the scores copied to the host once; W_U as prepare_unembed gives it (cosine_sim
// applied by the caller).
at::Tensor enrichment_scores(const at::Tensor& W_dec, const at::Tensor& W_U, const std::vector<int64_t>& features,
                             const std::vector<TokenSet>& sets, int64_t block = 256, bool tensor_route = false);

// The top `n` features by skewness, descending (NaN last; ties by feature index).
std::vector<int64_t> top_by(const std::vector<double>& values, int64_t n);

// -log(1 - score), the plotted enrichment; a score of 1 (up to rounding) gives -log(1e-15) instead of inf.
double neg_log1m(double score);

}  // namespace mechscope::analysis::sae
