// The joint point set of a group and its projections: exact PCA (thin SVD) and Barnes-Hut t-SNE.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "analysis/attnviz/attnviz.h"
#include "analysis/attnviz/blas_threads.h"
#include "core/error.h"

namespace mechscope::analysis::attnviz {

PointSet points(const Extracted& ex, const Group& g, const std::vector<at::Tensor>& q,
                const std::vector<at::Tensor>& k) {
  PointSet ps;
  std::vector<at::Tensor> rows;
  for (auto [li, h] : g.members)
    for (int64_t t = 0; t < ex.n_texts; ++t) {
      int64_t n = ex.lengths[t];
      rows.push_back(q[li][t].narrow(0, 0, n).select(1, h));
      rows.push_back(k[li][t].narrow(0, 0, n).select(1, h));
      for (int key = 0; key < 2; ++key)
        for (int64_t p = 0; p < n; ++p) ps.meta.push_back({li, h, t, p, key == 1});
    }
  ps.x = at::cat(rows).contiguous();
  return ps;
}

// x: [n, d] -> [n, dims].
at::Tensor pca(const at::Tensor& x, int dims, std::vector<double>* explained) {
  at::Tensor xc = x.to(at::kDouble) - x.to(at::kDouble).mean(0, true);
  // The d x d scatter matrix's eigenvectors are the right singular vectors of xc: with d (64, 128) far
  // below n, this is the SVD's answer at a fraction of its cost.
  auto [evals, evecs] = at::linalg_eigh(at::matmul(xc.t(), xc));  // ascending
  int64_t d = evals.size(0), r = std::min<int64_t>(dims, d);
  at::Tensor out = at::zeros({x.size(0), dims}, xc.options());
  if (explained) explained->assign(dims, 0.0);
  // The top r eigenvectors, largest first. Eigenvector signs are arbitrary: fix each so its
  // largest-magnitude loading is positive (sklearn's svd_flip), on the device.
  at::Tensor top = evecs.narrow(1, d - r, r).flip({1});        // [d, r]
  at::Tensor lead = top.gather(0, top.abs().argmax(0, true));  // [1, r]
  top = top * at::where(lead < 0, -at::ones_like(lead), at::ones_like(lead));
  // The eigenvalues (d of them) come to the host once: they decide the rank kept and the ratios.
  at::Tensor ev_host = evals.to(at::kCPU).contiguous();
  const double* ev_all = ev_host.data_ptr<double>();
  double total = ev_host.clamp_min(0).sum().item<double>();
  int64_t keep = 0;
  for (int64_t c = 0; c < r; ++c) {
    double ev = std::max(0.0, ev_all[d - 1 - c]);
    // Rank below `dims`: the remaining components are zero, not noise directions.
    if (!(ev > 1e-12 * std::max(total, 1e-300))) break;
    if (explained) (*explained)[c] = total > 0 ? ev / total : 0;
    ++keep;
  }
  for (int64_t c = 0; c < keep; ++c) out.select(1, c).copy_(at::matmul(xc, top.select(1, c)));
  return out.to(at::kCPU);  // the coordinates: one copy back
}

std::vector<at::Tensor> project_all(const std::vector<PointSet>& pts, Projection how, int dims, const TsneOptions& opt,
                                    std::vector<std::vector<double>>* explained) {
  std::vector<at::Tensor> out(pts.size());
  if (explained) explained->assign(pts.size(), {});
  if (how == Projection::Pca && !pts.empty() && !pts[0].x.is_cpu()) {
    // PCA on a GPU: the sets one after another there (they share its stream).
    for (size_t i = 0; i < pts.size(); ++i) out[i] = pca(pts[i].x, dims, explained ? &(*explained)[i] : nullptr);
    return out;
  }
  OneBlasThread one;
  at::parallel_for(0, (int64_t)pts.size(), 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      out[i] =
          how == Projection::Pca ? pca(pts[i].x, dims, explained ? &(*explained)[i] : nullptr) : tsne(pts[i].x, opt);
  });
  return out;
}

namespace {

// Quadtree over 2-D points for the repulsive forces; each node covers perm[begin, end).
struct Quad {
  struct Node {
    double cx, cy, half;    // square cell
    double mx = 0, my = 0;  // centre of mass
    int64_t begin = 0, end = 0;
    int child[4] = {-1, -1, -1, -1};
    bool leaf = true;
  };
  std::vector<Node> nodes;
  std::vector<int64_t> perm;
  const double* y;

  Quad(const double* y_, int64_t n) : y(y_) {
    perm.resize(n);
    double lx = 1e300, hx = -1e300, ly = 1e300, hy = -1e300;
    for (int64_t i = 0; i < n; ++i) {
      perm[i] = i;
      lx = std::min(lx, y[2 * i]), hx = std::max(hx, y[2 * i]);
      ly = std::min(ly, y[2 * i + 1]), hy = std::max(hy, y[2 * i + 1]);
    }
    double half = std::max(hx - lx, hy - ly) / 2 + 1e-12;
    build(0.5 * (lx + hx), 0.5 * (ly + hy), half * 1.0001, 0, n, 0);
  }

