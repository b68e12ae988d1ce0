#include "hooks/hooks.h"

#include <algorithm>

#include "core/error.h"

namespace mechscope::hooks {

bool glob_match(const std::string& pattern, const std::string& name) {
  // Iterative wildcard match with backtracking to the last '*'.
  size_t p = 0, n = 0, star = std::string::npos, mark = 0;
  while (n < name.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == name[n])) {
      ++p;
      ++n;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = n;
    } else if (star != std::string::npos) {
      p = star + 1;
      n = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

int HookSet::add(const std::string& pattern, HookFn fn) {
  hooks_.push_back({next_id_, pattern, std::move(fn)});
  memo_.clear();
  return next_id_++;
}

void HookSet::remove(int id) {
  hooks_.erase(std::remove_if(hooks_.begin(), hooks_.end(), [&](const Entry& e) { return e.id == id; }), hooks_.end());
  memo_.clear();
}

void HookSet::clear() {
  hooks_.clear();
  memo_.clear();
}

const std::vector<const HookSet::Entry*>& HookSet::matching(const std::string& name) const {
  auto it = memo_.find(name);
  if (it != memo_.end()) return it->second;
  std::vector<const Entry*> list;
  for (auto& e : hooks_)
    if (glob_match(e.pattern, name)) list.push_back(&e);
  return memo_.emplace(name, std::move(list)).first->second;
}

bool HookSet::wants(const std::string& name) const { return !hooks_.empty() && !matching(name).empty(); }

void HookSet::fire(const std::string& name, at::Tensor& t, int layer, int64_t pos0) const {
  if (hooks_.empty()) return;
  const auto& list = matching(name);
  if (list.empty()) return;
  HookContext ctx{name, layer, pos0};
  for (const Entry* e : list) {
    auto shape = t.sizes().vec();
    e->fn(t, ctx);
    if (t.sizes().vec() != shape)
      fail("hook on '", name, "' changed the activation's shape from ", at::IntArrayRef(shape), " to ", t.sizes());
  }
}

void ActivationCache::attach(HookSet& set, const std::vector<std::string>& patterns) {
  for (auto& pat : patterns) {
    set.add(pat, [this](at::Tensor& t, const HookContext& ctx) {
      at::Tensor copy = t.detach().clone();
      auto it = acts_.find(ctx.name);
      if (it == acts_.end() || ctx.pos0 == 0) {
        acts_[ctx.name] = copy;
        return;
      }
      // Generation with a KV cache: the pos axis is 2 for [batch, head, q, k] patterns/scores
      // (whose key axis also grows: pad earlier rows with zeros = no attention), else 1.
      if (point_layout(ctx.name) == Layout::Pattern) {
        at::Tensor old = it->second;
        int64_t k_new = copy.size(3);
        bool scores = ctx.name.find("hook_attn_scores") != std::string::npos;
        at::Tensor padded = at::full({old.size(0), old.size(1), old.size(2), k_new},
                                     scores ? -std::numeric_limits<float>::infinity() : 0.0, old.options());
        padded.narrow(3, 0, old.size(3)).copy_(old);
        it->second = at::cat({padded, copy}, 2);
      } else {
        it->second = at::cat({it->second, copy}, 1);
      }
    });
  }
}

const at::Tensor& ActivationCache::get(const std::string& name) const {
  auto it = acts_.find(name);
  if (it == acts_.end()) fail("activation '", name, "' was not cached");
  return it->second;
}

// The hook points whose layout is not per position, by their last name component (the same in every
// block and every architecture: blocks.L.attn.hook_z, TransformerLens's names).
Layout point_layout(const std::string& name) {
  static const std::pair<const char*, Layout> kTable[] = {
      {"hook_attn_scores", Layout::Pattern}, {"hook_pattern", Layout::Pattern}, {"hook_q", Layout::PerHead},
      {"hook_k", Layout::PerHead},           {"hook_v", Layout::PerHead},       {"hook_z", Layout::PerHead},
      {"hook_rot_q", Layout::PerHead},       {"hook_rot_k", Layout::PerHead},   {"hook_result", Layout::PerHead},
  };
  size_t dot = name.rfind('.');
  std::string last = dot == std::string::npos ? name : name.substr(dot + 1);
  for (const auto& [point, layout] : kTable)
    if (last == point) return layout;
  return Layout::PerPosition;
}

namespace {

// Axes of an activation by hook name: (pos axis, head axis or -1).
std::pair<int64_t, int64_t> axes_of(const std::string& name) {
  Layout l = point_layout(name);
  return {pos_axis(l), head_axis(l)};
}

// Index tensors selecting `where` inside an activation covering positions [pos0, pos0 + n).
struct Resolved {
  int64_t pos_axis, head_axis;
  at::Tensor rel_pos, abs_pos, heads;  // undefined = all
  bool empty = false;                  // none of the positions fall inside this call
};

// A hook's index tensors on the activation's device, kept between its calls: it fires at every layer
// of every generated step, and building them on the host each time is a host-to-device copy per call.
struct IndexCache {
  at::Tensor heads;
  int64_t pos0 = -1, len = -1;  // the window rel_pos / abs_pos were made for
  at::Tensor rel_pos, abs_pos;
  bool empty = false;
};

Resolved resolve(const at::Tensor& t, const HookContext& ctx, const Select& where, IndexCache* cache) {
  auto [pa, ha] = axes_of(ctx.name);
  Resolved r{pa, ha, {}, {}, {}};
  if (!where.heads.empty()) {
    if (ha < 0) fail("hook '", ctx.name, "' has no head axis, but heads were selected");
    for (int64_t h : where.heads)
      if (h < 0 || h >= t.size(ha)) fail("head ", h, " out of range for '", ctx.name, "' (", t.size(ha), " heads)");
    if (!cache || !cache->heads.defined() || cache->heads.device() != t.device()) {
      r.heads = at::tensor(where.heads, at::kLong).to(t.device());
      if (cache) cache->heads = r.heads;
    } else {
      r.heads = cache->heads;
    }
  }
  if (!where.positions.empty() && cache && cache->rel_pos.defined() && cache->pos0 == ctx.pos0 &&
      cache->len == t.size(pa) && cache->rel_pos.device() == t.device()) {
    r.rel_pos = cache->rel_pos, r.abs_pos = cache->abs_pos, r.empty = cache->empty;
    return r;
  }
  if (!where.positions.empty()) {
    std::vector<int64_t> rel, abs;
    for (int64_t p : where.positions) {
      if (p >= ctx.pos0 && p < ctx.pos0 + t.size(pa)) {
        rel.push_back(p - ctx.pos0);
        abs.push_back(p);
      }
    }
    if (rel.empty()) r.empty = true;
    r.rel_pos = at::tensor(rel, at::kLong).to(t.device());
    r.abs_pos = at::tensor(abs, at::kLong).to(t.device());
    if (cache) *cache = IndexCache{cache->heads, ctx.pos0, t.size(pa), r.rel_pos, r.abs_pos, r.empty};
  }
  return r;
}

// Index list selecting r's positions × heads (broadcast as an outer product) in a tensor of `dim` axes.
std::vector<at::indexing::TensorIndex> selection(const Resolved& r, int64_t dim) {
  std::vector<at::indexing::TensorIndex> idx(dim, at::indexing::Slice());
  at::Tensor pos = r.rel_pos, heads = r.heads;
  if (pos.defined() && heads.defined()) {
    if (r.pos_axis < r.head_axis) pos = pos.unsqueeze(1);
    else heads = heads.unsqueeze(1);
  }
  if (pos.defined()) idx[r.pos_axis] = pos;
  if (heads.defined()) idx[r.head_axis] = heads;
  return idx;
}

// Replaces the selection of t (all of it when nothing is selected) by op(current values, index),
// in a fresh copy so the model's own buffers are never edited.
template <typename Op>
void apply(at::Tensor& t, const HookContext& ctx, const Select& where, Op op, IndexCache* cache) {
  Resolved r = resolve(t, ctx, where, cache);
  if (r.empty) return;
  if (!r.rel_pos.defined() && !r.heads.defined()) {
    t = op(t, selection(r, t.dim()));
    return;
  }
  at::Tensor out = t.clone();
  auto idx = selection(r, t.dim());
  out.index_put_(idx, op(out.index(idx), idx));
  t = out;
}

}  // namespace

HookFn replace_with(at::Tensor value, Select where) {
  return [value, where, cache = std::make_shared<IndexCache>()](at::Tensor& t, const HookContext& ctx) {
    auto [pa, ha] = axes_of(ctx.name);
    // `value` is the activation of a full run (positions from 0); take this call's window of it.
    at::Tensor v = value.to(t.device(), t.scalar_type());
    if (v.dim() != t.dim()) fail("replacement for '", ctx.name, "' has shape ", v.sizes(), ", activation ", t.sizes());
    if (v.size(pa) != t.size(pa)) {
      if (v.size(pa) < ctx.pos0 + t.size(pa))
        fail("replacement for '", ctx.name, "' covers ", v.size(pa), " positions, the run needs ",
             ctx.pos0 + t.size(pa));
      v = v.narrow(pa, ctx.pos0, t.size(pa));
    }
    for (int64_t d = 0; d < t.dim(); ++d)
      if (d != pa && v.size(d) != t.size(d) && v.size(d) != 1)
        fail("replacement for '", ctx.name, "' has shape ", v.sizes(), ", activation ", t.sizes());
    v = v.expand_as(t);
    apply(
        t, ctx, where,
        [&](const at::Tensor&, const std::vector<at::indexing::TensorIndex>& idx) { return v.index(idx).clone(); },
        cache.get());
  };
}

HookFn zero(Select where) {
  return [where, cache = std::make_shared<IndexCache>()](at::Tensor& t, const HookContext& ctx) {
    apply(
        t, ctx, where, [](const at::Tensor& cur, const auto&) { return at::zeros_like(cur); }, cache.get());
  };
}

HookFn add(at::Tensor delta, Select where) {
  return [delta, where, cache = std::make_shared<IndexCache>()](at::Tensor& t, const HookContext& ctx) {
    at::Tensor d = delta.to(t.device(), t.scalar_type());
    apply(
        t, ctx, where, [&](const at::Tensor& cur, const auto&) { return cur + d; }, cache.get());
  };
}

HookFn fill(at::Tensor value, Select where) {
  return [value, where, cache = std::make_shared<IndexCache>()](at::Tensor& t, const HookContext& ctx) {
    at::Tensor v = value.to(t.device(), t.scalar_type());
    apply(
        t, ctx, where,
        [&](const at::Tensor& cur, const auto&) {
          std::vector<int64_t> vs = v.sizes().vec(), cs = cur.sizes().vec();
          bool fits = vs.size() <= cs.size();
          for (size_t i = 0; fits && i < vs.size(); ++i) {
            int64_t c = cs[cs.size() - vs.size() + i];
            fits = vs[i] == c || vs[i] == 1;
          }
          if (!fits) fail("fill value for '", ctx.name, "' has shape ", v.sizes(), ", the selection ", cur.sizes());
          return v.expand_as(cur).clone();
        },
        cache.get());
  };
}

HookFn scale(double factor, Select where) {
  return [factor, where, cache = std::make_shared<IndexCache>()](at::Tensor& t, const HookContext& ctx) {
    apply(
        t, ctx, where, [&](const at::Tensor& cur, const auto&) { return cur * factor; }, cache.get());
  };
}

}  // namespace mechscope::hooks
