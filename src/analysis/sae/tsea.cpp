#include "analysis/sae/tsea.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace mechscope::analysis::sae {

at::Tensor enrichment_scores(const at::Tensor& projection, const std::vector<TokenSet>& sets) {
  if (projection.dim() != 2) fail("enrichment_scores: projection must be [n_features, V]");
  const int64_t F = projection.size(0), V = projection.size(1), n_sets = (int64_t)sets.size();
  std::vector<uint8_t> mask(n_sets * V, 0);
  std::vector<double> inc(n_sets), dec(n_sets);
  for (int64_t s = 0; s < n_sets; ++s) {
    for (int64_t id : sets[s].ids) {
      if (id < 0 || id >= V) fail("token set '", sets[s].name, "' has id ", id, " outside the vocabulary (", V, ")");
      mask[s * V + id] = 1;
    }
    double n = (double)sets[s].ids.size();
    inc[s] = 1.0 / n;
    dec[s] = 1.0 / ((double)V - n);
  }
  at::Tensor order = std::get<1>(at::sort(projection.to(at::kFloat), /*stable=*/true, /*dim=*/1, /*descending=*/true))
                         .contiguous();
  at::Tensor out = at::zeros({n_sets, F}, at::kDouble);
  const int64_t* idx = order.data_ptr<int64_t>();
  double* o = out.data_ptr<double>();
  at::parallel_for(0, F, 1, [&](int64_t f0, int64_t f1) {
    for (int64_t f = f0; f < f1; ++f) {
      const int64_t* row = idx + f * V;
      for (int64_t s = 0; s < n_sets; ++s) {
        const uint8_t* m = mask.data() + s * V;
        double sum = 0, best = 0, up = inc[s], down = -dec[s];
        for (int64_t p = 0; p < V; ++p) {
          sum += m[row[p]] ? up : down;
          best = std::max(best, std::abs(sum));
        }
        o[s * F + f] = best;
      }
    }
  });
  return out;
}

at::Tensor enrichment_scores(const at::Tensor& W_dec, const at::Tensor& W_U, const std::vector<int64_t>& features,
                             const std::vector<TokenSet>& sets, int64_t block) {
  if (block < 1) fail("the feature block size must be >= 1");
  at::NoGradGuard ng;
  at::Tensor Wd = W_dec.to(at::kFloat), Wu = W_U.to(at::kFloat);
  at::Tensor out = at::empty({(int64_t)sets.size(), (int64_t)features.size()}, at::kDouble);
  for (size_t b = 0; b < features.size(); b += block) {
    size_t e = std::min(features.size(), b + (size_t)block);
    std::vector<int64_t> part(features.begin() + b, features.begin() + e);
    for (int64_t f : part)
      if (f < 0 || f >= Wd.size(0)) fail("feature ", f, " is outside the SAE (d_sae ", Wd.size(0), ")");
    at::Tensor P = at::matmul(Wd.index_select(0, at::tensor(part, at::kLong)), Wu);
    out.slice(1, b, e).copy_(enrichment_scores(P, sets));
  }
  return out;
}

std::vector<int64_t> top_by(const std::vector<double>& v, int64_t n) {
  std::vector<int64_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
    if (std::isnan(v[a]) || std::isnan(v[b])) return !std::isnan(v[a]) && std::isnan(v[b]);
    return v[a] > v[b];
  });
  if (n >= 0 && (size_t)n < idx.size()) idx.resize(n);
  return idx;
}

double neg_log1m(double x) { return -std::log(std::max(1.0 - x, 1e-15)); }

}  // namespace mechscope::analysis::sae
