// mechscope generate: greedy or sampled continuation of a prompt.
#include <cstdio>
#include <limits>

#include "cli/common.h"
#include "cli/registry.h"
#include "analysis/heads/interventions.h"
#include "core/error.h"
#include "models/generate.h"

namespace mechscope::cli {
namespace {

int run_generate(int argc, char** argv) {
  Args a("generate", "--model M (--prompt TEXT | --ids 1,2,3) --max-new-tokens N [sampling] [--json]",
         "Continues a prompt. Greedy (as transformers' generate(do_sample=False)) unless --temperature is given.");
  add_model_flags(a);
  add_prompt_flags(a, false);
  a.opt("max-new-tokens", "N", "tokens to generate", "20");
  a.opt("temperature", "T", "sample with this temperature (0 = greedy)", "0");
  a.opt("top-k", "K", "sample only among the K most likely tokens (0 = off)", "0");
  a.opt("top-p", "P", "nucleus sampling: smallest set of tokens with probability >= P (1 = off)", "1");
  a.opt("seed", "N", "random seed for sampling", "0");
  a.flag("no-eos-stop", "keep generating after the end-of-sequence token");
  a.flag("json", "print {\"prompt_ids\": [...], \"prompt_tokens\": [...], \"new_ids\": [...], \"text\": \"...\"}");
  // Head ablation (issue 14): kept as its own block so the prompt handling above merges cleanly.
  a.opt(
      "ablate-heads", "L:H,...",
      "ablate these attention heads (their hook_z) at every position, generated ones included; 'L:*' = a whole layer");
  a.opt("ablation", "KIND",
        "with --ablate-heads: zero, or mean (each head's z averaged over the prompt's positions, without ablation)",
        "zero");
  if (!a.parse(argc, argv)) return 0;

  models::GenerateOptions g;
  // The context length bounds --max-new-tokens further once the model is loaded.
  g.max_new_tokens = a.integer("max-new-tokens", 0, 1 << 24);
  g.temperature = a.number("temperature", 0, 1e4);
  g.top_k = a.integer("top-k", 0, 1LL << 31);
  g.top_p = a.number("top-p", 0, 1, true);
  g.seed = (uint64_t)a.integer("seed", 0, std::numeric_limits<long long>::max());
  if ((a.has("top-k") || a.has("top-p")) && g.temperature == 0)
    fail("--top-k/--top-p apply to sampling: give --temperature too (e.g. --temperature 1)");

  Loaded m = load_from_flags(a);
  need_lm_head(m, "generate");
  auto seqs = inputs_from_flags(a, m, g.max_new_tokens).seqs;
  if (seqs.size() != 1) fail("generate takes one prompt");
  std::vector<std::vector<int64_t>> inputs{seqs[0].ids};
  if (!a.on("no-eos-stop")) g.eos_token_id = m.model->config().eos_token_id;

  hooks::HookSet head_hooks;
  hooks::ScopedHooks head_scope(head_hooks);
  if (a.has("ablation") && !a.has("ablate-heads")) fail("--ablation applies to --ablate-heads: give the heads too");
  if (a.has("ablate-heads")) {
    namespace H = analysis::heads;
    const auto& cfg = m.model->config();
    auto kind = H::parse_head_ablation(a.str("ablation"), "--ablation");
    auto heads = H::parse_head_spec(a.str("ablate-heads"), cfg.n_layers, cfg.n_heads, "--ablate-heads");
    std::map<int64_t, at::Tensor> means;
    if (kind == H::HeadAblation::Mean) means = H::mean_z(*m.model, {inputs[0]}, heads);
    H::add_ablation(head_scope, heads, kind, means);
    g.hooks = &head_hooks;
  }

  auto out = models::generate(*m.model, inputs[0], g);

  std::string text;
  if (m.tokenizer) text = decode_known(*m.tokenizer, out);
  if (a.on("json")) {
    nlohmann::json j{{"prompt_ids", inputs[0]}, {"new_ids", out}};
    j["text"] = m.tokenizer ? nlohmann::json(text) : nlohmann::json();
    if (m.tokenizer) {
      std::vector<std::string> toks;
      for (int64_t id : inputs[0]) toks.push_back(id < m.tokenizer->size() ? m.tokenizer->id_to_token(id) : "");
      j["prompt_tokens"] = toks;
    }
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  if (m.tokenizer) {
    std::printf("%s%s\n", decode_known(*m.tokenizer, inputs[0]).c_str(), text.c_str());
  } else {
    for (size_t i = 0; i < out.size(); ++i) std::printf("%s%lld", i ? "," : "", (long long)out[i]);
    std::printf("\n");
  }
  return 0;
}

const Register reg{"generate", "continue a prompt (greedy or sampled), with a KV cache", 40, run_generate};

}  // namespace
}  // namespace mechscope::cli
