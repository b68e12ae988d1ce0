#include "analysis/sae/tsea_figures.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "analysis/sae/tsea.h"
#include "report/colormap.h"

namespace mechscope::analysis::sae {

using namespace mechscope::report;

namespace {
std::vector<double> row_scores(const at::Tensor& scores, size_t r) {
  at::Tensor t = scores[(int64_t)r].to(at::kDouble).contiguous();
  std::vector<double> v(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
  for (auto& x : v) x = neg_log1m(x);
  return v;
}
}  // namespace

Figure manhattan_figure(const at::Tensor& scores, const std::vector<TokenSet>& sets, const std::vector<size_t>& rows,
                        const std::vector<int64_t>& features, double label_threshold, int top_n, const std::string& id,
                        const std::string& title) {
  int n = (int)rows.size();
  Figure f = grid(id, title, 1, std::max(1, n), std::min(18.0, 3.2 * n + 1.5), 4.2);
  f.share_y = true;
  for (int k = 0; k < n; ++k) {
    std::vector<double> y = row_scores(scores, rows[k]);
    Scatter s;
    s.x.assign(features.begin(), features.end());
    s.y = y;
    s.color = cycle_color(k);
    s.size = 1.5;
    s.name = sets[rows[k]].name;
    s.labels.assign(y.size(), "");
    std::vector<size_t> order(y.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return y[a] > y[b]; });
    for (int t = 0; t < top_n && t < (int)order.size(); ++t)
      if (y[order[t]] > label_threshold) s.labels[order[t]] = std::to_string(features[order[t]]);
    for (size_t i = 0; i < y.size(); ++i) s.hover.push_back("feature " + std::to_string(features[i]));
    Panel& p = f.panels[k];
    p.title = sets[rows[k]].name;
    p.series.push_back(s);
    p.x.label = "Feature";
    if (k == 0) p.y.label = "Enrichment Score";
    p.legend = Legend::None;
  }
  f.caption = "-log(1 - enrichment score) per feature (features ranked by skewness); the top " + std::to_string(top_n) +
              " of each set labelled when above " + std::to_string(label_threshold).substr(0, 4) + ".";
  return f;
}

Figure pair_figure(const at::Tensor& scores, const std::vector<TokenSet>& sets, size_t a, size_t b,
                   const std::vector<int64_t>& features, const std::string& id) {
  std::string A = sets[a].name, B = sets[b].name;
  Figure f = grid(id, "Enrichment Scores for " + A + " vs " + B, 2, 2, 8, 8);
  std::vector<double> x = row_scores(scores, a), y = row_scores(scores, b);
  Histogram hx;
  hx.values = x;
  f.panels[0].series.push_back(hx);
  f.panels[0].x.label = A;
  f.panels[0].y.label = "count";
  Text t;
  t.lines = {std::to_string(features.size()) + " features",
             "x: " + A + " (" + std::to_string(sets[a].ids.size()) + " tokens)",
             "y: " + B + " (" + std::to_string(sets[b].ids.size()) + " tokens)"};
  f.panels[1].series.push_back(t);
  Scatter s;
  s.x = x;
  s.y = y;
  s.size = 1.5;
  for (int64_t feat : features) s.hover.push_back("feature " + std::to_string(feat));
  f.panels[2].series.push_back(s);
  f.panels[2].x.label = A;
  f.panels[2].y.label = B;
  Histogram hy;
  hy.values = y;
  f.panels[3].series.push_back(hy);
  f.panels[3].x.label = B;
  f.panels[3].y.label = "count";
  f.caption = "-log(1 - score) of every feature for the two sets, with the marginal distributions.";
  return f;
}

Figure projection_by_category_figure(const at::Tensor& projection, const TokenSet& set, int64_t feature, double score,
                                     const std::string& id) {
  at::Tensor p = projection.to(at::kDouble).contiguous();
  const double* v = p.data_ptr<double>();
  int64_t V = p.numel();
  std::vector<uint8_t> in(V, 0);
  for (int64_t i : set.ids)
    if (i < V) in[i] = 1;
  Histogram hin, hout;
  for (int64_t i = 0; i < V; ++i) (in[i] ? hin : hout).values.push_back(v[i]);
  hin.name = set.name + " = True";
  hout.name = set.name + " = False";
  hin.color = cycle_color(1);
  hout.color = cycle_color(0);
  hin.bins = hout.bins = 60;
  char title[256];
  std::snprintf(title, sizeof title, "W_dec_%lld, W_U, %s: %2.2f", (long long)feature, set.name.c_str(),
                neg_log1m(score));
  Figure f = single_panel(id, title, 8, 4);
  f.panels[0].series.push_back(hout);
  if (!hin.values.empty()) f.panels[0].series.push_back(hin);
  f.panels[0].x.label = "W_U W_dec[" + std::to_string(feature) + "]";
  f.panels[0].y.label = "count";
  f.caption = "Logit weights of the tokens in and out of the set (overlaid counts, as the seed's log_y=False call).";
  return f;
}

}  // namespace mechscope::analysis::sae
