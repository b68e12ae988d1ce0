// mechscope run: one forward pass over a batch of prompts, writing logits and cached activations.
#include <ATen/ATen.h>

#include <cstdio>

#include "cli/common.h"
#include "cli/registry.h"
#include "analysis/heads/interventions.h"
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
  // Head patching (issue 14): kept as its own block so the prompt handling above merges cleanly.
  a.opt("patch-heads", "L:H,...", "replace these heads' hook_z at every position by their z on --patch-source-ids; 'L:*' = a whole layer");
  a.multi("patch-source-ids", "1,2,3", "with --patch-heads: the source ids (same length as the input); once for every input, or once per input");
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
  hooks::ScopedHooks patch_scope(hs);
  if (a.has("patch-source-ids") && !a.has("patch-heads")) fail("--patch-source-ids applies to --patch-heads: give the heads too");
  if (a.has("patch-heads")) {
    namespace H = analysis::heads;
    auto heads = H::parse_head_spec(a.str("patch-heads"), cfg.n_layers, cfg.n_heads, "--patch-heads");
    auto srcs = a.all("patch-source-ids");
    if (srcs.empty()) fail("--patch-heads needs --patch-source-ids 1,2,3 (the ids whose z is patched in)");
    if (srcs.size() != 1 && srcs.size() != seqs.size())
      fail("--patch-source-ids given ", srcs.size(), " times for ", seqs.size(), " inputs: give it once, or once per input");
    std::vector<int64_t> layers;
    for (auto& [l, hl] : H::heads_by_layer(heads)) layers.push_back(l);
    std::map<int64_t, std::vector<at::Tensor>> parts;
    for (size_t i = 0; i < seqs.size(); ++i) {
      if (srcs.size() == 1 && i > 0) break;
      std::vector<int64_t> src;
      for (long long x : parse_int_list(srcs[i], "--patch-source-ids")) src.push_back(x);
      std::string what = "--patch-source-ids" + (srcs.size() > 1 ? " #" + std::to_string(i + 1) : std::string());
      check_ids(src, cfg, what);
      for (size_t j = (srcs.size() == 1 ? 0 : i); j < (srcs.size() == 1 ? seqs.size() : i + 1); ++j)
        if (seqs[j].size() != src.size())
          fail(what, " has ", src.size(), " tokens but input ", j + 1, " has ", seqs[j].size(),
               ": a head patch replaces z position by position, so they must be the same length");
      auto z = H::capture_z(*m.model, at::tensor(src, at::kLong).unsqueeze(0), layers);
      // Right-pad to the batch length: padded positions are never attended to by real ones.
      for (auto& [l, t] : z)
        parts[l].push_back(at::constant_pad_nd(t, {0, 0, 0, 0, 0, ids.size(1) - t.size(1)}));
    }
    std::map<int64_t, at::Tensor> source_z;
    for (auto& [l, v] : parts) source_z[l] = at::cat(v, 0);
    H::add_patch(patch_scope, heads, source_z);
  }
  cache.attach(hs, a.all("cache"));  // after the patch, so cached activations are the patched run's
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
