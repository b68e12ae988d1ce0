// numpy's legacy RandomState: values numpy prints (hard-coded from numpy sessions and its docs) and
// properties that follow from its documented algorithms.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/rng_numpy.h"

using mechscope::NumpyRandomState;

static void expect_values(const std::vector<double>& got, const std::vector<double>& want, double tol = 5e-9) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "index " << i;
}

TEST(NumpyRandomState, Randn) {
  // numpy.random.RandomState(1).randn(5): the noise ROME's causal tracing draws.
  expect_values(NumpyRandomState(1).randn(5), {1.62434536, -0.61175641, -0.52817175, -1.07296862, 0.86540763});
  expect_values(NumpyRandomState(0).randn(10), {1.76405235, 0.40015721, 0.97873798, 2.2408932, 1.86755799, -0.97727788,
                                                0.95008842, -0.15135721, -0.10321885, 0.4105985});
  expect_values(NumpyRandomState(42).randn(5), {0.49671415, -0.1382643, 0.64768854, 1.52302986, -0.23415337});
}

TEST(NumpyRandomState, Rand) {
  expect_values(NumpyRandomState(0).rand(5), {0.5488135, 0.71518937, 0.60276338, 0.54488318, 0.4236548});
  expect_values(NumpyRandomState(42).rand(5), {0.37454012, 0.95071431, 0.73199394, 0.59865848, 0.15601864});
}

TEST(NumpyRandomState, Uniform) {
  // uniform(low, high) = low + (high - low) * random_sample(), one draw each.
  NumpyRandomState a(0), b(0);
  auto u = a.uniform(-1, 1, 6);
  for (double x : u) EXPECT_EQ(x, -1 + 2 * b.random_sample());
  EXPECT_NEAR(u[0], 2 * 0.5488135 - 1, 1e-8);
}

TEST(NumpyRandomState, MatchesMt19937) {
  // init_genrand and genrand_int32 are the reference MT19937; std::mt19937 is the same generator.
  for (uint32_t seed : {0u, 1u, 5489u, 4294967295u}) {
    NumpyRandomState r(seed);
    std::mt19937 ref(seed);
    for (int i = 0; i < 2000; ++i) ASSERT_EQ(r.next_uint32(), ref()) << "seed " << seed << " draw " << i;
  }
  // init_by_array({0x123, 0x234, 0x345, 0x456}): first outputs of Matsumoto & Nishimura's mt19937ar.out.
  NumpyRandomState r(std::vector<uint32_t>{0x123, 0x234, 0x345, 0x456});
  for (uint32_t want : {1067595299u, 955945823u, 477289528u, 4107218783u, 4228976476u})
    EXPECT_EQ(r.next_uint32(), want);
}

TEST(NumpyRandomState, GaussCachesTheSecondValue) {
  // The polar method makes two normals per accepted pair; the second is returned by the next call.
  NumpyRandomState a(7), b(7);
  double g1 = a.gauss(), g2 = a.gauss();
  double x1, x2, r2;
  do {
    x1 = 2 * b.random_sample() - 1;
    x2 = 2 * b.random_sample() - 1;
    r2 = x1 * x1 + x2 * x2;
  } while (r2 >= 1 || r2 == 0);
  double f = std::sqrt(-2 * std::log(r2) / r2);
  EXPECT_EQ(g1, f * x2);
  EXPECT_EQ(g2, f * x1);
  EXPECT_EQ(a.next_uint32(), b.next_uint32());  // the cached value consumed no draws
}

TEST(NumpyRandomState, StudentT) {
  // legacy_standard_t: one gauss, then one gamma(df/2) (Marsaglia–Tsang, which itself draws gausses).
  NumpyRandomState a(3), b(3);
  double t = a.standard_t(5.0);
  double num = b.gauss();
  double den = b.standard_gamma(2.5);
  EXPECT_EQ(t, std::sqrt(2.5) * num / std::sqrt(den));
  // Moments: mean 0, variance df / (df - 2).
  NumpyRandomState r(11);
  auto v = r.standard_t(5.0, 200000);
  double m = 0, s = 0;
  for (double x : v) m += x;
  m /= v.size();
  for (double x : v) s += (x - m) * (x - m);
  s /= v.size();
  EXPECT_NEAR(m, 0.0, 0.01);
  EXPECT_NEAR(s, 5.0 / 3.0, 0.05);
}

TEST(NumpyRandomState, Gamma) {
  // Mean shape, variance shape, for shapes below, at and above 1 (three code paths).
  for (double shape : {0.5, 1.0, 2.5}) {
    NumpyRandomState r(5);
    double m = 0, s = 0;
    const int n = 200000;
    std::vector<double> v(n);
    for (auto& x : v) m += (x = r.standard_gamma(shape));
    m /= n;
    for (double x : v) s += (x - m) * (x - m);
    s /= n;
    EXPECT_NEAR(m, shape, 0.02 * shape + 0.01) << shape;
    EXPECT_NEAR(s, shape, 0.05 * shape + 0.01) << shape;
  }
  NumpyRandomState a(9), b(9);
  EXPECT_EQ(a.chisquare(3.0), 2 * b.standard_gamma(1.5));
}
