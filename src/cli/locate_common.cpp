#include "cli/locate_common.h"

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "analysis/causal_trace/facts.h"
#include "analysis/causal_trace/figures.h"
#include "cli/common.h"
#include "cli/trace_common.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "io/safetensors.h"
#include "report/run.h"

namespace mechscope::cli {

namespace ct = analysis::causal_trace;
using json = nlohmann::json;

namespace {
std::string dump(const json& j, int indent = -1) { return j.dump(indent, ' ', false, json::error_handler_t::replace); }
}  // namespace

const char* const kFactSettings[10] = {
    "model",  "prepend_bos", "noise_level", "noise_distribution", "degrees_of_freedom", "replace", "samples",
    "window", "kinds",       "seed"};

std::string fact_stem(int index, const std::string& id) {
  char num[16];
  std::snprintf(num, sizeof num, "%03d", index);
  return id.empty() ? std::string(num) : std::string(num) + "_" + ct::file_safe(id);
}

std::string heatmap_id(const std::string& stem, ct::Kind k) {
  return "trace_" + stem + (k == ct::Kind::All ? "" : std::string("_") + ct::kind_name(k));
}

FactRecord load_fact(const std::string& path, int index, const std::string& stem) {
  auto st = io::SafetensorsFile::open(path);
  FactRecord d;
  d.index = index;
  d.stem = stem;
  auto it = st->metadata().find("fact");
  if (it == st->metadata().end())
    fail(path, ": not a mechscope locate fact file (no 'fact' metadata); delete it to redo");
  d.info = parse_json(it->second, "the 'fact' metadata of " + path);
  try {
    for (auto& k : d.info.at("kinds")) {
      d.kinds.push_back(ct::parse_kind(k.get<std::string>()));
      d.scores.push_back(st->get("scores." + k.get<std::string>(), at::kDouble).clone());
    }
  } catch (const json::exception& e) {
    fail(path, ": malformed fact record (", e.what(), "); delete it to redo that fact");
  }
  return d;
}

std::vector<std::string> fact_files(const std::string& facts_dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator(facts_dir, ec)) {
    std::string name = e.path().filename().string();
    auto ends = [&](const std::string& s) {
      return name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
    };
    if (ends(".safetensors") || ends(".skipped.json")) out.push_back(name);
  }
  return out;
}

json job_json(const LocateJob& job) {
  json items = json::array();
  for (auto& [i, stem] : job.items) items.push_back({i, stem});
  json formats = json::array();
  for (auto f : job.formats) formats.push_back(report::extension(f));
  return {{"items", items},
          {"bad_facts", job.bad_facts},
          {"facts_selected", job.facts_selected},
          {"facts_in_file", job.facts_in_file},
          {"model_name", job.model_name},
          {"n_layers", job.n_layers},
          {"formats", formats},
          {"html_facts", job.html_facts}};
}

LocateJob job_from_json(const json& j, const std::string& where) {
  LocateJob job;
  try {
    for (auto& it : j.at("items")) job.items.emplace_back(it.at(0).get<int>(), it.at(1).get<std::string>());
    for (auto& b : j.at("bad_facts")) job.bad_facts.push_back(b);
    job.facts_selected = j.at("facts_selected").get<long long>();
    job.facts_in_file = j.at("facts_in_file").get<long long>();
    job.model_name = j.at("model_name").get<std::string>();
    job.n_layers = j.at("n_layers").get<int>();
    job.formats.clear();
    for (auto& f : j.at("formats")) job.formats.push_back(report::parse_format(f.get<std::string>()));
    job.html_facts = j.at("html_facts").get<long long>();
  } catch (const json::exception& e) {
    fail(where, ": malformed shard record (", e.what(), ")");
  }
  return job;
}

