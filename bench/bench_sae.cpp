// SAE logit-weight statistics and TSEA at the seed's scale: a 24,576-feature random SAE on a
// GPT-2-small-shaped unembedding (768 x 50,257), the same tensors bench_sae_torch.py draws (same
// seeds, same libtorch generator). Prints one JSON object with the time, the peak RSS of this process and
// a few values to compare with the baseline.
// usage: bench_sae stats|tsea [THREADS] [FEATURES]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "analysis/sae/stats.h"
#include "analysis/sae/tsea.h"

using namespace mechscope;
namespace S = mechscope::analysis::sae;
using Clock = std::chrono::steady_clock;

static double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;
}

int main(int argc, char** argv) {
  std::string what = argc > 1 ? argv[1] : "stats";
  int threads = argc > 2 ? std::atoi(argv[2]) : 0;
  if (threads > 0) at::set_num_threads(threads);
  int64_t n = argc > 3 ? std::atoll(argv[3]) : (what == "stats" ? 24576 : 5000);
  at::manual_seed(0);
  at::Tensor W_U = at::randn({768, 50257}) * 0.02;
  W_U = W_U - W_U.mean({1}, true);
  at::Tensor W_dec = at::randn({24576, 768});
  W_dec = W_dec / W_dec.norm(2, {1}, true);
  nlohmann::json j{{"bench", "sae_" + what}, {"features", n}, {"threads", at::get_num_threads()}};
  double base_rss = peak_rss_mb();
  if (what == "stats") {
    auto t = Clock::now();
    S::FeatureStats s = S::logit_weight_stats(W_dec.slice(0, 0, n), W_U);
    j["seconds"] = std::chrono::duration<double>(Clock::now() - t).count();
    j["skewness_head"] = std::vector<double>(s.skewness.data_ptr<double>(), s.skewness.data_ptr<double>() + 8);
    j["kurtosis_head"] = std::vector<double>(s.kurtosis.data_ptr<double>(), s.kurtosis.data_ptr<double>() + 8);
  } else {
    std::vector<S::TokenSet> sets;
    for (int64_t m : {2, 7, 31, 211, 1000}) {
      S::TokenSet s{"every_" + std::to_string(m), "bench", {}};
      for (int64_t i = 0; i < 50257; i += m) s.ids.push_back(i);
      sets.push_back(s);
    }
    std::vector<int64_t> feats(n);
    for (int64_t i = 0; i < n; ++i) feats[i] = i;
    auto t = Clock::now();
    at::Tensor sc = S::enrichment_scores(W_dec, W_U, feats, sets);
    j["seconds"] = std::chrono::duration<double>(Clock::now() - t).count();
    std::vector<double> head;
    for (int s = 0; s < 5; ++s)
      for (int f = 0; f < 4; ++f) head.push_back(sc[s][f].item<double>());
    j["scores_head"] = head;
  }
  j["peak_rss_mb"] = peak_rss_mb();
  j["inputs_rss_mb"] = base_rss;
  std::printf("%s\n", j.dump().c_str());
  return 0;
}
