#include "analysis/patching/figures.h"

#include <algorithm>
#include <cmath>

namespace mechscope::analysis::patching {

using namespace mechscope::report;

namespace {

std::vector<double> to_vec(const at::Tensor& t) {
  at::Tensor c = t.to(at::Device(at::kCPU), at::kDouble).contiguous().flatten();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

std::vector<std::string> numbered(const std::string& prefix, int64_t n) {
  std::vector<std::string> out;
  for (int64_t i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

std::string pretty(const std::string& target) {
  if (target == "resid_pre") return "residual stream (resid_pre)";
  if (target == "resid_mid") return "residual stream (resid_mid)";
  if (target == "resid_post") return "residual stream (resid_post)";
  if (target == "attn_out") return "attention output";
  if (target == "mlp_out") return "MLP output";
  if (target == "z") return "head output z, by position";
  if (target == "z_all_pos") return "head output z, all positions";
  if (target == "pattern") return "attention pattern, by destination";
  if (target == "pattern_all_pos") return "attention pattern, all positions";
  if (target.size() >= 8 && target.compare(target.size() - 8, 8, "_all_pos") == 0)
    return "head " + target.substr(0, target.size() - 8) + ", all positions";
  return "head " + target + ", by position";
}

}  // namespace

Figure heatmap_figure(const std::string& id, const std::string& target, const at::Tensor& values,
                      const std::vector<std::string>& axes, const FigureLabels& labels) {
  int64_t L = values.size(0);
  Heatmap h;
  h.cmap = "RdBu";
  h.centered = true;
  h.colorbar_title = labels.value_name;
  h.value_name = labels.value_name;
  std::string xlabel, ylabel = "layer";
  at::Tensor grid;
  if (axes == std::vector<std::string>{"layer", "pos"}) {
    grid = values;
    h.row_labels = numbered("", L);
    h.col_labels = labels.positions;
    h.row_name = "layer", h.col_name = "position";
    xlabel = "position";
  } else if (axes == std::vector<std::string>{"layer", "head"}) {
    grid = values;
    h.row_labels = numbered("", L);
    h.col_labels = numbered("H", values.size(1));
    h.row_name = "layer", h.col_name = "head";
    xlabel = "head";
  } else {
    // [layer, pos, head] or [layer, head, dest_pos]: one row per (layer, head), positions across.
    grid = axes[1] == "pos" ? values.permute({0, 2, 1}) : values;
    int64_t H = grid.size(1);
    grid = grid.reshape({L * H, grid.size(2)});
    for (int64_t l = 0; l < L; ++l)
      for (int64_t k = 0; k < H; ++k) h.row_labels.push_back("L" + std::to_string(l) + " H" + std::to_string(k));
    h.col_labels = labels.positions;
    h.row_name = "layer.head", h.col_name = axes[1] == "pos" ? "position" : "destination";
    xlabel = axes[1] == "pos" ? "position" : "destination position";
    ylabel = "layer, head";
  }
  h.rows = (size_t)grid.size(0);
  h.cols = (size_t)grid.size(1);
  h.z = to_vec(grid);
  h.cell_text = h.rows * h.cols <= 200;
  double width = std::clamp(2.2 + 0.42 * (double)h.cols, 5.0, 16.0);
  double height = std::clamp(1.6 + 0.28 * (double)h.rows, 3.2, 30.0);
  Figure f = single_panel(id, labels.title_prefix + ": " + pretty(target), width, height);
  f.panels[0].x.label = xlabel;
  f.panels[0].y.label = ylabel;
  f.panels[0].series.push_back(h);
  return f;
}

Figure surface_figure(const std::string& id, const std::string& target, const at::Tensor& values,
                      const FigureLabels& labels) {
  Figure f = single_panel(id, labels.title_prefix + " effect surface: " + pretty(target), 7, 5.6);
  Surface s;
  s.rows = (size_t)values.size(0);
  s.cols = (size_t)values.size(1);
  s.z = to_vec(values);
  s.cmap = "RdBu";
  double m = std::max(1e-12, values.abs().max().item<double>());
  s.vmin = -m, s.vmax = m;
  s.x_title = "position";
  s.y_title = "layer";
  s.z_title = labels.value_name;
  f.panels[0].series.push_back(s);
  f.caption = "x: position, y: layer, z: " + labels.value_name + " (seed 002's 3-D view).";
  return f;
}

Figure layer_animation(const std::string& id, const std::string& target, const at::Tensor& values,
                       const FigureLabels& labels) {
  int64_t L = values.size(0), n = values.size(1);
  Figure f = single_panel(id, labels.title_prefix + " per position, layer by layer: " + pretty(target),
                          std::clamp(2.0 + 0.45 * (double)n, 6.0, 14.0), 3.8);
  f.panels[0].x.label = "position";
  f.panels[0].x.integer = true;
  f.panels[0].y.label = labels.value_name;
  f.panels[0].refs.push_back({RefLine::Horizontal, 0, {0.3, 0.3, 0.3}, Dash::Solid, ""});
  auto v = to_vec(values);
  for (int64_t l = 0; l < L; ++l) {
    Bar b;
    b.categories = labels.positions;
    b.values.assign(v.begin() + l * n, v.begin() + (l + 1) * n);
    b.cmap = "RdBu";
    b.centered = true;
    b.value_labels = false;
    f.frames.push_back({"layer " + std::to_string(l), {b}});
  }
  f.caption = "index.html: slider and play button through the layers; PNG: small multiples of the frames.";
  return f;
}

Figure attribution_scatter(const std::string& id, const std::vector<std::string>& targets,
                           const std::vector<at::Tensor>& exact, const std::vector<at::Tensor>& attribution,
                           const std::string& value_name) {
  int cols = (int)std::min<size_t>(3, targets.size());
  int rows = (int)((targets.size() + cols - 1) / cols);
  Figure f = grid(id, "Attribution patching against exact activation patching", rows, cols, 3.6 * cols, 3.4 * rows);
  for (size_t i = 0; i < targets.size(); ++i) {
    Panel& p = f.panels[i];
    p.title = targets[i];
    Scatter s;
    s.x = to_vec(exact[i]);
    s.y = to_vec(attribution[i]);
    s.size = 2.5;
    s.name = targets[i];
    double corr = 0;
    if (s.x.size() > 1) {
      at::Tensor a = exact[i].flatten().to(at::kDouble), b = attribution[i].flatten().to(at::kDouble);
      a = a - a.mean(), b = b - b.mean();
      double den = std::sqrt((a * a).sum().item<double>() * (b * b).sum().item<double>());
      corr = den > 0 ? (a * b).sum().item<double>() / den : 0;
    }
    p.title = targets[i] + "  (r = " + std::to_string(corr).substr(0, 5) + ")";
    p.series.push_back(s);
    p.refs.push_back({RefLine::Diagonal, 0, {0.5, 0.5, 0.5}, Dash::Dashed, ""});
    p.x.label = "exact " + value_name;
    p.y.label = "attribution " + value_name;
    p.legend = Legend::None;
  }
  f.caption = "Each point is one cell of a target; on the dashed line the linear approximation is exact.";
  return f;
}

}  // namespace mechscope::analysis::patching
