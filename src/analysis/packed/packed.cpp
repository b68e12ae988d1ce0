#include "analysis/packed/packed.h"

#include <algorithm>

#include "core/error.h"
#include "models/packed_runs.h"

namespace mechscope::analysis::packed {

namespace {

// Index tensors are built on the host and sent to the model's device once per sweep chunk.
at::Tensor longs(const std::vector<int64_t>& v, const at::Device& device) {
  return at::tensor(v, at::kLong).to(device);
}

bool is_pattern(const std::string& name) { return hooks::point_layout(name) == hooks::Layout::Pattern; }

// One block on packed rows through block() on full-length runs, for models without block_packed:
// each run is rebuilt from its base run's block input (positions before its start equal the base's),
// and hooks see the packed layout as block_packed shows it.
at::Tensor generic_block(const models::HookedModel& model, int layer, const at::Tensor& rows,
                         const models::PackedRuns& P, const Bases& bases, const std::vector<std::string>& layer_hooks) {
  int64_t C = P.n_runs, n = P.n_pos, d = rows.size(1);
  at::Tensor full = bases.resid_pre[layer].index_select(0, P.base_index).reshape({C * n, d});
  full = full.index_copy(0, P.rows, rows).view({C, n, d});
  hooks::HookSet adapter;
  if (P.hooks && !P.hooks->empty()) {
    for (const auto& name : layer_hooks) {
      if (!P.hooks->wants(name)) continue;
      if (is_pattern(name)) {  // [runs, heads, q, k] already: the packed layout of patterns
        adapter.add(name, [&P](at::Tensor& t, const hooks::HookContext& c) { P.hooks->fire(c.name, t, c.layer, 0); });
        continue;
      }
      adapter.add(name, [&P, C, n](at::Tensor& t, const hooks::HookContext& c) {
        auto shape = t.sizes().vec();
        std::vector<int64_t> flat_shape{C * n};
        flat_shape.insert(flat_shape.end(), shape.begin() + 2, shape.end());
        at::Tensor flat = t.reshape(flat_shape);
        at::Tensor sel = flat.index_select(0, P.rows);
        P.hooks->fire(c.name, sel, c.layer, 0);
        t = flat.index_copy(0, P.rows, sel).view(shape);
      });
    }
  }
  models::RunContext ctx;
  ctx.hooks = &adapter;
  at::Tensor out = model.block(layer, full, ctx).reshape({C * n, d}).index_select(0, P.rows);
  return P.keep.defined() ? out.index_select(0, P.keep) : out;  // as block_packed returns kept rows
}

}  // namespace

Layout::Layout(const std::vector<Run>& runs, int64_t n_pos) : runs_(runs), offset_(runs.size() + 1, 0) {
  for (size_t r = 0; r < runs.size(); ++r) offset_[r + 1] = offset_[r] + n_pos - runs[r].start;
}

Budget budget(const models::ModelConfig& cfg, int64_t n_pos, int64_t max_rows) {
  Budget b;
  b.max_rows = max_rows > 0 ? max_rows : std::max<int64_t>(256, (int64_t(8) << 20) / (4 * cfg.d_model));
  int64_t state = std::max<int64_t>(1, 12 * n_pos * cfg.d_model);           // q, k, v of one run, float32
  int64_t scores = std::max<int64_t>(1, 12 * cfg.n_heads * n_pos * n_pos);  // scores, pattern, their copy
  b.max_runs = std::max<int64_t>(1, std::min((int64_t(32) << 20) / state, (int64_t(256) << 20) / scores));
  return b;
}

std::vector<std::pair<size_t, size_t>> chunk(const std::vector<int64_t>& unit_rows,
                                             const std::vector<int64_t>& unit_runs, const Budget& b) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t u = 0;
  while (u < unit_rows.size()) {
    size_t begin = u;
    int64_t rows = 0, runs = 0;
    while (u < unit_rows.size() &&
           (u == begin || (rows + unit_rows[u] <= b.max_rows && runs + unit_runs[u] <= b.max_runs))) {
      rows += unit_rows[u];
      runs += unit_runs[u];
      ++u;
    }
    out.emplace_back(begin, u);
  }
  return out;
}

