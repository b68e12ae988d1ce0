// Drawing each series kind inside its panel's plot box (cairo, points as units).
#include <algorithm>
#include <cmath>

#include "report/render.h"
#include "report/render_internal.h"
#include "report/ticks.h"

namespace mechscope::report::detail {

namespace {

double luminance(Rgb c) { return 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b; }

void draw_heatmap(cairo_t* cr, const PanelPlan& pl, const Heatmap& h) {
  const Box& b = pl.plot;
  const Colormap& m = colormap(h.cmap);
  auto [lo, hi] = color_range(h.z, h.vmin, h.vmax, h.centered, h.center);
  // Antialiased neighbours leave hairline seams; with antialiasing off the colours are exact, and each
  // cell reaches one device pixel into the next (painted over by it; the last ones are clipped by the
  // plot box) so pixel-centre ties cannot leave a gap either.
  cairo_save(cr);
  cairo_set_antialias(cr, CAIRO_ANTIALIAS_NONE);
  double ox = 1, oy = 1;
  cairo_device_to_user_distance(cr, &ox, &oy);
  ox = std::abs(ox), oy = std::abs(oy);
  for (size_t r = 0; r < h.rows; r++) {
    double y0 = pl.y.map(r - 0.5, b.bottom(), b.y), y1 = pl.y.map(r + 0.5, b.bottom(), b.y);
    for (size_t c = 0; c < h.cols; c++) {
      double v = h.z[r * h.cols + c];
      double x0 = pl.x.map(c - 0.5, b.x, b.right()), x1 = pl.x.map(c + 0.5, b.x, b.right());
      Rgb col = std::isfinite(v) ? m.at((v - lo) / (hi - lo)) : Rgb{1, 1, 1};
      set_color(cr, col);
      cairo_rectangle(cr, x0, std::min(y0, y1), x1 - x0 + ox, std::abs(y1 - y0) + oy);
      cairo_fill(cr);
    }
  }
  cairo_restore(cr);
  if (!h.cell_text) return;
  double cw = b.w / h.cols, ch = b.h / h.rows;
  // One size for every cell: the largest (≤ 9 pt) at which the widest value fits its cell.
  Font f{std::min(ch * 0.55, 9.0)};
  double widest = 0;
  for (double v : h.z)
    if (std::isfinite(v)) widest = std::max(widest, measure(cr, format_number(v, h.cell_decimals), f).w);
  if (widest > cw * 0.9) f.size *= cw * 0.9 / widest;
  if (f.size < 4.5) return;  // too small to read: the colour says it
  for (size_t r = 0; r < h.rows; r++)
    for (size_t c = 0; c < h.cols; c++) {
      double v = h.z[r * h.cols + c];
      if (!std::isfinite(v)) continue;
      std::string t = format_number(v, h.cell_decimals);
      Rgb col = m.at((v - lo) / (hi - lo));
      Rgb ink = luminance(col) < 0.45 ? Rgb{1, 1, 1} : Rgb{0, 0, 0};
      draw_text(cr, t, f, pl.x.map(double(c), b.x, b.right()), pl.y.map(double(r), b.bottom(), b.y), 0.5, 0.5, 0, ink);
    }
}

void draw_line(cairo_t* cr, const PanelPlan& pl, const Line& l, Rgb color) {
  const Box& b = pl.plot;
  auto X = [&](double v) { return pl.x.map(v, b.x, b.right()); };
  auto Y = [&](double v) { return pl.y.map(v, b.bottom(), b.y); };
  size_t n = l.x.size();
  if (!l.err.empty() && !l.err_bars && n > 0) {
    cairo_new_path(cr);
    for (size_t i = 0; i < n; i++) cairo_line_to(cr, X(l.x[i]), Y(l.y[i] + l.err[i]));
    for (size_t i = n; i-- > 0;) cairo_line_to(cr, X(l.x[i]), Y(l.y[i] - l.err[i]));
    cairo_close_path(cr);
    set_color(cr, color, 0.2);
    cairo_fill(cr);
  }
  if (!l.err.empty() && l.err_bars) {
    set_color(cr, color);
    cairo_set_line_width(cr, 1);
    cairo_set_dash(cr, nullptr, 0, 0);
    for (size_t i = 0; i < n; i++) {
      double x = X(l.x[i]), y0 = Y(l.y[i] - l.err[i]), y1 = Y(l.y[i] + l.err[i]);
      cairo_move_to(cr, x, y0), cairo_line_to(cr, x, y1);
      cairo_move_to(cr, x - 2.5, y0), cairo_line_to(cr, x + 2.5, y0);
      cairo_move_to(cr, x - 2.5, y1), cairo_line_to(cr, x + 2.5, y1);
    }
    cairo_stroke(cr);
  }
  cairo_new_path(cr);
  bool pen = false;
  for (size_t i = 0; i < n; i++) {
    double x = X(l.x[i]), y = Y(l.y[i]);
    if (!std::isfinite(x) || !std::isfinite(y)) {
      pen = false;
      continue;
    }
    if (pen) cairo_line_to(cr, x, y);
    else cairo_move_to(cr, x, y);
    pen = true;
  }
  set_color(cr, color);
  cairo_set_line_width(cr, l.width);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  set_dash(cr, l.dash, l.width);
  cairo_stroke(cr);
  cairo_set_dash(cr, nullptr, 0, 0);
  for (size_t i = 0; i < n; i++) draw_marker(cr, l.marker, X(l.x[i]), Y(l.y[i]), 3.2, color, 1, true);
}

void draw_segments(cairo_t* cr, const PanelPlan& pl, const Segments& s, Rgb color) {
  const Box& b = pl.plot;
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
  for (size_t i = 0; i < s.x0.size(); i++) {
    double x0 = pl.x.map(s.x0[i], b.x, b.right()), y0 = pl.y.map(s.y0[i], b.bottom(), b.y);
    double x1 = pl.x.map(s.x1[i], b.x, b.right()), y1 = pl.y.map(s.y1[i], b.bottom(), b.y);
    double w = s.widths.empty() ? s.width : s.widths[i];
    if (!std::isfinite(x0) || !std::isfinite(y0) || !std::isfinite(x1) || !std::isfinite(y1) || w <= 0) continue;
    set_color(cr, s.colors.empty() ? color : s.colors[i], s.alpha);
    cairo_set_line_width(cr, w);
    cairo_move_to(cr, x0, y0);
    cairo_line_to(cr, x1, y1);
    cairo_stroke(cr);
  }
}

void draw_scatter(cairo_t* cr, const PanelPlan& pl, const Scatter& s, Rgb color) {
  const Box& b = pl.plot;
  const Colormap& m = colormap(s.cmap);
  auto [lo, hi] = color_range(s.c, s.vmin, s.vmax, false, 0);
  std::vector<size_t> order(s.x.size());
  for (size_t i = 0; i < order.size(); i++) order[i] = i;
  // Colour-by-value: strongest points last, so they are not buried under the bulk.
  if (!s.c.empty()) std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t c) { return s.c[a] < s.c[c]; });
  for (size_t i : order) {
    double x = pl.x.map(s.x[i], b.x, b.right()), y = pl.y.map(s.y[i], b.bottom(), b.y);
    if (!std::isfinite(x) || !std::isfinite(y)) continue;
    Rgb c = s.c.empty() ? color : m.at((s.c[i] - lo) / (hi - lo));
    draw_marker(cr, s.marker, x, y, s.size, c, s.alpha, false);
  }
  if (s.labels.empty()) return;
  // Point labels: try four places around the point; drop a label that would overlap one already placed.
  std::vector<Box> placed;
  Font f{7.5};
  for (size_t i = 0; i < s.labels.size(); i++) {
    if (s.labels[i].empty()) continue;
    double x = pl.x.map(s.x[i], b.x, b.right()), y = pl.y.map(s.y[i], b.bottom(), b.y);
    if (!std::isfinite(x) || !std::isfinite(y)) continue;
    auto sz = measure(cr, s.labels[i], f);
    double d = s.size + 1.5;
    Box cands[4] = {{x + d, y - sz.h / 2, sz.w, sz.h},
                    {x - d - sz.w, y - sz.h / 2, sz.w, sz.h},
                    {x - sz.w / 2, y - d - sz.h, sz.w, sz.h},
                    {x - sz.w / 2, y + d, sz.w, sz.h}};
    for (auto& c : cands) {
      if (c.x < b.x || c.right() > b.right() || c.y < b.y || c.bottom() > b.bottom()) continue;
      if (std::any_of(placed.begin(), placed.end(), [&](const Box& p) { return p.intersects(c); })) continue;
      placed.push_back(c);
      draw_text(cr, s.labels[i], f, c.x, c.y, 0, 0, 0, {0.15, 0.15, 0.15});
      break;
    }
  }
}

