// Paired statistics: the exact sign-flip test against enumeration by hand, the sampled test close to the
// exact one, the bootstrap interval against the normal approximation, seeding, and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "analysis/heads/stats.h"
#include "core/error.h"

using namespace mechscope;
namespace H = mechscope::analysis::heads;

namespace {

TEST(PairedStats, ExactPermutationEqualsEnumeration) {
  std::vector<double> a{0.1, 0.5, 0.2, 0.9, 0.4}, b{0.3, 0.6, 0.1, 1.4, 0.8};
  auto r = H::compare_paired(a, b, 1000, 3);
  EXPECT_TRUE(r.exact_permutation);
  EXPECT_NEAR(r.mean_diff, (0.2 + 0.1 - 0.1 + 0.5 + 0.4) / 5, 1e-12);
  EXPECT_NEAR(r.mean_a, 2.1 / 5, 1e-12);
  // By hand: the 32 sign patterns of d = {.2, .1, -.1, .5, .4} with |sum| >= 1.1: the observed one,
  // flipping -.1 (1.3), flipping both .1 and -.1 (1.1), and their three mirrors.
  int count = 0;
  double d[] = {0.2, 0.1, -0.1, 0.5, 0.4};
  for (int m = 0; m < 32; ++m) {
    double s = 0;
    for (int i = 0; i < 5; ++i) s += (m >> i & 1) ? -d[i] : d[i];
    count += std::fabs(s) >= 1.1 - 1e-9;
  }
  EXPECT_EQ(count, 6);
  EXPECT_NEAR(r.p_value, count / 32.0, 1e-12);
  // Sampled (fewer resamples than patterns) lands near the exact value.
  auto s = H::compare_paired(a, b, 20, 3);
  EXPECT_FALSE(s.exact_permutation);
  std::vector<double> a12(12), b12(12);
  std::mt19937_64 g(5);
  std::normal_distribution<double> nd(0.3, 1.0);
  for (int i = 0; i < 12; ++i) {
    a12[i] = nd(g);
    b12[i] = a12[i] + nd(g);
  }
  auto exact = H::compare_paired(a12, b12, 1 << 12, 1);
  auto sampled = H::compare_paired(a12, b12, 4095, 1);
  EXPECT_TRUE(exact.exact_permutation);
  EXPECT_FALSE(sampled.exact_permutation);
  EXPECT_NEAR(sampled.p_value, exact.p_value, 0.03);
}

TEST(PairedStats, BootstrapIntervalMatchesTheNormalApproximationAndIsSeeded) {
  std::mt19937_64 g(11);
  std::normal_distribution<double> nd(0.0, 1.0);
  std::vector<double> a(400), b(400);
  for (int i = 0; i < 400; ++i) {
    a[i] = nd(g);
    b[i] = a[i] + 0.2 + 0.5 * nd(g);
  }
  auto r = H::compare_paired(a, b, 4000, 7);
  double sd = 0;
  std::vector<double> d(400);
  for (int i = 0; i < 400; ++i) d[i] = b[i] - a[i];
  for (double x : d) sd += (x - r.mean_diff) * (x - r.mean_diff);
  sd = std::sqrt(sd / 399);
  double half = 1.96 * sd / std::sqrt(400.0);
  EXPECT_NEAR(r.ci_high - r.ci_low, 2 * half, 0.15 * 2 * half);
  EXPECT_LT(r.ci_low, r.mean_diff);
  EXPECT_GT(r.ci_high, r.mean_diff);
  EXPECT_LT(r.p_value, 0.001);
  auto again = H::compare_paired(a, b, 4000, 7);
  EXPECT_EQ(again.ci_low, r.ci_low);
  EXPECT_EQ(again.p_value, r.p_value);
  auto other = H::compare_paired(a, b, 4000, 8);
  EXPECT_NE(other.ci_low, r.ci_low);
  // No difference at all: a degenerate interval at 0 and p = 1.
  auto same = H::compare_paired(a, a, 1000, 1);
  EXPECT_EQ(same.ci_low, 0.0);
  EXPECT_EQ(same.ci_high, 0.0);
  EXPECT_EQ(same.p_value, 1.0);
}

TEST(PairedStats, BadInput) {
  EXPECT_THROW(H::compare_paired({1, 2}, {1}, 100, 0), Error);
  EXPECT_THROW(H::compare_paired({}, {}, 100, 0), Error);
  EXPECT_THROW(H::compare_paired({1}, {2}, 0, 0), Error);
}

}  // namespace
