#include "cli/batch.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

#include "cli/registry.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/progress.h"
#include "report/output.h"

namespace mechscope::cli::batch {
namespace {

using json = nlohmann::json;

// The shards merge() runs a command over (by shard index), and their common record; empty otherwise.
// Set only while merge() runs the command again (one command per process).
struct MergeSource {
  std::vector<std::string> dirs;
  json record;
};
std::optional<MergeSource> g_merge;

// FNV-1a, 64 bits: a fingerprint of the items' inputs, compared between shards, and a check of each
// item file (not a security hash).
uint64_t fnv(const std::string& bytes) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
  return h;
}
std::string fingerprint(const std::string& bytes) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)fnv(bytes));
  return buf;
}

// An item file: the result's bytes, then their FNV-1a (so a damaged file is named, not decoded).
std::string item_file(const std::string& result) {
  uint64_t h = fnv(result);
  return result + std::string(reinterpret_cast<const char*>(&h), sizeof h);
}
std::string item_result(const std::string& path) {
  std::string bytes = read_file(path);
  uint64_t h = 0;
  if (bytes.size() >= sizeof h) std::memcpy(&h, bytes.data() + bytes.size() - sizeof h, sizeof h);
  if (bytes.size() < sizeof h || fnv(bytes.substr(0, bytes.size() - sizeof h)) != h)
    fail(path, " is damaged (its check sum does not match): run that shard again, then merge");
  bytes.resize(bytes.size() - sizeof h);
  return bytes;
}

std::string record_path(const std::string& dir) { return join_path(dir, "shard.json"); }
std::string item_path(const std::string& dir, long long k) {
  return join_path(join_path(dir, "items"), std::to_string(k) + ".bin");
}
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

const std::vector<std::string> kNotOptions{"shard", "out", "overwrite", "resume"};

}  // namespace

void add_shard_flag(Args& a) {
  a.opt("shard", "i/N",
        "compute only the items whose index is i modulo N, into --out, for `mechscope merge` (a run without "
        "mpirun: Slurm job arrays, machines that share no network)");
  a.flag("resume",
         "with --shard: keep the items an earlier run of this shard wrote into --out (the same command line and "
         "inputs) and compute only the missing ones");
}

Job start(const Args& a, bool shards) {
  Job j;
  j.command = a.command();
  j.out = a.str("out");
  j.merging = g_merge.has_value();
  j.command_line = a.command_line(kNotOptions);
  j.options = a.given();
  for (auto& k : kNotOptions) j.options.erase(k);
  j.resume = shards && a.on("resume");  // heads all's --resume is its own
  if (!a.has("shard")) {
    if (j.resume)
      fail("--resume goes with --shard i/N (a shard keeps its finished items); ", j.command,
           " without --shard computes every item again");
    return j;
  }
  j.shard = dist::parse_shard(a.str("shard"));
  if (dist::size() > 1)
    fail("--shard is for runs without mpirun (mpirun -np N already divides the items among its ranks)");
  if (j.resume && report::overwrite()) fail("--resume and --overwrite exclude each other");
  report::claim_output_dir(j.out, j.command, report::OutputMode::InPlace);
  if (file_exists(record_path(j.out)) && !report::overwrite() && !j.resume)
    fail("--out ", j.out, " holds an earlier shard: pass --resume to continue it, or give a new folder or --overwrite");
  if (!j.resume) {
    std::error_code ec;
    std::filesystem::remove_all(join_path(j.out, "items"), ec);
  }
  return j;
}

