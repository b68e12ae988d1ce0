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

namespace {
// A reference prompt's activations at `points` (its own metric is not used).
std::map<std::string, at::Tensor> reference_acts(const models::HookedModel& model, const Metric& metric,
                                                 const std::vector<std::string>& points,
                                                 const std::vector<int64_t>& ref) {
  Metric any = metric;
  any.position = 0;
  return base_run(model, ids_tensor(ref, model.device()), any, points).acts;
}
}  // namespace

AblationSetup ablation_setup(const models::HookedModel& model, const std::vector<int64_t>& ids, const Metric& metric,
                             const std::vector<std::string>& targets, AblationKind kind,
                             const std::vector<std::vector<int64_t>>& reference, Method method,
                             const std::vector<int64_t>& token_types) {
  if (method == Method::Attribution) fail("ablation supports the exact and naive methods");
  const auto& cfg = model.config();
  AblationSetup s;
  for (auto& t : targets) s.specs.push_back(target_spec(t));
  s.points = points_of(s.specs, cfg);
  s.metric = metric;
  s.method = method;
  s.kind = kind;
  s.n = (int64_t)ids.size();
  const int64_t n = s.n;
  if (!token_types.empty() && token_types.size() != ids.size())
    fail("ablate: ", token_types.size(), " token type ids for ", ids.size(), " token ids");
  const at::Device dev = model.device();
  s.base = base_run(model, ids_tensor(ids, dev), metric, s.points, types_tensor(token_types, dev));

  // One source per run to average over: zeros, the reference mean, or each reference prompt.
  if (kind == AblationKind::Zero) {
    for (auto& p : s.points) s.shared_source[p] = at::zeros_like(s.base.acts.at(p));
    return s;
  }
  if (reference.empty())
    fail(option("kind"), " ", ablation_name(kind), " needs reference prompts (", option("reference"), ")");
  bool same_length = true;
  for (auto& ref : reference) same_length &= (int64_t)ref.size() == n;
  if (kind == AblationKind::Resample) {
    if (!same_length) fail("resample ablation needs reference prompts of the prompt's length (", n, " tokens)");
    s.n_sources = reference.size();
    return s;
  }
  for (auto& p : s.points)
    if (!same_length && hooks::point_layout(p) == hooks::Layout::Pattern)
      fail("mean ablation of attention patterns needs reference prompts of the prompt's length (", n, " tokens)");
  std::vector<std::map<std::string, at::Tensor>> refs;
  for (auto& ref : reference) refs.push_back(reference_acts(model, metric, s.points, ref));
  for (auto& p : s.points) {
    std::vector<at::Tensor> acts;
    for (auto& r : refs) acts.push_back(r.at(p));
    at::Tensor mean;
    if (same_length) {
      mean = at::cat(acts, 0).mean(0, true);
    } else {  // different lengths: one mean over every position of every reference
      mean = at::cat(acts, 1).mean(1, true);
      auto shape = s.base.acts.at(p).sizes().vec();
      mean = mean.expand(shape).contiguous();
    }
    s.shared_source[p] = mean;
  }
  return s;
}

std::map<std::string, at::Tensor> ablation_source(const models::HookedModel& model, const AblationSetup& setup,
                                                  const std::vector<std::vector<int64_t>>& reference, size_t k) {
  if (setup.kind != AblationKind::Resample) return setup.shared_source;
  return reference_acts(model, setup.metric, setup.points, reference.at(k));
}

at::Tensor ablation_values(const models::HookedModel& model, const AblationSetup& setup, size_t t,
                           const std::map<std::string, at::Tensor>& source, const SweepOptions& sweep) {
  auto cells = target_cells(setup.specs.at(t), model.config(), setup.n);
  return run_cells(model, setup.base, source, cells, setup.metric, setup.method, sweep) - setup.base.metric;
}

AblationResult ablation_result(const models::HookedModel& model, const AblationSetup& setup,
                               const std::vector<std::vector<at::Tensor>>& values, const std::vector<double>& seconds) {
  AblationResult r;
  r.clean_metric = setup.base.metric;
  r.n_pos = setup.n;
  for (size_t t = 0; t < setup.specs.size(); ++t) {
    const auto& s = setup.specs[t];
    TargetResult tr{s.name, target_axes(s), {}, {}, seconds.at(t)};
    at::Tensor sum;
    for (auto& v : values.at(t)) sum = sum.defined() ? sum + v : v;
    tr.values = (sum / (double)values.at(t).size()).view(target_shape(s, model.config(), setup.n));
    r.targets.push_back(tr);
  }
  return r;
}

AblationResult ablate(const models::HookedModel& model, const std::vector<int64_t>& ids, const Metric& metric,
                      const std::vector<std::string>& targets, AblationKind kind,
                      const std::vector<std::vector<int64_t>>& reference, Method method, const SweepOptions& sweep,
                      const std::vector<int64_t>& token_types) {
  AblationSetup setup = ablation_setup(model, ids, metric, targets, kind, reference, method, token_types);
  std::vector<std::map<std::string, at::Tensor>> sources;
  for (size_t k = 0; k < setup.n_sources; ++k) sources.push_back(ablation_source(model, setup, reference, k));
  std::vector<std::vector<at::Tensor>> values(setup.specs.size());
  std::vector<double> seconds(setup.specs.size());
  for (size_t t = 0; t < setup.specs.size(); ++t) {
    auto t0 = Clock::now();
    for (auto& src : sources) values[t].push_back(ablation_values(model, setup, t, src, sweep));
    seconds[t] = since(t0);
  }
  return ablation_result(model, setup, values, seconds);
}

}  // namespace mechscope::analysis::patching
