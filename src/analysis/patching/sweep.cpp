// The sweep engine: the metric of many patched runs of one prompt. The naive method is one full
// hooked forward per cell; the exact method reuses the base run (a patch at layer L, position p
// leaves layers < L and positions < p as they were), packs the rows of the cells into one batch that
// each cell joins at its layer, and carries only the metric's rows through the last block and the
// unembedding (only the metric's columns).
#include <ATen/Parallel.h>

#include <algorithm>

#include "analysis/patching/patching.h"
#include "core/error.h"

namespace mechscope::analysis::patching {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool pattern_like(const std::string& name) { return ends_with(name, "hook_pattern") || ends_with(name, "hook_attn_scores"); }

// The values one cell replaces. act: [1, pos, ...] or a pattern [1, head, q, k].
at::Tensor cell_slice(const at::Tensor& act, const Edit& e) {
  at::Tensor x = act[0];
  if (e.pattern) {
    if (e.head >= 0) x = x.select(0, e.head);
    return e.pos >= 0 ? x.select(-2, e.pos) : x;
  }
  if (e.pos >= 0) {
    x = x.select(0, e.pos);
    return e.head >= 0 ? x.select(0, e.head) : x;
  }
  return e.head >= 0 ? x.select(1, e.head) : x;
}

at::Tensor logits_at(const models::HookedModel& model, const at::Tensor& resid, int64_t pos, const at::Tensor& cols) {
  // resid: [b, n, d] residual after the last block -> [b, cols] logits at `pos`.
  models::RunContext plain;
  at::Tensor x = model.final_norm(resid.narrow(1, pos, 1), plain);
  return model.unembed(x.squeeze(1), cols);
}

}  // namespace

BaseRun base_run(const models::HookedModel& model, const at::Tensor& ids, const Metric& metric,
                 const std::vector<std::string>& points, const at::Tensor& token_type_ids) {
  at::NoGradGuard no_grad;
  const auto& cfg = model.config();
  BaseRun b;
  b.ids = ids;
  b.resid_pre.resize(cfg.n_layers);
  hooks::HookSet hs;
  for (const auto& p : points) {
    if (b.acts.count(p)) continue;
    b.acts[p] = at::Tensor();
    hs.add(p, [&b](at::Tensor& t, const hooks::HookContext& c) { b.acts[c.name] = t.detach().clone(); });
  }
  models::RunContext ctx;
  ctx.hooks = &hs;
  // Segments only enter through the embeddings, so the sweeps' block re-runs inherit them.
  b.token_type_ids = token_type_ids;
  ctx.token_type_ids = token_type_ids;
  if (cfg.causal) ctx.cache = &b.kv;  // keys/values for the packed path (non-causal models recompute all)
  at::Tensor resid = model.embed(ids, ctx);
  for (int l = 0; l < cfg.n_layers; ++l) {
    b.resid_pre[l] = resid;
    resid = model.block(l, resid, ctx);
  }
  for (auto& [name, t] : b.acts)
    if (!t.defined()) fail("the model has no hook point '", name, "'");
  int64_t pos = metric_position(metric, ids.size(1));
  b.metric = metric_from_logits(metric, logits_at(model, resid, pos, metric_columns(metric)))[0].item<double>();
  return b;
}

