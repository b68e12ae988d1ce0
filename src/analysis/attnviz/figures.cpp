#include "analysis/attnviz/figures.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

#include <cstdio>

namespace mechscope::analysis::attnviz {

using namespace mechscope::report;

namespace {

// AttentionViz's colours: queries green, keys pink.
const Rgb kQuery{0.30, 0.69, 0.29}, kKey{0.91, 0.33, 0.62}, kLine{0.55, 0.55, 0.55}, kRed{0.86, 0.08, 0.08};

std::string fmt(double v, int digits = 3) {
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

std::vector<double> to_vec(const at::Tensor& t) {
  at::Tensor c = t.to(at::kDouble).contiguous().flatten();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// Queries and keys as two scatters, under them the lines (width ∝ attention; highlighted top pairs red).
void fill_panel(Panel& p, const HeadView& v, bool labels, double max_width) {
  Segments grey, red;
  grey.color = kLine, red.color = kRed;
  grey.alpha = 0.45, red.alpha = 0.9;
  red.name = "highlighted pair, top key";
  for (size_t i = 0; i < v.from.size(); ++i) {
    Segments& s = v.red[i] ? red : grey;
    s.x0.push_back(v.x[v.from[i]]), s.y0.push_back(v.y[v.from[i]]);
    s.x1.push_back(v.x[v.to[i]]), s.y1.push_back(v.y[v.to[i]]);
    s.widths.push_back(0.2 + max_width * v.attention[i]);
    s.hover.push_back(v.line_hover[i]);
  }
  if (!grey.x0.empty()) p.series.push_back(grey);
  if (!red.x0.empty()) p.series.push_back(red);
  for (int key = 0; key < 2; ++key) {
    Scatter s;
    s.name = key ? "keys" : "queries";
    s.color = key ? kKey : kQuery;
    s.marker = key ? Marker::Square : Marker::Circle;
    s.size = labels ? 3.2 : 2.2;
    for (size_t i = 0; i < v.x.size(); ++i) {
      if (v.key[i] != (key == 1)) continue;
      s.x.push_back(v.x[i]), s.y.push_back(v.y[i]);
      s.hover.push_back(v.hover[i]);
      if (labels) s.labels.push_back(v.label[i]);
    }
    p.series.push_back(s);
  }
}

}  // namespace

HeadView make_view(const Extracted& ex, size_t li, int64_t h, const PointSet& ps, const at::Tensor& coords_in,
                   const std::vector<std::vector<std::string>>& tokens, const LineRule& rule,
                   const std::vector<Highlight>& highlights, const std::string& title) {
  HeadView v;
  v.title = title;
  at::Tensor coords = coords_in.to(at::kDouble).contiguous();
  auto C = coords.accessor<double, 2>();
  at::Tensor attn = ex.pattern[li].select(1, h).contiguous();
  auto A = attn.accessor<double, 3>();
  std::map<std::tuple<int64_t, int64_t, bool>, size_t> index;
  for (size_t i = 0; i < ps.meta.size(); ++i) {
    const auto& m = ps.meta[i];
    if (m.layer_index != li || m.head != h) continue;
    index[{m.text, m.pos, m.key}] = v.x.size();
    v.x.push_back(C[i][0]), v.y.push_back(coords.size(1) > 1 ? C[i][1] : 0.0);
    v.key.push_back(m.key);
    const std::string& tok = tokens[m.text][m.pos];
    v.label.push_back(tok);
    std::string hv = std::string(m.key ? "key" : "query") + " '" + tok + "'<br>text " + std::to_string(m.text + 1) +
                     ", position " + std::to_string(m.pos);
    if (m.key) {
      double sum = 0;  // attention this key receives, summed over the text's queries
      for (int64_t q = 0; q < ex.lengths[m.text]; ++q) sum += A[m.text][q][m.pos];
      hv += "<br>attention received (sum over queries) " + fmt(sum);
    }
    v.hover.push_back(hv);
  }
  auto is_pair = [&](int64_t t, int64_t q, int64_t k) {
    for (auto& hl : highlights) {
      auto& qs = hl.query_tokens[t];
      auto& ks = hl.key_tokens[t];
      if (std::find(qs.begin(), qs.end(), q) != qs.end() && std::find(ks.begin(), ks.end(), k) != ks.end()) return true;
    }
    return false;
  };
  for (auto& l : links(attn, ex.allowed(li), ex.lengths, rule)) {
    v.from.push_back(index.at({l.text, l.query, false}));
    v.to.push_back(index.at({l.text, l.key, true}));
    v.attention.push_back(l.attention);
    v.red.push_back(l.top && is_pair(l.text, l.query, l.key));
    v.line_hover.push_back("'" + tokens[l.text][l.query] + "' → '" + tokens[l.text][l.key] + "'<br>text " +
                           std::to_string(l.text + 1) + ", positions " + std::to_string(l.query) + " → " +
                           std::to_string(l.key) + "<br>attention " + fmt(l.attention));
    // The query's hover names its top key, as AttentionViz's tooltip does.
    if (l.top) v.hover[v.from.back()] += "<br>top key '" + tokens[l.text][l.key] + "' (" + fmt(l.attention) + ")";
  }
  return v;
}

Figure joint_figure(const std::string& id, const std::string& title, const HeadView& v, const std::string& axis) {
  Figure f = single_panel(id, title, 7.5, 6.2);
  f.caption =
      "Queries (green) and keys (pink) in one joint embedding; each line joins a query to a key it attends to, "
      "its width proportional to the attention. Red: a highlighted pair where the key is the query's top key.";
  Panel& p = f.panels[0];
  p.x.label = axis + " 1", p.y.label = axis + " 2";
  fill_panel(p, v, v.x.size() <= 300, 3.0);
  p.legend = Legend::Best;
  return f;
}

Figure grid_figure(const std::string& id, const std::string& title, const std::vector<HeadView>& heads,
                   const std::string& axis, bool shared) {
  int n = (int)heads.size();
  int cols = (int)std::ceil(std::sqrt((double)n)), rows = (n + cols - 1) / cols;
  Figure f = grid(id, title, rows, cols, std::min(3.0 * cols, 18.0), std::min(3.0 * rows, 18.0));
  f.share_x = f.share_y = shared;
  f.caption =
      "AttentionViz's matrix view: every head of the layer, queries green, keys pink, lines to the keys each query "
      "attends to.";
  for (int i = 0; i < n; ++i) {
    Panel& p = f.panels[i];
    p.title = heads[i].title;
    fill_panel(p, heads[i], false, 1.5);
    p.legend = Legend::None;
    p.x.label = i / cols == rows - 1 ? axis + " 1" : "";
    p.y.label = i % cols == 0 ? axis + " 2" : "";
  }
  return f;
}

Figure dot_distance_figure(const std::string& id, const std::string& title, const at::Tensor& q0, const at::Tensor& k0,
                           const at::Tensor& q1, const at::Tensor& k1, const at::Tensor& attn,
                           const at::Tensor& allowed) {
  Figure f = grid(id, title, 1, 2, 10, 4.4);
  f.caption =
      "AttentionViz Fig. 4(b): each allowed query-key pair's dot product against their Euclidean distance, before and "
      "after normalisation; r_w is the attention-weighted correlation of q·k with -distance (the paper's criterion).";
  int64_t total = allowed.sum().item<int64_t>();
  int64_t stride = std::max<int64_t>(1, (total + 2999) / 3000);  // at most ~3000 points per panel
  for (int s = 0; s < 2; ++s) {
    const at::Tensor& q = s ? q1 : q0;
    const at::Tensor& k = s ? k1 : k0;
    at::Tensor dot = at::matmul(q, k.transpose(1, 2)).masked_select(allowed);
    at::Tensor dist = at::cdist(q, k).masked_select(allowed);
    at::Tensor w = attn.masked_select(allowed);
    at::Tensor pick = at::arange(0, dot.numel(), stride, at::kLong);
    Scatter sc;
    sc.x = to_vec(dot.index_select(0, pick));
    sc.y = to_vec(dist.index_select(0, pick));
    sc.c = to_vec(w.index_select(0, pick));
    sc.cmap = "Viridis";
    sc.colorbar_title = "attention";
    sc.size = 2.2;
    sc.alpha = 0.7;
    Panel& p = f.panels[s];
    p.series.push_back(sc);
    p.title = std::string(s ? "normalised" : "raw") + ": r_w = " + fmt(weighted_corr(q, k, attn, allowed), 3);
    p.x.label = "q·k";
    p.y.label = "|q - k|";
  }
  return f;
}

}  // namespace mechscope::analysis::attnviz
