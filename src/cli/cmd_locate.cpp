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
#include "cli/distribute.h"
#include "cli/locate_common.h"
#include "cli/registry.h"
#include "cli/trace_common.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/fs_guard.h"
#include "core/json.h"
#include "io/safetensors.h"
#include "models/registry.h"
#include "report/output.h"
#include "report/run.h"

namespace mechscope::cli {
namespace {

namespace ct = analysis::causal_trace;
using json = nlohmann::json;

std::string dump(const json& j, int indent = -1) { return j.dump(indent, ' ', false, json::error_handler_t::replace); }

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

// A fact to trace: its line, index in the file, file stem and token ids with the subject's range.
struct Item {
  ct::Fact fact;
  int index;
  std::string stem;
  ct::TraceInput in;
};

struct Selection {
  std::vector<Item> items;                               // this run's (this shard's) facts to trace
  std::vector<json> bad_facts;                           // refused before tracing (--skip-bad)
  std::vector<std::pair<int, std::string>> whole_items;  // index and stem of every shard's facts
  std::vector<std::vector<int64_t>> subjects;            // every fact's subject alone (for ROME's noise level)
};

// The first n_facts facts of the file tokenized, so bad facts fail before any tracing.
Selection select_facts(const Args& a, const Loaded& m, const ct::FactsFile& ff, size_t n_facts,
                       const dist::Shard& shard, bool skip_bad, const std::string& kg) {
  Selection out;
  auto& [items, bad_facts, whole_items, subjects] = out;
  const auto& tok = need_tokenizer(m, "locate");
  for (auto& s : ff.skipped) bad_facts.push_back({{"reason", s}});
  for (auto& f : ff.facts) {
    try {
      subjects.push_back(subject_ids(a, m, f.subject, "subject"));
    } catch (const Error&) {
      subjects.emplace_back();  // its fact fails below, where the subject is looked for in its prompt
    }
  }
  for (size_t i = 0; i < n_facts; ++i) {
    const ct::Fact& f = ff.facts[i];
    Item it{f, (int)i, fact_stem((int)i, f.id), {}};
    try {
      if (f.answer) ct::check_known_words(tok, *f.answer, "answer");
      tokenizers::Encoding enc = encode_prompt(a, m, f.prompt, "prompt");
      it.in.ids = enc.ids;
      std::tie(it.in.subject_begin, it.in.subject_end) = subject_range(m, enc, f.subject, f.prompt, "subject");
    } catch (const Error& e) {
      std::string msg = cat(kg, ":", f.line, ": ", e.raw());
      if (!skip_bad) fail(msg, " (pass --skip-bad to report and skip such facts)");
      std::fprintf(stderr, "skipped %s\n", msg.c_str());
      bad_facts.push_back({{"line", f.line}, {"id", f.id}, {"reason", msg}});
      continue;
    }
    whole_items.emplace_back(it.index, it.stem);
    if (shard.mine(it.index)) items.push_back(std::move(it));
  }
  return out;
}

// On rank 0 (or the only process): checks what earlier runs left in DIR/facts (with --resume, their
// settings must be this run's), writes the run's record and returns the positions in `items` of the
// facts still to trace.
std::vector<long long> facts_to_trace(const Args& a, const std::string& dir, const std::string& previous,
                                      const json& run, const json& record, const std::vector<Item>& items) {
  std::vector<long long> todo_pos;
  const std::string facts_dir = join_path(dir, "facts");
  make_dirs(facts_dir);
  remove_stale_temps(facts_dir);
  std::string run_path = join_path(facts_dir, "run.json");
  if (a.on("resume") && file_exists(run_path)) {
    json old;
    try {
      old = read_json_file(run_path);
      if (!old.is_object()) fail("'", run_path, "' is not a JSON object");
    } catch (const Error& e) {
      fail(e.raw(), " (it records the run's settings; pass --overwrite instead of --resume to start again)");
    }
    for (const char* key : kFactSettings)
      if (old.value(key, json()) != run.value(key, json()))
        fail("--resume: ", key, " differs from the run in ", dir, " (", dump(old.value(key, json())), " there, ",
             dump(run.value(key, json())), " now); use the same settings or a new --out");
    // Runs written before prompts got the tokenizer's special tokens lack the key (and had none).
    if (old.contains("special_tokens") && old["special_tokens"] != run["special_tokens"])
      fail("--resume: special_tokens differs from the run in ", dir, "; use the same settings or a new --out");
    if (old.value("shard", json()) != record.value("shard", json())) {
      auto said = [](const json& sh) {
        return sh.is_object()
                   ? cat("--shard ", sh.value("index", -1), "/", sh.value("count", -1), " of this facts file")
                   : std::string("no --shard");
      };
      fail("--resume: the run in ", dir, " was made with ", said(old.value("shard", json())), ", this run has ",
           said(record.value("shard", json())), "; use the same --shard or a new --out");
    }
  }
  if (a.on("resume") && !previous.empty() && previous != "complete")
    std::fprintf(stderr, "resuming a run that did not finish (its manifest said \"%s\")\n", previous.c_str());
  if (a.on("overwrite") && !(a.on("resume") && file_exists(run_path))) {
    for (auto& it : items)
      for (const char* ext : {".safetensors", ".skipped.json"})
        std::remove(join_path(facts_dir, it.stem + ext).c_str());
  }

  // Trace what is not written yet; what is written must be this run's.
  for (size_t pos = 0; pos < items.size(); ++pos) {
    const Item& it = items[pos];
    std::string res = join_path(facts_dir, it.stem + ".safetensors"),
                skip = join_path(facts_dir, it.stem + ".skipped.json");
    if (file_exists(res)) {
      check_reusable(load_fact(res, it.index, it.stem).info, run, it.in.ids, res);
    } else if (file_exists(skip)) {
      json j = read_json_file(skip);
      check_reusable(j, run, it.in.ids, skip);
    } else {
      todo_pos.push_back((long long)pos);
    }
  }
  // Rewritten only when it changes: a resumed run over a complete result that is interrupted before
  // it writes anything leaves the folder as it was (and its manifest "complete" again).
  std::string run_bytes = dump(record, 2) + "\n";
  if (!file_exists(run_path) || read_file(run_path) != run_bytes) write_file_atomic(run_path, run_bytes);
  if (items.size() != todo_pos.size())
    std::fprintf(stderr, "resuming: %zu of %zu facts already done\n", items.size() - todo_pos.size(), items.size());
  return todo_pos;
}

// Traces one fact and writes its record (DIR/facts/STEM.safetensors, or STEM.skipped.json when the
// model predicts another answer) and its heatmaps; returns the progress line's note and sets
// trace_secs to the seconds of the trace alone (what the summary's tracing time adds up).
std::string trace_fact(const Item& it, const Loaded& m, const TraceSettings& set, const json& run, double emb_std,
                       const std::string& dir, const std::string& model_name, double& trace_secs) {
  const std::string facts_dir = join_path(dir, "facts");
  report::RenderOptions ropt;
  ct::TraceOptions opt = set.opt;
  if (it.fact.answer)  // facts the model gets wrong are skipped before any cell is traced
    opt.accept = [&](int64_t id) { return trim(token_text(m, id)) == trim(*it.fact.answer); };
  auto t0 = std::chrono::steady_clock::now();
  ct::TraceResult r = ct::trace(*m.model, it.in, opt);
  trace_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string answer = token_text(m, r.answer_id);
  if (r.rejected) {
    json skip{{"index", it.index},
              {"id", it.fact.id},
              {"line", it.fact.line},
              {"reason", cat("the model predicts '", trim(answer), "', expected '", trim(*it.fact.answer), "'")},
              {"predicted", answer},
              {"expected", *it.fact.answer},
              {"high_score", r.high_score},
              {"input_ids", it.in.ids}};
    for (const char* key : kFactSettings) skip[key] = run.value(key, json());
    write_file_atomic(join_path(facts_dir, it.stem + ".skipped.json"), dump(skip, 2) + "\n");
    return cat(it.stem, ": skipped (predicts '", trim(answer), "')");
  }
  std::vector<std::string> tokens = token_labels(m, it.in.ids);
  for (size_t k = 0; k < r.kinds.size(); ++k) {
    auto fig = ct::trace_heatmap(heatmap_id(it.stem, r.kinds[k]), r.scores[k], tokens, it.in.subject_begin,
                                 it.in.subject_end, r.low_score, trim(answer), r.kinds[k], set.opt.window, model_name);
    for (auto f : set.formats) report::render(fig, f, join_path(dir, fig.id + "." + report::extension(f)), ropt);
  }
  json info = trace_json(r, it.in, tokens, answer, set, emb_std);
  info["model"] = run["model"];
  info["prepend_bos"] = run["prepend_bos"];
  info["index"] = it.index;
  info["id"] = it.fact.id;
  info["line"] = it.fact.line;
  info["prompt"] = it.fact.prompt;
  info["subject"] = it.fact.subject;
  if (it.fact.answer) info["expected"] = *it.fact.answer;
  std::vector<std::pair<std::string, at::Tensor>> tensors{{"input_ids", at::tensor(it.in.ids, at::kLong)}};
  for (size_t k = 0; k < r.kinds.size(); ++k)
    tensors.emplace_back(std::string("scores.") + ct::kind_name(r.kinds[k]), r.scores[k]);
  // Written last: its presence marks the fact done.
  io::write_safetensors(join_path(facts_dir, it.stem + ".safetensors"), tensors, {{"fact", dump(info)}});
  char note[160];
  std::snprintf(note, sizeof note, "%s: '%s' high %.3g low %.3g", it.stem.c_str(), trim(answer).c_str(), r.high_score,
                r.low_score);
  return note;
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
  Args a("locate",
         "--model-dir M --kg-file FACTS.jsonl [--num-samples N] [--noise-level 3.0] "
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
  a.opt("shard", "i/N",
        "trace only the facts whose index is i modulo N, into a folder of their own; "
        "mechscope merge OUT DIR... combines the N folders into what one run writes");
  if (!a.parse((int)args.size(), args.data())) return 0;
  if (!a.has("kg-file")) fail("--kg-file FACTS.jsonl is required");
  if (a.on("resume") && a.on("overwrite")) fail("give --resume or --overwrite, not both");
  long long limit = a.integer("num-samples");
  if (limit < 0) fail("--num-samples must be >= 0 (0 = all facts)");
  long long html_facts = a.integer("html-facts");
  TraceSettings set = trace_settings_from_flags(a, true);
  bool skip_bad = a.on("skip-bad");
  dist::Shard shard;
  if (a.has("shard")) shard = dist::parse_shard(a.str("shard"));
  // Under mpirun every rank computes; rank 0 alone owns the folder (claim, records of the run, report).
  const bool lead = dist::rank() == 0;
  if (shard.on && dist::size() > 1)
    fail("--shard is for runs without mpirun (mpirun -np N already divides the facts among its ranks)");

  std::string kg = a.str("kg-file");
  ct::FactsFile ff = ct::read_facts(kg, skip_bad);
  for (auto& s : ff.skipped) std::fprintf(stderr, "skipped %s\n", s.c_str());

  std::string dir = a.str("out"), facts_dir = join_path(dir, "facts");
  std::string previous;
  if (lead) {
    if (!a.on("resume") && !a.on("overwrite") &&
        (file_exists(join_path(facts_dir, "run.json")) || !fact_files(facts_dir).empty()))
      fail("--out ", dir, " holds an earlier locate run: pass --resume to continue it or --overwrite to start again");
    // In place: each fact is a result of its own, kept by --resume; the manifest says how far it got.
    report::claim_output_dir(dir, "locate", report::OutputMode::InPlace);
    // Said once the run's settings are known good (below), so a refused resume prints its error alone.
    previous = report::previous_status(dir);
  }

  Loaded m = load_from_flags(a);
  ct::check_traceable(*m.model);
  const auto& cfg = m.model->config();
  need_lm_head(m, "locate");
  need_tokenizer(m, "locate");
  const int nL = (int)cfg.n_layers;

  // Tokenize every fact up front so bad facts fail before any tracing.
  size_t n_facts = limit ? std::min<size_t>(ff.facts.size(), (size_t)limit) : ff.facts.size();
  Selection sel = select_facts(a, m, ff, n_facts, shard, skip_bad, kg);
  const std::vector<Item>& items = sel.items;

  // ROME's s<k>: k × the std of the token embeddings of all subjects of the facts file, each alone.
  double emb_std = set.rule.needs_embedding_std() ? ct::embedding_std(*m.model, sel.subjects) : 0;
  set.opt.noise = ct::resolve_noise(set.rule, emb_std);
  set.opt.noise.replace = a.on("replace");

  json run = settings_json(set, emb_std);
  run["model"] = m.dir;
  run["kg_file"] = kg;
  run["prepend_bos"] = a.on("prepend-bos");
  run["special_tokens"] = !a.on("no-special-tokens");
  std::string model_name = models::display_name(cfg.model_type);
  LocateJob whole;  // what merge needs of the whole run (a shard records it)
  whole.bad_facts = sel.bad_facts;
  whole.facts_selected = (long long)n_facts;
  whole.facts_in_file = (long long)(ff.facts.size() + ff.skipped.size());
  whole.model_name = model_name;
  whole.n_layers = nL;
  whole.formats = set.formats;
  whole.html_facts = html_facts;
  whole.items = sel.whole_items;
  json record = run;  // facts/run.json
  if (shard.on) record["shard"] = {{"index", shard.index}, {"count", shard.count}, {"job", job_json(whole)}};
  auto job_of = [&](const std::string& d) {
    LocateJob j = whole;
    j.dir = d;
    j.run = run;
    if (shard.on) {
      j.items.clear();
      for (auto& it : items) j.items.emplace_back(it.index, it.stem);
    }
    return j;
  };

  // Rank 0 (or the only process) checks what earlier runs wrote and lists what is left to trace.
  std::vector<long long> todo_pos;  // positions in items
  if (lead) todo_pos = facts_to_trace(a, dir, previous, run, record, items);
  dist::bcast(todo_pos);
  std::vector<const Item*> todo;
  for (long long k : todo_pos) todo.push_back(&items[(size_t)k]);
  double traced_secs = 0;
  {
    // One item at a time from rank 0's counter (dynamic: a slow fact holds no other back); every
    // fact is traced with the run's seed alone, so which rank traces it changes no number.
    dist::WorkQueue queue("locate", (long long)todo.size());
    std::string spent;  // the seconds this rank traced its last fact, for rank 0's total
    while (auto next = queue.next(std::move(spent))) {
      double secs = 0;
      std::string note = trace_fact(*todo[(size_t)*next], m, set, run, emb_std, dir, model_name, secs);
      spent.assign(reinterpret_cast<const char*>(&secs), sizeof secs);
      queue.note(note);
    }
    for (auto& [k, bytes] : queue.finish()) {  // every fact's seconds on rank 0, by index: one sum, in order
      double secs = 0;
      if (bytes.size() == sizeof secs) std::memcpy(&secs, bytes.data(), sizeof secs);
      traced_secs += secs;
    }
  }
  if (!lead) return 0;  // rank 0 aggregates what every rank wrote

  // Aggregate everything written (this run, its other ranks and earlier runs).
  LocateJob job = job_of(dir);
  job.traced_secs = traced_secs;
  auto [n_done, n_skipped] = locate_aggregate(job, (int)args.size(), args.data());
  std::fprintf(stderr, "locate: %zu facts traced, %zu skipped; wrote %s\n", n_done, n_skipped, dir.c_str());
  return 0;
}

const Register reg{"locate", "ROME causal tracing over a facts file, with every summary figure (resumable)", 61,
                   run_locate};

}  // namespace
}  // namespace mechscope::cli