void draw_bar(cairo_t* cr, const PanelPlan& pl, const Bar& bar, Rgb color) {
  const Box& b = pl.plot;
  std::vector<double> vals = bar.values;
  auto [lo, hi] = color_range(vals, kAuto, kAuto, bar.centered, 0);
  if (!bar.cmap.empty() && !bar.centered) lo = std::min(lo, 0.0);
  int decimals = bar.decimals;
  if (decimals < 0) {
    bool ints = std::all_of(vals.begin(), vals.end(), [](double v) { return v == std::round(v); });
    double big = 0;
    for (double v : vals) big = std::max(big, std::abs(v));
    decimals = ints ? 0 : big >= 100 ? 0 : big >= 10 ? 1 : big >= 1 ? 2 : 3;
  }
  double slot = b.w / std::max<size_t>(1, vals.size());
  Font f{std::clamp(slot * 0.35, 5.5, 8.5)};
  double y0 = pl.y.map(0, b.bottom(), b.y);
  for (size_t i = 0; i < vals.size(); i++) {
    double x0 = pl.x.map(i - 0.4, b.x, b.right()), x1 = pl.x.map(i + 0.4, b.x, b.right());
    double y1 = pl.y.map(vals[i], b.bottom(), b.y);
    Rgb c = bar.cmap.empty() ? color : colormap(bar.cmap).at((vals[i] - lo) / (hi - lo));
    cairo_rectangle(cr, x0, std::min(y0, y1), x1 - x0, std::abs(y1 - y0));
    set_color(cr, c);
    cairo_fill_preserve(cr);
    cairo_set_source_rgba(cr, 0, 0, 0, 0.6);
    cairo_set_line_width(cr, 0.5);
    cairo_stroke(cr);
    bool bars = !bar.err_plus.empty() && (bar.err_minus[i] > 0 || bar.err_plus[i] > 0);
    double top = y1, bottom = y1;  // the value label goes beyond the error bar
    if (bars) {
      double xm = (x0 + x1) / 2, cap = (x1 - x0) * 0.18;
      double ylo = pl.y.map(vals[i] - bar.err_minus[i], b.bottom(), b.y),
             yhi = pl.y.map(vals[i] + bar.err_plus[i], b.bottom(), b.y);
      cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
      cairo_set_line_width(cr, 1.0);
      cairo_move_to(cr, xm, ylo), cairo_line_to(cr, xm, yhi);
      cairo_move_to(cr, xm - cap, ylo), cairo_line_to(cr, xm + cap, ylo);
      cairo_move_to(cr, xm - cap, yhi), cairo_line_to(cr, xm + cap, yhi);
      cairo_stroke(cr);
      top = std::min({y1, ylo, yhi}), bottom = std::max({y1, ylo, yhi});
    }
    if (bar.value_labels) {
      std::string t = format_number(vals[i], decimals);
      if (measure(cr, t, f).w > slot * 1.1) continue;
      bool neg = vals[i] < 0;
      draw_text(cr, t, f, (x0 + x1) / 2, neg ? bottom + 2 : top - 2, 0.5, neg ? 0 : 1);
    }
  }
}

