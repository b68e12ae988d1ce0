#include "analysis/sae/stats_figures.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "report/colormap.h"

namespace mechscope::analysis::sae {

using namespace mechscope::report;

namespace {

std::vector<size_t> all_rows(const StatsTable& t, const std::vector<size_t>& rows) {
  if (!rows.empty()) return rows;
  std::vector<size_t> r(t.size());
  for (size_t i = 0; i < r.size(); ++i) r[i] = i;
  return r;
}

std::vector<double> column(const StatsTable& t, const std::vector<size_t>& rows, const std::string& c,
                           bool log10v = false) {
  std::vector<double> v;
  for (size_t r : rows) {
    double x = t.value(c, r);
    if (log10v) x = std::log10(x);
    if (std::isfinite(x)) v.push_back(x);
  }
  return v;
}

// The seed's nbins=1000 suits 24k features; a small SAE gets automatic bins instead of 1000 empty ones.
int bins_for(size_t n) { return n >= 4000 ? 1000 : 0; }

std::map<int, std::vector<size_t>> rows_by_layer(const StatsTable& t) {
  std::map<int, std::vector<size_t>> m;
  for (size_t r = 0; r < t.size(); ++r) m[t.layer[r]].push_back(r);
  return m;
}

Scatter feature_scatter(const StatsTable& t, const std::vector<size_t>& rows) {
  Scatter s;
  for (size_t r : rows) {
    if (!(t.kurtosis[r] > 0) || !std::isfinite(t.skewness[r])) continue;
    s.x.push_back(t.skewness[r]);
    s.y.push_back(t.kurtosis[r]);
    s.c.push_back(t.std[r]);
    s.hover.push_back("feature " + std::to_string(t.feature[r]));
  }
  s.cmap = "Portland";
  s.colorbar_title = "Standard Deviation";
  s.size = 1.5;
  s.alpha = 0.7;
  return s;
}

}  // namespace

Figure skewness_histogram(const StatsTable& t, const std::vector<size_t>& rows, const std::string& id,
                          const std::string& title) {
  Figure f = single_panel(id, title, 8, 3.2);
  Histogram h;
  h.values = column(t, all_rows(t, rows), "skewness");
  h.bins = bins_for(h.values.size());
  f.panels[0].series.push_back(h);
  f.panels[0].x.label = "skewness";
  f.panels[0].y.label = "count";
  return f;
}

Figure log_kurtosis_histogram(const StatsTable& t, const std::vector<size_t>& rows, const std::string& id,
                              const std::string& title) {
  Figure f = single_panel(id, title, 8, 3.2);
  Histogram h;
  h.values = column(t, all_rows(t, rows), "kurtosis", true);
  h.bins = bins_for(h.values.size());
  f.panels[0].series.push_back(h);
  f.panels[0].x.label = "log10(kurtosis)";
  f.panels[0].y.label = "count";
  return f;
}

Figure skew_kurtosis_scatter(const StatsTable& t, const std::vector<size_t>& rows, const std::string& id,
                             const std::string& title) {
  Figure f = single_panel(id, title, 8, 5);
  f.panels[0].series.push_back(feature_scatter(t, all_rows(t, rows)));
  f.panels[0].x.label = "Skewness";
  f.panels[0].y.label = "Kurtosis";
  f.panels[0].y.log = true;
  return f;
}

double quantile(std::vector<double> v, double p) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  double pos = p * (double)(v.size() - 1);
  size_t lo = (size_t)std::floor(pos), hi = std::min(v.size() - 1, lo + 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - (double)lo);
}

