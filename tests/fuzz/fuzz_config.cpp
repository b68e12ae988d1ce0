// config.json into each family's config: the first byte picks a fixture model (its real weights), the
// rest is its config.json. A config the loader accepts must also run a forward pass of three tokens
// without a libtorch error: a wrong head count or size has to be refused at load, not crash later.
#include <ATen/ATen.h>

#include <filesystem>

#include "fuzz.h"
#include "models/model.h"

using namespace mechscope;
namespace fsys = std::filesystem;

static const std::vector<std::string>& family_dirs() {
  static std::vector<std::string> dirs = [] {
    std::vector<std::string> out;
    for (const char* fam : {"gpt2", "gpt_neo", "gpt_neox", "llama", "qwen2", "gemma2", "bert", "distilbert_sst"}) {
      fsys::path src = fsys::path(fuzz::source_dir()) / "tests/fixtures" / fam / "model";
      fsys::path dst = fsys::path(fuzz::scratch()) / (std::string("config_") + fam);
      fsys::create_directories(dst);
      for (auto& e : fsys::directory_iterator(src))
        if (e.path().filename() != "config.json") fsys::create_symlink(e.path(), dst / e.path().filename());
      out.push_back(dst.string());
    }
    return out;
  }();
  return dirs;
}

MECHSCOPE_FUZZ_TARGET(config) {
  if (size < 1) return;
  const auto& dirs = family_dirs();
  const std::string& dir = dirs[data[0] % dirs.size()];
  fuzz::put(dir + "/config.json", std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  auto model = models::load_model(dir);
  const auto& cfg = model->config();
  int64_t n = std::min<int64_t>(3, cfg.n_ctx > 0 ? cfg.n_ctx : 3);
  at::Tensor ids = at::arange(n, at::kLong).remainder(std::max<int64_t>(cfg.d_vocab, 1)).unsqueeze(0);
  models::RunContext ctx;
  at::Tensor x = model->embed(ids, ctx);
  for (int l = 0; l < cfg.n_layers; ++l) x = model->block(l, x, ctx);
  x = model->final_norm(x, ctx);
  if (model->has_lm_head()) {
    at::Tensor logits = model->unembed(x);
    FUZZ_CHECK(logits.size(-1) == cfg.d_vocab, "config", "logits width differs from d_vocab");
  }
  if (model->has_classifier()) (void)model->classify(x, ctx);
}
