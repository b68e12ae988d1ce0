// Causal tracing of one fact on the GPT-2-small-shaped model (bench_forward generates it into
// build/bench/gpt2-small-random): 16 tokens, kinds all/mlp/attn, 10 samples; the fast path against
// ROME's way (one forward of 11 rows per cell) in the same run. Prints one JSON object.
// usage: bench_trace [MODEL_DIR] [THREADS]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <string>

#include "bench_device.h"
#include "analysis/causal_trace/causal_trace.h"
#include "core/fs.h"
#include "models/model.h"
#include "gpt2_small.h"

using namespace mechscope;
namespace ct = mechscope::analysis::causal_trace;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : "build/bench/gpt2-small-random";
  int threads = argc > 2 ? std::atoi(argv[2]) : 0;
  if (threads > 0) at::set_num_threads(threads);
  bench::ensure_gpt2_small(dir);
  auto model = bench::load(dir);
  ct::TraceInput in;
  for (int i = 0; i < 16; ++i) in.ids.push_back((i * 7919 + 13) % model->config().d_vocab);
  in.subject_begin = 2;
  in.subject_end = 5;
  ct::TraceOptions opt;
  opt.samples = 10;
  opt.window = 10;
  opt.noise.scale = 3 * ct::embedding_std(*model, {{in.ids.begin() + 2, in.ids.begin() + 5}});

  auto time = [&](bool naive, ct::TraceResult& r) {
    opt.naive = naive;
    auto t = Clock::now();
    r = ct::trace(*model, in, opt);
    return std::chrono::duration<double>(Clock::now() - t).count();
  };
  ct::TraceResult fast, naive;
  time(false, fast);  // warm-up
  double t_fast = time(false, fast);
  double t_naive = time(true, naive);
  double diff = 0;
  for (size_t k = 0; k < fast.scores.size(); ++k)
    diff = std::max(diff, (fast.scores[k] - naive.scores[k]).abs().max().item<double>());
  const auto& c = model->config();
  nlohmann::json j{{"bench", "trace"},
                   {"device", bench::device_name()},
                   {"model", dir},
                   {"layers", c.n_layers},
                   {"d_model", c.d_model},
                   {"tokens", in.ids.size()},
                   {"kinds", 3},
                   {"samples", opt.samples},
                   {"cells", 3 * in.ids.size() * c.n_layers},
                   {"threads", at::get_num_threads()},
                   {"fast_seconds", t_fast},
                   {"naive_seconds", t_naive},
                   {"speedup", t_naive / t_fast},
                   {"max_abs_diff", diff}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}