std::optional<std::map<long long, std::string>> run(const Job& job, const std::string& label, long long n,
                                                    const std::string& inputs,
                                                    const std::function<std::string(long long)>& compute) {
  const std::string fp = fingerprint(inputs);
  if (job.merging) {
    const json& rec = g_merge->record;
    if (rec.value("items", -1LL) != n || rec.value("inputs", std::string()) != fp)
      fail("the shards were computed from other inputs than the files their command line names hold now (",
           rec.value("items", -1LL), " items there, ", n,
           " here): run merge where the shards' files are, unchanged, or recompute the shards");
    std::map<long long, std::string> each;
    const size_t count = g_merge->dirs.size();
    for (long long k = 0; k < n; ++k) each[k] = item_result(item_path(g_merge->dirs[(size_t)k % count], k));
    return each;
  }
  if (job.shard.on) {
    json rec{{"command", job.command},
             {"command_line", job.command_line},
             {"options", job.options},
             {"shard", {{"index", job.shard.index}, {"count", job.shard.count}}},
             {"items", n},
             {"inputs", fp},
             {"complete", false}};
    // --resume: the items of an earlier run of the same shard, command line and inputs are kept.
    std::set<long long> kept;
    if (job.resume && file_exists(record_path(job.out))) {
      json old = read_json_file(record_path(job.out));
      for (const char* k : {"command", "options", "shard", "items", "inputs"})
        if (!old.is_object() || old.value(k, json()) != rec[k])
          fail("--resume: the shard in ", job.out, " was made with other ", k == std::string("inputs") ? "inputs" : k,
               " than this run; use the same command line and files, or --overwrite");
      for (long long k = 0; k < n; ++k)
        if (job.shard.mine(k) && file_exists(item_path(job.out, k))) {
          try {
            item_result(item_path(job.out, k));
            kept.insert(k);
          } catch (const Error&) {  // a damaged item is computed again
          }
        }
    }
    write_file_atomic(record_path(job.out), rec.dump(1) + "\n");
    make_dirs(join_path(job.out, "items"));
    long long mine = 0;
    for (long long k = 0; k < n; ++k) mine += job.shard.mine(k);
    if (job.resume)
      std::fprintf(stderr, "resuming: %zu of %lld items of shard %d/%d already done\n", kept.size(), mine,
                   job.shard.index, job.shard.count);
    {
      Progress progress(label, mine - (long long)kept.size());
      for (long long k = 0; k < n; ++k) {
        if (!job.shard.mine(k) || kept.count(k)) continue;
        write_file_atomic(item_path(job.out, k), item_file(compute(k)));
        progress.tick();
      }
    }
    rec["complete"] = true;  // written last: merge takes only a shard that finished
    write_file_atomic(record_path(job.out), rec.dump(1) + "\n");
    std::fprintf(stderr, "shard %d/%d: %lld of %lld items -> %s (combine all %d with mechscope merge OUT DIR...)\n",
                 job.shard.index, job.shard.count, mine, n, job.out.c_str(), job.shard.count);
    return std::nullopt;
  }
  std::map<long long, std::string> each = dist::compute_items(label, n, compute);
  if (!job.lead()) return std::nullopt;
  return each;
}

bool is_shard_dir(const std::string& dir) { return file_exists(record_path(dir)); }

namespace {

struct ShardDir {
  std::string dir;
  json record;
  int index = 0, count = 0;
  long long items = 0;
};

ShardDir read_shard(const std::string& dir) {
  ShardDir s{dir, {}, 0, 0, 0};
  std::string p = record_path(dir);
  try {
    s.record = read_json_file(p);
    const json& sh = s.record.at("shard");
    s.index = sh.at("index").get<int>();
    s.count = sh.at("count").get<int>();
    s.items = s.record.at("items").get<long long>();
    s.record.at("command_line").get<std::vector<std::string>>();
    s.record.at("options").get<std::map<std::string, std::vector<std::string>>>();
    s.record.at("inputs").get<std::string>();
    s.record.at("complete").get<bool>();
  } catch (const json::exception& e) {
    fail(p, ": malformed shard record (", e.what(), ")");
  }
  if (s.count < 1 || s.index < 0 || s.index >= s.count) fail(p, ": shard ", s.index, "/", s.count, " is out of range");
  if (s.items < 0) fail(p, ": ", s.items, " items");
  return s;
}

}  // namespace