  int build(double cx, double cy, double half, int64_t b, int64_t e, int depth) {
    int id = (int)nodes.size();
    nodes.push_back({cx, cy, half});
    Node& nd = nodes.back();
    nd.begin = b, nd.end = e;
    double mx = 0, my = 0;
    for (int64_t i = b; i < e; ++i) mx += y[2 * perm[i]], my += y[2 * perm[i] + 1];
    nodes[id].mx = mx / double(e - b), nodes[id].my = my / double(e - b);
    // Coincident points cannot be separated: stop splitting at a depth no real layout needs.
    if (e - b <= 1 || depth >= 40) return id;
    auto quadrant = [&](int64_t p) { return (y[2 * p] >= cx ? 1 : 0) + (y[2 * p + 1] >= cy ? 2 : 0); };
    int64_t bounds[5] = {b, b, b, b, e};
    std::stable_sort(perm.begin() + b, perm.begin() + e,
                     [&](int64_t u, int64_t v) { return quadrant(u) < quadrant(v); });
    for (int qd = 1; qd < 4; ++qd) {
      int64_t i = bounds[qd - 1];
      while (i < e && quadrant(perm[i]) < qd) ++i;
      bounds[qd] = i;
    }
    nodes[id].leaf = false;
    double h = half / 2;
    for (int qd = 0; qd < 4; ++qd) {
      if (bounds[qd + 1] == bounds[qd]) continue;
      int c = build(cx + (qd & 1 ? h : -h), cy + (qd & 2 ? h : -h), h, bounds[qd], bounds[qd + 1], depth + 1);
      nodes[id].child[qd] = c;
    }
    return id;
  }

  // Unnormalised repulsion on point i: sum over j != i of q_ij^2 Z^2 (y_i - y_j) into fx, fy; returns
  // its part of Z = sum_{j != i} (1 + |y_i - y_j|^2)^-1.
  double repulse(int64_t i, double theta, double& fx, double& fy) const {
    double z = 0, xi = y[2 * i], yi = y[2 * i + 1];
    int stack[256];
    int top = 0;
    stack[top++] = 0;
    while (top) {
      const Node& nd = nodes[stack[--top]];
      double dx = xi - nd.mx, dy = yi - nd.my, d2 = dx * dx + dy * dy;
      int64_t cnt = nd.end - nd.begin;
      if (nd.leaf) {
        for (int64_t a = nd.begin; a < nd.end; ++a) {
          int64_t j = perm[a];
          if (j == i) continue;
          double ex = xi - y[2 * j], ey = yi - y[2 * j + 1], q = 1 / (1 + ex * ex + ey * ey);
          z += q, fx += q * q * ex, fy += q * q * ey;
        }
      } else if (2 * nd.half < theta * std::sqrt(d2)) {
        double q = 1 / (1 + d2);
        z += cnt * q, fx += cnt * q * q * dx, fy += cnt * q * q * dy;
      } else {
        for (int c : nd.child)
          if (c >= 0) stack[top++] = c;
      }
    }
    return z;
  }
};

}  // namespace

