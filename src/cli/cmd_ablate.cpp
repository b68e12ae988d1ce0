// mechscope ablate: zero, mean or resample ablation of each cell of each target, as the metric change.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <torch/version.h>

#include <chrono>
#include <cstdio>
#include <fstream>

#include "analysis/patching/figures.h"
#include "analysis/patching/patching.h"
#include "cli/batch.h"
#include "cli/common.h"
#include "cli/patch_common.h"
#include "cli/registry.h"
#include "cli/wire.h"
#include "core/error.h"
#include "core/json.h"
#include "core/fs.h"
#include "core/fs_guard.h"
#include "core/progress.h"
#include "io/safetensors.h"
#include "report/output.h"
#include "report/run.h"

namespace mechscope::cli {
namespace {

namespace P = analysis::patching;
using Clock = std::chrono::steady_clock;

// Reference prompts: one per line, plain text or a JSON object {"prompt": TEXT} / {"ids": [...]}.
std::vector<std::vector<int64_t>> read_reference(const Args& a, const Loaded& m, const std::string& path) {
  if (!file_exists(path)) fail("--reference: cannot open '", path, "'");
  std::vector<std::vector<int64_t>> out;
  for_each_line(path, [&](std::string line, long long lineno) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) return;
    std::string where = path + ":" + std::to_string(lineno);
    if (line[0] == '{') {
      nlohmann::json j = parse_json(line, where);
      try {
        if (j.contains("ids")) {
          std::vector<int64_t> ids = j["ids"].get<std::vector<int64_t>>();
          check_ids(ids, m.model->config(), where);
          out.push_back(ids);
        } else if (j.contains("prompt")) {
          out.push_back(prompt_ids(a, m, j["prompt"].get<std::string>(), where));
        } else {
          fail(where, ": expected {\"prompt\": TEXT} or {\"ids\": [...]}");
        }
      } catch (const nlohmann::json::exception& e) {
        fail(where, ": bad JSON line (", e.what(), ")");
      }
    } else {
      out.push_back(prompt_ids(a, m, line, where));
    }
  });
  if (out.empty()) fail("--reference: '", path, "' has no prompts");
  return out;
}

