// What `locate` and `merge` share (issue 18): the per-fact records in OUT/facts/ and the aggregation
// that turns them into the run's report (locating_summary.json, trace.safetensors, the summary figures,
// index.html, manifest.json). The aggregation reads only the records and facts/run.json, never the
// model, so `mechscope merge` writes exactly what one process would.
#pragma once
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

#include "analysis/causal_trace/causal_trace.h"
#include "report/render.h"

namespace mechscope::cli {

struct FactRecord {  // one fact's stored result
  int index = 0;
  std::string stem;     // "{NNN}_{id}"
  nlohmann::json info;  // prompt, subject, answer, scores' metadata
  std::vector<analysis::causal_trace::Kind> kinds;
  std::vector<at::Tensor> scores;
};

// The settings a fact's result depends on: a file traced with others is not this run's result.
extern const char* const kFactSettings[10];

std::string fact_stem(int index, const std::string& id);
std::string heatmap_id(const std::string& stem, analysis::causal_trace::Kind k);
FactRecord load_fact(const std::string& path, int index, const std::string& stem);
// Per-fact files in `facts_dir` (results and skip records), by name.
std::vector<std::string> fact_files(const std::string& facts_dir);

// Everything the aggregation needs besides the records: what a --shard run records in its run.json
// ("shard"."job") so that merge can aggregate without the facts file or the model.
struct LocateJob {
  std::string dir;                                 // the output folder (records in dir/facts)
  nlohmann::json run;                              // facts/run.json (without "shard")
  std::vector<std::pair<int, std::string>> items;  // index and stem of every fact to trace, in order
  std::vector<nlohmann::json> bad_facts;           // facts refused before tracing (--skip-bad)
  long long facts_selected = 0, facts_in_file = 0;
  std::string model_name;
  int n_layers = 0;
  std::vector<report::Format> formats{report::Format::Png};
  long long html_facts = 30;
  double traced_secs = 0;  // seconds spent tracing by this run (all ranks)
};
nlohmann::json job_json(const LocateJob& job);  // all but dir, run and traced_secs
LocateJob job_from_json(const nlohmann::json& j, const std::string& where);

// Reads every record of job.items present in dir/facts and writes the report into job.dir (claimed
// in place by the caller); argc/argv go to the manifest. Returns the numbers traced and skipped.
std::pair<size_t, size_t> locate_aggregate(const LocateJob& job, int argc, char** argv);

}  // namespace mechscope::cli