std::vector<std::string> block_hooks(const models::HookedModel& model, int layer) {
  std::vector<std::string> out;
  std::string prefix = "blocks." + std::to_string(layer) + ".";
  for (const auto& name : model.hook_names())
    if (name.rfind(prefix, 0) == 0) out.push_back(name);
  return out;
}

at::Tensor run(const models::HookedModel& model, const Bases& bases, const std::vector<Run>& runs, const Edits& edits,
               bool use_packed) {
  const auto& cfg = model.config();
  const int nL = (int)cfg.n_layers;
  const int64_t n = bases.resid_pre.at(0).size(1), d = bases.resid_pre[0].size(2), R = (int64_t)runs.size();
  if (runs.empty()) return at::empty({0, d}, bases.resid_pre[0].options());
  Layout layout(runs, n);
  std::vector<int64_t> rows, positions, base_index, readout(R);
  for (int64_t r = 0; r < R; ++r) {
    const Run& run = runs[r];
    if (r > 0 && run.join < runs[r - 1].join) fail("packed::run: runs must be sorted by join");
    if (run.parent >= r) fail("packed::run: a parent must come before its run");
    for (int64_t p = run.start; p < n; ++p) {
      rows.push_back(r * n + p);
      positions.push_back(p);
    }
    base_index.push_back(run.base);
    readout[r] = layout.row(r, run.readout >= 0 ? run.readout : n - 1);
  }
  const at::Device dev = bases.resid_pre[0].device();
  at::Tensor all_rows = longs(rows, dev), all_positions = longs(positions, dev), all_bases = longs(base_index, dev);
  std::vector<std::vector<std::string>> layer_hooks(nL);
  bool packed_ok = use_packed && cfg.causal;

  if (runs.back().join >= nL) fail("packed::run: a run joins after the last block");
  at::Tensor x;  // [layout.rows(active), d]
  size_t active = 0;
  bool kept = false;
  for (int l = runs.front().join; l < nL; ++l) {
    // Runs joining here start from their base run's block input (or their parent's rows).
    std::vector<at::Tensor> more;
    while (active < runs.size() && runs[active].join == l) {
      const Run& run = runs[active];
      int64_t len = n - run.start;
      if (run.parent >= 0) {
        if (runs[run.parent].start != run.start)
          fail("packed::run: a run and its parent must start at the same position");
        more.push_back(x.narrow(0, layout.row(run.parent, run.start), len));
      } else {
        at::Tensor from = bases.resid_pre[l][run.base].narrow(0, run.start, len);
        if (run.clean_at >= run.start) {
          from = from.clone();
          from[run.clean_at - run.start].copy_(bases.resid_pre[l][0][run.clean_at]);
        }
        more.push_back(from);
      }
      ++active;
    }
    if (!more.empty()) {
      if (x.defined()) more.insert(more.begin(), x);
      x = more.size() == 1 ? more[0] : at::cat(more);
    }
    hooks::HookSet hs;
    edits(l, active, layout, hs);
    models::PackedRuns P;
    P.n_runs = (int64_t)active;
    P.n_pos = n;
    P.rows = all_rows.narrow(0, 0, layout.rows(active));
    P.positions = all_positions.narrow(0, 0, layout.rows(active));
    P.base = bases.kv;
    P.base_index = all_bases.narrow(0, 0, (int64_t)active);
    P.hooks = hs.empty() ? nullptr : &hs;
    // The last block: only the readout rows go on past attention (every row still gives its keys and
    // values), unless the block is edited (hooks see whole runs).
    if (l == nL - 1 && hs.empty()) {
      P.keep = longs(readout, dev);
      kept = true;
    }
    at::Tensor y;
    if (packed_ok) y = model.block_packed(l, x, P);
    if (!y.defined()) {
      if (layer_hooks[l].empty()) layer_hooks[l] = block_hooks(model, l);
      y = generic_block(model, l, x, P, bases, layer_hooks[l]);
    }
    x = y;
  }
  return kept ? x : x.index_select(0, longs(readout, dev));
}

at::Tensor logits(const models::HookedModel& model, const at::Tensor& rows, const at::Tensor& columns) {
  models::RunContext plain;
  at::Tensor h = model.final_norm(rows.unsqueeze(1), plain);  // [R, 1, d]
  return model.unembed(h.squeeze(1), columns);
}

}  // namespace mechscope::analysis::packed
