// numpy's legacy RandomState, bit for bit: MT19937 seeded as `numpy.random.RandomState(seed)` seeds
// it, 53-bit doubles as random_sample, and the legacy distributions (polar Box–Muller gauss with the
// cached second value, Marsaglia–Tsang gamma, Student-t), so analyses that ROME ran with
// `numpy.random.RandomState(1).randn(...)` reproduce its numbers to the digit.
// Algorithms: numpy/random/src/mt19937 (init_genrand, genrand), numpy/random/src/legacy/
// legacy-distributions.c (legacy_gauss, legacy_standard_gamma, legacy_standard_t, legacy_chisquare).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace mechscope {

class NumpyRandomState {
 public:
  // RandomState(seed) for an integer seed in [0, 2^32): MT19937 init_genrand.
  explicit NumpyRandomState(uint32_t seed = 0);
  // RandomState([k0, k1, ...]): MT19937 init_by_array.
  explicit NumpyRandomState(const std::vector<uint32_t>& key);

  uint32_t next_uint32();
  double random_sample();                   // [0, 1), 53 bits: (a >> 5, b >> 6) as numpy
  double uniform(double low, double high);  // low + (high - low) * random_sample()
  double gauss();                           // legacy_gauss: standard normal, pairs from the polar method
  double standard_exponential();            // -log(1 - random_sample())
  double standard_gamma(double shape);
  double chisquare(double df);   // 2 * standard_gamma(df / 2)
  double standard_t(double df);  // gauss / sqrt(gamma(df/2)) * sqrt(df/2)

  // Fills n values in C order, as RandomState.randn(*shape) / rand(*shape) / uniform(size=...).
  std::vector<double> randn(size_t n);
  std::vector<double> rand(size_t n);
  std::vector<double> uniform(double low, double high, size_t n);
  std::vector<double> standard_t(double df, size_t n);

 private:
  void reload();
  uint32_t key_[624];
  int pos_ = 624;
  bool has_gauss_ = false;
  double gauss_ = 0;
};

}  // namespace mechscope
