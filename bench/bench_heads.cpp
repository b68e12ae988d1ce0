// heads ablate and heads screen --score causal on a GPT-2-small-shaped model (random weights, real
// dimensions) with the shipped baseline profile's 70 gratitude pairs (real GPT-2 tokenizer):
//   ablate: 70 prompts x 15 new tokens, head 0:0's z zeroed, greedy, batched with the KV cache
//           (torch_heads.py does it the seed's way in the same run and checks the ids are the same);
//   causal: every head (144) x 70 pairs, the exact patching engine; time and cells per second.
// Prints one JSON object.
//
//   bench_heads [MODEL_DIR=build/bench/gpt2-small-random] [THREADS=0 (all)] [BATCH=32]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_device.h"
#include "analysis/heads/generate_batch.h"
#include "analysis/heads/interventions.h"
#include "analysis/heads/profile.h"
#include "analysis/heads/screen.h"
#include "core/source_dir.h"  // MECHSCOPE_SOURCE_DIR
#include "gpt2_small.h"
#include "models/model.h"
#include "tokenizers/tokenizer.h"

using namespace mechscope;
namespace H = mechscope::analysis::heads;
using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : "build/bench/gpt2-small-random";
  int threads = argc > 2 ? std::atoi(argv[2]) : 0;
  int64_t batch = argc > 3 ? std::atoll(argv[3]) : 32;
  if (threads > 0) at::set_num_threads(threads);
  bench::ensure_gpt2_small(dir);
  auto model = bench::load(dir);
  auto tok = tokenizers::load_tokenizer(std::string(MECHSCOPE_SOURCE_DIR) + "/tests/fixtures/gpt2/model");
  auto prof = H::load_profile(std::string(MECHSCOPE_SOURCE_DIR) + "/examples/emotion/profiles/baseline");
  const auto& pairs = prof.of("gratitude");
  std::vector<std::vector<int64_t>> prompts;
  std::vector<H::AlignedPair> aligned;
  for (auto& p : pairs) {
    prompts.push_back(tok->encode(p.emotion));
    aligned.push_back(H::align_pair(tok->encode(p.emotion), tok->encode(p.neutral)));
  }
  const int64_t new_tokens = 15;
  nlohmann::json out{{"model", dir},
                     {"threads", at::get_num_threads()},
                     {"device", bench::device_name()},
                     {"prompts", prompts.size()},
                     {"new_tokens", new_tokens},
                     {"batch", batch},
                     {"head", "0:0"}};

  hooks::HookSet hs;
  hooks::ScopedHooks scope(hs);
  H::add_ablation(scope, {{0, 0}}, H::HeadAblation::Zero);
  H::generate_greedy_batch(*model, {prompts[0]}, 2, std::nullopt, &hs, 1);  // warm-up
  auto t = Clock::now();
  auto gen = H::generate_greedy_batch(*model, prompts, new_tokens, std::nullopt, &hs, batch);
  out["ablate_s"] = seconds_since(t);
  out["prompt_ids"] = prompts;
  out["ablated_ids"] = gen;
  std::fprintf(stderr, "ablate: %zu prompts x %lld tokens in %.2fs\n", prompts.size(), (long long)new_tokens,
               out["ablate_s"].get<double>());

  std::vector<int64_t> kw;
  for (auto& w : prof.keywords.at("gratitude")) kw.push_back(tok->encode(" " + w)[0]);
  t = Clock::now();
  at::Tensor s = H::causal_scores(*model, aligned, kw);
  double cs = seconds_since(t);
  int64_t cells = s.numel() * (int64_t)aligned.size();
  out["causal_s"] = cs;
  out["causal_cells"] = cells;
  out["causal_cells_per_s"] = (double)cells / cs;
  std::fprintf(stderr, "causal: %lld heads x %zu pairs in %.2fs (%.0f cells/s)\n", (long long)s.numel(), aligned.size(),
               cs, (double)cells / cs);
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
