// mechscope merge OUT DIR...: the folders of `--shard i/N` runs combined into the folder one process
// writes (issue 18). Refused, with one message each, when a shard is missing, given twice, made with
// other settings than the rest, or holds an item twice or not at all. locate's shards are folders of
// facts (below); the other batch commands' are items (cli/batch.h).
#include <nlohmann/json.hpp>

#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/batch.h"
#include "cli/locate_common.h"
#include "cli/registry.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/fs_guard.h"
#include "core/json.h"
#include "report/output.h"

namespace mechscope::cli {
namespace {

using json = nlohmann::json;
namespace ct = analysis::causal_trace;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

const char* const kUsage =
    "usage: mechscope merge OUT DIR... [--overwrite]\n\n"
    "Combines the folders of `--shard i/N` runs of one command (locate, patch --pairs, ablate, heads screen,\n"
    "heads ablate, heads patch; one folder per i in 0 .. N-1, in any order) into OUT, which then holds\n"
    "exactly what one run of the same command writes (locate's can be continued with --resume). Refused\n"
    "when a shard is missing or given twice, when the shards were made with different settings or inputs,\n"
    "or when a shard has not finished (rerun it: locate with --resume). The other commands' shards record\n"
    "their command line, which merge runs again with --out OUT, reading the same model and input files\n"
    "(run it where the shards ran) and taking every item's result from the shards.\n";

struct ShardDir {
  std::string dir;
  json record;  // its facts/run.json
  int index = 0, count = 0;
};

ShardDir read_shard(const std::string& dir) {
  if (!dir_exists(dir)) fail(dir, " is not a folder (merge takes the --out folders of the --shard runs)");
  std::string p = join_path(join_path(dir, "facts"), "run.json");
  if (!file_exists(p)) fail(dir, " is not the folder of a locate --shard run (it has no facts/run.json)");
  ShardDir s{dir, {}, 0, 0};
  try {
    s.record = read_json_file(p);
  } catch (const Error& e) {
    fail(e.raw(), " (", dir, " is not a whole locate --shard folder)");
  }
  const json sh = s.record.is_object() ? s.record.value("shard", json()) : json();
  if (!sh.is_object()) fail(dir, " was made without --shard: it is a whole run already, not a shard to merge");
  try {
    s.index = sh.at("index").get<int>();
    s.count = sh.at("count").get<int>();
    sh.at("job").at("items");
  } catch (const json::exception& e) {
    fail(p, ": malformed shard record (", e.what(), ")");
  }
  if (s.count < 1 || s.index < 0 || s.index >= s.count) fail(p, ": shard ", s.index, "/", s.count, " is out of range");
  return s;
}

// The first key where two JSON objects differ (dotted), "" when equal.
std::string first_difference(const json& a, const json& b, const std::string& prefix = "") {
  if (a == b) return "";
  if (!a.is_object() || !b.is_object()) return prefix.empty() ? "(value)" : prefix;
  std::set<std::string> keys;
  for (auto& [k, v] : a.items()) keys.insert(k);
  for (auto& [k, v] : b.items()) keys.insert(k);
  for (auto& k : keys) {
    std::string d = first_difference(a.value(k, json()), b.value(k, json()), prefix.empty() ? k : prefix + "." + k);
    if (!d.empty()) return d;
  }
  return prefix;
}

json at_path(const json& j, const std::string& dotted) {
  json cur = j;
  for (auto& k : split(dotted, '.')) cur = cur.is_object() ? cur.value(k, json()) : json();
  return cur;
}

int run_merge(int argc, char** argv) {
  std::vector<std::string> pos;
  bool overwrite = false;
  for (int i = 0; i < argc; ++i) {
    std::string s = argv[i];
    if (s == "--help" || s == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (s == "--overwrite") overwrite = true;
    else if (s.rfind("--", 0) == 0) fail("merge: unknown option '", s, "' (mechscope merge OUT DIR... [--overwrite])");
    else pos.push_back(s);
  }
  if (pos.size() < 2) fail("merge needs an output folder and the shard folders: mechscope merge OUT DIR...");
  report::set_overwrite(overwrite);
  std::string out = pos[0];
  for (size_t i = 1; i < pos.size(); ++i)
    if (pos[i] == out) fail("merge: OUT ", out, " is also given as a shard; write the merged run to a new folder");
  if (batch::is_shard_dir(pos[1])) return batch::merge(out, {pos.begin() + 1, pos.end()}, overwrite);
  std::vector<ShardDir> shards;
  for (size_t i = 1; i < pos.size(); ++i) shards.push_back(read_shard(pos[i]));

  // Same run: equal records but for the shard's index; the count once more for a clearer message.
  const ShardDir& first = shards[0];
  auto settings = [](const ShardDir& s) {
    json r = s.record;
    r["shard"].erase("index");
    return r;
  };
  for (auto& s : shards) {
    if (s.count != first.count)
      fail(s.dir, " is shard ", s.index, "/", s.count, " but ", first.dir, " is shard ", first.index, "/", first.count,
           ": shards of one run share N");
    std::string d = first_difference(settings(first), settings(s));
    if (!d.empty()) {
      std::string key = d.rfind("shard.job", 0) == 0 ? d.substr(10) : d;
      fail(s.dir, " and ", first.dir, " were made with different ", key, " (", dump(at_path(settings(s), d)),
           " there, ", dump(at_path(settings(first), d)), " here): shards of one run have the same options and facts");
    }
  }
  const int n = first.count;
  auto by_index = dist::shards_by_index(shards, n);

  LocateJob job = job_from_json(first.record["shard"]["job"], join_path(first.dir, "facts/run.json"));
  json run = first.record;
  run.erase("shard");

  // Every item in its own shard, exactly once, and nothing else there.
  std::map<std::string, int> owner;  // stem -> shard index
  for (auto& [index, stem] : job.items) owner[stem] = index % n;
  for (auto& s : shards) {
    for (auto& name : fact_files(join_path(s.dir, "facts"))) {
      std::string stem = name;
      for (std::string ext : {".skipped.json", ".safetensors"})
        if (stem.size() > ext.size() && stem.compare(stem.size() - ext.size(), ext.size(), ext) == 0)
          stem.resize(stem.size() - ext.size());
      auto it = owner.find(stem);
      if (it == owner.end())
        fail(join_path(s.dir, "facts/" + name), " is no fact of this run: remove it and merge again");
      if (it->second != s.index)
        fail("fact ", stem, " is in both ", s.dir, " and ", by_index[it->second]->dir,
             " (duplicated item: it belongs to shard ", it->second, "/", n, ")");
    }
  }
  struct Copy {
    std::string from, to;
  };
  std::vector<Copy> copies;
  for (auto& [index, stem] : job.items) {
    const ShardDir& s = *by_index[index % n];
    std::string facts = join_path(s.dir, "facts"), res = join_path(facts, stem + ".safetensors"),
                skip = join_path(facts, stem + ".skipped.json");
    bool has_res = file_exists(res), has_skip = file_exists(skip);
    if (has_res && has_skip)
      fail("fact ", stem, " is in ", s.dir, " twice (as a result and as a skip record; duplicated item)");
    if (!has_res && !has_skip)
      fail(s.dir, " lacks fact ", stem, ": shard ", s.index, "/", n,
           " did not finish; rerun it with --resume, then merge");
    if (has_skip) {
      copies.push_back({skip, "facts/" + stem + ".skipped.json"});
      continue;
    }
    copies.push_back({res, "facts/" + stem + ".safetensors"});
    for (auto& k : run.at("kinds"))
      for (auto f : job.formats) {
        std::string fig = heatmap_id(stem, ct::parse_kind(k.get<std::string>())) + "." + report::extension(f);
        if (!file_exists(join_path(s.dir, fig)))
          fail(s.dir, " lacks ", fig, " (fact ", stem, "): rerun that shard with --resume");
        copies.push_back({join_path(s.dir, fig), fig});
      }
  }
  double secs = 0;
  for (auto& s : shards) {
    std::string p = join_path(s.dir, "locating_summary.json");
    if (file_exists(p)) {
      json sum = read_json_file(p);
      if (sum.is_object()) secs += sum.value("seconds_tracing_this_run", 0.0);
    }
  }

  std::string facts_dir = join_path(out, "facts");
  if (!overwrite && (file_exists(join_path(facts_dir, "run.json")) || !fact_files(facts_dir).empty()))
    fail(out, " holds an earlier locate run: give a new folder or --overwrite");
  report::claim_output_dir(out, "merge", report::OutputMode::InPlace);
  make_dirs(facts_dir);
  remove_stale_temps(facts_dir);
  if (overwrite)
    for (auto& name : fact_files(facts_dir)) std::remove(join_path(facts_dir, name).c_str());
  for (auto& c : copies) write_file_atomic(join_path(out, c.to), read_file(c.from));
  write_file_atomic(join_path(facts_dir, "run.json"), run.dump(2, ' ', false, json::error_handler_t::replace) + "\n");
  job.dir = out;
  job.run = run;
  job.traced_secs = secs;
  auto [done, skipped] = locate_aggregate(job, argc, argv);
  std::fprintf(stderr, "merge: %d shards, %zu facts traced, %zu skipped; wrote %s\n", n, done, skipped, out.c_str());
  return 0;
}

const Register reg{"merge", "combine the folders of --shard i/N runs into the one a single run writes", 62, run_merge};

}  // namespace
}  // namespace mechscope::cli