void draw_histogram(cairo_t* cr, const PanelPlan& pl, const Histogram& h, Rgb color) {
  const Box& b = pl.plot;
  Binned bins = histogram_bins(h);
  double y0 = pl.y.map(0, b.bottom(), b.y);
  for (size_t i = 0; i < bins.counts.size(); i++) {
    if (bins.counts[i] <= 0) continue;
    double x0 = pl.x.map(bins.edges[i], b.x, b.right()), x1 = pl.x.map(bins.edges[i + 1], b.x, b.right());
    double y1 = pl.y.map(bins.counts[i], b.bottom(), b.y);
    cairo_rectangle(cr, x0, y1, x1 - x0, y0 - y1);
    set_color(cr, color, 0.85);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_set_line_width(cr, 0.6);
    cairo_stroke(cr);
  }
}

void draw_cdf(cairo_t* cr, const PanelPlan& pl, const Cdf& c, Rgb color) {
  const Box& b = pl.plot;
  std::vector<double> v;
  for (double x : c.values)
    if (std::isfinite(x)) v.push_back(x);
  std::sort(v.begin(), v.end());
  if (v.empty()) return;
  auto X = [&](double x) { return pl.x.map(x, b.x, b.right()); };
  auto Y = [&](double y) { return pl.y.map(y, b.bottom(), b.y); };
  cairo_new_path(cr);
  cairo_move_to(cr, b.x, Y(0));
  cairo_line_to(cr, X(v[0]), Y(0));
  for (size_t i = 0; i < v.size(); i++) {
    cairo_line_to(cr, X(v[i]), Y(double(i) / v.size()));
    cairo_line_to(cr, X(v[i]), Y(double(i + 1) / v.size()));
  }
  cairo_line_to(cr, b.right(), Y(1));
  set_color(cr, color);
  cairo_set_line_width(cr, 1.5);
  cairo_stroke(cr);
  if (c.mark_median) {
    double m = median(v);
    cairo_move_to(cr, X(m), b.y);
    cairo_line_to(cr, X(m), b.bottom());
    cairo_set_source_rgb(cr, 0.84, 0.15, 0.16);
    cairo_set_line_width(cr, 1.2);
    set_dash(cr, Dash::Dashed, 1.2);
    cairo_stroke(cr);
    cairo_set_dash(cr, nullptr, 0, 0);
  }
}

