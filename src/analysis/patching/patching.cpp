// Patching sweeps over targets and prompt pairs, ablations, and attribution patching.
#include "analysis/patching/patching.h"

#include <chrono>
#include <set>

#include "core/error.h"

namespace mechscope::analysis::patching {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// [1, n] on the model's device: a prompt goes there once, and its sweeps run there.
at::Tensor ids_tensor(const std::vector<int64_t>& ids, const at::Device& device) {
  return at::tensor(ids, at::kLong).unsqueeze(0).to(device);
}
// Token type ids [1, n]; undefined (all 0) when none are given.
at::Tensor types_tensor(const std::vector<int64_t>& types, const at::Device& device) {
  return types.empty() ? at::Tensor() : ids_tensor(types, device);
}

std::vector<std::string> points_of(const std::vector<TargetSpec>& specs, const models::ModelConfig& cfg) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (auto& s : specs)
    for (auto& p : target_points(s, cfg))
      if (seen.insert(p).second) out.push_back(p);
  return out;
}

// act * grad summed over each cell of the target: prod [1, ...] per layer -> [target shape minus layer].
at::Tensor reduce_cells(const TargetSpec& t, const at::Tensor& prod) {
  at::Tensor x = prod[0];
  if (t.pattern) return t.by_pos ? x.sum(-1) : x.sum(at::IntArrayRef{1, 2});  // [h, n, n] -> [h, dest] / [h]
  if (t.by_pos && t.by_head) return x.sum(-1);                                // [n, h, dh] -> [n, h]
  if (t.by_pos) return x.sum(-1);                                             // [n, d] -> [n]
  return x.sum(at::IntArrayRef{0, 2});                                        // [n, h, dh] -> [h]
}

}  // namespace

at::Tensor PatchResult::normalised(size_t i) const {
  return (targets.at(i).values - corrupt_metric) / (clean_metric - corrupt_metric);
}

std::vector<at::Tensor> attribution(const models::HookedModel& model, const BaseRun& clean,
                                    const at::Tensor& corrupt_ids, const Metric& metric,
                                    const std::vector<TargetSpec>& targets, double* corrupt_metric,
                                    const at::Tensor& corrupt_types) {
  at::AutoGradMode grad(true);
  const auto& cfg = model.config();
  std::map<std::string, at::Tensor> delta, act;
  hooks::HookSet hs;
  for (const auto& p : points_of(targets, cfg)) {
    // d metric / d act through everything downstream: a zero leaf added at the hook point keeps the
    // graph intact (detaching the activation would cut the paths through later hook points).
    hs.add(p, [&](at::Tensor& t, const hooks::HookContext& c) {
      at::Tensor d = at::zeros_like(t).requires_grad_(true);
      delta[c.name] = d;
      act[c.name] = t.detach();
      t = t + d;
    });
  }
  models::RunContext ctx;
  ctx.hooks = &hs;
  ctx.token_type_ids = corrupt_types;
  int64_t n = corrupt_ids.size(1), pos = metric_position(metric, n);
  at::Tensor resid = model.embed(corrupt_ids, ctx);
  for (int l = 0; l < cfg.n_layers; ++l) resid = model.block(l, resid, ctx);
  models::RunContext plain;
  at::Tensor x = model.final_norm(resid.narrow(1, pos, 1), plain).squeeze(1);
  at::Tensor m = metric_from_logits(metric, model.unembed(x, metric_columns(metric, model.device())))[0];
  m.backward();
  if (corrupt_metric) *corrupt_metric = m.item<double>();
  std::vector<at::Tensor> out;
  at::NoGradGuard no_grad;
  for (auto& t : targets) {
    std::vector<at::Tensor> layers;
    for (auto& p : target_points(t, cfg)) {
      at::Tensor g = delta.at(p).grad();
      at::Tensor diff = clean.acts.at(p).to(act.at(p).scalar_type()) - act.at(p);
      layers.push_back(reduce_cells(t, (diff * g).to(at::kDouble)));
    }
    out.push_back(at::stack(layers).cpu());  // results live on the host
  }
  return out;
}

