// Activation-patching sweeps on a GPT-2-small-shaped model (random weights, real dimensions): the
// exact fast path against --naive (one full hooked forward per cell, as TransformerLens does) on the
// 16-token IOI pair, in the same run. Prints one JSON object.
//
//   bench_patch [MODEL_DIR=build/bench/gpt2-small-random] [THREADS=0 (all)] [NAIVE_SAMPLE=8]
//
// resid_pre (12 x 16 cells) runs the naive loop in full; for the bigger sweeps the naive time is the
// per-cell time of every NAIVE_SAMPLE-th cell times the cell count (marked "_est").
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_device.h"
#include "analysis/patching/patching.h"
#include "core/fs.h"
#include "io/safetensors.h"
#include "models/model.h"
#include "gpt2_small.h"

using namespace mechscope;
namespace P = mechscope::analysis::patching;
using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
static double maxrss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;
}

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : "build/bench/gpt2-small-random";
  int threads = argc > 2 ? std::atoi(argv[2]) : 0;
  int sample = argc > 3 ? std::max(1, std::atoi(argv[3])) : 8;
  if (threads > 0) at::set_num_threads(threads);
  bench::ensure_gpt2_small(dir);
  auto model = bench::load(dir);
  const auto& cfg = model->config();
  // "After John and Mary went to the store, Mary/John gave a bottle of milk to" (GPT-2 ids, 16 tokens).
  std::vector<int64_t> clean{3260, 1757, 290, 5335, 1816, 284, 262, 3650, 11, 5335, 2921, 257, 9294, 286, 7545, 284};
  std::vector<int64_t> corrupt = clean;
  corrupt[9] = 1757;
  P::Metric metric{P::MetricKind::LogitDiff, 1757, 5335, -1};
  int64_t n = (int64_t)clean.size();
  auto ci = at::tensor(clean, at::kLong).unsqueeze(0).to(bench::device()),
       ki = at::tensor(corrupt, at::kLong).unsqueeze(0).to(bench::device());

  nlohmann::json out{{"model", dir},
                     {"threads", at::get_num_threads()},
                     {"device", bench::device_name()},
                     {"n_pos", n},
                     {"naive_sample", sample}};
  auto t = Clock::now();
  std::vector<std::string> all_points;
  for (const char* name : {"resid_pre", "attn_out", "mlp_out", "z_all_pos", "z"})
    for (auto& p : P::target_points(P::target_spec(name), cfg)) all_points.push_back(p);
  P::BaseRun cb = P::base_run(*model, ci, metric, all_points);
  P::BaseRun kb = P::base_run(*model, ki, metric, all_points);
  out["base_runs_s"] = seconds_since(t);

  struct Variant {
    const char* name;
    bool skip, packed;
  };
  const Variant variants[] = {
      {"fast", true, true}, {"fast_no_skip", false, true}, {"fast_generic_no_skip", false, false}};
  std::vector<std::pair<std::string, std::vector<std::string>>> sweeps{
      {"resid_pre", {"resid_pre"}},
      {"block_every", {"resid_pre", "attn_out", "mlp_out"}},
      {"z_all_pos", {"z_all_pos"}},
      {"z", {"z"}}};
  std::map<std::string, at::Tensor> fast_values;
  for (auto& [sweep, targets] : sweeps) {
    nlohmann::json s;
    int64_t cells = 0;
    for (auto& name : targets) cells += (int64_t)P::target_cells(P::target_spec(name), cfg, n).size();
    s["cells"] = cells;
    for (const Variant& v : variants) {
      if (sweep == "z" && !v.packed) continue;  // the generic path's full-length batches: minutes here
      P::SweepOptions opt;
      opt.skip_noops = v.skip;
      opt.use_packed = v.packed;
      auto t0 = Clock::now();
      std::vector<at::Tensor> vals;
      for (auto& name : targets)
        vals.push_back(P::run_cells(*model, kb, cb.acts, P::target_cells(P::target_spec(name), cfg, n), metric,
                                    P::Method::Exact, opt));
      s[std::string(v.name) + "_s"] = seconds_since(t0);
      std::fprintf(stderr, "%s %s: %.3fs\n", sweep.c_str(), v.name, s[std::string(v.name) + "_s"].get<double>());
      if (std::string(v.name) == "fast") fast_values[sweep] = at::cat(vals);
      else s[std::string(v.name) + "_max_diff"] = (at::cat(vals) - fast_values[sweep]).abs().max().item<double>();
    }
    out[sweep] = s;
  }
  out["peak_rss_mb_fast"] = maxrss_mb();

  for (auto& [sweep, targets] : sweeps) {
    nlohmann::json& s = out[sweep];
    bool full = sweep == "resid_pre";
    std::vector<P::Edit> cells;
    for (auto& name : targets)
      for (auto& c : P::target_cells(P::target_spec(name), cfg, n)) cells.push_back(c);
    std::vector<P::Edit> run;
    std::vector<size_t> which;
    for (size_t i = 0; i < cells.size(); i += full ? 1 : sample) run.push_back(cells[i]), which.push_back(i);
    auto t0 = Clock::now();
    at::Tensor naive = P::run_cells(*model, kb, cb.acts, run, metric, P::Method::Naive);
    double secs = seconds_since(t0) * (double)cells.size() / (double)run.size();
    at::Tensor fast =
        fast_values[sweep].index_select(0, at::tensor(std::vector<int64_t>(which.begin(), which.end()), at::kLong));
    s["naive_max_diff"] = (naive - fast).abs().max().item<double>();
    s[full ? "naive_s" : "naive_s_est"] = secs;
    s["speedup_fast_vs_naive"] = secs / s["fast_s"].get<double>();
    s["speedup_fast_no_skip_vs_naive"] = secs / s["fast_no_skip_s"].get<double>();
    std::fprintf(stderr, "%s: fast %.3fs, naive %.2fs%s\n", sweep.c_str(), s["fast_s"].get<double>(), secs,
                 full ? "" : " (est)");
  }
  {
    // One full forward with every logit (what each naive cell costs) vs the base run's columns only.
    models::RunContext ctx;
    at::NoGradGuard ng;
    auto t0 = Clock::now();
    for (int i = 0; i < 5; ++i) model->forward(ki, ctx);
    out["full_forward_s"] = seconds_since(t0) / 5;
  }
  out["peak_rss_mb"] = maxrss_mb();
  std::printf("%s\n", out.dump(1).c_str());
  return 0;
}
