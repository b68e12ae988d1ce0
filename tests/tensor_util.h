// Tensor comparison for tests against float64 references stored as float32.
#pragma once
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "io/safetensors.h"

namespace mstest {

// |a - b| <= atol + rtol * |b| everywhere; reports the worst element on failure. Compared on the host,
// so a GPU run's tensors check against the references as they are.
inline ::testing::AssertionResult close(const at::Tensor& a_in, const at::Tensor& b_in, double rtol = 1e-4,
                                        double atol = 1e-5) {
  at::Tensor a = a_in.to(at::Device(at::kCPU), at::kDouble), b = b_in.to(at::Device(at::kCPU), at::kDouble);
  if (a.sizes() != b.sizes())
    return ::testing::AssertionFailure() << "shape " << a.sizes() << " vs reference " << b.sizes();
  at::Tensor excess = (a - b).abs() - (atol + rtol * b.abs());
  double worst = excess.max().item<double>();
  if (worst <= 0) return ::testing::AssertionSuccess();
  int64_t i = excess.flatten().argmax().item<int64_t>();
  return ::testing::AssertionFailure() << "worst element " << i << ": " << a.flatten()[i].item<double>()
                                       << " vs reference " << b.flatten()[i].item<double>() << " (max abs diff "
                                       << (a - b).abs().max().item<double>() << ")";
}

// Two float32 computations of the same values along different paths (a KV cache against one forward, a
// packed batch against a padded one): rounding differs with the summation order, and its size follows
// the magnitude of the values summed, not of each result, so the bound is `tol` times the largest
// |reference| (at least 1; with 1 this is close(a, b, tol, tol)). Gemma-2's residual stream (embeddings scaled by sqrt(d), four norms per
// block) puts 3e-5 differences on 0.1-sized elements of a tensor whose largest entries are ~10.
inline ::testing::AssertionResult close_at_scale(const at::Tensor& a, const at::Tensor& b, double tol = 1e-5) {
  double scale = std::max(1.0, b.to(at::kDouble).abs().max().item<double>());
  auto r = close(a, b, tol, tol * scale);
  if (!r) r << " (bound " << tol << " x scale " << scale << ")";
  return r;
}

inline std::vector<int64_t> to_vec(const at::Tensor& t) {
  at::Tensor c = t.to(at::Device(at::kCPU), at::kLong).contiguous().flatten();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

// "1,2,3" for --ids from an int64 tensor.
inline std::string ids_arg(const at::Tensor& t) {
  std::string s;
  for (int64_t x : to_vec(t)) s += (s.empty() ? "" : ",") + std::to_string(x);
  return s;
}

}  // namespace mstest
