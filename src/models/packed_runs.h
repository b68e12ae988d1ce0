// The packed fast path's protocol between the sweep engine (analysis/packed) and the architectures'
// block_packed (ARCHITECTURE.md, "What makes it fast"). Not part of the public model interface.
#pragma once
#include <ATen/ATen.h>

#include "hooks/hooks.h"
#include "models/model.h"

namespace mechscope::models {

// Several runs of one prompt that differ from a base run only from some position on, packed together
// through one block (activation-patching sweeps, ARCHITECTURE.md "What makes it fast"): run r
// recomputes positions start[r] .. n_pos - 1 and attends to the base run's keys/values before those.
// The rows of all runs go through each weight as one GEMM; attention stays per run.
struct PackedRuns {
  int64_t n_runs = 0, n_pos = 0;
  at::Tensor rows;        // [R] int64: run * n_pos + position of each packed row (runs in order, positions ascending)
  at::Tensor positions;   // [R] int64: the position of each row
  KVCache base;           // the base runs' keys/values per layer: [B, n_kv_heads, n_pos, d_head]
  at::Tensor base_index;  // [n_runs] int64: the base run (row of `base`) each run attends to; undefined = 0
  // Fired with packed layouts: [R, d] / [R, heads, d_head] for per-position points, and
  // [n_runs, heads, n_pos, n_pos] for attn_scores / pattern (query rows before a run's start are
  // not meaningful). pos0 is 0.
  const hooks::HookSet* hooks = nullptr;
  // When defined (only without hooks): the packed rows the caller needs from this block, [K] int64
  // ascending. Every row still provides its keys/values, but only these rows go on past attention,
  // and the block returns [K, d] (the last block of a sweep needs only the metric's position).
  at::Tensor keep;
};

}  // namespace mechscope::models
