// mechscope run: one forward pass over a batch of prompts, writing logits and cached activations.
#include <ATen/ATen.h>

#include <cstdio>

#include "cli/common.h"
#include "cli/registry.h"
#include "core/error.h"
#include "core/fs.h"
#include "io/safetensors.h"
#include "models/generate.h"

namespace mechscope::cli {
namespace {

int run_run(int argc, char** argv) {
  Args a("run", "--model M (--prompt TEXT | --ids 1,2,3)... [--cache GLOB]... --out FILE.safetensors",
         "Runs the model on one or more inputs (a batch, right-padded with an attention mask) and writes\n"
         "input_ids, attention_mask, logits [batch, pos, vocab] and every cached hook under its hook name.");
  add_model_flags(a);
  add_prompt_flags(a, true);
  a.multi("cache", "GLOB", "hook names to save, exact or glob (e.g. 'blocks.*.hook_resid_pre')");
  a.opt("out", "FILE", "output .safetensors file");
  a.flag("no-logits", "do not write logits (large for big vocabularies)");
  if (!a.parse(argc, argv)) return 0;
  if (!a.has("out")) fail("--out FILE.safetensors is required");
  Loaded m = load_from_flags(a);
  auto seqs = inputs_from_flags(a, m);

  auto names = m.model->hook_names();
  for (auto& pat : a.all("cache")) {
    bool any = false;
    for (auto& n : names) any |= hooks::glob_match(pat, n);
    if (!any) fail("--cache '", pat, "' matches no hook point of this model (see mechscope info --model ...)");
  }

  at::Tensor ids, mask;
  const auto& cfg = m.model->config();
  models::pad_batch(seqs, cfg.pad_token_id.value_or(cfg.eos_token_id.value_or(0)), ids, mask);
  hooks::HookSet hs;
  hooks::ActivationCache cache;
  cache.attach(hs, a.all("cache"));
  models::RunContext ctx;
  ctx.hooks = &hs;
  bool padded = mask.sum().item<int64_t>() != mask.numel();
  if (padded) ctx.attention_mask = mask;
  at::NoGradGuard no_grad;
  at::Tensor logits;
  if (m.model->has_lm_head()) {
    logits = m.model->forward(ids, ctx);
  } else {
    // No output head (a bare BertModel): the run is for its activations only.
    at::Tensor resid = m.model->embed(ids, ctx);
    for (int l = 0; l < cfg.n_layers; ++l) resid = m.model->block(l, resid, ctx);
    m.model->final_norm(resid, ctx);
    if (!a.on("no-logits")) std::fprintf(stderr, "note: the model has no output head: no logits written\n");
  }

  std::vector<std::pair<std::string, at::Tensor>> out{{"input_ids", ids}, {"attention_mask", mask}};
  if (!a.on("no-logits") && logits.defined()) out.emplace_back("logits", logits.to(at::kFloat));
  for (auto& [name, t] : cache.all()) out.emplace_back(name, t.to(at::kFloat));
  std::string path = a.str("out");
  auto slash = path.find_last_of('/');
  if (slash != std::string::npos && slash > 0) make_dirs(path.substr(0, slash));
  io::write_safetensors(path, out, {{"model", m.dir}, {"format", "mechscope run"}});
  std::fprintf(stderr, "wrote %s: %zu tensors (batch %lld, %lld positions)\n", path.c_str(), out.size(),
               (long long)ids.size(0), (long long)ids.size(1));
  return 0;
}

const Register reg{"run", "forward pass: logits and cached activations to .safetensors", 30, run_run};

}  // namespace
}  // namespace mechscope::cli