// As plotly draws a box: the box filled with its colour at half opacity and outlined, the median
// across it, whiskers from the box to the fences with caps half the box wide, outliers as dots.
void draw_boxes(cairo_t* cr, const PanelPlan& pl, const BoxPlot& bp, Rgb color) {
  const Box& b = pl.plot;
  auto X = [&](double v) { return pl.x.map(v, b.x, b.right()); };
  auto Y = [&](double v) { return pl.y.map(v, b.bottom(), b.y); };
  cairo_set_dash(cr, nullptr, 0, 0);
  for (size_t i = 0; i < bp.x.size(); i++) {
    BoxStats st = box_stats(bp.samples[i]);
    if (!st.n) continue;
    Rgb c = bp.colors.empty() ? color : bp.colors[i];
    double x0 = X(bp.x[i] - bp.width / 2), x1 = X(bp.x[i] + bp.width / 2), xm = X(bp.x[i]);
    double cap0 = X(bp.x[i] - bp.width / 4), cap1 = X(bp.x[i] + bp.width / 4);
    double yq1 = Y(st.q1), yq3 = Y(st.q3), ymed = Y(st.median), ylo = Y(st.lower_fence), yhi = Y(st.upper_fence);
    if (!std::isfinite(x0) || !std::isfinite(x1) || !std::isfinite(yq1) || !std::isfinite(yq3)) continue;
    cairo_set_line_width(cr, 1);
    set_color(cr, c);
    if (std::isfinite(ylo) && std::isfinite(yhi)) {
      cairo_move_to(cr, xm, yq1), cairo_line_to(cr, xm, ylo);
      cairo_move_to(cr, cap0, ylo), cairo_line_to(cr, cap1, ylo);
      cairo_move_to(cr, xm, yq3), cairo_line_to(cr, xm, yhi);
      cairo_move_to(cr, cap0, yhi), cairo_line_to(cr, cap1, yhi);
      cairo_stroke(cr);
    }
    cairo_rectangle(cr, std::min(x0, x1), std::min(yq1, yq3), std::abs(x1 - x0), std::abs(yq3 - yq1));
    set_color(cr, c, 0.5);
    cairo_fill_preserve(cr);
    set_color(cr, c);
    cairo_stroke(cr);
    if (std::isfinite(ymed)) {
      cairo_set_line_width(cr, 1.5);
      cairo_move_to(cr, x0, ymed), cairo_line_to(cr, x1, ymed);
      cairo_stroke(cr);
    }
    for (double o : st.outliers) {
      double y = Y(o);
      if (std::isfinite(y)) draw_marker(cr, Marker::Circle, xm, y, bp.point_size, c, 0.8, false);
    }
  }
}

}  // namespace

