// SAELens cfg.json: parsed alone, then loaded beside real weights (d_in 4, d_sae 8) and run, so a
// config the loader accepts cannot make encode/decode fail inside libtorch.
#include <ATen/ATen.h>

#include <filesystem>

#include "fuzz.h"
#include "core/json.h"
#include "io/safetensors.h"
#include "sae/sae.h"

using namespace mechscope;

static const std::string& sae_dir() {
  static std::string dir = [] {
    std::string d = fuzz::scratch() + "/sae";
    std::filesystem::create_directories(d);
    at::manual_seed(0);
    io::write_safetensors(d + "/sae_weights.safetensors", {{"W_enc", at::randn({4, 8})},
                                                           {"b_enc", at::randn({8})},
                                                           {"W_dec", at::randn({8, 4})},
                                                           {"b_dec", at::randn({4})},
                                                           {"threshold", at::rand({8})}});
    return d;
  }();
  return dir;
}

MECHSCOPE_FUZZ_TARGET(sae_cfg) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto j = parse_json(text, "cfg.json");
  (void)sae::parse_config(j, "cfg.json");
  fuzz::put(sae_dir() + "/cfg.json", text);
  auto s = sae::load_sae(sae_dir());
  at::Tensor x = at::randn({2, s.cfg.d_in});
  at::Tensor r = sae::reconstruct(s, x);
  FUZZ_CHECK(r.sizes() == x.sizes(), "sae_cfg", "reconstruction has another shape");
}