int merge(const std::string& out, const std::vector<std::string>& dirs, bool overwrite) {
  std::vector<ShardDir> shards;
  for (auto& d : dirs) {
    if (!is_shard_dir(d))
      fail(d, " is not the folder of a --shard run (it has no shard.json), and ", dirs[0], " is one");
    shards.push_back(read_shard(d));
  }
  const ShardDir& first = shards[0];
  const std::string command = first.record["command"].get<std::string>();
  for (auto& s : shards) {
    if (s.record["command"] != first.record["command"])
      fail(s.dir, " is a shard of ", dump(s.record["command"]), ", ", first.dir, " of ", dump(first.record["command"]),
           ": merge the shards of one run");
    if (s.count != first.count)
      fail(s.dir, " is shard ", s.index, "/", s.count, " but ", first.dir, " is shard ", first.index, "/", first.count,
           ": shards of one run share N");
    const json &o = s.record["options"], &f = first.record["options"];
    std::set<std::string> keys;
    for (auto& [k, v] : o.items()) keys.insert(k);
    for (auto& [k, v] : f.items()) keys.insert(k);
    for (auto& k : keys)
      if (o.value(k, json()) != f.value(k, json()))
        fail(s.dir, " and ", first.dir, " were made with different --", k, " (",
             o.contains(k) ? dump(o[k]) : std::string("not given"), " there, ",
             f.contains(k) ? dump(f[k]) : std::string("not given"),
             " here): shards of one run have the same options and inputs");
    if (s.items != first.items || s.record["inputs"] != first.record["inputs"])
      fail(s.dir, " and ", first.dir, " were made from different inputs (", s.items, " items there, ", first.items,
           " here; the files their options name differed): shards of one run have the same options and inputs");
  }
  const int n = first.count;
  auto by_index = dist::shards_by_index(shards, n);
  for (auto& s : shards) {
    if (!s.record["complete"].get<bool>())
      fail(s.dir, " (shard ", s.index, "/", n, ") did not finish: run it again, then merge");
    // Each item in its own shard, exactly once, and nothing else there.
    std::error_code ec;
    for (auto& e : std::filesystem::directory_iterator(join_path(s.dir, "items"), ec)) {
      std::string name = e.path().filename().string(), stem = e.path().stem().string();
      bool number = e.path().extension() == ".bin" && !stem.empty() && stem.size() < 19 &&
                    stem.find_first_not_of("0123456789") == std::string::npos;
      if (name.find(".tmp.") != std::string::npos) continue;  // a killed writer's temporary
      long long k = number ? std::stoll(stem) : -1;
      if (!number || k >= s.items)
        fail(join_path(s.dir, "items/" + name), " is no item of this run: remove it and merge again");
      if (k % n != s.index)
        fail("item ", k, " is in both ", s.dir, " and ", by_index[(int)(k % n)]->dir,
             " (duplicated item: it belongs to shard ", k % n, "/", n, ")");
    }
    for (long long k = s.index; k < s.items; k += n)
      if (!file_exists(item_path(s.dir, k)))
        fail(s.dir, " lacks item ", k, ": shard ", s.index, "/", n, " did not finish; run it again, then merge");
  }

  std::vector<std::string> words = first.record["command_line"].get<std::vector<std::string>>();
  const Command* cmd = nullptr;
  for (auto& c : commands())
    if (!words.empty() && c.name == words[0]) cmd = &c;
  if (!cmd) fail(record_path(first.dir), ": unknown command ", dump(first.record["command_line"]));
  std::vector<std::string> args(words.begin() + 1, words.end());
  args.insert(args.end(), {"--out", out});
  if (overwrite) args.push_back("--overwrite");
  std::vector<char*> argv;
  for (auto& w : args) argv.push_back(w.data());
  argv.push_back(nullptr);

  MergeSource src;
  for (int i = 0; i < n; ++i) src.dirs.push_back(by_index[i]->dir);
  src.record = first.record;
  g_merge = std::move(src);
  struct Clear {
    ~Clear() { g_merge.reset(); }
  } clear;
  int rc = cmd->run((int)args.size(), argv.data());
  if (rc == 0)
    std::fprintf(stderr, "merge: %d shards of %s, %lld items; wrote %s\n", n, command.c_str(), first.items,
                 out.c_str());
  return rc;
}

}  // namespace mechscope::cli::batch
