// mechscope trace: ROME causal tracing of one prompt (heatmaps for block outputs, MLP and attention).
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>

#include "analysis/causal_trace/causal_trace.h"
#include "analysis/causal_trace/facts.h"
#include "analysis/causal_trace/figures.h"
#include "cli/common.h"
#include "cli/registry.h"
#include "cli/trace_common.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/progress.h"
#include "io/safetensors.h"
#include "models/registry.h"
#include "report/output.h"
#include "report/run.h"

namespace mechscope::cli {
namespace {

namespace ct = analysis::causal_trace;

int run_trace(int argc, char** argv) {
  Args a("trace", "--model M (--prompt TEXT --subject TEXT | --ids 1,2,3 --subject-range B,E) [--noise s3] --out DIR",
         "ROME's causal tracing (Meng et al. 2022) of one prompt: the clean run plus --samples copies whose\n"
         "subject token embeddings get noise (numpy RandomState(--seed), as ROME draws it); each cell restores\n"
         "one clean state (block output; or the MLP / attention output over a window of layers) at one token\n"
         "and layer, scored by the mean p(answer) at the last position. Writes trace.safetensors (scores.all,\n"
         "scores.mlp, scores.attn: [token, layer]), trace.json, ROME-style heatmaps and index.html.");
  add_model_flags(a);
  add_trace_flags(a);
  a.opt("prompt", "TEXT", "the prompt (needs a tokenizer)");
  a.opt("subject", "TEXT", "the subject inside the prompt (its tokens are corrupted)");
  a.opt("ids", "1,2,3", "the prompt as token ids, used exactly as given");
  a.opt("subject-range", "B,E", "subject tokens [B, E) (with --ids, or to override --subject)");
  a.opt("answer", "TEXT", "trace p(this token) instead of the clean run's top token (one token)");
  a.opt("answer-id", "N", "trace p(this token id)");
  a.opt("expect", "TEXT", "fail unless the model's top prediction is this text (ROME's expect)");
  add_encoding_flags(a);
  a.opt("out", "DIR", "output folder");
  if (!a.parse(argc, argv)) return 0;
  if (!a.has("out")) fail("--out DIR is required");
  if (a.has("prompt") == a.has("ids")) fail("give the prompt with either --prompt TEXT or --ids 1,2,3");
  if (a.has("ids") && !a.has("subject-range")) fail("--ids needs --subject-range B,E (the subject's tokens)");
  if (a.has("prompt") && !a.has("subject") && !a.has("subject-range"))
    fail("--prompt needs --subject TEXT (or --subject-range B,E)");
  if (a.has("answer") && a.has("answer-id")) fail("give --answer or --answer-id, not both");
  TraceSettings set = trace_settings_from_flags(a);
  report::claim_output_dir(a.str("out"), "trace");

  Loaded m = load_from_flags(a);
  need_lm_head(m, "trace");
  ct::check_traceable(*m.model);
  const auto& cfg = m.model->config();
  ct::TraceInput in;
  std::string prompt_text, subject_text = a.str("subject");
  tokenizers::Encoding enc;
  if (a.has("ids")) {
    for (long long x : parse_int_list(a.str("ids"), "--ids")) in.ids.push_back(x);
  } else {
    prompt_text = a.str("prompt");
    enc = encode_prompt(a, m, prompt_text, "--prompt");
    in.ids = enc.ids;
  }
  check_ids(in.ids, cfg, a.has("ids") ? "--ids" : "--prompt");
  if (a.has("subject-range")) {
    auto r = parse_int_list(a.str("subject-range"), "--subject-range");
    if (r.size() != 2) fail("--subject-range: expected B,E (two token indices), got '", a.str("subject-range"), "'");
    in.subject_begin = r[0];
    in.subject_end = r[1];
    if (r[0] < 0 || r[1] > (long long)in.ids.size() || r[0] >= r[1])
      fail("--subject-range ", r[0], ",", r[1], " is not a non-empty token range inside the prompt's ", in.ids.size(),
           " tokens");
  } else {
    std::tie(in.subject_begin, in.subject_end) = subject_range(m, enc, subject_text, prompt_text, "--subject");
  }
  if (a.has("answer-id")) in.answer = a.integer("answer-id");
  if (a.has("answer")) in.answer = answer_token(m, a.str("answer"), prompt_text, "--answer");

  // Noise level: for s<k> / t<d>, the std of this subject's token embeddings (the subject encoded alone,
  // as ROME's collect_embedding_std; with --ids, the subject's tokens in the prompt).
  double emb_std = 0;
  if (set.rule.needs_embedding_std()) {
    std::vector<int64_t> subj;
    if (a.has("subject") && m.tokenizer) subj = subject_ids(a, m, subject_text, "--subject");
    else subj.assign(in.ids.begin() + in.subject_begin, in.ids.begin() + in.subject_end);
    emb_std = ct::embedding_std(*m.model, {subj});
  }
  set.opt.noise = ct::resolve_noise(set.rule, emb_std);
  set.opt.noise.replace = a.on("replace");

  auto t0 = std::chrono::steady_clock::now();
  ct::TraceResult r;
  {
    Progress progress("trace cells", (long long)(set.opt.kinds.size() * in.ids.size() * m.model->config().n_layers));
    set.opt.on_cells = [&progress](int64_t k) { progress.tick(k); };
    if (a.has("expect"))  // checked before any cell is traced
      set.opt.accept = [&](int64_t id) { return trim(token_text(m, id)) == trim(a.str("expect")); };
    r = ct::trace(*m.model, in, set.opt);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::vector<std::string> tokens = token_labels(m, in.ids);
  std::string answer = token_text(m, r.answer_id);
  if (r.rejected)
    fail("--expect '", a.str("expect"), "': the model predicts '", trim(answer), "' (p = ", r.high_score, ")");

  std::string dir = a.str("out");
  report::RunOutput out(dir, argc, argv, "trace", "Causal trace", prompt_text.empty() ? "" : prompt_text);
  out.formats = set.formats;
  out.manifest.model = m.dir;
  out.manifest.seed = set.opt.seed;

  std::vector<std::pair<std::string, at::Tensor>> tensors{{"input_ids", at::tensor(in.ids, at::kLong)}};
  for (size_t k = 0; k < r.kinds.size(); ++k)
    tensors.emplace_back(std::string("scores.") + ct::kind_name(r.kinds[k]), r.scores[k].to(at::kFloat));
  io::write_safetensors(join_path(out.dir(), "trace.safetensors"), tensors, {{"format", "mechscope trace"}});
  out.add_file("trace.safetensors");

  nlohmann::json j = trace_json(r, in, tokens, answer, set, emb_std);
  if (!prompt_text.empty()) j["prompt"] = prompt_text;
  if (!subject_text.empty()) j["subject"] = subject_text;
  j["seconds"] = secs;
  write_file_atomic(join_path(out.dir(), "trace.json"),
                    j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  out.add_file("trace.json");
  out.manifest.extra = settings_json(set, emb_std);

  std::string model_name = models::display_name(cfg.model_type);
  for (size_t k = 0; k < r.kinds.size(); ++k) {
    std::string id = r.kinds[k] == ct::Kind::All ? "trace" : std::string("trace_") + ct::kind_name(r.kinds[k]);
    out.save_figure(ct::trace_heatmap(id, r.scores[k], tokens, in.subject_begin, in.subject_end, r.low_score,
                                      trim(answer), r.kinds[k], set.opt.window, model_name));
  }
  out.html.add_number("answer", trim(answer));
  out.html.add_number("high score (clean)", r.high_score, 4);
  out.html.add_number("low score (corrupted)", r.low_score, 4);
  out.html.add_number("noise level", set.opt.noise.scale, 4);
  out.finish();
  std::fprintf(stderr,
               "traced %zu tokens x %lld layers x %zu kinds in %.2fs: answer '%s' high %.4g low %.4g; wrote %s\n",
               in.ids.size(), (long long)cfg.n_layers, r.kinds.size(), secs, trim(answer).c_str(), r.high_score,
               r.low_score, dir.c_str());
  return 0;
}

const Register reg{"trace", "ROME causal tracing of one prompt: heatmaps of restored states", 60, run_trace};

}  // namespace
}  // namespace mechscope::cli