void check_pairs(const std::vector<PromptPair>& pairs, const std::vector<std::string>& targets) {
  if (pairs.empty()) fail("no prompt pairs to patch");
  bool by_pos = false;
  for (auto& t : targets) by_pos |= target_spec(t).by_pos;
  for (size_t i = 0; i < pairs.size(); ++i) {
    if (pairs[i].clean.size() != pairs[i].corrupt.size())
      fail("pair ", i + 1, ": the clean prompt has ", pairs[i].clean.size(), " tokens and the corrupt one ",
           pairs[i].corrupt.size(), "; patching needs prompts of the same token length");
    for (const auto* t : {&pairs[i].clean_types, &pairs[i].corrupt_types})
      if (!t->empty() && t->size() != pairs[i].clean.size())
        fail("pair ", i + 1, ": ", t->size(), " token type ids for ", pairs[i].clean.size(), " token ids");
    if (by_pos && pairs[i].clean.size() != pairs[0].clean.size())
      fail("pair ", i + 1, " has ", pairs[i].clean.size(), " tokens, pair 1 has ", pairs[0].clean.size(),
           "; targets with a position axis need pairs of one length");
  }
}

PatchResult patch_pair(const models::HookedModel& model, const PromptPair& pair,
                       const std::vector<std::string>& targets, const PatchOptions& opt) {
  const auto& cfg = model.config();
  std::vector<TargetSpec> specs;
  for (auto& t : targets) specs.push_back(target_spec(t));
  const at::Device dev = model.device();
  PatchResult r;
  r.n_pos = (int64_t)pair.clean.size();
  auto points = points_of(specs, cfg);
  for (auto& s : specs) r.targets.push_back({s.name, target_axes(s), {}, {}, 0});
  auto t0 = Clock::now();
  BaseRun clean =
      base_run(model, ids_tensor(pair.clean, dev), pair.metric, points, types_tensor(pair.clean_types, dev));
  BaseRun corrupt =
      base_run(model, ids_tensor(pair.corrupt, dev), pair.metric, points, types_tensor(pair.corrupt_types, dev));
  r.base_seconds += since(t0);
  r.clean_metric = clean.metric;
  r.corrupt_metric = corrupt.metric;
  int64_t n = (int64_t)pair.clean.size();
  std::vector<at::Tensor> attr;
  if (opt.method == Method::Attribution) {
    auto ta = Clock::now();
    attr = attribution(model, clean, corrupt.ids, pair.metric, specs, nullptr, corrupt.token_type_ids);
    double each = since(ta) / specs.size();
    for (auto& t : r.targets) t.seconds += each;
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    TargetResult& tr = r.targets[i];
    auto shape = target_shape(specs[i], cfg, n);
    auto cells = target_cells(specs[i], cfg, n);
    if (opt.method == Method::Attribution) {
      tr.values = attr[i] + corrupt.metric;
      if (!opt.also_exact) continue;
    }
    auto t1 = Clock::now();
    Method m = opt.method == Method::Attribution ? Method::Exact : opt.method;
    at::Tensor v = run_cells(model, corrupt, clean.acts, cells, pair.metric, m, opt.sweep).view(shape);
    if (opt.method != Method::Attribution) tr.seconds += since(t1);
    (opt.method == Method::Attribution ? tr.exact : tr.values) = v;
    r.cells += (int64_t)cells.size();
  }
  return r;
}

void add_pair(PatchResult& avg, const PatchResult& one, size_t n_pairs) {
  const double n = (double)n_pairs;
  if (avg.targets.empty()) {
    avg.n_pos = one.n_pos;
    for (auto& t : one.targets) avg.targets.push_back({t.name, t.axes, {}, {}, 0});
  }
  avg.base_seconds += one.base_seconds;
  avg.clean_metric += one.clean_metric / n;
  avg.corrupt_metric += one.corrupt_metric / n;
  avg.cells += one.cells;
  avg.skipped_noop += one.skipped_noop;
  for (size_t i = 0; i < one.targets.size(); ++i) {
    TargetResult& dst = avg.targets[i];
    const TargetResult& src = one.targets[i];
    dst.seconds += src.seconds;
    for (auto [d, s] :
         {std::pair<at::Tensor*, const at::Tensor*>{&dst.values, &src.values}, {&dst.exact, &src.exact}}) {
      if (!s->defined()) continue;
      at::Tensor v = *s / n;
      *d = d->defined() ? *d + v : v;
    }
  }
}

