#include "analysis/sae/tsea.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "core/error.h"

namespace mechscope::analysis::sae {

namespace {

// Float -> unsigned key whose ascending order is the floats' descending order (-0 taken as +0, so equal
// values get equal keys).
inline uint32_t descending_key(float f) {
  if (f == 0.0f) f = 0.0f;
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  return ~u;
}

// order <- token ids by descending value, ties by ascending id: a stable LSD radix sort (11-bit digits)
// of ids initially in ascending order.
void rank_row(const float* row, int64_t V, std::vector<uint32_t>& keys, std::vector<uint32_t>& keys2,
              std::vector<int32_t>& order, std::vector<int32_t>& order2) {
  for (int64_t i = 0; i < V; ++i) keys[i] = descending_key(row[i]), order[i] = (int32_t)i;
  for (int shift = 0; shift < 32; shift += 11) {
    uint32_t count[2049] = {0};
    for (int64_t i = 0; i < V; ++i) ++count[((keys[i] >> shift) & 2047u) + 1];
    for (int d = 0; d < 2048; ++d) count[d + 1] += count[d];
    for (int64_t i = 0; i < V; ++i) {
      uint32_t pos = count[(keys[i] >> shift) & 2047u]++;
      keys2[pos] = keys[i];
      order2[pos] = order[i];
    }
    keys.swap(keys2);
    order.swap(order2);
  }
}

}  // namespace

at::Tensor enrichment_scores(const at::Tensor& projection, const std::vector<TokenSet>& sets) {
  if (projection.dim() != 2) fail("enrichment_scores: projection must be [n_features, V]");
  const int64_t F = projection.size(0), V = projection.size(1), n_sets = (int64_t)sets.size();
  if (V >= (int64_t{1} << 31)) fail("enrichment_scores: vocabulary too large");
  for (const auto& s : sets)
    for (int64_t id : s.ids)
      if (id < 0 || id >= V) fail("token set '", s.name, "' has id ", id, " outside the vocabulary (", V, ")");
  at::Tensor P = projection.to(at::kFloat).contiguous();
  const float* x = P.data_ptr<float>();
  at::Tensor out = at::zeros({n_sets, F}, at::kDouble);
  double* o = out.data_ptr<double>();
  // The running sum falls linearly between two members of S and jumps by 1/|S| at each, so its largest
  // absolute value is at a member's rank r_j or just before it: with j members up to and including
  // rank r_j, S(r_j) = j/|S| - (r_j + 1 - j)/(V - |S|) and S(r_j - 1) = (j - 1)/|S| - (r_j - j + 1)/(V - |S|).
  // That is the walk of calculate_batch_enrichment_scores, evaluated where it can peak.
  at::parallel_for(0, F, 1, [&](int64_t f0, int64_t f1) {
    std::vector<uint32_t> keys(V), keys2(V);
    std::vector<int32_t> order(V), order2(V), rank(V);
    std::vector<int64_t> r;
    for (int64_t f = f0; f < f1; ++f) {
      rank_row(x + f * V, V, keys, keys2, order, order2);
      for (int64_t p = 0; p < V; ++p) rank[order[p]] = (int32_t)p;
      for (int64_t s = 0; s < n_sets; ++s) {
        const auto& ids = sets[s].ids;
        double k = (double)ids.size(), miss = (double)V - k;
        if (ids.empty()) {  // the walk only descends: -V/V
          o[s * F + f] = 1.0;
          continue;
        }
        r.resize(ids.size());
        for (size_t i = 0; i < ids.size(); ++i) r[i] = rank[ids[i]];
        std::sort(r.begin(), r.end());
        double best = 0;
        for (size_t j = 0; j < r.size(); ++j) {
          double jj = (double)(j + 1), rj = (double)r[j];
          double at = jj / k - (miss > 0 ? (rj + 1 - jj) / miss : 0.0);
          double before = r[j] > 0 ? (jj - 1) / k - (miss > 0 ? (rj - jj + 1) / miss : 0.0) : 0.0;
          best = std::max(best, std::max(std::abs(at), std::abs(before)));
        }
        o[s * F + f] = best;
      }
    }
  });
  return out;
}

namespace {

void check_sets(const std::vector<TokenSet>& sets, int64_t V) {
  for (const auto& s : sets)
    for (int64_t id : s.ids)
      if (id < 0 || id >= V) fail("token set '", s.name, "' has id ", id, " outside the vocabulary (", V, ")");
}

// The tensor route with each set's ids already on the projection's device (sent once per run).
at::Tensor scores_tensor(const at::Tensor& projection, const std::vector<TokenSet>& sets,
                         const std::vector<at::Tensor>& set_ids) {
  const int64_t F = projection.size(0), V = projection.size(1), n_sets = (int64_t)sets.size();
  auto dopts = at::TensorOptions().dtype(at::kDouble).device(projection.device());
  at::Tensor out = at::zeros({n_sets, F}, dopts);
  if (F == 0) return out;
  // Token ids by descending value, ties by ascending id (a stable sort keeps the ids' order; -0 == +0),
  // then each id's rank.
  at::Tensor order = std::get<1>(at::sort(projection.to(at::kFloat), /*stable=*/true, /*dim=*/1, /*descending=*/true));
  at::Tensor rank =
      at::empty_like(order).scatter_(1, order, at::arange(V, order.options()).unsqueeze(0).expand({F, V}));
  for (int64_t s = 0; s < n_sets; ++s) {
    const auto& ids = sets[s].ids;
    if (ids.empty()) {  // the walk only descends: -V/V
      out[s].fill_(1.0);
      continue;
    }
    double k = (double)ids.size(), miss = (double)V - k;
    at::Tensor r = std::get<0>(rank.index_select(1, set_ids[s]).sort(1)).to(at::kDouble);  // [F, k] ascending
    at::Tensor jj = at::arange(1, (int64_t)ids.size() + 1, dopts).unsqueeze(0);
    // S(r_j) and S(r_j - 1), as the radix route evaluates them (0 before a member at rank 0).
    at::Tensor at_r = jj / k, before = (jj - 1) / k;
    if (miss > 0) at_r = at_r - (r + 1 - jj) / miss, before = before - (r - jj + 1) / miss;
    before = at::where(r > 0, before, at::zeros({}, dopts));
    out[s].copy_(at::maximum(at_r.abs(), before.abs()).amax(1).clamp_min(0.0));
  }
  return out;
}

std::vector<at::Tensor> ids_on(const std::vector<TokenSet>& sets, const at::Device& device) {
  std::vector<at::Tensor> out;
  for (const auto& s : sets)
    out.push_back(at::tensor(s.ids.empty() ? std::vector<int64_t>{0} : s.ids, at::kLong).to(device));
  return out;
}

}  // namespace

at::Tensor enrichment_scores_tensor(const at::Tensor& projection, const std::vector<TokenSet>& sets) {
  if (projection.dim() != 2) fail("enrichment_scores: projection must be [n_features, V]");
  check_sets(sets, projection.size(1));
  at::NoGradGuard ng;
  return scores_tensor(projection, sets, ids_on(sets, projection.device()));
}

at::Tensor enrichment_scores(const at::Tensor& W_dec, const at::Tensor& W_U, const std::vector<int64_t>& features,
                             const std::vector<TokenSet>& sets, int64_t block, bool tensor_route) {
  if (block < 1) fail("the feature block size must be >= 1");
  at::NoGradGuard ng;
  at::Tensor Wd = W_dec.to(at::kFloat), Wu = W_U.to(Wd.device(), at::kFloat);
  bool on_device = !Wd.is_cpu() || tensor_route;
  if (on_device) check_sets(sets, Wu.size(1));
  std::vector<at::Tensor> set_ids = on_device ? ids_on(sets, Wd.device()) : std::vector<at::Tensor>{};
  at::Tensor out =
      at::empty({(int64_t)sets.size(), (int64_t)features.size()},
                at::TensorOptions().dtype(at::kDouble).device(on_device ? Wd.device() : at::Device(at::kCPU)));
  for (size_t b = 0; b < features.size(); b += block) {
    size_t e = std::min(features.size(), b + (size_t)block);
    std::vector<int64_t> part(features.begin() + b, features.begin() + e);
    for (int64_t f : part)
      if (f < 0 || f >= Wd.size(0)) fail("feature ", f, " is outside the SAE (d_sae ", Wd.size(0), ")");
    at::Tensor P = at::matmul(Wd.index_select(0, at::tensor(part, at::kLong).to(Wd.device())), Wu);
    out.slice(1, b, e).copy_(on_device ? scores_tensor(P, sets, set_ids) : enrichment_scores(P, sets));
  }
  return out.to(at::kCPU);  // the scores come back once
}

std::vector<int64_t> top_by(const std::vector<double>& v, int64_t n) {
  std::vector<int64_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
    if (std::isnan(v[a]) || std::isnan(v[b])) return !std::isnan(v[a]) && std::isnan(v[b]);
    return v[a] > v[b];
  });
  if (n >= 0 && (size_t)n < idx.size()) idx.resize(n);
  return idx;
}

double neg_log1m(double x) { return -std::log(std::max(1.0 - x, 1e-15)); }

}  // namespace mechscope::analysis::sae