void draw_series(cairo_t* cr, const PanelPlan& pl) {
  const auto& series = pl.panel->series;
  for (size_t i = 0; i < series.size(); i++) {
    Rgb color = i < pl.colors.size() ? pl.colors[i] : Rgb{};
    cairo_save(cr);
    if (auto* h = std::get_if<Heatmap>(&series[i])) draw_heatmap(cr, pl, *h);
    else if (auto* l = std::get_if<Line>(&series[i])) draw_line(cr, pl, *l, color);
    else if (auto* s = std::get_if<Scatter>(&series[i])) draw_scatter(cr, pl, *s, color);
    else if (auto* sg = std::get_if<Segments>(&series[i])) draw_segments(cr, pl, *sg, color);
    else if (auto* b = std::get_if<Bar>(&series[i])) draw_bar(cr, pl, *b, color);
    else if (auto* hi = std::get_if<Histogram>(&series[i])) draw_histogram(cr, pl, *hi, color);
    else if (auto* c = std::get_if<Cdf>(&series[i])) draw_cdf(cr, pl, *c, color);
    else if (auto* bp = std::get_if<BoxPlot>(&series[i])) draw_boxes(cr, pl, *bp, color);
    cairo_restore(cr);
  }
}

void draw_text_panel(cairo_t* cr, const PanelPlan& pl) {
  std::vector<std::string> lines;
  bool mono = true;
  for (auto& s : pl.panel->series)
    if (auto* t = std::get_if<Text>(&s)) {
      lines.insert(lines.end(), t->lines.begin(), t->lines.end());
      mono = mono && t->monospace;
    }
  Box box{pl.cell.x + 8, pl.cell.y + pl.m_top, pl.cell.w - 16, pl.cell.h - pl.m_top - 8};
  if (!pl.panel->title.empty())
    draw_text(cr, pl.panel->title, {10.5, true}, pl.cell.x + pl.cell.w / 2, pl.cell.y + pl.m_top - 4, 0.5, 1);
  // Largest size (≤ 11 pt) at which every line fits the box; the box then shrinks to the text.
  double size = 11, text_h = 0;
  for (; size > 5; size -= 0.5) {
    double w = 0, h = 0;
    for (auto& l : lines) {
      auto s = measure(cr, l.empty() ? " " : l, {size, false, mono});
      w = std::max(w, s.w), h += s.h;
    }
    text_h = h;
    if (w <= box.w - 16 && h <= box.h - 12) break;
  }
  box.h = std::min(box.h, text_h + 14);
  cairo_rectangle(cr, box.x, box.y, box.w, box.h);
  cairo_set_source_rgb(cr, 0.97, 0.97, 0.97);
  cairo_fill_preserve(cr);
  cairo_set_source_rgb(cr, 0.75, 0.75, 0.75);
  cairo_set_line_width(cr, 0.8);
  cairo_stroke(cr);
  cairo_save(cr);
  cairo_rectangle(cr, box.x, box.y, box.w, box.h);
  cairo_clip(cr);
  double y = box.y + 6;
  for (auto& l : lines) {
    Font f{size, false, mono};
    draw_text(cr, l, f, box.x + 8, y, 0, 0);
    y += measure(cr, l.empty() ? " " : l, f).h;
  }
  cairo_restore(cr);
}

}  // namespace mechscope::report::detail