PatchResult patch(const models::HookedModel& model, const std::vector<PromptPair>& pairs,
                  const std::vector<std::string>& targets, const PatchOptions& opt) {
  check_pairs(pairs, targets);
  PatchResult r;
  for (const auto& pair : pairs) add_pair(r, patch_pair(model, pair, targets, opt), pairs.size());
  return r;
}

AblationResult ablate(const models::HookedModel& model, const std::vector<int64_t>& ids, const Metric& metric,
                      const std::vector<std::string>& targets, AblationKind kind,
                      const std::vector<std::vector<int64_t>>& reference, Method method, const SweepOptions& sweep,
                      const std::vector<int64_t>& token_types) {
  if (method == Method::Attribution) fail("ablation supports the exact and naive methods");
  const auto& cfg = model.config();
  std::vector<TargetSpec> specs;
  for (auto& t : targets) specs.push_back(target_spec(t));
  auto points = points_of(specs, cfg);
  int64_t n = (int64_t)ids.size();
  if (!token_types.empty() && token_types.size() != ids.size())
    fail("ablate: ", token_types.size(), " token type ids for ", ids.size(), " token ids");
  const at::Device dev = model.device();
  BaseRun base = base_run(model, ids_tensor(ids, dev), metric, points, types_tensor(token_types, dev));

  // One source per run to average over: zeros, the reference mean, or each reference prompt.
  std::vector<std::map<std::string, at::Tensor>> sources;
  if (kind == AblationKind::Zero) {
    sources.emplace_back();
    for (auto& p : points) sources[0][p] = at::zeros_like(base.acts.at(p));
  } else {
    if (reference.empty())
      fail(option("kind"), " ", ablation_name(kind), " needs reference prompts (", option("reference"), ")");
    bool same_length = true;
    for (auto& ref : reference) same_length &= (int64_t)ref.size() == n;
    if (kind == AblationKind::Resample && !same_length)
      fail("resample ablation needs reference prompts of the prompt's length (", n, " tokens)");
    Metric any = metric;
    any.position = 0;  // the references' own metric is not used
    std::vector<BaseRun> refs;
    for (auto& ref : reference) refs.push_back(base_run(model, ids_tensor(ref, dev), any, points));
    if (kind == AblationKind::Resample) {
      for (auto& r : refs) sources.push_back(r.acts);
    } else {
      sources.emplace_back();
      for (auto& p : points) {
        bool pattern = hooks::point_layout(p) == hooks::Layout::Pattern;
        if (!same_length && pattern)
          fail("mean ablation of attention patterns needs reference prompts of the prompt's length (", n, " tokens)");
        std::vector<at::Tensor> acts;
        for (auto& r : refs) acts.push_back(r.acts.at(p));
        at::Tensor mean;
        if (same_length) {
          mean = at::cat(acts, 0).mean(0, true);
        } else {  // different lengths: one mean over every position of every reference
          mean = at::cat(acts, 1).mean(1, true);
          auto shape = base.acts.at(p).sizes().vec();
          mean = mean.expand(shape).contiguous();
        }
        sources[0][p] = mean;
      }
    }
  }
  AblationResult r;
  r.clean_metric = base.metric;
  r.n_pos = n;
  for (auto& s : specs) {
    TargetResult tr{s.name, target_axes(s), {}, {}, 0};
    auto t0 = Clock::now();
    auto cells = target_cells(s, cfg, n);
    at::Tensor sum;
    for (auto& src : sources) {
      at::Tensor v = run_cells(model, base, src, cells, metric, method, sweep) - base.metric;
      sum = sum.defined() ? sum + v : v;
    }
    tr.values = (sum / (double)sources.size()).view(target_shape(s, cfg, n));
    tr.seconds = since(t0);
    r.targets.push_back(tr);
  }
  return r;
}

}  // namespace mechscope::analysis::patching
