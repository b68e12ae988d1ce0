// The benchmarks' model: GPT-2 small's shape (12 layers, d_model 768, 12 heads, 1024 positions,
// 50257 tokens) with random weights ~ N(0, 0.02) as GPT-2 initialises them, in the hub's key layout
// (no "transformer." prefix). Generated once into `dir` (about 500 MB); every bench uses the same one.
#pragma once
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "core/fs.h"
#include "io/safetensors.h"

namespace bench {

inline void ensure_gpt2_small(const std::string& dir) {
  using namespace mechscope;
  if (file_exists(join_path(dir, "model.safetensors")) && file_exists(join_path(dir, "config.json"))) return;
  std::fprintf(stderr, "generating %s ...\n", dir.c_str());
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
  nlohmann::json cfg{{"model_type", "gpt2"},
                     {"architectures", {"GPT2LMHeadModel"}},
                     {"n_embd", d},
                     {"n_layer", L},
                     {"n_head", 12},
                     {"n_positions", P},
                     {"n_ctx", P},
                     {"vocab_size", V},
                     {"activation_function", "gelu_new"},
                     {"layer_norm_epsilon", 1e-5},
                     {"bos_token_id", 50256},
                     {"eos_token_id", 50256}};
  write_file_atomic(join_path(dir, "config.json"), cfg.dump(2));
}

}  // namespace bench
