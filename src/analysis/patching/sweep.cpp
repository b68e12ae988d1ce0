// The sweep engine: the metric of many patched runs of one prompt. The naive method is one full
// hooked forward per cell; the exact method reuses the base run (a patch at layer L, position p
// leaves layers < L and positions < p as they were), packs the rows of the cells into one batch that
// each cell joins at its layer, and carries only the metric's rows through the last block and the
// unembedding (only the metric's columns).
#include <ATen/Parallel.h>

#include <algorithm>
#include <memory>

#include "analysis/packed/packed.h"
#include "analysis/patching/patching.h"
#include "core/error.h"

namespace mechscope::analysis::patching {

namespace {

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
  at::Tensor last = resid.select(1, pos);  // [1, d]
  b.metric =
      metric_from_logits(metric, packed::logits(model, last, metric_columns(metric, model.device())))[0].item<double>();
  return b;
}

namespace {

// Writes each cell's source values into the packed activations of one hook point.
struct PointEdits {
  bool pattern = false;
  // Per-position points: packed row <- source position (all heads / one head).
  std::vector<int64_t> dst_all, src_all, dst_head, src_head, head;
  // Patterns: (run, head, query position) <- source (head, query position).
  std::vector<int64_t> run, phead, ppos;

  void apply(at::Tensor& t, const at::Tensor& source) const {
    at::Tensor s = source[0].to(t.scalar_type());
    auto L = [&t](const std::vector<int64_t>& v) { return at::tensor(v, at::kLong).to(t.device()); };
    t = t.clone();
    if (pattern) {
      if (!run.empty()) t.index_put_({L(run), L(phead), L(ppos)}, s.index({L(phead), L(ppos)}));
      return;
    }
    if (!dst_all.empty()) t.index_copy_(0, L(dst_all), s.index_select(0, L(src_all)));
    if (!dst_head.empty()) t.index_put_({L(dst_head), L(head)}, s.index({L(src_head), L(head)}));
  }
};

// One batch of cells sorted by the block they edit, through the packed engine: each cell is a run
// joining at its block, its edit applied there; returns their metrics [C].
at::Tensor run_packed(const models::HookedModel& model, const BaseRun& base,
                      const std::map<std::string, at::Tensor>& source, const std::vector<Edit>& cells,
                      const std::vector<int64_t>& start, int64_t mpos, const Metric& metric, const SweepOptions& opt) {
  int64_t n = base.ids.size(1);
  std::vector<packed::Run> runs;
  for (size_t c = 0; c < cells.size(); ++c) {
    packed::Run r;
    r.start = start[c];
    r.join = cells[c].layer;
    r.readout = mpos;
    runs.push_back(r);
  }
  packed::Bases bases{base.resid_pre, base.kv};
  auto edits = [&](int layer, size_t active, const packed::Layout& layout, hooks::HookSet& hs) {
    auto per_point = std::make_shared<std::map<std::string, PointEdits>>();
    for (size_t c = 0; c < active; ++c) {
      const Edit& e = cells[c];
      if (e.layer != layer) continue;
      PointEdits& pe = (*per_point)[e.point];
      pe.pattern = e.pattern;
      int64_t heads = e.pattern ? source.at(e.point).size(1) : 0;
      std::vector<int64_t> ps;
      if (e.pos >= 0) ps.push_back(e.pos);
      else
        for (int64_t p = start[c]; p < n; ++p) ps.push_back(p);
      for (int64_t p : ps) {
        if (e.pattern) {
          for (int64_t h = (e.head >= 0 ? e.head : 0); h < (e.head >= 0 ? e.head + 1 : heads); ++h) {
            pe.run.push_back((int64_t)c);
            pe.phead.push_back(h);
            pe.ppos.push_back(p);
          }
        } else if (e.head >= 0) {
          pe.dst_head.push_back(layout.row(c, p));
          pe.src_head.push_back(p);
          pe.head.push_back(e.head);
        } else {
          pe.dst_all.push_back(layout.row(c, p));
          pe.src_all.push_back(p);
        }
      }
    }
    for (auto& [point, pe] : *per_point) {
      const at::Tensor* src = &source.at(point);
      const PointEdits* pp = &pe;
      hs.add(point, [per_point, pp, src](at::Tensor& t, const hooks::HookContext&) { pp->apply(t, *src); });
    }
  };
  at::Tensor final_rows = packed::run(model, bases, runs, edits, opt.use_packed);  // [C, d] at the metric's position
  return metric_from_logits(metric, packed::logits(model, final_rows, metric_columns(metric, model.device())));
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
    at::Tensor cols = metric_columns(metric, model.device());
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
      out[i] = metric_from_logits(metric, logits.unsqueeze(0))[0].cpu();
      if (opt.on_cells) opt.on_cells(1);
    }
    return out;
  }
  if (method != Method::Exact) fail("run_cells: method must be exact or naive");

  // Start position per cell; a cell is the base run when it starts after the metric's position or
  // writes values equal to the base run's.
  std::vector<size_t> todo;
  std::vector<int64_t> start(cells.size(), 0);
  // The no-op test compares on the host: one copy of each point's activations, not a device round
  // trip per cell.
  std::map<std::string, std::pair<at::Tensor, at::Tensor>> host;
  auto on_host = [&](const std::string& point, const at::Tensor& b) -> const std::pair<at::Tensor, at::Tensor>& {
    auto it = host.find(point);
    if (it == host.end()) it = host.emplace(point, std::make_pair(b.cpu(), source.at(point).cpu())).first;
    return it->second;
  };
  for (size_t i = 0; i < cells.size(); ++i) {
    const Edit& e = cells[i];
    start[i] = cfg.causal && e.pos >= 0 ? e.pos : 0;
    if (start[i] > mpos) continue;
    if (opt.skip_noops) {
      auto it = base.acts.find(e.point);
      if (it != base.acts.end()) {
        const auto& [b, src] = on_host(e.point, it->second);
        if (at::equal(cell_slice(b, e), cell_slice(src, e))) continue;
      }
    }
    todo.push_back(i);
  }
  if (opt.on_cells && todo.size() < cells.size()) opt.on_cells((int64_t)(cells.size() - todo.size()));
  std::stable_sort(todo.begin(), todo.end(), [&](size_t a, size_t b) { return cells[a].layer < cells[b].layer; });
  packed::Budget budget = packed::budget(cfg, n, opt.max_rows);
  std::vector<int64_t> unit_rows, unit_runs(todo.size(), 1);
  for (size_t i : todo) unit_rows.push_back(n - start[i]);
  for (auto [begin, end] : packed::chunk(unit_rows, unit_runs, budget)) {
    std::vector<Edit> batch;
    std::vector<int64_t> bstart;
    for (size_t k = begin; k < end; ++k) {
      batch.push_back(cells[todo[k]]);
      bstart.push_back(start[todo[k]]);
    }
    // One copy to the host per chunk of cells, not one per cell.
    at::Tensor m = run_packed(model, base, source, batch, bstart, mpos, metric, opt).cpu();
    for (size_t k = begin; k < end; ++k) out[todo[k]] = m[k - begin];
    if (opt.on_cells) opt.on_cells((int64_t)(end - begin));
  }
  return out;
}

}  // namespace mechscope::analysis::patching