at::Tensor tsne(const at::Tensor& x_in, const TsneOptions& opt) {
  int64_t n = x_in.size(0);
  if (n < 3) fail("t-SNE needs at least 3 points, got ", n);
  if (!(opt.perplexity > 0)) fail(option("perplexity"), " must be > 0, got ", opt.perplexity);
  at::Tensor x = x_in.to(at::kCPU, at::kDouble).contiguous();  // a tree code: on the host, one copy
  // As sklearn: perplexity at most (n - 1) / 3 so 3·perplexity neighbours exist.
  double perp = std::min(opt.perplexity, double(n - 1) / 3);
  int64_t K = std::min<int64_t>(n - 1, (int64_t)std::floor(3 * perp));
  K = std::max<int64_t>(K, 1);

  // Nearest neighbours by squared distance, in row blocks so memory stays O(block · n).
  std::vector<int64_t> nbr(n * K);
  std::vector<double> dist(n * K);
  at::Tensor sq = (x * x).sum(1);
  for (int64_t b = 0; b < n; b += 512) {
    int64_t m = std::min<int64_t>(512, n - b);
    at::Tensor xb = x.narrow(0, b, m);
    at::Tensor d2 = (sq.narrow(0, b, m).unsqueeze(1) + sq.unsqueeze(0) - 2 * at::matmul(xb, x.t())).clamp_min(0);
    // A point is not its own neighbour.
    d2.diagonal(b, 0, 1).fill_(std::numeric_limits<double>::infinity());
    auto [vals, idx] = d2.topk(K, 1, false, true);
    auto va = vals.contiguous(), ia = idx.contiguous();
    std::copy(va.data_ptr<double>(), va.data_ptr<double>() + m * K, dist.begin() + b * K);
    std::copy(ia.data_ptr<int64_t>(), ia.data_ptr<int64_t>() + m * K, nbr.begin() + b * K);
  }
  // Conditional probabilities with a precision per point, found by bisection so the entropy is log(perp).
  std::vector<double> pc(n * K);
  double target = std::log(perp);
  at::parallel_for(0, n, 64, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) {
      const double* d = &dist[i * K];
      double lo = 0, hi = std::numeric_limits<double>::infinity(), beta = 1;
      double* p = &pc[i * K];
      for (int it = 0; it < 200; ++it) {
        double sum = 0, hsum = 0, d0 = d[0];
        for (int64_t j = 0; j < K; ++j) p[j] = std::exp(-(d[j] - d0) * beta), sum += p[j];
        for (int64_t j = 0; j < K; ++j) hsum += p[j] * (d[j] - d0);
        double H = std::log(sum) + beta * hsum / sum;
        for (int64_t j = 0; j < K; ++j) p[j] /= sum;
        if (std::abs(H - target) < 1e-5) break;
        if (H > target) lo = beta, beta = std::isinf(hi) ? beta * 2 : 0.5 * (beta + hi);
        else hi = beta, beta = 0.5 * (beta + lo);
      }
    }
  });
  // Symmetric joint P = (P_j|i + P_i|j) / 2n, as a sparse row list.
  std::vector<std::vector<std::pair<int64_t, double>>> rows(n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < K; ++j) {
      double v = pc[i * K + j] / (2.0 * n);
      rows[i].push_back({nbr[i * K + j], v});
      rows[nbr[i * K + j]].push_back({i, v});
    }
  std::vector<int64_t> col_start(n + 1, 0), cols;
  std::vector<double> pv;
  for (int64_t i = 0; i < n; ++i) {
    auto& r = rows[i];
    std::sort(r.begin(), r.end());
    for (size_t a = 0; a < r.size(); ++a) {
      if (!cols.empty() && (int64_t)cols.size() > col_start[i] && cols.back() == r[a].first) pv.back() += r[a].second;
      else cols.push_back(r[a].first), pv.push_back(r[a].second);
    }
    col_start[i + 1] = (int64_t)cols.size();
  }
  rows.clear();

  std::mt19937_64 rng(opt.seed);
  std::normal_distribution<double> normal(0, 1e-4);
  std::vector<double> y(2 * n), upd(2 * n, 0), gains(2 * n, 1), attr(2 * n), rep(2 * n), zpart(n);
  for (auto& v : y) v = normal(rng);
  double lr = opt.learning_rate > 0 ? opt.learning_rate : std::max(double(n) / opt.early_exaggeration / 4, 50.0);
  for (int it = 0; it < opt.iterations; ++it) {
    double exag = it < opt.exaggeration_iters ? opt.early_exaggeration : 1;
    double mom = it < opt.exaggeration_iters ? 0.5 : 0.8;
    Quad tree(y.data(), n);
    // Each point's forces are independent, written to its own slots: the result does not depend on
    // the thread count.
    at::parallel_for(0, n, 64, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) {
        double rx = 0, ry = 0;
        zpart[i] = tree.repulse(i, opt.theta, rx, ry);
        rep[2 * i] = rx, rep[2 * i + 1] = ry;
        double ax = 0, ay = 0;
        for (int64_t a = col_start[i]; a < col_start[i + 1]; ++a) {
          int64_t j = cols[a];
          double dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1], q = 1 / (1 + dx * dx + dy * dy);
          ax += pv[a] * q * dx, ay += pv[a] * q * dy;
        }
        attr[2 * i] = ax, attr[2 * i + 1] = ay;
      }
    });
    double Z = 0;
    for (int64_t i = 0; i < n; ++i) Z += zpart[i];
    Z = std::max(Z, 1e-300);
    // Gradient 4 (exag · F_attr - F_rep / Z); gains and momentum as van der Maaten's bhtsne / sklearn.
    for (int64_t i = 0; i < 2 * n; ++i) {
      double g = 4 * (exag * attr[i] - rep[i] / Z);
      gains[i] = (g > 0) != (upd[i] > 0) ? gains[i] + 0.2 : std::max(gains[i] * 0.8, 0.01);
      upd[i] = mom * upd[i] - lr * gains[i] * g;
      y[i] += upd[i];
    }
    double mx = 0, my = 0;
    for (int64_t i = 0; i < n; ++i) mx += y[2 * i], my += y[2 * i + 1];
    mx /= n, my /= n;
    for (int64_t i = 0; i < n; ++i) y[2 * i] -= mx, y[2 * i + 1] -= my;
  }
  at::Tensor out = at::empty({n, 2}, at::kDouble);
  std::copy(y.begin(), y.end(), out.data_ptr<double>());
  return out;
}

}  // namespace mechscope::analysis::attnviz
