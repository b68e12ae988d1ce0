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

#include "core/fs.h"
#include "io/safetensors.h"
#include "models/model.h"

using namespace mechscope;
using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

static double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// GPT-2 small: 12 layers, d_model 768, 12 heads, 1024 positions, 50257 tokens; hub key layout
// (no "transformer." prefix), weights ~ N(0, 0.02) as GPT-2's initialisation.
static void generate_model(const std::string& dir) {
  make_dirs(dir);
  const int64_t d = 768, L = 12, V = 50257, P = 1024;
  at::manual_seed(0);
  std::vector<std::pair<std::string, at::Tensor>> w;
  auto normal = [](std::vector<int64_t> s) { return at::randn(s) * 0.02; };
  w.emplace_back("wte.weight", normal({V, d}));
  w.emplace_back("wpe.weight", normal({P, d}) * 0.5);
  for (int64_t l = 0; l < L; ++l) {
    std::string p = "h." + std::to_string(l) + ".";
    w.emplace_back(p + "ln_1.weight", at::ones({d}));
    w.emplace_back(p + "ln_1.bias", at::zeros({d}));
    w.emplace_back(p + "attn.c_attn.weight", normal({d, 3 * d}));
    w.emplace_back(p + "attn.c_attn.bias", at::zeros({3 * d}));
    w.emplace_back(p + "attn.c_proj.weight", normal({d, d}));
    w.emplace_back(p + "attn.c_proj.bias", at::zeros({d}));
    w.emplace_back(p + "ln_2.weight", at::ones({d}));
    w.emplace_back(p + "ln_2.bias", at::zeros({d}));
    w.emplace_back(p + "mlp.c_fc.weight", normal({d, 4 * d}));
    w.emplace_back(p + "mlp.c_fc.bias", at::zeros({4 * d}));
    w.emplace_back(p + "mlp.c_proj.weight", normal({4 * d, d}));
    w.emplace_back(p + "mlp.c_proj.bias", at::zeros({d}));
  }
  w.emplace_back("ln_f.weight", at::ones({d}));
  w.emplace_back("ln_f.bias", at::zeros({d}));
  io::write_safetensors(join_path(dir, "model.safetensors"), w, {{"format", "pt"}});
  nlohmann::json cfg{{"model_type", "gpt2"},  {"architectures", {"GPT2LMHeadModel"}},
                     {"n_embd", d},           {"n_layer", L},
                     {"n_head", 12},          {"n_positions", P},
                     {"n_ctx", P},            {"vocab_size", V},
                     {"activation_function", "gelu_new"}, {"layer_norm_epsilon", 1e-5},
                     {"bos_token_id", 50256}, {"eos_token_id", 50256}};
  write_file_atomic(join_path(dir, "config.json"), cfg.dump(2));
}

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : "build/bench/gpt2-small-random";
  int threads = argc > 2 ? std::atoi(argv[2]) : 0;
  if (threads > 0) at::set_num_threads(threads);
  if (!file_exists(join_path(dir, "model.safetensors"))) {
    std::fprintf(stderr, "generating %s ...\n", dir.c_str());
    generate_model(dir);
  }
  std::vector<double> loads;
  std::unique_ptr<models::HookedModel> model;
  for (int i = 0; i < 5; ++i) {
    model.reset();
    auto t = Clock::now();
    model = models::load_model(dir);
    loads.push_back(seconds_since(t));
  }
  at::NoGradGuard ng;
  nlohmann::json out{{"load_s", median(loads)}, {"threads", at::get_num_threads()}};
  for (int64_t n : {16, 256}) {
    at::Tensor ids = at::randint(0, 50257, {1, n}, at::kLong);
    std::vector<double> times;
    int reps = n == 16 ? 30 : 10;
    for (int i = 0; i < reps + 2; ++i) {
      models::RunContext ctx;
      auto t = Clock::now();
      at::Tensor logits = model->forward(ids, ctx);
      if (i >= 2) times.push_back(seconds_since(t));
    }
    out["forward_" + std::to_string(n) + "_s"] = median(times);
  }
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
