// The packed-run engine every exact sweep shares (activation patching, ROME's causal trace, the head
// screens): many runs that equal a base run up to some block and some position are computed together.
// Run r recomputes positions start .. n-1 from block `join` on and attends to its base run's keys and
// values before `start` (ARCHITECTURE.md, "What makes it fast"). At each block the rows of every run
// joined so far go through each weight as one GEMM; a run is not computed before its join block; the
// last block carries only the rows the caller reads when nothing is edited there; the memory budget
// is one rule for all callers.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <utility>
#include <vector>

#include "hooks/hooks.h"
#include "models/model.h"
#include "models/packed_runs.h"

namespace mechscope::analysis::packed {

// The runs packed runs start from and attend to: block inputs [B, n, d] per layer and every block's
// keys/values of the B runs ([B, n_kv, n, d_head]).
struct Bases {
  std::vector<at::Tensor> resid_pre;
  models::KVCache kv;
};

struct Run {
  int64_t start = 0;      // first recomputed position
  int join = 0;           // first block computed
  int64_t base = 0;       // the base run it equals before `join` / `start`
  int parent = -1;        // an earlier run of the batch with the same start whose rows at `join` it starts from
  int64_t clean_at = -1;  // a position whose starting row is base run 0's (ROME's restored token, kind all)
  int64_t readout = -1;   // the position whose final residual the caller reads (-1: the last)
};

// Where the positions of the runs [0, active) sit among the packed rows.
class Layout {
 public:
  Layout(const std::vector<Run>& runs, int64_t n_pos);
  int64_t row(size_t run, int64_t pos) const { return offset_[run] + pos - runs_[run].start; }
  int64_t rows(size_t active) const { return offset_[active]; }  // packed rows of the first `active` runs
  const std::vector<Run>& runs() const { return runs_; }

 private:
  const std::vector<Run>& runs_;
  std::vector<int64_t> offset_;
};

// Adds to `hooks` what makes block `layer` of the runs [0, active) the edited runs; `hooks` fire on
// the packed layout (models::PackedRuns). Leaving it empty means no edit in that block.
using Edits = std::function<void(int layer, size_t active, const Layout& layout, hooks::HookSet& hooks)>;

// One memory rule for every packed sweep: ~8 MB of residual rows (max_rows > 0 overrides it), and
// per batch ~32 MB of per-run attention state (full-length queries, keys and values) and ~256 MB of
// attention scores. Measured on the causal trace: a 32768-row bound ran 1.6x slower than this one
// (full-length state of thousands of runs costs more memory traffic than bigger GEMMs gain).
struct Budget {
  int64_t max_rows = 0, max_runs = 0;
};
Budget budget(const models::ModelConfig& cfg, int64_t n_pos, int64_t max_rows = 0);

// Splits units (groups of runs that must share a batch: a run and the runs that start from its rows)
// with these row and run counts into consecutive [begin, end) batches within `b`; a unit larger than
// the budget is a batch of its own.
std::vector<std::pair<size_t, size_t>> chunk(const std::vector<int64_t>& unit_rows,
                                             const std::vector<int64_t>& unit_runs, const Budget& b);

// Runs `runs` (sorted by join; parents before their children) from the first join to the last block.
// Returns [R, d]: each run's residual after the last block at its readout position. Models without
// block_packed (or use_packed false) go through block() on full-length runs rebuilt from the bases:
// slower, the same numbers.
at::Tensor run(const models::HookedModel& model, const Bases& bases, const std::vector<Run>& runs, const Edits& edits,
               bool use_packed = true);

// Final norm and unembedding of residual rows: [R, d] -> logits [R, columns] (every column when
// `columns` is undefined).
at::Tensor logits(const models::HookedModel& model, const at::Tensor& rows, const at::Tensor& columns = {});

// The hook points of block `layer` of `model`, in forward order.
std::vector<std::string> block_hooks(const models::HookedModel& model, int layer);

}  // namespace mechscope::analysis::packed