int run_ablate(int argc, char** argv) {
  Args a("ablate",
         "--model M (--prompt TEXT | --ids IDS) (--answer TEXT --wrong TEXT | --answer-id N --wrong-id N)\n"
         "       [--targets LIST] [--kind zero|mean|resample] [--reference FILE] --out DIR",
         "Ablates each cell of each target (same targets as `patch`) in the run on the prompt and writes the\n"
         "metric change, metric(ablated) - metric(clean), to ablate.safetensors, with a heatmap per target.\n"
         "zero: the activation set to 0; mean: its mean over the --reference prompts (per position when they\n"
         "have the prompt's length, else over positions too); resample: each reference prompt's activation in\n"
         "turn (same length), averaged.");
  add_model_flags(a);
  a.opt("prompt", "TEXT", "the prompt");
  a.opt("ids", "IDS", "the prompt as token ids");
  a.opt("pair", "TEXT",
        "second segment of --prompt (BERT-family: the tokenizer's pair template, token types 0/1; "
        "reference prompts run with type 0)");
  add_answer_flags(a);
  a.opt("targets", "LIST", "comma-separated targets (see mechscope patch --help)", "z_all_pos");
  a.opt("kind", "K", "zero, mean or resample", "zero");
  a.opt("reference", "FILE",
        "reference prompts for mean/resample: one per line (text, or {\"prompt\": ..} / {\"ids\": [..]})");
  a.opt("method", "M", "exact (fast path) or naive (one forward per cell)", "exact");
  a.opt("formats", "LIST", "static figure formats: png, svg, pdf", "png");
  a.opt("out", "DIR", "output folder");
  batch::add_shard_flag(a);
  if (!a.parse(argc, argv)) return 0;
  if (!a.has("out")) fail("--out DIR is required");
  P::AblationKind kind = P::parse_ablation(a.str("kind"));
  P::Method method = P::parse_method(a.str("method"));
  if (method == P::Method::Attribution) fail("--method: ablate supports exact and naive");
  auto targets = P::parse_targets(a.str("targets"));
  auto formats = report::parse_formats(a.str("formats"));
  if (kind != P::AblationKind::Zero && !a.has("reference"))
    fail("--kind ", a.str("kind"), " needs reference prompts: --reference FILE");
  if (a.has("prompt") == a.has("ids")) fail("give the prompt with --prompt TEXT or --ids IDS (one of them)");
  // Over ranks or shards (issue 18) the items are the reference prompts of resample ablation (each a
  // run over every target) or the targets (zero, mean): rank 0 (or merge) adds the runs in reference
  // order and divides, as one process does, and alone writes the folder.
  batch::Job job = batch::start(a);
  if (job.lead()) report::claim_output_dir(a.str("out"), "ablate");

  Loaded m = load_from_flags(a);
  need_lm_head(m, "ablate");
  P::Metric metric = metric_from_flags(a, m);
  std::vector<int64_t> ids, types;
  if (a.has("pair") && !a.has("prompt")) fail("--pair goes with --prompt TEXT (the first segment), not with --ids");
  if (a.has("prompt")) {
    std::optional<std::string> second;
    if (a.has("pair")) second = a.str("pair");
    auto enc = prompt_encoding(a, m, a.str("prompt"), "--prompt", second);
    ids = enc.ids;
    types = enc.type_ids;
  } else {
    for (long long x : parse_int_list(a.str("ids"), "--ids")) ids.push_back(x);
    check_ids(ids, m.model->config(), "--ids");
  }
  P::metric_position(metric, (int64_t)ids.size());
  std::vector<std::vector<int64_t>> reference;
  if (a.has("reference")) reference = read_reference(a, m, a.str("reference"));

  long long runs = kind == P::AblationKind::Resample ? (long long)reference.size() : 1, cells = 0;
  for (auto& t : targets)
    cells += runs * (long long)P::target_cells(P::target_spec(t), m.model->config(), (int64_t)ids.size()).size();
  auto t0 = Clock::now();
  P::AblationResult r;
  if (!job.spread()) {
    Progress progress("ablate cells", cells);  // its line ends before the summary is printed
    P::SweepOptions sweep;
    sweep.on_cells = [&progress](int64_t k) { progress.tick(k); };
    r = P::ablate(*m.model, ids, metric, targets, kind, reference, method, sweep, types);
  } else {
    P::AblationSetup setup = P::ablation_setup(*m.model, ids, metric, targets, kind, reference, method, types);
    const size_t n_targets = setup.specs.size();
    const bool by_reference = kind == P::AblationKind::Resample;
    wire::Writer inputs;
    inputs.ints(ids), inputs.ints(types), inputs.pod(metric.answer), inputs.pod(metric.wrong),
        inputs.pod(metric.position);
    for (auto& ref : reference) inputs.ints(ref);
    auto timed = [&](wire::Writer& w, size_t t, const std::map<std::string, at::Tensor>& source) {
      auto s0 = Clock::now();
      w.tensor(P::ablation_values(*m.model, setup, t, source));
      w.pod(std::chrono::duration<double>(Clock::now() - s0).count());
    };
    auto each = batch::run(job, by_reference ? "ablate references" : "ablate targets",
                           (long long)(by_reference ? setup.n_sources : n_targets), inputs.take(), [&](long long k) {
                             wire::Writer w;
                             if (by_reference) {
                               auto source = P::ablation_source(*m.model, setup, reference, (size_t)k);
                               for (size_t t = 0; t < n_targets; ++t) timed(w, t, source);
                             } else {
                               timed(w, (size_t)k, setup.shared_source);
                             }
                             return w.take();
                           });
    if (!each) return 0;
    std::vector<std::vector<at::Tensor>> values(n_targets);
    std::vector<double> seconds(n_targets, 0.0);
    for (auto& [k, bytes] : *each) {
      wire::Reader rd(bytes);
      for (size_t t = by_reference ? 0 : (size_t)k; t < (by_reference ? n_targets : (size_t)k + 1); ++t) {
        values[t].push_back(rd.tensor());
        seconds[t] += rd.pod<double>();
      }
    }
    r = P::ablation_result(*m.model, setup, values, seconds);
  }
  double total = std::chrono::duration<double>(Clock::now() - t0).count();

  std::string kind_name = P::ablation_name(kind);
  std::string value_name = "Δ " + P::metric_name(metric.kind);
  report::RunOutput out(a.str("out"), argc, argv, "ablate", kind_name + " ablation: " + m.dir);
  out.formats = formats;
  out.manifest.model = m.dir;
  out.manifest.versions["libtorch"] = TORCH_VERSION;
  auto toks = token_strings(m, ids);
  auto labels = position_labels(toks, toks);

  std::vector<std::pair<std::string, at::Tensor>> tensors;
  nlohmann::json j{{"model", m.dir},
                   {"kind", kind_name},
                   {"method", P::method_name(method)},
                   {"metric",
                    {{"kind", P::metric_name(metric.kind)},
                     {"answer_id", metric.answer},
                     {"wrong_id", metric.wrong},
                     {"position", metric.position},
                     {"clean", r.clean_metric}}},
                   {"value", "metric(ablated) - metric(clean)"},
                   {"ids", ids},
                   {"tokens", toks},
                   {"positions", labels},
                   {"references", reference.size()},
                   {"n_pos", r.n_pos}};
  j["timings"] = {{"total_s", total}};
  if (a.has("pair")) j["token_type_ids"] = types;
  std::string title = kind_name;
  title[0] = (char)std::toupper((unsigned char)title[0]);
  P::FigureLabels fl{labels, value_name, title + " ablation"};
  for (auto& t : r.targets) {
    at::Tensor v = t.values.to(at::kFloat);
    tensors.emplace_back(t.name, v);
    j["targets"].push_back(target_json(t, v));
    j["timings"][t.name + "_s"] = t.seconds;
  }
  write_target_files(out, "ablate", tensors,
                     {{"model", m.dir}, {"kind", kind_name}, {"metric", P::metric_name(metric.kind)}}, j);
  out.html.add_number("model", m.dir);
  out.html.add_number("ablation", kind_name);
  out.html.add_number("clean " + P::metric_name(metric.kind), r.clean_metric, 4);
  out.html.add_number("wall time (s)", total, 3);
  for (size_t i = 0; i < r.targets.size(); ++i) {
    const auto& t = r.targets[i];
    out.save_figure(P::heatmap_figure(t.name, t.name, tensors[i].second, t.axes, fl));
    save_layer_pos_figures(out, t, tensors[i].second, fl);
  }
  out.manifest.extra = {{"kind", kind_name}, {"targets", targets}};
  out.finish();
  std::fprintf(stderr, "clean %s %.4f; %zu target(s) in %.2fs -> %s\n", P::metric_name(metric.kind).c_str(),
               r.clean_metric, r.targets.size(), total, out.dir().c_str());
  return 0;
}

const Register reg{"ablate", "zero / mean / resample ablation of heads, layers, positions", 51, run_ablate};

}  // namespace
}  // namespace mechscope::cli
