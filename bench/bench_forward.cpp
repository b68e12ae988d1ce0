// Load and forward timings of a GPT-2-small-shaped model (real dimensions, random weights, HF layout).
// Generates the model into --dir when it is not there. Prints one JSON object.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_device.h"
#include "core/blas.h"
#include "gpt2_small.h"
#include "models/model.h"

using namespace mechscope;
using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

static double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : "build/bench/gpt2-small-random";
  int threads = argc > 2 ? std::atoi(argv[2]) : 0;
  if (threads > 0) at::set_num_threads(threads);
  bench::ensure_gpt2_small(dir);
  std::vector<double> loads;
  std::unique_ptr<models::HookedModel> model;
  for (int i = 0; i < 5; ++i) {
    model.reset();
    auto t = Clock::now();
    model = bench::load(dir);
    loads.push_back(seconds_since(t));
  }
  at::NoGradGuard ng;
  nlohmann::json out{{"load_s", median(loads)},
                     {"threads", at::get_num_threads()},
                     {"openblas_kernels", blas_core()},
                     {"device", bench::device_name()}};
  for (int64_t n : {16, 256}) {
    at::Tensor ids = at::randint(0, 50257, {1, n}, at::kLong).to(bench::device());
    std::vector<double> times;
    int reps = n == 16 ? 30 : 10;
    for (int i = 0; i < reps + 2; ++i) {
      models::RunContext ctx;
      auto t = Clock::now();
      at::Tensor logits = model->forward(ids, ctx);
      bench::sync();
      if (i >= 2) times.push_back(seconds_since(t));
    }
    out["forward_" + std::to_string(n) + "_s"] = median(times);
  }
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
