// Paired comparisons for the head experiments (baseline vs ablated, baseline vs patched, one value per
// prompt each): the mean paired difference with a percentile bootstrap 95% interval and a two-sided
// paired (sign-flip) permutation p-value, both seeded, where the seed printed only the two means.
#pragma once
#include <cstdint>
#include <vector>

namespace mechscope::analysis::heads {

struct PairedComparison {
  int64_t n = 0;
  double mean_a = 0, mean_b = 0;
  double mean_diff = 0;            // mean of b[i] - a[i]
  double ci_low = 0, ci_high = 0;  // bootstrap 95% interval of mean_diff
  double p_value = 1;              // paired permutation test of mean_diff == 0 (two-sided)
  bool exact_permutation = false;  // every one of the 2^n sign patterns was enumerated
  int64_t resamples = 0;
  uint64_t seed = 0;
};

// a, b: one value per prompt, same length >= 1. Bootstrap: `resamples` means of n differences drawn
// with replacement (std::mt19937_64(seed), index = draw % n), interval from their 2.5% and 97.5%
// quantiles (linear interpolation, as numpy.quantile). Permutation: each difference's sign flipped at
// random `resamples` times, p = (count(|mean*| >= |mean|) + 1) / (resamples + 1); when 2^n <= resamples
// all sign patterns are enumerated instead and p = count / 2^n (exact).
PairedComparison compare_paired(const std::vector<double>& a, const std::vector<double>& b, int64_t resamples = 10000,
                                uint64_t seed = 0);

}  // namespace mechscope::analysis::heads
