#include "report/figure.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "report/ticks.h"

namespace mechscope::report {

Figure single_panel(const std::string& id, const std::string& title, double width, double height) {
  Figure f;
  f.id = id;
  f.title = title;
  f.width = width;
  f.height = height;
  f.panels.resize(1);
  return f;
}

Figure grid(const std::string& id, const std::string& title, int rows, int cols, double width, double height) {
  Figure f = single_panel(id, title, width, height);
  f.rows = rows;
  f.cols = cols;
  f.panels.resize(size_t(rows) * cols);
  return f;
}

double median(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  if (v.empty()) return kAuto;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::pair<double, double> color_range(const std::vector<double>& v, double vmin, double vmax, bool centered,
                                      double center) {
  double lo = INFINITY, hi = -INFINITY;
  for (double x : v)
    if (std::isfinite(x)) lo = std::min(lo, x), hi = std::max(hi, x);
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  if (!std::isnan(vmin)) lo = vmin;
  if (!std::isnan(vmax)) hi = vmax;
  if (centered) {
    double r = std::max(std::abs(lo - center), std::abs(hi - center));
    if (r == 0) r = 1;
    lo = center - r, hi = center + r;
  }
  if (!(hi > lo)) hi = lo + 1;
  return {lo, hi};
}

BoxStats box_stats(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  std::sort(v.begin(), v.end());
  BoxStats b;
  b.n = v.size();
  if (v.empty()) return b;
  const double n = double(v.size());
  auto interp = [&](double p) {  // plotly's Lib.interp
    double pos = p * n - 0.5;
    if (pos < 0) return v.front();
    if (pos > n - 1) return v.back();
    double lo = std::floor(pos), frac = pos - lo;
    return frac * v[size_t(std::ceil(pos))] + (1 - frac) * v[size_t(lo)];
  };
  b.q1 = interp(0.25), b.median = interp(0.5), b.q3 = interp(0.75);
  double lo_lim = 2.5 * b.q1 - 1.5 * b.q3, hi_lim = 2.5 * b.q3 - 1.5 * b.q1;
  auto first_ge = std::lower_bound(v.begin(), v.end(), lo_lim);
  auto last_le = std::upper_bound(v.begin(), v.end(), hi_lim);
  b.lower_fence = std::min(b.q1, first_ge == v.end() ? v.back() : *first_ge);
  b.upper_fence = std::max(b.q3, last_le == v.begin() ? v.front() : *(last_le - 1));
  for (double x : v)
    if (x < b.lower_fence || x > b.upper_fence) b.outliers.push_back(x);
  return b;
}

Binned histogram_bins(const Histogram& h) {
  std::vector<double> v;
  for (double x : h.values)
    if (std::isfinite(x)) v.push_back(x);
  Binned b;
  if (v.empty()) {
    b.edges = {0, 1};
    b.counts = {0};
    return b;
  }
  std::sort(v.begin(), v.end());
  double lo = v.front(), hi = v.back();
  bool integers = all_whole(v);
  if (h.bins == 0 && integers && hi - lo <= 200) {
    // Integer data (best layer, token count): one bar per value, centred on it.
    for (double e = lo - 0.5; e <= hi + 0.5 + 1e-9; e += 1) b.edges.push_back(e);
  } else {
    int n = h.bins;
    if (n <= 0) {
      // numpy's "auto": the larger of Sturges and Freedman–Diaconis.
      double sturges = std::ceil(std::log2(double(v.size()))) + 1;
      double iqr = v[size_t(0.75 * (v.size() - 1))] - v[size_t(0.25 * (v.size() - 1))];
      double fd_width = 2 * iqr / std::cbrt(double(v.size()));
      double fd = fd_width > 0 ? std::ceil((hi - lo) / fd_width) : 1;
      n = int(std::clamp(std::max(sturges, fd), 1.0, 100.0));
    }
    if (hi == lo) lo -= 0.5, hi += 0.5;
    for (int i = 0; i <= n; i++) b.edges.push_back(lo + (hi - lo) * i / n);
  }
  size_t nb = b.edges.size() - 1;
  b.counts.assign(nb, 0);
  for (double x : v) {
    size_t i = size_t(std::upper_bound(b.edges.begin(), b.edges.end(), x) - b.edges.begin());
    i = i == 0 ? 0 : std::min(i - 1, nb - 1);
    b.counts[i] += 1;
  }
  if (h.density)
    for (size_t i = 0; i < nb; i++) b.counts[i] /= v.size() * (b.edges[i + 1] - b.edges[i]);
  return b;
}

namespace {

void check_id(const std::string& id) {
  if (id.empty()) fail("figure id is empty (it names the files and the anchor in index.html)");
  for (char c : id)
    if (!(std::isalnum((unsigned char)c) || c == '_' || c == '-'))
      fail("figure id '", id, "' may only contain letters, digits, '_' and '-'");
}

void check_series(const std::string& where, const Series& s) {
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, Heatmap>) {
          if (v.z.size() != v.rows * v.cols)
            fail(where, ": heatmap has ", v.z.size(), " values for ", v.rows, " x ", v.cols, " cells");
          if (!v.row_labels.empty() && v.row_labels.size() != v.rows)
            fail(where, ": heatmap has ", v.row_labels.size(), " row labels for ", v.rows, " rows");
          if (!v.col_labels.empty() && v.col_labels.size() != v.cols)
            fail(where, ": heatmap has ", v.col_labels.size(), " column labels for ", v.cols, " columns");
          colormap(v.cmap);
        } else if constexpr (std::is_same_v<T, Line>) {
          if (v.x.size() != v.y.size()) fail(where, ": line has ", v.x.size(), " x and ", v.y.size(), " y values");
          if (!v.err.empty() && v.err.size() != v.y.size())
            fail(where, ": line has ", v.err.size(), " error values for ", v.y.size(), " points");
        } else if constexpr (std::is_same_v<T, Scatter>) {
          if (v.x.size() != v.y.size()) fail(where, ": scatter has ", v.x.size(), " x and ", v.y.size(), " y values");
          if (!v.c.empty() && v.c.size() != v.x.size())
            fail(where, ": scatter has ", v.c.size(), " colour values for ", v.x.size(), " points");
          if (!v.labels.empty() && v.labels.size() != v.x.size())
            fail(where, ": scatter has ", v.labels.size(), " labels for ", v.x.size(), " points");
          if (!v.hover.empty() && v.hover.size() != v.x.size())
            fail(where, ": scatter has ", v.hover.size(), " hover texts for ", v.x.size(), " points");
          colormap(v.cmap);
        } else if constexpr (std::is_same_v<T, Bar>) {
          if (v.categories.size() != v.values.size())
            fail(where, ": bar chart has ", v.categories.size(), " categories and ", v.values.size(), " values");
          if (v.err_minus.size() != v.err_plus.size() || (!v.err_plus.empty() && v.err_plus.size() != v.values.size()))
            fail(where, ": bar chart has ", v.err_minus.size(), " lower and ", v.err_plus.size(),
                 " upper error bars for ", v.values.size(), " bars");
          if (!v.cmap.empty()) colormap(v.cmap);
        } else if constexpr (std::is_same_v<T, Segments>) {
          size_t n = v.x0.size();
          if (v.y0.size() != n || v.x1.size() != n || v.y1.size() != n)
            fail(where, ": segments have ", v.x0.size(), " x0, ", v.y0.size(), " y0, ", v.x1.size(), " x1 and ",
                 v.y1.size(), " y1 values");
          if (!v.widths.empty() && v.widths.size() != n)
            fail(where, ": segments have ", v.widths.size(), " widths for ", n, " segments");
          if (!v.colors.empty() && v.colors.size() != n)
            fail(where, ": segments have ", v.colors.size(), " colours for ", n, " segments");
          if (!v.hover.empty() && v.hover.size() != n)
            fail(where, ": segments have ", v.hover.size(), " hover texts for ", n, " segments");
          for (double w : v.widths)
            if (!(w >= 0 && std::isfinite(w))) fail(where, ": segment width ", w, " (expected a finite width >= 0)");
        } else if constexpr (std::is_same_v<T, BoxPlot>) {
          if (v.samples.size() != v.x.size())
            fail(where, ": box plot has ", v.samples.size(), " samples for ", v.x.size(), " positions");
          if (!v.colors.empty() && v.colors.size() != v.x.size())
            fail(where, ": box plot has ", v.colors.size(), " colours for ", v.x.size(), " boxes");
          if (!v.hover.empty() && v.hover.size() != v.x.size())
            fail(where, ": box plot has ", v.hover.size(), " hover texts for ", v.x.size(), " boxes");
          if (!(v.width > 0 && std::isfinite(v.width)))
            fail(where, ": box width ", v.width, " (expected a finite width > 0)");
        } else if constexpr (std::is_same_v<T, Surface>) {
          if (v.z.size() != v.rows * v.cols)
            fail(where, ": surface has ", v.z.size(), " values for ", v.rows, " x ", v.cols, " grid points");
          if (v.rows < 2 || v.cols < 2) fail(where, ": surface needs at least 2 x 2 grid points");
          if (!v.x.empty() && v.x.size() != v.cols)
            fail(where, ": surface has ", v.x.size(), " x for ", v.cols, " columns");
          if (!v.y.empty() && v.y.size() != v.rows)
            fail(where, ": surface has ", v.y.size(), " y for ", v.rows, " rows");
          colormap(v.cmap);
        }
      },
      s);
}

}  // namespace

void validate(const Figure& fig) {
  check_id(fig.id);
  if (fig.rows < 1 || fig.cols < 1) fail("figure '", fig.id, "': grid is ", fig.rows, " x ", fig.cols);
  if (fig.panels.size() > size_t(fig.rows) * fig.cols)
    fail("figure '", fig.id, "' has ", fig.panels.size(), " panels for a ", fig.rows, " x ", fig.cols, " grid");
  if (!(fig.width > 0.5 && fig.height > 0.5 && fig.width < 100 && fig.height < 100))
    fail("figure '", fig.id, "': size ", fig.width, " x ", fig.height, " in is out of range");
  for (size_t i = 0; i < fig.panels.size(); i++)
    for (auto& s : fig.panels[i].series) check_series(cat("figure '", fig.id, "' panel ", i), s);
  if (!fig.frames.empty() && fig.panels.empty()) fail("figure '", fig.id, "' has frames but no panel to animate");
  for (size_t f = 0; f < fig.frames.size(); f++)
    for (auto& s : fig.frames[f].series) check_series(cat("figure '", fig.id, "' frame ", f), s);
}

}  // namespace mechscope::report
