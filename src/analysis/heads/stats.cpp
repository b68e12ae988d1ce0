#include "analysis/heads/stats.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.h"

namespace mechscope::analysis::heads {

namespace {
double quantile(const std::vector<double>& sorted, double q) {
  double pos = q * (double)(sorted.size() - 1);
  size_t lo = (size_t)std::floor(pos), hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - (double)lo) * (sorted[hi] - sorted[lo]);
}
}  // namespace

PairedComparison compare_paired(const std::vector<double>& a, const std::vector<double>& b, int64_t resamples,
                                uint64_t seed) {
  if (a.size() != b.size())
    fail("a paired comparison needs as many values on each side (", a.size(), " vs ", b.size(), ")");
  if (a.empty()) fail("a paired comparison needs at least one pair");
  if (resamples < 1) fail("a paired comparison needs at least one resample");
  PairedComparison r;
  r.n = (int64_t)a.size();
  r.resamples = resamples;
  r.seed = seed;
  std::vector<double> d(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    d[i] = b[i] - a[i];
    r.mean_a += a[i];
    r.mean_b += b[i];
    r.mean_diff += d[i];
  }
  const double n = (double)a.size();
  r.mean_a /= n;
  r.mean_b /= n;
  r.mean_diff /= n;

  std::mt19937_64 rng(seed);
  std::vector<double> means((size_t)resamples);
  for (auto& m : means) {
    double s = 0;
    for (size_t i = 0; i < d.size(); ++i) s += d[rng() % d.size()];
    m = s / n;
  }
  std::sort(means.begin(), means.end());
  r.ci_low = quantile(means, 0.025);
  r.ci_high = quantile(means, 0.975);

  // A flipped mean counts as extreme when it is at least as far from 0, with a relative slack so that
  // the observed pattern itself always counts despite rounding in a different summation order.
  double obs = std::fabs(r.mean_diff), tol = 1e-12 * std::max(1.0, obs);
  if (d.size() < 63 && (int64_t(1) << d.size()) <= resamples) {
    int64_t total = int64_t(1) << d.size(), count = 0;
    for (int64_t mask = 0; mask < total; ++mask) {
      double s = 0;
      for (size_t i = 0; i < d.size(); ++i) s += (mask >> i) & 1 ? -d[i] : d[i];
      count += std::fabs(s / n) >= obs - tol;
    }
    r.p_value = (double)count / (double)total;
    r.exact_permutation = true;
  } else {
    int64_t count = 0;
    for (int64_t k = 0; k < resamples; ++k) {
      double s = 0;
      for (size_t i = 0; i < d.size(); ++i) s += rng() & 1 ? -d[i] : d[i];
      count += std::fabs(s / n) >= obs - tol;
    }
    r.p_value = (double)(count + 1) / (double)(resamples + 1);
  }
  return r;
}

}  // namespace mechscope::analysis::heads
