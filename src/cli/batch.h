// The items of a batch command (issue 18), computed by one process, by the ranks of an MPI job, or as
// one `--shard i/N` slice, and combined by the code one process runs: `patch --pairs`, `ablate`,
// `heads screen|ablate|patch` (and `heads all` over ranks). `locate` has its own folder of facts.
//
// A command describes its work as n items, each computed to bytes (cli/wire.h) from its index alone
// (never from the rank), and combines every item's bytes in index order. run() below decides where
// the items are computed:
//   - one process, or MPI ranks (dist::WorkQueue): the process that writes the output gets them all;
//   - --shard i/N: this process computes the items i mod N into OUT/items/<k>.bin (the bytes and their
//     FNV-1a, so merge names a damaged file rather than decoding it), with OUT/shard.json
//     recording the command line, the shard and a fingerprint of the items' inputs ("complete" only
//     once every item of the slice is written), and writes nothing else;
//   - `mechscope merge OUT DIR...` (merge() below): the shards are checked against each other, then
//     the recorded command runs again with --out OUT, its items read from the shards rather than
//     computed, so OUT is what one process writes.
#pragma once
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/distribute.h"

namespace mechscope::cli::batch {

// --shard i/N and --resume (for the commands above but heads all).
void add_shard_flag(Args& a);

struct Job {
  std::string command;  // "patch", "heads ablate" (Args::command())
  std::string out;      // --out
  dist::Shard shard;
  bool merging = false;                   // run by merge: the items come from the shard folders
  bool resume = false;                    // --resume (with --shard): finished items are kept
  std::vector<std::string> command_line;  // as merge runs it again: without --shard, --out, --overwrite
  std::map<std::string, std::vector<std::string>> options;  // the given flags but those three
  // Whether this process writes the command's output folder: a plain run, rank 0, or merge (a shard
  // writes its items instead, the other ranks nothing).
  bool lead() const { return !shard.on && dist::rank() == 0; }
  // Whether the items go through run() (ranks, a shard, merge) rather than the one-process path.
  bool spread() const { return shard.on || merging || dist::active(); }
};

// After a.parse(): --shard is checked (not under mpirun) and a shard's folder claimed. `shards`: the
// command took add_shard_flag (heads all runs over ranks only and has a --resume of its own).
Job start(const Args& a, bool shards = true);

// Every item's result by index on the process that writes the output (lead()); nullopt elsewhere (the
// other ranks, a shard once its items are written: the command then returns 0). `inputs` is what the
// items are computed from (token ids, heads, ...): merge refuses shards whose inputs differ, or that
// differ from what the recorded files hold now. `label` names the progress line.
std::optional<std::map<long long, std::string>> run(const Job& job, const std::string& label, long long n,
                                                    const std::string& inputs,
                                                    const std::function<std::string(long long)>& compute);

// Whether `dir` holds a shard written by run() (OUT/shard.json).
bool is_shard_dir(const std::string& dir);
// merge for those shards: every check, then the command again into `out`; returns its exit code.
int merge(const std::string& out, const std::vector<std::string>& dirs, bool overwrite);

}  // namespace mechscope::cli::batch