std::pair<size_t, size_t> locate_aggregate(const LocateJob& job, int argc, char** argv) {
  const std::string& dir = job.dir;
  const std::string facts_dir = join_path(dir, "facts");
  const json& run = job.run;
  const std::string& model_name = job.model_name;
  const int nL = job.n_layers;
  const long long n_facts = job.facts_selected, html_facts = job.html_facts;
  std::vector<ct::Kind> kinds;
  for (auto& k : run.at("kinds")) kinds.push_back(ct::parse_kind(k.get<std::string>()));
  const int window = run.at("window").get<int>();
  const double noise_scale = run.at("noise_level").get<double>();
  const std::string kg = run.value("kg_file", std::string()), model = run.value("model", std::string());
  // Aggregate everything written (this run and earlier ones).
  std::vector<FactRecord> done;
  std::vector<json> skipped = job.bad_facts;
  for (auto& [index, stem] : job.items) {
    std::string p = join_path(facts_dir, stem + ".safetensors");
    if (file_exists(p)) done.push_back(load_fact(p, index, stem));
    else if (file_exists(join_path(facts_dir, stem + ".skipped.json")))
      skipped.push_back(read_json_file(join_path(facts_dir, stem + ".skipped.json")));
  }

  report::RunOutput out(dir, argc, argv, "locate", cat("Locating factual knowledge: ", model_name),
                        cat(done.size(), " facts traced of ", n_facts, " (", kg, ")"));
  out.formats = job.formats;
  out.manifest.model = model;
  out.manifest.seed = run.at("seed").get<unsigned long long>();
  out.manifest.extra = run;

  std::vector<ct::AieAccumulator> acc(kinds.size());
  std::vector<ct::FactSummary> summaries;
  // The located site: ROME's decisive one, the MLP output at the last subject token (block output
  // when MLP was not traced).
  size_t loc_k = 0;
  for (size_t k = 0; k < kinds.size(); ++k)
    if (kinds[k] == ct::Kind::Mlp) loc_k = k;
  std::string located = cat(kinds[loc_k] == ct::Kind::All   ? "the hidden state"
                            : kinds[loc_k] == ct::Kind::Mlp ? "MLP outputs"
                                                            : "attention outputs",
                            " at the last subject token");
  json per_fact = json::array();
  std::vector<std::pair<std::string, at::Tensor>> all_tensors;
  std::vector<double> lows, highs;
  for (auto& d : done) {
    const json& I = d.info;
    int64_t b = I["subject_range"][0], e = I["subject_range"][1];
    double low = I["low_score"], high = I["high_score"];
    lows.push_back(low);
    highs.push_back(high);
    ct::FactSummary s;
    s.id = d.stem;
    s.low = low;
    s.high = high;
    for (size_t k = 0; k < kinds.size(); ++k) {
      const at::Tensor* sc = nullptr;
      for (size_t j = 0; j < d.kinds.size(); ++j)
        if (d.kinds[j] == kinds[k]) sc = &d.scores[j];
      if (!sc) fail(dir, "/facts/", d.stem, ".safetensors lacks kind ", ct::kind_name(kinds[k]), "; delete it to redo");
      acc[k].add(*sc, b, e, low, high);
      all_tensors.emplace_back(d.stem + ".scores." + ct::kind_name(kinds[k]), sc->to(at::kFloat));
      if (k == loc_k) {
        at::Tensor eff = (*sc)[e - 1] - low;
        s.effect = std::vector<double>(eff.data_ptr<double>(), eff.data_ptr<double>() + eff.numel());
        s.best_layer = (int)eff.argmax().item<int64_t>();
        s.best_effect = eff.max().item<double>();
      }
    }
    all_tensors.emplace_back(d.stem + ".input_ids", at::tensor(I["input_ids"].get<std::vector<int64_t>>(), at::kLong));
    json pf{{"index", d.index},
            {"id", I["id"]},
            {"prompt", I["prompt"]},
            {"subject", I["subject"]},
            {"answer", I["answer"]},
            {"answer_id", I["answer_id"]},
            {"subject_range", I["subject_range"]},
            {"input_tokens", I["input_tokens"]},
            {"low_score", low},
            {"high_score", high},
            {"best_layer", s.best_layer},
            {"best_effect", s.best_effect}};
    json files = json::array();
    for (auto k : d.kinds)
      for (auto f : job.formats) files.push_back(heatmap_id(d.stem, k) + "." + report::extension(f));
    pf["figures"] = files;
    per_fact.push_back(pf);
    summaries.push_back(std::move(s));
  }

  json summary{{"model", model},
               {"kg_file", kg},
               {"settings", run},
               {"facts_in_file", job.facts_in_file},
               {"facts_selected", n_facts},
               {"facts_traced", done.size()},
               {"facts_skipped", skipped.size()},
               {"skipped", skipped},
               {"seconds_tracing_this_run", job.traced_secs}};
  // With nothing traced there is no located site to name (and no figure of one).
  summary["located_site"] = done.empty() ? json() : json(located);
  if (!done.empty()) {
    // The six AIE categories per kind (ROME's average_causal_effects), and its printed numbers.
    json aie = json::object();
    for (size_t k = 0; k < kinds.size(); ++k) {
      at::Tensor mean = acc[k].mean(), a_ = acc[k].aie(), sd = acc[k].std();
      auto rows = [](const at::Tensor& t) {
        json j = json::array();
        for (int64_t i = 0; i < t.size(0); ++i) {
          json r = json::array();
          for (int64_t l = 0; l < t.size(1); ++l) {
            double v = t[i][l].item<double>();
            r.push_back(std::isfinite(v) ? json(v) : json());
          }
          j.push_back(r);
        }
        return j;
      };
      std::string kn = ct::kind_name(kinds[k]);
      json kj{{"categories", std::vector<std::string>(ct::kCategoryNames, ct::kCategoryNames + 6)},
              {"aie", rows(a_)},
              {"mean_score", rows(mean)},
              {"std_score", rows(sd)},
              {"rows", json::array()}};
      for (int c = 0; c < 6; ++c) kj["rows"].push_back(acc[k].rows(c));
      at::Tensor le = mean[2], la = mean[5];
      kj["best_aie_last_subject_token"] = le.max().item<double>() - acc[k].mean_low();
      kj["argmax_layer_last_subject_token"] = le.argmax().item<int64_t>();
      kj["best_aie_last_token"] = la.max().item<double>() - acc[k].mean_low();
      kj["argmax_layer_last_token"] = la.argmax().item<int64_t>();
      aie[kn] = kj;
      all_tensors.emplace_back("aie." + kn, a_.to(at::kFloat));
      all_tensors.emplace_back("mean_score." + kn, mean.to(at::kFloat));
      all_tensors.emplace_back("std_score." + kn, sd.to(at::kFloat));
    }
    summary["average_total_effect"] = acc[0].mean_high() - acc[0].mean_low();
    summary["mean_high_score"] = acc[0].mean_high();
    summary["mean_low_score"] = acc[0].mean_low();
    summary["aie"] = aie;
    all_tensors.emplace_back("low_scores", at::tensor(lows, at::kDouble).to(at::kFloat));
    all_tensors.emplace_back("high_scores", at::tensor(highs, at::kDouble).to(at::kFloat));
  }
  summary["facts"] = per_fact;
  write_file_atomic(join_path(dir, "locating_summary.json"), dump(summary, 2) + "\n");
  out.add_file("locating_summary.json");
  if (!all_tensors.empty()) {
    io::write_safetensors(join_path(dir, "trace.safetensors"), all_tensors, {{"format", "mechscope locate"}});
    out.add_file("trace.safetensors");
  }

  out.html.add_number("facts traced", std::to_string(done.size()));
  out.html.add_number("facts skipped", std::to_string(skipped.size()));
  out.html.add_number("noise level", noise_scale, 4);
  if (!done.empty()) {
    out.html.add_number("mean high score", acc[0].mean_high(), 4);
    out.html.add_number("mean low score", acc[0].mean_low(), 4);
    // Summaries first, then the per-fact heatmaps.
    double vmax = NAN;
    for (size_t k = 0; k < kinds.size(); ++k)
      if (kinds[k] == ct::Kind::All) vmax = acc[k].aie().clamp_min(0).nan_to_num(0).max().item<double>();
    for (size_t k = 0; k < kinds.size(); ++k) {
      std::string id =
          kinds[k] == ct::Kind::All ? "average_heatmap" : std::string("average_heatmap_") + ct::kind_name(kinds[k]);
      out.save_figure(ct::average_heatmap(id, acc[k], kinds[k], vmax, window, model_name));
    }
    std::vector<const ct::AieAccumulator*> ptrs;
    for (auto& x : acc) ptrs.push_back(&x);
    out.save_figure(ct::t0_aie_figure("t0_aie_by_layer", kinds, ptrs, model_name));
    out.save_figure(
        ct::aggregate_figure("aggregate_analysis", summaries, nL, located, (int)n_facts, (int)skipped.size()));
    out.save_figure(ct::layer_importance_figure("layer_importance", summaries, nL, located));
    for (size_t i = 0; i < done.size(); ++i) {
      const FactRecord& d = done[i];
      std::vector<std::string> tokens = d.info["input_tokens"].get<std::vector<std::string>>();
      for (size_t k = 0; k < d.kinds.size(); ++k) {
        std::string id = heatmap_id(d.stem, d.kinds[k]);
        std::vector<std::string> files;
        for (auto f : job.formats) files.push_back(id + "." + report::extension(f));
        for (auto& f : files) out.add_file(f);
        if ((long long)i < html_facts)
          out.html.add_figure(
              ct::trace_heatmap(id, d.scores[k], tokens, d.info["subject_range"][0], d.info["subject_range"][1],
                                d.info["low_score"], trim(d.info["answer"].get<std::string>()), d.kinds[k], window,
                                model_name),
              files);
      }
    }
    if ((long long)done.size() > html_facts)
      out.html.add_paragraph(
          cat("Per-fact heatmaps of the other ", done.size() - html_facts,
              " facts are the trace_*.png files in this folder (--html-facts sets how many appear here)."));
  } else {
    out.html.add_paragraph("No fact was traced: every fact was skipped (see locating_summary.json).");
  }
  out.finish();
  return {done.size(), skipped.size()};
}

}  // namespace mechscope::cli
