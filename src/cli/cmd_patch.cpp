// mechscope patch: activation patching sweeps (seed 002), exact (fast), naive or attribution.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>
#include <torch/version.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>

#include "analysis/patching/figures.h"
#include "analysis/patching/patching.h"
#include "cli/batch.h"
#include "cli/common.h"
#include "cli/distribute.h"
#include "cli/patch_common.h"
#include "cli/registry.h"
#include "cli/wire.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/progress.h"
#include "io/safetensors.h"
#include "report/output.h"
#include "report/run.h"

namespace mechscope::cli {
namespace {

namespace P = analysis::patching;
using Clock = std::chrono::steady_clock;

std::string to_bytes(const P::PatchResult& r) {
  wire::Writer w;
  w.pod(r.clean_metric), w.pod(r.corrupt_metric), w.pod(r.base_seconds), w.pod(r.n_pos), w.pod(r.cells),
      w.pod(r.skipped_noop), w.pod<uint64_t>(r.targets.size());
  for (auto& t : r.targets) {
    w.str(t.name);
    w.pod<uint64_t>(t.axes.size());
    for (auto& x : t.axes) w.str(x);
    w.tensor(t.values), w.tensor(t.exact), w.pod(t.seconds);
  }
  return w.take();
}

P::PatchResult from_bytes(const std::string& bytes) {
  wire::Reader rd(bytes);
  P::PatchResult r;
  r.clean_metric = rd.pod<double>(), r.corrupt_metric = rd.pod<double>(), r.base_seconds = rd.pod<double>();
  r.n_pos = rd.pod<int64_t>(), r.cells = rd.pod<int64_t>(), r.skipped_noop = rd.pod<int64_t>();
  r.targets.resize((size_t)rd.pod<uint64_t>());
  for (auto& t : r.targets) {
    t.name = rd.str();
    t.axes.resize((size_t)rd.pod<uint64_t>());
    for (auto& x : t.axes) x = rd.str();
    t.values = rd.tensor(), t.exact = rd.tensor(), t.seconds = rd.pod<double>();
  }
  return r;
}

int run_patch(int argc, char** argv) {
  Args a("patch",
         "--model M (--clean TEXT --corrupt TEXT | --clean-ids IDS --corrupt-ids IDS | --pairs FILE.jsonl)\n"
         "       (--answer TEXT --wrong TEXT | --answer-id N --wrong-id N) [--targets LIST] [--method M] --out DIR",
         "Activation patching: runs the corrupt prompt with one clean activation patched in, for every cell of\n"
         "each target (TransformerLens's get_act_patch_* family), and scores each run by the metric, normalised\n"
         "(patched - corrupt) / (clean - corrupt) unless --raw. Targets: resid_pre resid_mid resid_post attn_out\n"
         "mlp_out [layer, pos]; z q k v [layer, pos, head]; z_all_pos q_all_pos k_all_pos v_all_pos [layer, head];\n"
         "pattern [layer, head, dest_pos]; pattern_all_pos [layer, head]; block_every (resid_pre, attn_out, mlp_out).\n"
         "Writes patch.json, patch.safetensors, a heatmap per target, and index.html with the 3-D surface and the\n"
         "per-layer animation.");
  add_model_flags(a);
  add_prompt_pair_flags(a);
  a.opt("targets", "LIST", "comma-separated patch targets", "resid_pre");
  a.opt("method", "M", "exact (fast path), attribution (gradient approximation) or naive (one forward per cell)",
        "exact");
  a.flag("compare-exact", "with --method attribution: also run exact patching and plot one against the other");
  a.opt("pairs", "FILE.jsonl",
        "a dataset of pairs, one JSON object per line: clean/corrupt (text) or clean_ids/"
        "corrupt_ids, optionally clean_pair/corrupt_pair (second segments), answer/wrong or answer_id/wrong_id; "
        "metrics are "
        "averaged over pairs");
  a.flag("raw", "write the plain metric instead of the normalised one");
  a.flag("no-skip-noops", "patch cells whose clean and corrupt values are identical too (benchmarking)");
  a.opt("max-rows", "N", "packed rows per batch of the exact method (bounds memory); 0 = about 8 MB of residual stream",
        "0");
  a.opt("formats", "LIST", "static figure formats: png, svg, pdf", "png");
  a.opt("out", "DIR", "output folder");
  batch::add_shard_flag(a);
  if (!a.parse(argc, argv)) return 0;
  if (!a.has("out")) fail("--out DIR is required");
  P::Method method = P::parse_method(a.str("method"));
  auto targets = P::parse_targets(a.str("targets"));
  auto formats = report::parse_formats(a.str("formats"));
  if (a.on("compare-exact") && method != P::Method::Attribution) fail("--compare-exact goes with --method attribution");
  long long max_rows = a.integer("max-rows", 0, 1LL << 40);
  // Over ranks or shards (issue 18) the pairs are the items: each is patched whole, and rank 0 (or
  // merge) averages them in pair order exactly as one process does and alone writes the folder.
  batch::Job job = batch::start(a);
  if (job.lead()) report::claim_output_dir(a.str("out"), "patch");

  Loaded m = load_from_flags(a);
  need_lm_head(m, "patch");
  PairInputs in = pairs_from_flags(a, m);
  P::PatchOptions opt;
  opt.method = method;
  opt.also_exact = a.on("compare-exact");
  opt.sweep.skip_noops = !a.on("no-skip-noops");
  opt.sweep.max_rows = max_rows;
  long long cells = 0;
  if (method != P::Method::Attribution || opt.also_exact)
    for (auto& pair : in.pairs)
      for (auto& t : targets)
        cells += (long long)P::target_cells(P::target_spec(t), m.model->config(), (int64_t)pair.clean.size()).size();
  auto t0 = Clock::now();
  P::PatchResult r;
  if (!job.spread()) {
    Progress progress("patch cells", cells);  // its line ends before the summary is printed
    opt.sweep.on_cells = [&progress](int64_t k) { progress.tick(k); };
    r = P::patch(*m.model, in.pairs, targets, opt);
  } else {
    P::check_pairs(in.pairs, targets);
    wire::Writer inputs;
    for (auto& p : in.pairs) {
      inputs.ints(p.clean), inputs.ints(p.corrupt), inputs.ints(p.clean_types), inputs.ints(p.corrupt_types);
      inputs.pod(p.metric.answer), inputs.pod(p.metric.wrong), inputs.pod(p.metric.position);
    }
    auto each = batch::run(job, "patch pairs", (long long)in.pairs.size(), inputs.take(), [&](long long k) {
      return to_bytes(P::patch_pair(*m.model, in.pairs[(size_t)k], targets, opt));
    });
    if (!each) return 0;
    for (size_t k = 0; k < in.pairs.size(); ++k) P::add_pair(r, from_bytes(each->at((long long)k)), in.pairs.size());
  }
  double total = std::chrono::duration<double>(Clock::now() - t0).count();
  if (std::abs(r.clean_metric - r.corrupt_metric) < 1e-12 && !a.on("raw"))
    fail("the clean and corrupt metrics are equal (", r.clean_metric, "): nothing to normalise by; use --raw");

  bool raw = a.on("raw");
  auto value_of = [&](const at::Tensor& v) {
    return raw ? v : (v - r.corrupt_metric) / (r.clean_metric - r.corrupt_metric);
  };
  std::string value_name = raw ? P::metric_name(in.metric_kind) : "normalised " + P::metric_name(in.metric_kind);

  report::RunOutput out(
      a.str("out"), argc, argv, "patch", "Activation patching: " + m.dir,
      method == P::Method::Attribution ? "attribution patching" : P::method_name(method) + " patching");
  out.formats = formats;
  out.manifest.model = m.dir;
  out.manifest.versions["libtorch"] = TORCH_VERSION;

  std::vector<std::pair<std::string, at::Tensor>> tensors;
  nlohmann::json j;
  j["model"] = m.dir;
  j["method"] = P::method_name(method);
  j["metric"] = {{"kind", P::metric_name(in.metric_kind)},
                 {"normalised", !raw},
                 {"position", in.position},
                 {"clean", r.clean_metric},
                 {"corrupt", r.corrupt_metric}};
  if (in.pairs.size() == 1) {
    j["metric"]["answer_id"] = in.pairs[0].metric.answer;
    j["metric"]["wrong_id"] = in.pairs[0].metric.wrong;
  }
  j["pairs"] = in.pairs.size();
  j["n_pos"] = r.n_pos;
  j["positions"] = in.position_labels;
  j["clean_ids"] = in.pairs[0].clean;
  j["corrupt_ids"] = in.pairs[0].corrupt;
  if (in.segments) {
    j["clean_token_type_ids"] = in.pairs[0].clean_types;
    j["corrupt_token_type_ids"] = in.pairs[0].corrupt_types;
  }
  j["clean_tokens"] = in.clean_tokens;
  j["corrupt_tokens"] = in.corrupt_tokens;
  j["threads"] = at::get_num_threads();
  j["timings"] = {{"base_runs_s", r.base_seconds}, {"total_s", total}};
  P::FigureLabels labels{in.position_labels, value_name,
                         method == P::Method::Attribution ? "Attribution patching" : "Activation patching"};
  std::vector<at::Tensor> exact_vals, attr_vals;
  for (auto& t : r.targets) {
    at::Tensor v = value_of(t.values).to(at::kFloat);
    tensors.emplace_back(t.name, v);
    nlohmann::json tj = target_json(t, v);
    if (t.exact.defined()) {
      at::Tensor e = value_of(t.exact).to(at::kFloat);
      tensors.emplace_back("exact." + t.name, e);
      tj["exact"] = nlohmann::json::parse(tensor_json(e));
      exact_vals.push_back(e);
      attr_vals.push_back(v);
    }
    j["targets"].push_back(tj);
    j["timings"][t.name + "_s"] = t.seconds;
  }
  std::map<std::string, std::string> meta{{"model", m.dir},
                                          {"method", P::method_name(method)},
                                          {"metric", P::metric_name(in.metric_kind)},
                                          {"normalised", raw ? "false" : "true"}};
  write_target_files(out, "patch", tensors, meta, j);

  out.html.add_number("model", m.dir);
  out.html.add_number("method", P::method_name(method));
  out.html.add_number("pairs", std::to_string(in.pairs.size()));
  out.html.add_number("clean " + P::metric_name(in.metric_kind), r.clean_metric, 4);
  out.html.add_number("corrupt " + P::metric_name(in.metric_kind), r.corrupt_metric, 4);
  out.html.add_number("wall time (s)", total, 3);
  for (size_t i = 0; i < r.targets.size(); ++i) {
    const auto& t = r.targets[i];
    at::Tensor v = tensors[i + (exact_vals.empty() ? 0 : i)].second;  // value tensors interleave with exact ones
    out.save_figure(P::heatmap_figure(t.name, t.name, v, t.axes, labels));
  }
  for (const auto& t : r.targets) save_layer_pos_figures(out, t, value_of(t.values), labels);
  if (!exact_vals.empty()) {
    std::vector<std::string> names;
    for (auto& t : r.targets) names.push_back(t.name);
    out.save_figure(P::attribution_scatter("attribution_vs_exact", names, exact_vals, attr_vals, value_name));
  }
  out.manifest.extra = {{"method", P::method_name(method)}, {"targets", targets}};
  out.finish();
  std::fprintf(stderr, "clean %s %.4f, corrupt %.4f; %zu target(s) in %.2fs -> %s\n",
               P::metric_name(in.metric_kind).c_str(), r.clean_metric, r.corrupt_metric, r.targets.size(), total,
               out.dir().c_str());
  return 0;
}

const Register reg{"patch", "activation patching sweeps (exact, attribution, naive) with heatmaps", 50, run_patch};

}  // namespace
}  // namespace mechscope::cli
