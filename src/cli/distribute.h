// Running one batch command over many processes (issue 18): MPI ranks under `mpirun`/`srun`, or
// `--shard i/N` slices merged later by `mechscope merge`.
//
// MPI is optional at build time (find_package(MPI)); a plain run never initialises it. init() does,
// but only when the environment shows an MPI launch (OMPI_COMM_WORLD_SIZE, PMIX_RANK, PMI_SIZE, ...);
// a build without MPI refuses such a launch with "this build has no MPI" rather than running N
// copies that would each write the whole output.
//
// Items are handed out dynamically: rank 0 runs a small server thread that answers the other ranks'
// requests (MPI_Iprobe + 1 ms sleeps, so no core is spent polling), while rank 0's own main thread
// takes items from the same counter. A request carries the result of the item the rank finished, so
// rank 0 ends with every item's result (results() below) and draws the one progress line.
//
// No MPI type appears here: this file's implementation is the only one that includes <mpi.h>.
#pragma once
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mechscope::cli::dist {

// Whether this binary was built with MPI.
bool built_with_mpi();
// Whether the environment shows an MPI launch, and the world size it names (1 when none).
bool launched();
// Initialises MPI when launched (idempotent); Error "this build has no MPI" when launched without it.
// `command` names the command in messages.
void init(const std::string& command);
bool active();  // init() ran MPI_Init (then rank()/size() are MPI's; otherwise 0 and 1)
int rank();
int size();
// Ends MPI cleanly (a successful exit; an error exit leaves MPI to mpirun, which ends the job).
void finalize();

// Collectives over every rank (no-ops without MPI).
void barrier();
void bcast(std::vector<long long>& v);      // rank 0's vector on every rank (the others wait idle)
double sum(double v);                       // over all ranks, on every rank
void allreduce_sum(float* data, size_t n);  // in place, on every rank
void allreduce_sum(double* data, size_t n);

class WorkQueue {
 public:
  // `n` items (0 .. n-1), the same on every rank. On rank 0 `label` names the progress line.
  WorkQueue(std::string label, long long n);
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;
  // The next item for this rank, or nullopt when all have been handed out. `result` is the result of
  // the item this rank got last (ignored on the first call); it reaches rank 0's results().
  std::optional<long long> next(std::string result = "");
  // On rank 0: the progress line's note (ignored elsewhere).
  void note(const std::string& text);
  // After next() returned nullopt: on rank 0 waits until every rank has finished its last item and
  // returns every item's result by index; elsewhere returns nothing.
  std::map<long long, std::string> finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Items 0 .. n-1 handed out over the ranks (one process: all computed here), each by compute(k); on
// rank 0 every item's result by index, on the other ranks nothing.
std::map<long long, std::string> compute_items(const std::string& label, long long n,
                                               const std::function<std::string(long long)>& compute);

// --shard i/N: this run computes the items whose index is i modulo N into its own folder.
struct Shard {
  int index = 0, count = 1;
  bool on = false;
  bool mine(long long item) const { return !on || item % count == index; }
};
// "i/N" with 0 <= i < N and N >= 1; Error naming --shard otherwise.
Shard parse_shard(const std::string& text);
// The shards given to merge, as (index, folder): each of 0 .. count-1 exactly once; Error naming the
// duplicated or the missing one otherwise.
void check_shard_set(const std::vector<std::pair<int, std::string>>& shards, int count);
// The same for shard records with .index and .dir; returns them by index.
template <typename ShardRecord>
std::map<int, const ShardRecord*> shards_by_index(const std::vector<ShardRecord>& shards, int count) {
  std::vector<std::pair<int, std::string>> given;
  for (auto& s : shards) given.emplace_back(s.index, s.dir);
  check_shard_set(given, count);
  std::map<int, const ShardRecord*> by_index;
  for (auto& s : shards) by_index[s.index] = &s;
  return by_index;
}

}  // namespace mechscope::cli::dist
