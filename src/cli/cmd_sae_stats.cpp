// mechscope sae stats: the logit-weight statistics of SAE features (SAELens's get_W_U_W_dec_stats_df /
// get_all_stats_dfs), the seed's figures, and feature queries with a Neuronpedia quick-list link.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>
#include <torch/version.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>

#include "analysis/sae/stats.h"
#include "analysis/sae/stats_figures.h"
#include "cli/common.h"
#include "cli/distribute.h"
#include "cli/wire.h"
#include "core/error.h"
#include "core/fs.h"
#include "io/safetensors.h"
#include "report/output.h"
#include "report/run.h"

namespace mechscope::cli {

namespace S = analysis::sae;

namespace {

std::vector<mechscope::sae::SAE> saes_from_flags(const Args& a) {
  if (a.has("sae") == a.has("sae-dir")) fail("give one of --sae SPEC or --sae-dir DIR");
  mechscope::sae::LoadOptions o;
  o.hook_name = a.str("hook");
  if (a.has("sae")) return {mechscope::sae::load_sae(a.str("sae"), o)};
  return S::load_sae_dir(a.str("sae-dir"), o);
}

std::string fmt(double v, const char* f = "%.6g") {
  char buf[48];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

}  // namespace

int run_sae_stats(int argc, char** argv) {
  Args a(
      "sae stats",
      "--model M (--sae SPEC | --sae-dir DIR) [--cosine-sim] [--unembed processed|raw]\n"
      "       [--where COND ... --sort COL --top N] --out DIR",
      "For every feature f of the SAE(s), the distribution over the vocabulary of its logit weights W_dec[f] W_U,\n"
      "summarised as SAELens's get_stats_df does: mean, population std, skewness = mean(z^3), kurtosis = mean(z^4)\n"
      "(not excess), with the feature's log10 sparsity when the SAE ships sparsity.safetensors. W_U is the one\n"
      "TransformerLens's from_pretrained gives (ln_final's scale folded in, centred) unless --unembed raw. The\n"
      "projection is streamed in blocks of --block features, never held whole. Writes stats.csv, stats.safetensors,\n"
      "the seed's figures (PNG and index.html) and, for a query, query.csv with a Neuronpedia quick-list link.\n"
      "SPEC: a folder (cfg.json + sae_weights.safetensors, or params.npz), a params.npz, or ORG/REPO/SUBFOLDER\n"
      "from the local Hugging Face cache.");
  add_model_flags(a);
  a.opt("sae", "SPEC", "one SAE (folder, params.npz or ORG/REPO/SUBFOLDER in the HF cache)");
  a.opt("sae-dir", "DIR", "a folder of SAEs, one subfolder per hook point (all-layer statistics and figures)");
  a.opt("hook", "NAME", "hook point of a params.npz whose path names none (e.g. blocks.8.hook_resid_post)");
  a.opt("unembed", "MODE", "processed (TransformerLens from_pretrained: fold_ln + center_unembed) or raw", "processed");
  a.flag("cosine-sim", "normalise W_U's columns first (cosine similarity, as the seed's all-layer statistics)");
  a.opt("block", "N", "features per streamed block (memory ~ N x d_vocab x 12 bytes)", "256");
  a.flag("save-projection", "also store the full projection W_dec W_U in stats.safetensors (d_sae x d_vocab floats)");
  a.multi("where", "COND",
          "feature filter, e.g. \"skewness>3\" (repeatable, all must hold; columns: feature, mean,\n"
          "std, skewness, kurtosis, log_feature_sparsity, layer)");
  a.opt("sort", "COL", "sort the query by this column, descending (as the seed)");
  a.flag("ascending", "sort ascending instead");
  a.opt("top", "N", "keep the first N rows of the query", "-1");
  a.opt("neuronpedia-model", "ID", "Neuronpedia model id for the quick-list link (default: the SAE's model_name)");
  a.opt("neuronpedia-sae", "ID",
        "Neuronpedia SAE id, e.g. 8-res-jb (default: from the SAE's neuronpedia_id); with\n"
        "--sae-dir the number before its first '-' is replaced by each SAE's layer");
  a.opt("list-name", "NAME", "name of the Neuronpedia quick list", "temporary_list");
  a.opt("min-log-sparsity", "X", "the all-layer animated scatter keeps features with log10 sparsity >= X", "-9");
  a.opt("formats", "LIST", "static figure formats: png, svg, pdf", "png");
  a.opt("out", "DIR", "output folder");
  if (!a.parse(argc, argv)) return 0;
  if (!a.has("out")) fail("--out DIR is required");
  if (!a.has("model")) fail("--model is required (its unembedding W_U is what the features are projected onto)");
  auto mode = S::parse_unembed_mode(a.str("unembed"));
  auto formats = report::parse_formats(a.str("formats"));
  long long block = a.integer("block");
  if (block < 1) fail("--block must be >= 1");
  S::Query q;
  for (auto& w : a.all("where")) q.where.push_back(S::parse_condition(w));
  q.sort = a.str("sort");
  if (!q.sort.empty()) S::check_column(q.sort, "--sort");
  q.ascending = a.on("ascending");
  q.top = a.integer("top");
  if (q.top < -1) fail("--top must be >= 0 (or -1 for all)");
  bool query = !q.where.empty() || !q.sort.empty() || q.top >= 0;
  double min_sparsity = a.number("min-log-sparsity");

  auto saes = saes_from_flags(a);
  Loaded m = load_from_flags(a);
  for (auto& s : saes) mechscope::sae::to_device(s, m.model->device());  // once: the projections run there
  // Issue 17: --out is claimed (lock, no foreign folder) before the work, so a second run or a folder
  // that is not mechscope's is refused at once; the results are still staged and moved in at the end.
  // Under mpirun (issue 18) rank 0 alone writes the folder.
  if (dist::rank() == 0) report::claim_output_dir(a.str("out"), "sae stats");
  auto t0 = std::chrono::steady_clock::now();
  S::StatsRun run;
  if (!dist::active()) {
    run = S::compute_stats(*m.model, saes, mode, a.on("cosine-sim"), a.on("save-projection"), block);
  } else {
    // Each SAE is an item: a rank computes its moments (and projection) by the very function one process
    // uses, rank 0 receives them exactly (cli/wire.h) and assembles the table in SAE order.
    S::check_d_in(*m.model, saes);
    run.unembed = S::unembedding(*m.model, mode);
    std::map<long long, std::string> each =
        dist::compute_items("sae stats SAEs", (long long)saes.size(), [&](long long k) {
          S::SaeStats r =
              S::sae_stats(saes[(size_t)k], run.unembed, a.on("cosine-sim"), a.on("save-projection"), block);
          wire::Writer w;
          for (const at::Tensor* t : {&r.stats.mean, &r.stats.std, &r.stats.skewness, &r.stats.kurtosis, &r.projection})
            w.tensor(*t);
          return w.take();
        });
    if (dist::rank() != 0) return 0;
    for (size_t k = 0; k < saes.size(); ++k) {
      wire::Reader rd(each.at((long long)k));
      S::SaeStats r;
      for (at::Tensor* t : {&r.stats.mean, &r.stats.std, &r.stats.skewness, &r.stats.kurtosis, &r.projection})
        *t = rd.tensor();
      S::add_sae_rows(run, saes[k], (int)k, r);
    }
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const S::StatsTable& t = run.table;
  bool several = saes.size() > 1;

  report::RunOutput out(a.str("out"), argc, argv, "sae stats", "SAE logit-weight statistics: " + m.dir,
                        std::to_string(saes.size()) + " SAE(s), " + std::to_string(t.size()) + " features, W_U " +
                            a.str("unembed") + (a.on("cosine-sim") ? ", cosine similarity" : ""));
  out.formats = formats;
  out.manifest.model = m.dir;
  out.manifest.versions["libtorch"] = TORCH_VERSION;

  write_file_atomic(join_path(out.dir(), "stats.csv"), S::to_csv(t, several));
  out.add_file("stats.csv");
  {
    auto col = [](const std::vector<double>& v) { return at::tensor(v, at::kDouble).to(at::kFloat); };
    std::vector<int64_t> layer(t.layer.begin(), t.layer.end());
    std::vector<std::pair<std::string, at::Tensor>> ts{{"feature", at::tensor(t.feature, at::kLong)},
                                                       {"mean", col(t.mean)},
                                                       {"std", col(t.std)},
                                                       {"skewness", col(t.skewness)},
                                                       {"kurtosis", col(t.kurtosis)},
                                                       {"log_feature_sparsity", col(t.log_feature_sparsity)},
                                                       {"layer", at::tensor(layer, at::kLong)}};
    for (size_t k = 0; k < run.projections.size(); ++k)
      ts.emplace_back(several ? "projection." + saes[k].cfg.hook_name : "projection", run.projections[k]);
    io::write_safetensors(join_path(out.dir(), "stats.safetensors"), ts,
                          {{"unembed", a.str("unembed")}, {"cosine_sim", a.on("cosine-sim") ? "true" : "false"}});
    out.add_file("stats.safetensors");
  }

  nlohmann::json extra{{"unembed", a.str("unembed")},
                       {"cosine_sim", a.on("cosine-sim")},
                       {"final_norm", run.unembed.final_norm},
                       {"folded_scale", run.unembed.folded_scale},
                       {"centred_over_d_model", run.unembed.layer_norm},
                       {"block", block},
                       {"seconds", seconds},
                       {"threads", at::get_num_threads()}};
  for (auto& s : saes)
    extra["saes"].push_back({{"source", s.source},
                             {"hook_name", s.cfg.hook_name},
                             {"architecture", mechscope::sae::architecture_name(s.cfg.architecture)},
                             {"d_in", s.cfg.d_in},
                             {"d_sae", s.cfg.d_sae},
                             {"sparsity", s.log_sparsity.defined()}});

  out.html.add_number("model", m.dir);
  out.html.add_number("SAEs", std::to_string(saes.size()));
  out.html.add_number("features", std::to_string(t.size()));
  out.html.add_number("W_U", a.str("unembed") + " (final norm: " + run.unembed.final_norm + ")");
  out.html.add_number("projection time (s)", seconds, 3);

  std::string what = a.on("cosine-sim") ? "cos(W_U, W_dec)" : "Logit Weight Distributions";
  std::string lname = several ? "all layers" : saes[0].cfg.hook_name;
  out.save_figure(S::skewness_histogram(t, {}, "skewness_hist", "Skewness of the " + what + " (" + lname + ")"));
  out.save_figure(S::log_kurtosis_histogram(t, {}, "kurtosis_hist", "Kurtosis of the " + what + " (" + lname + ")"));
  out.save_figure(S::skew_kurtosis_scatter(
      t, {}, "skew_kurtosis",
      (saes[0].cfg.hook_layer >= 0 && !several ? "Layer " + std::to_string(saes[0].cfg.hook_layer) + ": "
                                               : std::string()) +
          "Skewness vs Kurtosis of the " + what));
  if (several) {
    out.save_figure(S::percentiles_by_layer(t, "skewness", false, "skewness_by_layer", "Skewness by Layer"));
    out.save_figure(S::percentiles_by_layer(t, "kurtosis", true, "kurtosis_by_layer", "Kurtosis by Layer"));
    out.save_figure(S::box_by_layer(t, "skewness", false, "skewness_box", "Skewness " + what + " by Layer"));
    out.save_figure(S::box_by_layer(t, "kurtosis", true, "kurtosis_box", "log kurtosis " + what + " by Layer"));
    out.save_figure(S::scatter_by_layer(t, min_sparsity, "skew_kurtosis_by_layer", "Skewness vs Kurtosis by layer"));
  }

  if (query) {
    std::vector<size_t> rows = S::run_query(t, q);
    write_file_atomic(join_path(out.dir(), "query.csv"), S::to_csv(t, several, rows));
    out.add_file("query.csv");
    std::printf("%8s %s%12s %12s %12s\n", "feature", several ? "  layer " : "", "skewness", "kurtosis", "std");
    for (size_t r : rows)
      std::printf("%8lld %s%12s %12s %12s\n", (long long)t.feature[r],
                  several ? fmt(t.layer[r], "%6.0f  ").c_str() : "", fmt(t.skewness[r]).c_str(),
                  fmt(t.kurtosis[r]).c_str(), fmt(t.std[r]).c_str());
    nlohmann::json qj{{"rows", rows.size()}, {"where", a.all("where")}, {"sort", q.sort}, {"top", q.top}};
    // Neuronpedia lists are per SAE; several SAEs in one query get one link per SAE.
    std::map<int, std::vector<int64_t>> by_sae;
    for (size_t r : rows) by_sae[t.sae[r]].push_back(t.feature[r]);
    for (auto& [k, feats] : by_sae) {
      const auto& c = saes[k].cfg;
      std::string model_id = a.has("neuronpedia-model") ? a.str("neuronpedia-model") : c.model_name;
      std::string sae_id = a.str("neuronpedia-sae");
      if (sae_id.empty() && c.neuronpedia_id.find('/') != std::string::npos)
        sae_id = c.neuronpedia_id.substr(c.neuronpedia_id.find('/') + 1);
      if (model_id.empty() || sae_id.empty()) {
        std::printf("(no Neuronpedia link for %s: give --neuronpedia-model and --neuronpedia-sae)\n",
                    c.hook_name.c_str());
        continue;
      }
      if (several && a.has("neuronpedia-sae"))
        sae_id = std::to_string(c.hook_layer) + sae_id.substr(std::min(sae_id.size(), sae_id.find('-')));
      std::string url = S::neuronpedia_quick_list(model_id, sae_id, feats, a.str("list-name"));
      qj["neuronpedia"].push_back({{"hook_name", c.hook_name}, {"url", url}});
      std::printf("Neuronpedia quick list (%s): %s\n", c.hook_name.c_str(), url.c_str());
      out.html.add_paragraph("Neuronpedia quick list for " + c.hook_name + " (not opened or fetched): " + url);
    }
    extra["query"] = qj;
  }
  out.manifest.extra = extra;
  out.finish();
  std::fprintf(stderr, "%zu features of %zu SAE(s) in %.2fs -> %s\n", t.size(), saes.size(), seconds,
               out.dir().c_str());
  return 0;
}

}  // namespace mechscope::cli
