// mechscope locate: ROME causal tracing over a facts file (the seed's run_locating.sh), resumable, with
// every figure of its report: per-fact heatmaps, average heatmaps, T0 AIE by layer, aggregate analysis,
// layer importance, locating_summary.json, trace.safetensors and index.html.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>

#include "analysis/causal_trace/causal_trace.h"
#include "analysis/causal_trace/facts.h"
#include "analysis/causal_trace/figures.h"
#include "cli/common.h"
#include "cli/registry.h"
#include "cli/trace_common.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/fs_guard.h"
#include "core/json.h"
#include "core/progress.h"
#include "io/safetensors.h"
#include "models/registry.h"
#include "report/output.h"
#include "report/run.h"

namespace mechscope::cli {
namespace {

namespace ct = analysis::causal_trace;
using json = nlohmann::json;

std::string dump(const json& j, int indent = -1) {
  return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

struct Done {  // one fact's stored result
  int index = 0;
  std::string stem;  // "{NNN}_{id}"
  json info;         // prompt, subject, answer, scores' metadata
  std::vector<ct::Kind> kinds;
  std::vector<at::Tensor> scores;
};

std::string fact_stem(int index, const ct::Fact& f) {
  char num[16];
  std::snprintf(num, sizeof num, "%03d", index);
  return f.id.empty() ? std::string(num) : std::string(num) + "_" + ct::file_safe(f.id);
}

// The settings a fact's result depends on: a file traced with others is not this run's result.
const char* const kFactSettings[] = {"model", "prepend_bos", "noise_level", "noise_distribution", "degrees_of_freedom",
                                     "replace", "samples", "window", "kinds", "seed"};

// A per-fact file (result or skip record) may be reused only when it was made with this run's
// settings on the same token ids; otherwise the summary would claim numbers made another way.
void check_reusable(const json& info, const json& run, const std::vector<int64_t>& ids, const std::string& path) {
  if (!info.is_object()) fail(path, " is not a mechscope locate fact record; delete it to redo that fact");
  for (const char* key : kFactSettings) {
    json there = info.value(key, json()), now = run.value(key, json());
    if (there != now)
      fail(path, " was traced with ", key, " ", dump(there), ", this run has ", dump(now),
           ": use the same settings, --overwrite to trace everything again, or a new --out");
  }
  if (info.value("input_ids", json()) != json(ids))
    fail(path, " was traced on other token ids than this run's (", dump(info.value("input_ids", json())), " there, ",
         dump(json(ids)), " now): the facts file or its tokenization changed; use --overwrite or a new --out");
}

Done load_done(const std::string& path, int index, const std::string& stem) {
  auto st = io::SafetensorsFile::open(path);
  Done d;
  d.index = index;
  d.stem = stem;
  auto it = st->metadata().find("fact");
  if (it == st->metadata().end()) fail(path, ": not a mechscope locate fact file (no 'fact' metadata); delete it to redo");
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

// Per-fact files in `facts_dir` (results and skip records), by name.
std::vector<std::string> fact_files(const std::string& facts_dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator(facts_dir, ec)) {
    std::string name = e.path().filename().string();
    auto ends = [&](const std::string& s) { return name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0; };
    if (ends(".safetensors") || ends(".skipped.json")) out.push_back(name);
  }
  return out;
}

int run_locate(int argc, char** argv) {
  // The seed's option name --model-dir is --model here (same meaning).
  std::vector<std::string> store(argv, argv + argc);
  std::vector<char*> args;
  for (auto& s : store) {
    if (s == "--model-dir") s = "--model";
    else if (s.rfind("--model-dir=", 0) == 0) s = "--model=" + s.substr(12);
    args.push_back(s.data());
  }
  Args a("locate", "--model-dir M --kg-file FACTS.jsonl [--num-samples N] [--noise-level 3.0] "
                   "[--num-noise-samples 10] --out DIR [--resume]",
         "ROME's causal tracing over a set of facts (the seed's run_locating.sh). FACTS.jsonl: one JSON object\n"
         "per line with \"prompt\", \"subject\", optional \"answer\" (the expected prediction: facts the model\n"
         "gets wrong are skipped and counted) and optional \"id\". --model-dir is accepted for --model.\n"
         "Each fact is written as soon as it is traced (facts/NNN_ID.safetensors, trace_NNN_ID*.png), so a\n"
         "killed run loses at most the fact in flight; --resume continues it.");
  add_model_flags(a);
  a.opt("kg-file", "FACTS.jsonl", "the facts");
  a.opt("num-samples", "N", "trace the first N facts of the file (0 = all)", "50");
  add_trace_flags(a, true);
  a.opt("out", "DIR", "output folder", "outputs/locating_results");
  a.flag("resume", "continue a run in --out: facts already written are kept");
  a.flag("overwrite", "start again in an --out that holds an earlier run");
  a.flag("skip-bad", "report and skip malformed lines and facts whose subject is not in the prompt");
  add_encoding_flags(a);
  a.opt("html-facts", "N", "per-fact heatmaps shown interactively in index.html (the PNGs are all written)", "30");
  if (!a.parse((int)args.size(), args.data())) return 0;
  if (!a.has("kg-file")) fail("--kg-file FACTS.jsonl is required");
  if (a.on("resume") && a.on("overwrite")) fail("give --resume or --overwrite, not both");
  long long limit = a.integer("num-samples");
  if (limit < 0) fail("--num-samples must be >= 0 (0 = all facts)");
  long long html_facts = a.integer("html-facts");
  TraceSettings set = trace_settings_from_flags(a, true);
  bool skip_bad = a.on("skip-bad");

  std::string kg = a.str("kg-file");
  ct::FactsFile ff = ct::read_facts(kg, skip_bad);
  for (auto& s : ff.skipped) std::fprintf(stderr, "skipped %s\n", s.c_str());

  std::string dir = a.str("out"), facts_dir = join_path(dir, "facts");
  if (!a.on("resume") && !a.on("overwrite") && (file_exists(join_path(facts_dir, "run.json")) || !fact_files(facts_dir).empty()))
    fail("--out ", dir, " holds an earlier locate run: pass --resume to continue it or --overwrite to start again");
  // In place: each fact is a result of its own, kept by --resume; the manifest says how far it got.
  report::claim_output_dir(dir, "locate", report::OutputMode::InPlace);
  // Said once the run's settings are known good (below), so a refused resume prints its error alone.
  std::string previous = report::previous_status(dir);

  Loaded m = load_from_flags(a);
  ct::check_traceable(*m.model);
  const auto& cfg = m.model->config();
  need_lm_head(m, "locate");
  const auto& tok = need_tokenizer(m, "locate");
  const int nL = (int)cfg.n_layers;

  // Tokenize every fact up front so bad facts fail before any tracing.
  struct Item {
    ct::Fact fact;
    int index;
    std::string stem;
    ct::TraceInput in;
  };
  std::vector<Item> items;
  std::vector<json> bad_facts;
  for (auto& s : ff.skipped) bad_facts.push_back({{"reason", s}});
  std::vector<std::vector<int64_t>> subjects;
  for (auto& f : ff.facts) {
    try {
      subjects.push_back(subject_ids(a, m, f.subject, "subject"));
    } catch (const Error&) {
      subjects.emplace_back();  // its fact fails below, where the subject is looked for in its prompt
    }
  }
  size_t n_facts = limit ? std::min<size_t>(ff.facts.size(), (size_t)limit) : ff.facts.size();
  for (size_t i = 0; i < n_facts; ++i) {
    const ct::Fact& f = ff.facts[i];
    Item it{f, (int)i, fact_stem((int)i, f), {}};
    try {
      if (f.answer) ct::check_known_words(tok, *f.answer, "answer");
      tokenizers::Encoding enc = encode_prompt(a, m, f.prompt, "prompt");
      it.in.ids = enc.ids;
      std::tie(it.in.subject_begin, it.in.subject_end) = subject_range(m, enc, f.subject, f.prompt, "subject");
    } catch (const Error& e) {
      std::string msg = cat(kg, ":", f.line, ": ", e.what());
      if (!skip_bad) fail(msg, " (pass --skip-bad to report and skip such facts)");
      std::fprintf(stderr, "skipped %s\n", msg.c_str());
      bad_facts.push_back({{"line", f.line}, {"id", f.id}, {"reason", msg}});
      continue;
    }
    items.push_back(std::move(it));
  }

  // ROME's s<k>: k × the std of the token embeddings of all subjects of the facts file, each alone.
  double emb_std = set.rule.needs_embedding_std() ? ct::embedding_std(*m.model, subjects) : 0;
  set.opt.noise = ct::resolve_noise(set.rule, emb_std);
  set.opt.noise.replace = a.on("replace");

  json run = settings_json(set, emb_std);
  run["model"] = m.dir;
  run["kg_file"] = kg;
  run["prepend_bos"] = a.on("prepend-bos");
  run["special_tokens"] = !a.on("no-special-tokens");
  make_dirs(facts_dir);
  remove_stale_temps(facts_dir);
  std::string run_path = join_path(facts_dir, "run.json");
  if (a.on("resume") && file_exists(run_path)) {
    json old;
    try {
      old = read_json_file(run_path);
      if (!old.is_object()) fail("'", run_path, "' is not a JSON object");
    } catch (const Error& e) {
      fail(e.what(), " (it records the run's settings; pass --overwrite instead of --resume to start again)");
    }
    for (const char* key : kFactSettings)
      if (old.value(key, json()) != run.value(key, json()))
        fail("--resume: ", key, " differs from the run in ", dir, " (", dump(old.value(key, json())), " there, ",
             dump(run.value(key, json())), " now); use the same settings or a new --out");
    // Runs written before prompts got the tokenizer's special tokens lack the key (and had none).
    if (old.contains("special_tokens") && old["special_tokens"] != run["special_tokens"])
      fail("--resume: special_tokens differs from the run in ", dir, "; use the same settings or a new --out");
  }
  if (a.on("resume") && !previous.empty() && previous != "complete")
    std::fprintf(stderr, "resuming a run that did not finish (its manifest said \"%s\")\n", previous.c_str());
  if (a.on("overwrite") && !(a.on("resume") && file_exists(run_path))) {
    for (auto& it : items)
      for (const char* ext : {".safetensors", ".skipped.json"}) std::remove(join_path(facts_dir, it.stem + ext).c_str());
  }

  std::string model_name = models::display_name(cfg.model_type);
  auto heatmap_id = [](const std::string& stem, ct::Kind k) {
    return "trace_" + stem + (k == ct::Kind::All ? "" : std::string("_") + ct::kind_name(k));
  };

  // Trace what is not written yet; what is written must be this run's.
  std::vector<const Item*> todo;
  std::map<int, Done> reused;         // checked results of earlier runs, kept for the aggregation
  std::map<int, json> reused_skips;
  for (auto& it : items) {
    std::string res = join_path(facts_dir, it.stem + ".safetensors"), skip = join_path(facts_dir, it.stem + ".skipped.json");
    if (file_exists(res)) {
      Done d = load_done(res, it.index, it.stem);
      check_reusable(d.info, run, it.in.ids, res);
      reused.emplace(it.index, std::move(d));
    } else if (file_exists(skip)) {
      json j = read_json_file(skip);
      check_reusable(j, run, it.in.ids, skip);
      reused_skips.emplace(it.index, std::move(j));
    } else {
      todo.push_back(&it);
    }
  }
  // Rewritten only when it changes: a resumed run over a complete result that is interrupted before
  // it writes anything leaves the folder as it was (and its manifest "complete" again).
  std::string run_bytes = dump(run, 2) + "\n";
  if (!file_exists(run_path) || read_file(run_path) != run_bytes) write_file_atomic(run_path, run_bytes);
  if (items.size() != todo.size())
    std::fprintf(stderr, "resuming: %zu of %zu facts already done\n", items.size() - todo.size(), items.size());
  double traced_secs = 0;
  {
    Progress progress("locate", (long long)todo.size());
    report::RenderOptions ropt;
    for (const Item* it : todo) {
      auto t0 = std::chrono::steady_clock::now();
      ct::TraceOptions opt = set.opt;
      if (it->fact.answer)  // facts the model gets wrong are skipped before any cell is traced
        opt.accept = [&](int64_t id) { return trim(token_text(m, id)) == trim(*it->fact.answer); };
      ct::TraceResult r = ct::trace(*m.model, it->in, opt);
      traced_secs += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::string answer = token_text(m, r.answer_id);
      if (r.rejected) {
        json skip{{"index", it->index}, {"id", it->fact.id}, {"line", it->fact.line},
                  {"reason", cat("the model predicts '", trim(answer), "', expected '", trim(*it->fact.answer), "'")},
                  {"predicted", answer}, {"expected", *it->fact.answer}, {"high_score", r.high_score},
                  {"input_ids", it->in.ids}};
        for (const char* key : kFactSettings) skip[key] = run.value(key, json());
        write_file_atomic(join_path(facts_dir, it->stem + ".skipped.json"), dump(skip, 2) + "\n");
        progress.set_note(cat(it->stem, ": skipped (predicts '", trim(answer), "')"));
        progress.tick();
        continue;
      }
      std::vector<std::string> tokens = token_labels(m, it->in.ids);
      for (size_t k = 0; k < r.kinds.size(); ++k) {
        auto fig = ct::trace_heatmap(heatmap_id(it->stem, r.kinds[k]), r.scores[k], tokens, it->in.subject_begin,
                                     it->in.subject_end, r.low_score, trim(answer), r.kinds[k], set.opt.window, model_name);
        for (auto f : set.formats) report::render(fig, f, join_path(dir, fig.id + "." + report::extension(f)), ropt);
      }
      json info = trace_json(r, it->in, tokens, answer, set, emb_std);
      info["model"] = run["model"];
      info["prepend_bos"] = run["prepend_bos"];
      info["index"] = it->index;
      info["id"] = it->fact.id;
      info["line"] = it->fact.line;
      info["prompt"] = it->fact.prompt;
      info["subject"] = it->fact.subject;
      if (it->fact.answer) info["expected"] = *it->fact.answer;
      std::vector<std::pair<std::string, at::Tensor>> tensors{{"input_ids", at::tensor(it->in.ids, at::kLong)}};
      for (size_t k = 0; k < r.kinds.size(); ++k)
        tensors.emplace_back(std::string("scores.") + ct::kind_name(r.kinds[k]), r.scores[k]);
      // Written last: its presence marks the fact done.
      io::write_safetensors(join_path(facts_dir, it->stem + ".safetensors"), tensors, {{"fact", dump(info)}});
      char note[160];
      std::snprintf(note, sizeof note, "%s: '%s' high %.3g low %.3g", it->stem.c_str(), trim(answer).c_str(), r.high_score,
                    r.low_score);
      progress.set_note(note);
      progress.tick();
    }
  }

  // Aggregate everything written (this run and earlier ones).
  std::vector<Done> done;
  std::vector<json> skipped = bad_facts;
  for (auto& it : items) {
    std::string p = join_path(facts_dir, it.stem + ".safetensors");
    if (auto r = reused.find(it.index); r != reused.end()) done.push_back(std::move(r->second));
    else if (auto k = reused_skips.find(it.index); k != reused_skips.end()) skipped.push_back(std::move(k->second));
    else if (file_exists(p)) done.push_back(load_done(p, it.index, it.stem));
    else if (file_exists(join_path(facts_dir, it.stem + ".skipped.json")))
      skipped.push_back(read_json_file(join_path(facts_dir, it.stem + ".skipped.json")));
  }

  report::RunOutput out(dir, (int)args.size(), args.data(), "locate", cat("Locating factual knowledge: ", model_name),
                        cat(done.size(), " facts traced of ", n_facts, " (", kg, ")"));
  out.formats = set.formats;
  out.manifest.model = m.dir;
  out.manifest.seed = set.opt.seed;
  out.manifest.extra = run;

  const std::vector<ct::Kind>& kinds = set.opt.kinds;
  std::vector<ct::AieAccumulator> acc(kinds.size());
  std::vector<ct::FactSummary> summaries;
  // The located site: ROME's decisive one, the MLP output at the last subject token (block output
  // when MLP was not traced).
  size_t loc_k = 0;
  for (size_t k = 0; k < kinds.size(); ++k)
    if (kinds[k] == ct::Kind::Mlp) loc_k = k;
  std::string located = cat(kinds[loc_k] == ct::Kind::All ? "the hidden state" : kinds[loc_k] == ct::Kind::Mlp ? "MLP outputs" : "attention outputs",
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
    json pf{{"index", d.index}, {"id", I["id"]}, {"prompt", I["prompt"]}, {"subject", I["subject"]},
            {"answer", I["answer"]}, {"answer_id", I["answer_id"]}, {"subject_range", I["subject_range"]},
            {"input_tokens", I["input_tokens"]}, {"low_score", low}, {"high_score", high},
            {"best_layer", s.best_layer}, {"best_effect", s.best_effect}};
    json files = json::array();
    for (auto k : d.kinds)
      for (auto f : set.formats) files.push_back(heatmap_id(d.stem, k) + "." + report::extension(f));
    pf["figures"] = files;
    per_fact.push_back(pf);
    summaries.push_back(std::move(s));
  }

  json summary{{"model", m.dir}, {"kg_file", kg}, {"settings", run}, {"facts_in_file", ff.facts.size() + ff.skipped.size()},
               {"facts_selected", n_facts}, {"facts_traced", done.size()}, {"facts_skipped", skipped.size()},
               {"skipped", skipped}, {"seconds_tracing_this_run", traced_secs}};
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
              {"aie", rows(a_)}, {"mean_score", rows(mean)}, {"std_score", rows(sd)}, {"rows", json::array()}};
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
  out.html.add_number("noise level", set.opt.noise.scale, 4);
  if (!done.empty()) {
    out.html.add_number("mean high score", acc[0].mean_high(), 4);
    out.html.add_number("mean low score", acc[0].mean_low(), 4);
    // Summaries first, then the per-fact heatmaps.
    double vmax = NAN;
    for (size_t k = 0; k < kinds.size(); ++k)
      if (kinds[k] == ct::Kind::All) vmax = acc[k].aie().clamp_min(0).nan_to_num(0).max().item<double>();
    for (size_t k = 0; k < kinds.size(); ++k) {
      std::string id = kinds[k] == ct::Kind::All ? "average_heatmap" : std::string("average_heatmap_") + ct::kind_name(kinds[k]);
      out.save_figure(ct::average_heatmap(id, acc[k], kinds[k], vmax, set.opt.window, model_name));
    }
    std::vector<const ct::AieAccumulator*> ptrs;
    for (auto& x : acc) ptrs.push_back(&x);
    out.save_figure(ct::t0_aie_figure("t0_aie_by_layer", kinds, ptrs, model_name));
    out.save_figure(ct::aggregate_figure("aggregate_analysis", summaries, nL, located, (int)n_facts, (int)skipped.size()));
    out.save_figure(ct::layer_importance_figure("layer_importance", summaries, nL, located));
    for (size_t i = 0; i < done.size(); ++i) {
      const Done& d = done[i];
      std::vector<std::string> tokens = d.info["input_tokens"].get<std::vector<std::string>>();
      for (size_t k = 0; k < d.kinds.size(); ++k) {
        std::string id = heatmap_id(d.stem, d.kinds[k]);
        std::vector<std::string> files;
        for (auto f : set.formats) files.push_back(id + "." + report::extension(f));
        for (auto& f : files) out.add_file(f);
        if ((long long)i < html_facts)
          out.html.add_figure(ct::trace_heatmap(id, d.scores[k], tokens, d.info["subject_range"][0], d.info["subject_range"][1],
                                                d.info["low_score"], trim(d.info["answer"].get<std::string>()), d.kinds[k],
                                                set.opt.window, model_name),
                              files);
      }
    }
    if ((long long)done.size() > html_facts)
      out.html.add_paragraph(cat("Per-fact heatmaps of the other ", done.size() - html_facts,
                                 " facts are the trace_*.png files in this folder (--html-facts sets how many appear here)."));
  } else {
    out.html.add_paragraph("No fact was traced: every fact was skipped (see locating_summary.json).");
  }
  out.finish();
  std::fprintf(stderr, "locate: %zu facts traced, %zu skipped; wrote %s\n", done.size(), skipped.size(), dir.c_str());
  return 0;
}

const Register reg{"locate", "ROME causal tracing over a facts file, with every summary figure (resumable)", 61,
                   run_locate};

}  // namespace
}  // namespace mechscope::cli