Figure percentiles_by_layer(const StatsTable& t, const std::string& col, bool log_y, const std::string& id,
                            const std::string& title) {
  static const double ps[] = {0.01, 0.05, 0.10, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99};
  static const char* names[] = {"1%", "5%", "10%", "25%", "50%", "75%", "90%", "95%", "99%"};
  auto by = rows_by_layer(t);
  std::vector<double> layers;
  std::vector<std::vector<double>> q(9);
  for (auto& [layer, rows] : by) {
    layers.push_back(layer);
    std::vector<double> v = column(t, rows, col);
    for (int i = 0; i < 9; ++i) q[i].push_back(quantile(v, ps[i]));
  }
  Figure f = single_panel(id, title, 8, 6);
  const Colormap& turbo = colormap("Turbo");
  for (int i = 0; i < 9; ++i) {
    Rgb c = turbo.at(i / 12.0);  // plotly's Turbo list has 13 colours; the seed's nine columns take the first nine
    if (i > 0) {
      Line band;
      band.x = layers;
      for (size_t k = 0; k < layers.size(); ++k) {
        band.y.push_back((q[i][k] + q[i - 1][k]) / 2);
        band.err.push_back((q[i][k] - q[i - 1][k]) / 2);
      }
      band.color = c;
      band.width = 0;
      f.panels[0].series.push_back(band);
    }
    Line l;
    l.x = layers;
    l.y = q[i];
    l.name = names[i];
    l.color = c;
    l.marker = Marker::Circle;
    f.panels[0].series.push_back(l);
  }
  f.panels[0].x.label = "layer";
  f.panels[0].x.integer = true;
  f.panels[0].y.label = col;
  f.panels[0].y.log = log_y;
  f.panels[0].legend = Legend::UpperRight;
  f.caption = "Percentiles 1-99% of " + col + " by layer; the bands between successive percentiles are shaded.";
  return f;
}

Figure box_by_layer(const StatsTable& t, const std::string& col, bool log_y, const std::string& id,
                    const std::string& title) {
  auto by = rows_by_layer(t);
  Figure f = single_panel(id, title, 12, 6);
  Rgb a{5 / 255.0, 200 / 255.0, 200 / 255.0}, b{200 / 255.0, 10 / 255.0, 10 / 255.0};
  BoxPlot box;
  size_t i = 0;
  for (auto& [layer, rows] : by) {
    double u = (double)std::min<size_t>(i++, 12) / 12.0;  // n_colors(..., 13): colour i of 13
    std::vector<double> v = column(t, rows, col);
    if (log_y) v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !(x > 0); }), v.end());
    if (v.empty()) continue;
    box.x.push_back(layer);
    box.samples.push_back(std::move(v));
    box.colors.push_back({a.r + (b.r - a.r) * u, a.g + (b.g - a.g) * u, a.b + (b.b - a.b) * u});
    box.hover.push_back("layer " + std::to_string(layer));
  }
  f.panels[0].series.push_back(box);
  f.panels[0].x.label = "Layer";
  f.panels[0].x.integer = true;
  f.panels[0].y.label = log_y ? "Log " + col : col;
  f.panels[0].y.log = log_y;
  f.panels[0].legend = Legend::None;
  f.caption =
      "Boxes: quartiles and median; whiskers: the furthest values within 1.5 IQR of the box; points: the values "
      "beyond (plotly's box, as the seed's px.box).";
  return f;
}

Figure scatter_by_layer(const StatsTable& t, double min_log_sparsity, const std::string& id, const std::string& title) {
  Figure f = single_panel(id, title, 8, 6);
  for (auto& [layer, rows] : rows_by_layer(t)) {
    std::vector<size_t> keep;
    for (size_t r : rows)
      if (std::isnan(t.log_feature_sparsity[r]) || t.log_feature_sparsity[r] >= min_log_sparsity) keep.push_back(r);
    Scatter s = feature_scatter(t, keep);
    s.size = 2.5;
    f.frames.push_back({"layer " + std::to_string(layer), {s}});
  }
  f.panels[0].x.label = "skewness";
  f.panels[0].y.label = "kurtosis";
  f.panels[0].y.log = true;
  f.caption = "Features with log10 sparsity >= " + std::to_string(min_log_sparsity).substr(0, 5) +
              ", coloured by std (Portland). index.html: slider and play button through the layers.";
  return f;
}

}  // namespace mechscope::analysis::sae
