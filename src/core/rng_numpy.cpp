#include "core/rng_numpy.h"

#include <cmath>

namespace mechscope {

namespace {
constexpr int N = 624, M = 397;
constexpr uint32_t kMatrixA = 0x9908b0dfU, kUpper = 0x80000000U, kLower = 0x7fffffffU;
}  // namespace

NumpyRandomState::NumpyRandomState(uint32_t seed) {
  key_[0] = seed;
  for (int i = 1; i < N; ++i) key_[i] = 1812433253U * (key_[i - 1] ^ (key_[i - 1] >> 30)) + (uint32_t)i;
  pos_ = N;
}

NumpyRandomState::NumpyRandomState(const std::vector<uint32_t>& init_key) : NumpyRandomState(19650218U) {
  int i = 1, j = 0;
  int len = (int)init_key.size();
  for (int k = N > len ? N : len; k; --k) {
    key_[i] = (key_[i] ^ ((key_[i - 1] ^ (key_[i - 1] >> 30)) * 1664525U)) + init_key.at(j) + (uint32_t)j;
    ++i, ++j;
    if (i >= N) key_[0] = key_[N - 1], i = 1;
    if (j >= len) j = 0;
  }
  for (int k = N - 1; k; --k) {
    key_[i] = (key_[i] ^ ((key_[i - 1] ^ (key_[i - 1] >> 30)) * 1566083941U)) - (uint32_t)i;
    ++i;
    if (i >= N) key_[0] = key_[N - 1], i = 1;
  }
  key_[0] = 0x80000000U;  // non-zero initial array, as init_by_array
  pos_ = N;
}

void NumpyRandomState::reload() {
  int i = 0;
  uint32_t y;
  for (; i < N - M; ++i) {
    y = (key_[i] & kUpper) | (key_[i + 1] & kLower);
    key_[i] = key_[i + M] ^ (y >> 1) ^ (-(y & 1) & kMatrixA);
  }
  for (; i < N - 1; ++i) {
    y = (key_[i] & kUpper) | (key_[i + 1] & kLower);
    key_[i] = key_[i + (M - N)] ^ (y >> 1) ^ (-(y & 1) & kMatrixA);
  }
  y = (key_[N - 1] & kUpper) | (key_[0] & kLower);
  key_[N - 1] = key_[M - 1] ^ (y >> 1) ^ (-(y & 1) & kMatrixA);
  pos_ = 0;
}

uint32_t NumpyRandomState::next_uint32() {
  if (pos_ == N) reload();
  uint32_t y = key_[pos_++];
  y ^= (y >> 11);
  y ^= (y << 7) & 0x9d2c5680U;
  y ^= (y << 15) & 0xefc60000U;
  y ^= (y >> 18);
  return y;
}

double NumpyRandomState::random_sample() {
  int32_t a = next_uint32() >> 5, b = next_uint32() >> 6;
  return (a * 67108864.0 + b) / 9007199254740992.0;
}

double NumpyRandomState::uniform(double low, double high) { return low + (high - low) * random_sample(); }

double NumpyRandomState::gauss() {
  if (has_gauss_) {
    has_gauss_ = false;
    double g = gauss_;
    gauss_ = 0;
    return g;
  }
  double x1, x2, r2;
  do {
    x1 = 2.0 * random_sample() - 1.0;
    x2 = 2.0 * random_sample() - 1.0;
    r2 = x1 * x1 + x2 * x2;
  } while (r2 >= 1.0 || r2 == 0.0);
  double f = std::sqrt(-2.0 * std::log(r2) / r2);
  gauss_ = f * x1;  // the second value is kept for the next call
  has_gauss_ = true;
  return f * x2;
}

double NumpyRandomState::standard_exponential() { return -std::log(1.0 - random_sample()); }

double NumpyRandomState::standard_gamma(double shape) {
  if (shape == 1.0) return standard_exponential();
  if (shape == 0.0) return 0.0;
  if (shape < 1.0) {
    for (;;) {
      double U = random_sample(), V = standard_exponential();
      if (U <= 1.0 - shape) {
        double X = std::pow(U, 1.0 / shape);
        if (X <= V) return X;
      } else {
        double Y = -std::log((1 - U) / shape);
        double X = std::pow(1.0 - shape + shape * Y, 1.0 / shape);
        if (X <= V + Y) return X;
      }
    }
  }
  // Marsaglia & Tsang (2000).
  double b = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9 * b);
  for (;;) {
    double X, V;
    do {
      X = gauss();
      V = 1.0 + c * X;
    } while (V <= 0.0);
    V = V * V * V;
    double U = random_sample();
    if (U < 1.0 - 0.0331 * (X * X) * (X * X)) return b * V;
    if (std::log(U) < 0.5 * X * X + b * (1.0 - V + std::log(V))) return b * V;
  }
}

double NumpyRandomState::chisquare(double df) { return 2.0 * standard_gamma(df / 2.0); }

double NumpyRandomState::standard_t(double df) {
  double num = gauss();
  double denom = standard_gamma(df / 2);
  return std::sqrt(df / 2) * num / std::sqrt(denom);
}

std::vector<double> NumpyRandomState::randn(size_t n) {
  std::vector<double> v(n);
  for (auto& x : v) x = gauss();
  return v;
}

std::vector<double> NumpyRandomState::rand(size_t n) {
  std::vector<double> v(n);
  for (auto& x : v) x = random_sample();
  return v;
}

std::vector<double> NumpyRandomState::uniform(double low, double high, size_t n) {
  std::vector<double> v(n);
  for (auto& x : v) x = uniform(low, high);
  return v;
}

std::vector<double> NumpyRandomState::standard_t(double df, size_t n) {
  std::vector<double> v(n);
  for (auto& x : v) x = standard_t(df);
  return v;
}

}  // namespace mechscope