namespace {

// One block on packed rows through block() on full-length runs: every architecture's path when it has
// no block_packed. Positions before a run's start are recomputed from the base run's residual stream
// (so they equal it); hooks see the packed layout as block_packed would show it.
at::Tensor generic_block(const models::HookedModel& model, int layer, const at::Tensor& rows, const models::PackedRuns& P,
                         const BaseRun& base, const std::vector<std::string>& layer_hooks) {
  int64_t C = P.n_runs, n = P.n_pos, d = rows.size(1);
  at::Tensor full = base.resid_pre[layer][0].unsqueeze(0).expand({C, n, d}).reshape({C * n, d});
  full = full.index_copy(0, P.rows, rows).view({C, n, d});
  hooks::HookSet adapter;
  if (P.hooks && !P.hooks->empty()) {
    for (const auto& name : layer_hooks) {
      if (!P.hooks->wants(name)) continue;
      if (pattern_like(name)) {
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

// Writes each cell's source values into the packed activations of one hook point.
struct PointEdits {
  std::string point;
  bool pattern = false;
  // Per-position points: packed row <- source position (all heads / one head).
  std::vector<int64_t> dst_all, src_all, dst_head, src_head, head;
  // Patterns: (run, head, query position) <- source (head, query position).
  std::vector<int64_t> run, phead, ppos;

  void apply(at::Tensor& t, const at::Tensor& source) const {
    at::Tensor s = source[0].to(t.scalar_type());
    auto L = [](const std::vector<int64_t>& v) { return at::tensor(v, at::kLong); };
    t = t.clone();
    if (pattern) {
      if (!run.empty()) t.index_put_({L(run), L(phead), L(ppos)}, s.index({L(phead), L(ppos)}));
      return;
    }
    if (!dst_all.empty()) t.index_copy_(0, L(dst_all), s.index_select(0, L(src_all)));
    if (!dst_head.empty()) t.index_put_({L(dst_head), L(head)}, s.index({L(src_head), L(head)}));
  }
};

// Runs one batch of cells sorted by the block they edit; returns their metrics [C]. The runs join the
// batch at their block: at block l the packed rows are those of every run editing a block <= l (a
// prefix, since runs are sorted), so one GEMM per weight carries all of them, and rows of runs that
// edit later blocks are not computed before they matter. The last block computes past attention only
// the metric's rows (when no edit is in it).
at::Tensor run_packed(const models::HookedModel& model, const BaseRun& base,
                      const std::map<std::string, at::Tensor>& source, const std::vector<Edit>& cells,
                      const std::vector<int64_t>& start, int64_t mpos, const Metric& metric, const SweepOptions& opt,
                      const std::vector<std::vector<std::string>>& layer_hooks) {
  const auto& cfg = model.config();
  const int nL = (int)cfg.n_layers;
  int64_t C = (int64_t)cells.size(), n = base.ids.size(1);
  std::vector<int64_t> rows, positions, offset(C + 1), metric_rows(C);
  std::vector<std::map<std::string, PointEdits>> edits(nL);
  for (int64_t c = 0; c < C; ++c) {
    offset[c] = (int64_t)rows.size();
    for (int64_t p = start[c]; p < n; ++p) {
      rows.push_back(c * n + p);
      positions.push_back(p);
    }
    metric_rows[c] = offset[c] + mpos - start[c];
    const Edit& e = cells[c];
    PointEdits& pe = edits[e.layer][e.point];
    pe.point = e.point;
    pe.pattern = e.pattern;
    int64_t heads = e.pattern ? source.at(e.point).size(1) : 0;
    std::vector<int64_t> ps;
    if (e.pos >= 0) ps.push_back(e.pos);
    else for (int64_t p = start[c]; p < n; ++p) ps.push_back(p);
    for (int64_t p : ps) {
      if (e.pattern) {
        for (int64_t h = (e.head >= 0 ? e.head : 0); h < (e.head >= 0 ? e.head + 1 : heads); ++h) {
          pe.run.push_back(c);
          pe.phead.push_back(h);
          pe.ppos.push_back(p);
        }
      } else if (e.head >= 0) {
        pe.dst_head.push_back(offset[c] + p - start[c]);
        pe.src_head.push_back(p);
        pe.head.push_back(e.head);
      } else {
        pe.dst_all.push_back(offset[c] + p - start[c]);
        pe.src_all.push_back(p);
      }
    }
  }
  offset[C] = (int64_t)rows.size();
  at::Tensor all_rows = at::tensor(rows, at::kLong), all_positions = at::tensor(positions, at::kLong);
  at::Tensor x;
  int64_t active = 0;
  for (int l = cells.front().layer; l < nL; ++l) {
    int64_t joined = active;
    while (active < C && cells[active].layer == l) ++active;
    if (active > joined) {
      at::Tensor more = base.resid_pre[l][0].index_select(0, all_positions.narrow(0, offset[joined], offset[active] - offset[joined]));
      x = x.defined() ? at::cat({x, more}) : more;
    }
    hooks::HookSet hs;
    for (auto& [point, pe] : edits[l]) {
      const at::Tensor& src = source.at(point);
      const PointEdits* pp = &pe;
      hs.add(point, [pp, &src](at::Tensor& t, const hooks::HookContext&) { pp->apply(t, src); });
    }
    models::PackedRuns P;
    P.n_runs = active;
    P.n_pos = n;
    P.rows = all_rows.narrow(0, 0, offset[active]);
    P.positions = all_positions.narrow(0, 0, offset[active]);
    P.base = base.kv;
    P.hooks = edits[l].empty() ? nullptr : &hs;
    bool last = l == nL - 1 && edits[l].empty();
    if (last) P.keep = at::tensor(metric_rows, at::kLong);
    at::Tensor y;
    if (opt.use_packed && cfg.causal) y = model.block_packed(l, x, P);
    x = y.defined() ? y : generic_block(model, l, x, P, base, layer_hooks[l]);
  }
  // One row per cell: the last block kept only the metric's rows (unless an edit was in it).
  if (x.size(0) != C) x = x.index_select(0, at::tensor(metric_rows, at::kLong));
  at::Tensor final_rows = x.unsqueeze(1);  // [C, 1, d]
  return metric_from_logits(metric, logits_at(model, final_rows, 0, metric_columns(metric)));
}

}  // namespace

at::Tensor run_cells(const models::HookedModel& model, const BaseRun& base,
                     const std::map<std::string, at::Tensor>& source, const std::vector<Edit>& cells,
                     const Metric& metric, Method method, const SweepOptions& opt) {
  at::NoGradGuard no_grad;
  const auto& cfg = model.config();
  int64_t n = base.ids.size(1), mpos = metric_position(metric, n);
  at::Tensor out = at::full({(int64_t)cells.size()}, base.metric, at::kDouble);
  for (const Edit& e : cells)
    if (!source.count(e.point)) fail("no source activation for '", e.point, "'");

  if (method == Method::Naive) {
    at::Tensor cols = metric_columns(metric);
    for (size_t i = 0; i < cells.size(); ++i) {
      const Edit& e = cells[i];
      hooks::HookSet hs;
      hooks::Select where;
      if (e.pos >= 0) where.positions = {e.pos};
      if (e.head >= 0) where.heads = {e.head};
      hs.add(e.point, hooks::replace_with(source.at(e.point), where));
      models::RunContext ctx;
      ctx.hooks = &hs;
      ctx.token_type_ids = base.token_type_ids;
      at::Tensor logits = model.forward(base.ids, ctx)[0][mpos];  // every logit, as TransformerLens computes
      if (cols.defined()) logits = logits.index_select(0, cols);
      out[i] = metric_from_logits(metric, logits.unsqueeze(0))[0];
      if (opt.on_cells) opt.on_cells(1);
    }
    return out;
  }
  if (method != Method::Exact) fail("run_cells: method must be exact or naive");

  // Start position per cell; a cell is the base run when it starts after the metric's position or
  // writes values equal to the base run's.
  std::vector<size_t> todo;
  std::vector<int64_t> start(cells.size(), 0);
  for (size_t i = 0; i < cells.size(); ++i) {
    const Edit& e = cells[i];
    start[i] = cfg.causal && e.pos >= 0 ? e.pos : 0;
    if (start[i] > mpos) continue;
    if (opt.skip_noops) {
      auto it = base.acts.find(e.point);
      if (it != base.acts.end() && at::equal(cell_slice(it->second, e), cell_slice(source.at(e.point), e))) continue;
    }
    todo.push_back(i);
  }
  if (opt.on_cells && todo.size() < cells.size()) opt.on_cells((int64_t)(cells.size() - todo.size()));
  std::stable_sort(todo.begin(), todo.end(), [&](size_t a, size_t b) { return cells[a].layer < cells[b].layer; });
  std::vector<std::vector<std::string>> layer_hooks(cfg.n_layers);
  for (const auto& name : model.hook_names())
    for (int l = 0; l < cfg.n_layers; ++l)
      if (name.rfind("blocks." + std::to_string(l) + ".", 0) == 0) layer_hooks[l].push_back(name);
  // Attention scores of a batch are [runs, heads, n, n]: bound them to ~256 MB as well as the rows.
  int64_t score_bytes = std::max<int64_t>(1, cfg.n_heads * n * n * 4 * 3);
  int64_t max_runs = std::max<int64_t>(1, (int64_t(256) << 20) / score_bytes);
  size_t i = 0;
  while (i < todo.size()) {
    std::vector<Edit> batch;
    std::vector<int64_t> bstart;
    std::vector<size_t> which;
    int64_t rows = 0;
    while (i < todo.size() &&
           (batch.empty() || (rows + n - start[todo[i]] <= opt.max_rows && (int64_t)batch.size() < max_runs))) {
      batch.push_back(cells[todo[i]]);
      bstart.push_back(start[todo[i]]);
      which.push_back(todo[i]);
      rows += n - start[todo[i]];
      ++i;
    }
    at::Tensor m = run_packed(model, base, source, batch, bstart, mpos, metric, opt, layer_hooks);
    for (size_t k = 0; k < which.size(); ++k) out[which[k]] = m[k];
    if (opt.on_cells) opt.on_cells((int64_t)which.size());
  }
  return out;
}

}  // namespace mechscope::analysis::patching
