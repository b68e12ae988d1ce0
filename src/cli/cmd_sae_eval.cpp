// mechscope sae eval: the standard evaluation of an SAE spliced into its model over a corpus.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <torch/version.h>

#include <chrono>
#include <cstdio>

#include "cli/common.h"
#include "core/error.h"
#include "core/fs.h"
#include "report/manifest.h"
#include "report/output.h"
#include "sae/splice.h"

namespace mechscope::cli {

std::vector<std::vector<int64_t>> sae_corpus_ids(const Args& a, const Loaded& m);  // cmd_sae_train.cpp

int run_sae_eval(int argc, char** argv) {
  Args a(
      "sae eval", "--model M --sae SPEC --corpus FILE [--prepend-bos] --out DIR",
      "Runs every text of the corpus three times: clean, with the SAE's reconstruction replacing the activation at\n"
      "its hook (no error term), and with that activation zeroed; reports L0 (mean active features per token),\n"
      "MSE (mean over tokens and d_in), the per-token squared error, explained variance\n"
      "(1 - sum ||x_hat - x||^2 / sum ||x - mean x||^2, as SAELens), and the mean next-token cross-entropy clean /\n"
      "spliced / zero-ablated with the CE loss score (ce_zero - ce_spliced) / (ce_zero - ce_clean). Writes eval.json\n"
      "and manifest.json.");
  add_model_flags(a);
  a.opt("sae", "SPEC", "the SAE (folder, params.npz or ORG/REPO/SUBFOLDER in the HF cache)");
  a.opt("hook", "NAME", "hook point of a params.npz whose path names none");
  a.opt("corpus", "FILE", "texts, one per line, or .jsonl with \"text\" or \"prompt\" (+ \"answer\") per line");
  a.flag("prepend-bos", "put the BOS token before each text");
  a.opt("out", "DIR", "output folder");
  if (!a.parse(argc, argv)) return 0;
  for (const char* f : {"model", "sae", "corpus", "out"})
    if (!a.has(f)) fail("--", f, " is required");
  mechscope::sae::LoadOptions lo;
  lo.hook_name = a.str("hook");
  mechscope::sae::SAE sae = mechscope::sae::load_sae(a.str("sae"), lo);
  Loaded m = load_from_flags(a);
  mechscope::sae::check_compatible(sae, *m.model);
  mechscope::sae::to_device(sae, m.model->device());  // once: encode/decode run where the model does
  auto seqs = sae_corpus_ids(a, m);
  // Issue 17: claimed (lock, no foreign folder) before the evaluation; eval.json and manifest.json
  // are written into a staging folder and moved into --out at the end, manifest last.
  std::string out = a.str("out");
  std::string place = report::claim_output_dir(out, "sae eval");
  auto t0 = std::chrono::steady_clock::now();
  mechscope::sae::EvalResult r = mechscope::sae::evaluate(*m.model, sae, seqs);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  nlohmann::json j{{"sae", sae.source},
                   {"hook_name", sae.cfg.hook_name},
                   {"texts", seqs.size()},
                   {"tokens", r.n_tokens},
                   {"predictions", r.n_predictions},
                   {"l0", r.l0},
                   {"mse", r.mse},
                   {"l2_per_token", r.l2_per_token},
                   {"explained_variance", r.explained_variance},
                   {"ce_clean", r.ce_clean},
                   {"ce_spliced", r.ce_spliced},
                   {"ce_zero_ablated", r.ce_zero_ablated},
                   {"ce_loss_score", r.ce_loss_score},
                   {"seconds", secs}};
  report::Manifest man;
  man.start();
  man.argv.assign(argv, argv + argc);
  man.command = "sae eval";
  man.model = m.dir;
  man.versions["libtorch"] = TORCH_VERSION;
  write_file_atomic(join_path(place, "eval.json"), j.dump(1) + "\n");
  man.files.push_back("eval.json");
  man.extra = {{"sae", sae.source}};
  man.finish(place);
  report::commit_output_dir(out);
  std::printf(
      "%s: %lld tokens; L0 %.2f, MSE %.5g, explained variance %.4f; CE clean %.4f, spliced %.4f, zero-ablated %.4f "
      "(score %.4f)\n",
      sae.cfg.hook_name.c_str(), (long long)r.n_tokens, r.l0, r.mse, r.explained_variance, r.ce_clean, r.ce_spliced,
      r.ce_zero_ablated, r.ce_loss_score);
  return 0;
}

}  // namespace mechscope::cli
