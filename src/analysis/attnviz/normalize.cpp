// Vector normalisation (AttentionViz §5.1.1, and the seed's grid search): two changes that leave every
// attention pattern as it is. Adding one vector t to every key of a head adds q·t to all scores of
// query q, which the softmax removes; multiplying queries by c and keys by 1/c leaves each q·k as is.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "analysis/attnviz/attnviz.h"
#include "analysis/attnviz/blas_threads.h"
#include "core/error.h"

namespace mechscope::analysis::attnviz {

namespace {

// Pair statistics of a group over the allowed (query, key) pairs, flattened over members and texts.
struct Pairs {
  at::Tensor w, dot, qq, kk;  // [pairs] float64: attention, q·k, |q|^2, |k|^2
  at::Tensor sq, sk;          // [pairs]: sum of q's coordinates, of k's (for the scalar shift a)
  int64_t d = 0;
};

Pairs pair_stats(const std::vector<at::Tensor>& qs, const std::vector<at::Tensor>& ks,
                 const std::vector<at::Tensor>& attn, const std::vector<at::Tensor>& allowed) {
  std::vector<at::Tensor> w, dot, qq, kk, sq, sk;
  Pairs p;
  for (size_t m = 0; m < qs.size(); ++m) {
    const at::Tensor &q = qs[m], &k = ks[m], &ok = allowed[m];  // q, k [T, P, d]; ok [T, P, P]
    p.d = q.size(2);
    auto sel = [&](const at::Tensor& t) { return t.masked_select(ok); };
    dot.push_back(sel(at::matmul(q, k.transpose(1, 2))));
    at::Tensor qn = (q * q).sum(-1), kn = (k * k).sum(-1);  // [T, P]
    qq.push_back(sel(qn.unsqueeze(2).expand_as(ok)));
    kk.push_back(sel(kn.unsqueeze(1).expand_as(ok)));
    sq.push_back(sel(q.sum(-1).unsqueeze(2).expand_as(ok)));
    sk.push_back(sel(k.sum(-1).unsqueeze(1).expand_as(ok)));
    w.push_back(attn.empty() ? at::ones_like(dot.back()) : sel(attn[m]));
  }
  p.w = at::cat(w), p.dot = at::cat(dot), p.qq = at::cat(qq), p.kk = at::cat(kk), p.sq = at::cat(sq),
  p.sk = at::cat(sk);
  // The pairs are made where q and k are; the criteria are scalar searches (~120 evaluations of a
  // reduction per group) and run on the host, so the six vectors come back here in one copy.
  if (!p.w.is_cpu()) {
    at::Tensor all = at::stack({p.w, p.dot, p.qq, p.kk, p.sq, p.sk}).to(at::kCPU);
    p.w = all[0], p.dot = all[1], p.qq = all[2], p.kk = all[3], p.sq = all[4], p.sk = all[5];
  }
  return p;
}

// Weighted Pearson correlation of x and y with weights w (all [n]).
double wcorr(const at::Tensor& x, const at::Tensor& y, const at::Tensor& w) {
  double sw = w.sum().item<double>();
  if (!(sw > 0) || x.numel() < 2) return 0;
  at::Tensor mx = (w * x).sum() / sw, my = (w * y).sum() / sw;
  at::Tensor dx = x - mx, dy = y - my;
  double cov = (w * dx * dy).sum().item<double>(), vx = (w * dx * dx).sum().item<double>(),
         vy = (w * dy * dy).sum().item<double>();
  if (!(vx > 0 && vy > 0)) return 0;
  return cov / std::sqrt(vx * vy);
}

// The paper's criterion at scale c: corr_w(q·k, -|cq - k/c|). A plain loop: the c search calls this
// ~120 times per group, where a chain of tensor ops costs several times more than the arithmetic.
double paper_criterion(const Pairs& p, double c) {
  at::Tensor w = p.w.contiguous(), x = p.dot.contiguous(), qq = p.qq.contiguous(), kk = p.kk.contiguous();
  const double *W = w.data_ptr<double>(), *X = x.data_ptr<double>(), *Q = qq.data_ptr<double>(),
               *K = kk.data_ptr<double>();
  int64_t n = x.numel();
  double c2 = c * c, ic2 = 1 / c2;
  double sw = 0, sx = 0, sy = 0;
  std::vector<double> y(n);
  for (int64_t i = 0; i < n; ++i) {
    y[i] = -std::sqrt(std::max(0.0, Q[i] * c2 + K[i] * ic2 - 2 * X[i]));
    sw += W[i], sx += W[i] * X[i], sy += W[i] * y[i];
  }
  if (!(sw > 0) || n < 2) return 0;
  double mx = sx / sw, my = sy / sw, cov = 0, vx = 0, vy = 0;
  for (int64_t i = 0; i < n; ++i) {
    double dx = X[i] - mx, dy = y[i] - my;
    cov += W[i] * dx * dy, vx += W[i] * dx * dx, vy += W[i] * dy * dy;
  }
  if (!(vx > 0 && vy > 0)) return 0;
  return cov / std::sqrt(vx * vy);
}

// The seed's criterion after keys += a, queries × c, keys × 1/c: |corr(q·k, 1 - cos(q, k))|, unweighted.
double seed_criterion(const Pairs& p, double a, double c) {
  at::Tensor dot = p.dot + a * p.sq;                          // q·(k + a)
  at::Tensor kk = p.kk + 2 * a * p.sk + a * a * (double)p.d;  // |k + a|^2
  at::Tensor qs = p.qq * (c * c), ks = kk / (c * c);
  at::Tensor cosd = 1 - dot / (qs * ks).sqrt().clamp_min(1e-300);  // c cancels here: kept to search as the seed did
  return std::abs(wcorr(dot, cosd, at::ones_like(dot)));
}

std::vector<double> grid(const Range& r, bool log) {
  std::vector<double> v;
  for (int i = 0; i < r.steps; ++i) {
    double t = r.steps == 1 ? 0 : double(i) / (r.steps - 1);
    v.push_back(log ? std::exp(std::log(r.lo) + t * (std::log(r.hi) - std::log(r.lo))) : r.lo + t * (r.hi - r.lo));
  }
  return v;
}

// c maximising the paper criterion: the best of a log grid, refined by golden-section search on log c
// between its neighbours (the criterion is smooth in c).
double best_c(const Pairs& p, const Range& r) {
  auto cs = grid(r, true);
  size_t best = 0;
  std::vector<double> f;
  for (double c : cs) f.push_back(paper_criterion(p, c));
  for (size_t i = 1; i < cs.size(); ++i)
    if (f[i] > f[best] + 1e-12) best = i;
  if (cs.size() < 3) return cs[best];
  double lo = std::log(cs[best == 0 ? 0 : best - 1]), hi = std::log(cs[std::min(best + 1, cs.size() - 1)]);
  const double g = (std::sqrt(5.0) - 1) / 2;
  double x1 = hi - g * (hi - lo), x2 = lo + g * (hi - lo);
  double f1 = paper_criterion(p, std::exp(x1)), f2 = paper_criterion(p, std::exp(x2));
  for (int it = 0; it < 40; ++it) {
    if (f1 < f2) lo = x1, x1 = x2, f1 = f2, x2 = lo + g * (hi - lo), f2 = paper_criterion(p, std::exp(x2));
    else hi = x2, x2 = x1, f2 = f1, x1 = hi - g * (hi - lo), f1 = paper_criterion(p, std::exp(x1));
  }
  double c = std::exp(0.5 * (lo + hi));
  return paper_criterion(p, c) >= f[best] ? c : cs[best];
}

}  // namespace

Mode parse_mode(const std::string& s) {
  if (s == "paper") return Mode::Paper;
  if (s == "search") return Mode::Search;
  if (s == "none") return Mode::None;
  fail(option("normalize"), ": expected paper, search or none, got '", s, "'");
}
std::string mode_name(Mode m) { return m == Mode::Paper ? "paper" : m == Mode::Search ? "search" : "none"; }

Scope parse_scope(const std::string& s) {
  if (s == "head") return Scope::Head;
  if (s == "layer") return Scope::Layer;
  if (s == "model") return Scope::Model;
  fail(option("scope"), ": expected head, layer or model, got '", s, "'");
}
std::string scope_name(Scope s) { return s == Scope::Head ? "head" : s == Scope::Layer ? "layer" : "model"; }

Range parse_range(const std::string& s, const std::string& flag) {
  Range r;
  auto a = s.find(':'), b = s.find(':', a == std::string::npos ? a : a + 1);
  try {
    if (a == std::string::npos || b == std::string::npos) throw std::invalid_argument(s);
    size_t used = 0;
    r.lo = std::stod(s.substr(0, a), &used);
    if (used != a) throw std::invalid_argument(s);
    r.hi = std::stod(s.substr(a + 1, b - a - 1), &used);
    if (used != b - a - 1) throw std::invalid_argument(s);
    r.steps = std::stoi(s.substr(b + 1), &used);
    if (used != s.size() - b - 1) throw std::invalid_argument(s);
  } catch (const std::exception&) {
    fail(flag, ": expected LO:HI:STEPS (e.g. 0.25:4:17), got '", s, "'");
  }
  if (!(r.hi >= r.lo) || r.steps < 1 || r.steps > 10000 || !std::isfinite(r.lo) || !std::isfinite(r.hi))
    fail(flag, ": expected LO <= HI and 1 <= STEPS <= 10000, got '", s, "'");
  return r;
}

std::vector<Group> scope_groups(Scope scope, const Extracted& ex, const std::vector<int64_t>& heads) {
  std::vector<Group> out;
  Group all{"model", {}};
  for (size_t li = 0; li < ex.layers.size(); ++li) {
    Group layer{"L" + std::to_string(ex.layers[li]), {}};
    for (int64_t h : heads) {
      if (scope == Scope::Head)
        out.push_back({"L" + std::to_string(ex.layers[li]) + " H" + std::to_string(h), {{li, h}}});
      layer.members.push_back({li, h});
      all.members.push_back({li, h});
    }
    if (scope == Scope::Layer) out.push_back(layer);
  }
  if (scope == Scope::Model) out.push_back(all);
  return out;
}

double weighted_corr(const at::Tensor& q, const at::Tensor& k, const at::Tensor& attn, const at::Tensor& allowed,
                     double c) {
  return paper_criterion(pair_stats({q}, {k}, {attn}, {allowed}), c);
}
double cosine_corr(const at::Tensor& q, const at::Tensor& k, const at::Tensor& allowed) {
  return seed_criterion(pair_stats({q}, {k}, {}, {allowed}), 0, 1);
}

Normalization normalize(const Extracted& ex, const Group& g, const NormalizeOptions& opt,
                        std::vector<at::Tensor>& q_out, std::vector<at::Tensor>& k_out) {
  size_t nl = ex.layers.size();
  if (q_out.size() != nl) q_out.resize(nl), k_out.resize(nl);
  std::vector<at::Tensor> qs, ks, attn, ok;
  bool softcap = false;
  for (auto [li, h] : g.members) {
    qs.push_back(ex.q[li].select(2, h));  // [T, P, d]
    ks.push_back(ex.k[li].select(2, h));
    attn.push_back(ex.pattern[li].select(1, h));
    ok.push_back(ex.allowed(li));
    softcap = softcap || ex.rules[li].softcap > 0;
  }
  Normalization n;
  int64_t d = ex.d_head;
  n.translation.assign(d, 0.0);
  Pairs before = pair_stats(qs, ks, attn, ok);
  n.weighted_corr_before = paper_criterion(before, 1);
  n.cosine_corr_before = seed_criterion(before, 0, 1);

  auto on = at::TensorOptions().dtype(at::kDouble).device(ex.device);
  at::Tensor real = at::zeros({ex.n_texts, ex.n_pos, 1}, at::kDouble);
  double n_real = 0;
  for (int64_t t = 0; t < ex.n_texts; ++t)
    real[t].narrow(0, 0, ex.lengths[t]).fill_(1), n_real += (double)ex.lengths[t];
  real = real.to(ex.device);
  at::Tensor shift = at::zeros({d}, on);
  if (softcap && opt.mode != Mode::None)
    n.note =
        "soft-capped scores: cap·tanh(s/cap) is not invariant to adding q·t to a query's scores, so keys are not "
        "translated (only the scaling, which leaves every q·k as is, is applied)";
  if (opt.mode == Mode::Paper) {
    if (!softcap) {
      // The key centroid moved onto the query centroid (over the real tokens of every member).
      at::Tensor sq = at::zeros({d}, on), sk = at::zeros({d}, on);
      double count = 0;  // real tokens over the members (the lengths' sum: no device read)
      for (size_t m = 0; m < qs.size(); ++m)
        sq += qs[m].sum(at::IntArrayRef{0, 1}), sk += ks[m].sum(at::IntArrayRef{0, 1}), count += n_real;
      shift = (sq - sk) / count;
    }
    std::vector<at::Tensor> kt;
    for (auto& k : ks) kt.push_back(k + shift * real);
    n.c = best_c(pair_stats(qs, kt, attn, ok), opt.paper_c);
  } else if (opt.mode == Mode::Search) {
    auto as = softcap ? std::vector<double>{0.0} : grid(opt.search_a, false);
    auto cs = grid(opt.search_c, true);
    double best = -1;
    std::vector<double> at_best;
    for (double a : as) {
      std::vector<double> f;
      for (double c : cs) f.push_back(seed_criterion(before, a, c));
      for (size_t i = 0; i < cs.size(); ++i) {
        // Ties (c cancels in the cosine, so every c ties) go to the c nearest 1: the least change.
        bool better = f[i] > best * (1 + 1e-12) + 1e-15;
        bool tie = !better && std::abs(f[i] - best) <= 1e-12 * std::max(1.0, best) && a == n.a &&
                   std::abs(std::log(cs[i])) < std::abs(std::log(n.c));
        if (better || tie) best = f[i], n.a = a, n.c = cs[i], at_best = f;
      }
    }
    auto [lo, hi] = std::minmax_element(at_best.begin(), at_best.end());
    n.c_effect = at_best.empty() ? 0 : *hi - *lo;
    shift.fill_(n.a);
    if (n.note.empty())
      n.note =
          "the seed's criterion uses the cosine distance, which c cancels out of (cos(cq, k/c) = cos(q, k)): c_effect "
          "is its spread over the c grid, and the c nearest 1 is kept";
  }
  {
    at::Tensor host = shift.to(at::kCPU).contiguous();  // one copy, not one read per coordinate
    for (size_t i = 0; i < n.translation.size(); ++i) n.translation[i] = host.data_ptr<double>()[i];
  }

  // Apply, and check that every member's attention is unchanged.
  std::vector<at::Tensor> qn, kn, changes;
  for (size_t m = 0; m < g.members.size(); ++m) {
    auto [li, h] = g.members[m];
    if (!q_out[li].defined()) q_out[li] = ex.q[li].clone(), k_out[li] = ex.k[li].clone();
    at::Tensor q = qs[m] * n.c, k = (ks[m] + shift * real) / n.c;
    q_out[li].select(2, h).copy_(q);
    k_out[li].select(2, h).copy_(k);
    qn.push_back(q), kn.push_back(k);
    const AttentionRule& r = ex.rules[li];
    at::Tensor p0 = recompute_pattern(qs[m].unsqueeze(2), ks[m].unsqueeze(2), ok[m], r);
    at::Tensor p1 = recompute_pattern(q.unsqueeze(2), k.unsqueeze(2), ok[m], r);
    changes.push_back((p1 - p0).abs().max());
  }
  if (!changes.empty()) n.max_pattern_change = std::max(0.0, at::stack(changes).max().item<double>());
  Pairs after = pair_stats(qn, kn, attn, ok);
  n.weighted_corr_after = paper_criterion(after, 1);
  n.cosine_corr_after = seed_criterion(after, 0, 1);
  return n;
}

std::vector<Normalization> normalize_all(const Extracted& ex, const std::vector<Group>& groups,
                                         const NormalizeOptions& opt, std::vector<at::Tensor>& q_out,
                                         std::vector<at::Tensor>& k_out) {
  size_t nl = ex.layers.size();
  q_out.resize(nl), k_out.resize(nl);
  for (size_t li = 0; li < nl; ++li)
    if (!q_out[li].defined()) q_out[li] = ex.q[li].clone(), k_out[li] = ex.k[li].clone();
  std::vector<Normalization> out(groups.size());
  if (!ex.device.is_cpu()) {
    // On a GPU the groups' kernels share one stream: side by side they would only interleave.
    for (size_t g = 0; g < groups.size(); ++g) out[g] = normalize(ex, groups[g], opt, q_out, k_out);
    return out;
  }
  OneBlasThread one;
  // Groups write disjoint heads of q_out / k_out (allocated above), so they can run side by side.
  at::parallel_for(0, (int64_t)groups.size(), 1, [&](int64_t b, int64_t e) {
    for (int64_t g = b; g < e; ++g) out[g] = normalize(ex, groups[g], opt, q_out, k_out);
  });
  return out;
}

}  // namespace mechscope::analysis::attnviz
