// Figure layout for the static renderer: plan each panel (ranges, ticks, colour bar, legend), measure
// every label with pango, give each grid row/column the margins its widest labels need (so axes line
// up across panels, as matplotlib's constrained layout does), then draw. Output through cairo's image
// (PNG), SVG and PDF surfaces.
#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "core/error.h"
#include "core/fs.h"
#include "report/render.h"
#include "report/render_internal.h"
#include "report/ticks.h"

namespace mechscope::report {

using namespace detail;

Format parse_format(const std::string& s) {
  if (s == "png") return Format::Png;
  if (s == "svg") return Format::Svg;
  if (s == "pdf") return Format::Pdf;
  fail("unknown figure format '", s, "' (expected png, svg or pdf)");
}

std::string extension(Format f) { return f == Format::Png ? "png" : f == Format::Svg ? "svg" : "pdf"; }

namespace {

constexpr double kTickLen = 3.5, kTickPad = 3, kPad = 5;
const Font kTickFont{9}, kLabelFont{10}, kTitleFont{10.5, true}, kSuptitleFont{12, true}, kCbFont{8.5};

bool numeric_label(const std::string& s) {
  if (s.empty()) return false;
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  return end && *end == 0;
}

struct Extent {
  double lo = INFINITY, hi = -INFINITY;
  void add(double v, bool log) {
    if (!std::isfinite(v) || (log && v <= 0)) return;
    lo = std::min(lo, v), hi = std::max(hi, v);
  }
  bool ok() const { return lo <= hi; }
};

// Data range → axis range: explicit limits win; otherwise 5% margins (in log space on log axes),
// except where a bar/histogram sits on zero.
void finish_range(AxisPlan& a, const Axis& spec, Extent e, bool pad, bool sticky_zero) {
  if (!e.ok()) e.lo = a.log ? 1 : 0, e.hi = a.log ? 10 : 1;
  double lo = e.lo, hi = e.hi;
  if (lo == hi) {
    if (a.log) lo /= 2, hi *= 2;
    else lo -= 0.5, hi += 0.5;
  }
  if (pad) {
    if (a.log) {
      double l = std::log10(lo), h = std::log10(hi), m = 0.05 * (h - l);
      lo = std::pow(10, l - m), hi = std::pow(10, h + m);
    } else {
      double m = 0.05 * (hi - lo);
      bool lo_zero = sticky_zero && e.lo >= 0 && e.lo == 0, hi_zero = sticky_zero && e.hi <= 0 && e.hi == 0;
      if (!lo_zero) lo -= m;
      if (!hi_zero) hi += m;
    }
  }
  if (!std::isnan(spec.min)) lo = spec.min;
  if (!std::isnan(spec.max)) hi = spec.max;
  if (a.log && lo <= 0) lo = hi / 1000;
  if (!(hi > lo)) hi = lo + 1;
  a.lo = lo, a.hi = hi;
}

Rgb series_color(const std::optional<Rgb>& c, size_t& next) { return c ? *c : cycle_color(next++); }

PanelPlan plan_panel(const Panel& p) {
  PanelPlan plan;
  plan.panel = &p;
  if (p.series.empty() && p.refs.empty()) return plan;
  bool all_text =
      std::all_of(p.series.begin(), p.series.end(), [](auto& s) { return std::holds_alternative<Text>(s); });
  bool any_surface =
      std::any_of(p.series.begin(), p.series.end(), [](auto& s) { return std::holds_alternative<Surface>(s); });
  if (all_text && !p.series.empty()) {
    plan.kind = PanelPlan::TextOnly;
    return plan;
  }
  plan.kind = any_surface ? PanelPlan::Surface3D : PanelPlan::Axes;
  plan.x.title = p.x.label, plan.y.title = p.y.label;
  plan.x.log = p.x.log, plan.y.log = p.y.log;
  plan.x.grid = p.x.grid, plan.y.grid = p.y.grid;
  Extent ex, ey;
  bool pad_x = true, pad_y = true, sticky = false;
  size_t next_color = 0;
  std::vector<std::string> xcats, ycats;
  for (auto& s : p.series) {
    Rgb color{0, 0, 0};
    if (auto* h = std::get_if<Heatmap>(&s)) {
      plan.x.categorical = plan.y.categorical = true;
      plan.y.inverted = true;
      for (size_t c = 0; c < h->cols; c++)
        xcats.push_back(h->col_labels.empty() ? std::to_string(c) : h->col_labels[c]);
      for (size_t r = 0; r < h->rows; r++)
        ycats.push_back(h->row_labels.empty() ? std::to_string(r) : h->row_labels[r]);
      ex.add(-0.5, false), ex.add(h->cols - 0.5, false);
      ey.add(-0.5, false), ey.add(h->rows - 0.5, false);
      pad_x = pad_y = false;
      if (h->colorbar && !plan.cb.on) {
        auto [lo, hi] = color_range(h->z, h->vmin, h->vmax, h->centered, h->center);
        plan.cb = {true, h->cmap, h->colorbar_title, lo, hi};
      }
    } else if (auto* l = std::get_if<Line>(&s)) {
      color = series_color(l->color, next_color);
      for (size_t i = 0; i < l->x.size(); i++) {
        ex.add(l->x[i], p.x.log);
        double e = l->err.empty() ? 0 : l->err[i];
        ey.add(l->y[i] - e, p.y.log), ey.add(l->y[i] + e, p.y.log);
      }
      if (!l->name.empty())
        plan.legend.push_back({l->name, color, l->marker, l->dash, true, false, !l->err.empty() && !l->err_bars});
    } else if (auto* sc = std::get_if<Scatter>(&s)) {
      color = series_color(sc->color, next_color);
      for (size_t i = 0; i < sc->x.size(); i++) ex.add(sc->x[i], p.x.log), ey.add(sc->y[i], p.y.log);
      if (!sc->name.empty()) plan.legend.push_back({sc->name, color, sc->marker, Dash::Solid, false, false, false});
      if (!sc->c.empty() && !plan.cb.on) {
        auto [lo, hi] = color_range(sc->c, sc->vmin, sc->vmax, false, 0);
        plan.cb = {true, sc->cmap, sc->colorbar_title, lo, hi};
      }
    } else if (auto* b = std::get_if<Bar>(&s)) {
      color = series_color(b->color, next_color);
      plan.x.categorical = true;
      xcats = b->categories;
      ex.add(-0.6, false), ex.add(b->values.size() - 0.4, false);
      pad_x = false;
      sticky = true;
      ey.add(0, false);
      for (double v : b->values) ey.add(v, false);
      for (size_t i = 0; i < b->err_plus.size(); i++)
        ey.add(b->values[i] - b->err_minus[i], false), ey.add(b->values[i] + b->err_plus[i], false);
      // Head room for value labels.
      if (b->value_labels && ey.ok()) ey.add(ey.hi + 0.08 * (ey.hi - ey.lo), false);
      if (b->value_labels && ey.ok() && ey.lo < 0) ey.add(ey.lo - 0.08 * (ey.hi - ey.lo), false);
      if (!b->name.empty()) plan.legend.push_back({b->name, color, Marker::None, Dash::Solid, false, true, false});
    } else if (auto* h = std::get_if<Histogram>(&s)) {
      color = series_color(h->color, next_color);
      Binned bins = histogram_bins(*h);
      ex.add(bins.edges.front(), false), ex.add(bins.edges.back(), false);
      ey.add(0, false);
      for (double c : bins.counts) ey.add(c, false);
      sticky = true;
      if (!h->name.empty()) plan.legend.push_back({h->name, color, Marker::None, Dash::Solid, false, true, false});
    } else if (auto* c = std::get_if<Cdf>(&s)) {
      color = series_color(c->color, next_color);
      for (double v : c->values) ex.add(v, p.x.log);
      ey.add(0, false), ey.add(1, false);
      if (!c->name.empty()) plan.legend.push_back({c->name, color, Marker::None, Dash::Solid, true, false, false});
      if (c->mark_median) {
        double m = median(c->values);
        plan.legend.push_back(
            {"median = " + format_number(m), {0.84, 0.15, 0.16}, Marker::None, Dash::Dashed, true, false, false});
      }
    } else if (auto* sg = std::get_if<Segments>(&s)) {
      color = series_color(sg->color, next_color);
      for (size_t i = 0; i < sg->x0.size(); i++) {
        ex.add(sg->x0[i], p.x.log), ex.add(sg->x1[i], p.x.log);
        ey.add(sg->y0[i], p.y.log), ey.add(sg->y1[i], p.y.log);
      }
      if (!sg->name.empty())
        plan.legend.push_back(
            {sg->name, sg->colors.empty() ? color : sg->colors[0], Marker::None, Dash::Solid, true, false, false});
    } else if (auto* bp = std::get_if<BoxPlot>(&s)) {
      color = series_color(bp->color, next_color);
      for (size_t i = 0; i < bp->x.size(); i++) {
        BoxStats st = box_stats(bp->samples[i]);
        if (!st.n) continue;
        ex.add(bp->x[i] - bp->width / 2, p.x.log), ex.add(bp->x[i] + bp->width / 2, p.x.log);
        ey.add(st.lower_fence, p.y.log), ey.add(st.upper_fence, p.y.log);
        for (double o : st.outliers) ey.add(o, p.y.log);
      }
      if (!bp->name.empty())
        plan.legend.push_back(
            {bp->name, bp->colors.empty() ? color : bp->colors[0], Marker::None, Dash::Solid, false, true, false});
    } else if (auto* sf = std::get_if<Surface>(&s)) {
      if (!plan.cb.on) {
        auto [lo, hi] = color_range(sf->z, sf->vmin, sf->vmax, false, 0);
        plan.cb = {true, sf->cmap, sf->z_title, lo, hi};
      }
    }
    plan.colors.push_back(color);
  }
  for (auto& r : p.refs) {
    if (r.kind == RefLine::Horizontal) ey.add(r.value, p.y.log);
    if (r.kind == RefLine::Vertical) ex.add(r.value, p.x.log);
    if (!r.name.empty()) plan.legend.push_back({r.name, r.color, Marker::None, r.dash, true, false, false});
  }
  finish_range(plan.x, p.x, ex, pad_x, false);
  finish_range(plan.y, p.y, ey, pad_y, sticky);
  if (plan.x.categorical) plan.x.labels = xcats;
  if (plan.y.categorical) plan.y.labels = ycats;
  if (p.legend == Legend::None) plan.legend.clear();
  return plan;
}

size_t nice_stride(double need) {
  for (size_t s : {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000})
    if (s >= need) return s;
  return 1000;
}

// Ticks and label placement for the plot size at hand.
void make_ticks(cairo_t* cr, AxisPlan& a, const Axis& spec, double length, bool is_x, double fig_w, double fig_h) {
  a.font_size = kTickFont.size;
  a.angle = 0;
  a.stride = 1;
  if (a.categorical) {
    std::vector<std::string> cats = a.labels;
    size_t n = cats.size();
    a.ticks.clear();
    for (size_t i = 0; i < n; i++) a.ticks.push_back(double(i));
    double spacing = n ? length / n : length;
    bool numeric = std::all_of(cats.begin(), cats.end(), numeric_label);
    // Token labels: cut very long ones (a whole sentence as one label): y labels to a quarter of the
    // figure's width, rotated x labels to 30% of its height; x labels that fit side by side stay whole.
    double max_w = is_x ? std::max({60.0, 0.3 * fig_h, spacing - 4}) : std::max(60.0, 0.25 * fig_w);
    for (auto& c : cats) c = fit_text(cr, c, {a.font_size}, max_w);
    a.labels = cats;
    double lh = measure(cr, "Ag", {a.font_size}).h;
    if (is_x) {
      double widest = 0;
      for (auto& c : cats) widest = std::max(widest, measure(cr, c, {a.font_size}).w);
      if (widest + 4 > spacing) {
        if (numeric) {
          a.stride = nice_stride((widest + 6) / spacing);
        } else {
          a.angle = 90;
          if (lh > spacing) a.font_size = std::max(6.0, a.font_size * spacing / lh);
          double lh2 = measure(cr, "Ag", {a.font_size}).h;
          if (lh2 > spacing * 1.05) a.stride = size_t(std::ceil(lh2 / spacing));
        }
      }
    } else {
      if (lh > spacing) a.font_size = std::max(6.0, a.font_size * spacing / lh);
      double lh2 = measure(cr, "Ag", {a.font_size}).h;
      if (lh2 > spacing * 1.05) a.stride = numeric ? nice_stride(lh2 / spacing) : size_t(std::ceil(lh2 / spacing));
    }
    return;
  }
  if (!spec.ticks.empty()) {
    a.ticks.clear();
    for (double t : spec.ticks)
      if (t >= std::min(a.lo, a.hi) - 1e-12 && t <= std::max(a.lo, a.hi) + 1e-12) a.ticks.push_back(t);
    a.labels = spec.tick_labels.size() == spec.ticks.size() ? spec.tick_labels : tick_labels(a.ticks, a.log);
    return;
  }
  int target = std::clamp(int(length / (is_x ? 55 : 32)), 2, 9);
  for (int attempt = 0; attempt < 4; attempt++) {
    a.ticks = a.log ? log_ticks(a.lo, a.hi, target) : nice_ticks(a.lo, a.hi, target, spec.integer);
    a.labels = tick_labels(a.ticks, a.log);
    if (!is_x || a.ticks.size() < 2) return;
    double widest = 0;
    for (auto& l : a.labels) widest = std::max(widest, measure(cr, l, kTickFont).w);
    double spacing = length / std::max<size_t>(1, a.ticks.size());
    if (widest + 8 <= spacing || target <= 2) return;
    target = std::max(2, target / 2);
  }
}

void plan_margins(cairo_t* cr, PanelPlan& pl) {
  pl.m_left = pl.m_right = pl.m_top = pl.m_bottom = kPad;
  const Panel& p = *pl.panel;
  if (!p.title.empty()) pl.m_top += measure(cr, p.title, kTitleFont).h + 4;
  if (pl.kind != PanelPlan::Axes) return;
  double tick_h = 0, tick_w = 0;
  for (size_t i = 0; i < pl.x.labels.size(); i += pl.x.stride) {
    auto s = measure(cr, pl.x.labels[i], {pl.x.font_size});
    tick_h = std::max(tick_h, pl.x.angle == 90 ? s.w : s.h);
  }
  for (size_t i = 0; i < pl.y.labels.size(); i += pl.y.stride)
    tick_w = std::max(tick_w, measure(cr, pl.y.labels[i], {pl.y.font_size}).w);
  if (pl.x.show_ticks) pl.m_bottom += kTickLen + kTickPad + tick_h;
  else pl.m_bottom += kTickLen;
  if (pl.y.show_ticks) pl.m_left += kTickLen + kTickPad + tick_w;
  else pl.m_left += kTickLen;
  if (pl.x.show_title && !pl.x.title.empty()) pl.m_bottom += 4 + measure(cr, pl.x.title, kLabelFont).h;
  if (pl.y.show_title && !pl.y.title.empty()) pl.m_left += 4 + measure(cr, pl.y.title, kLabelFont).h;
  // The last x tick label hangs half its width past the axis.
  if (!pl.x.categorical && pl.x.angle == 0 && !pl.x.labels.empty())
    pl.m_right = std::max(pl.m_right, measure(cr, pl.x.labels.back(), kTickFont).w / 2 + 2);
  if (pl.cb.on) {
    auto t = nice_ticks(pl.cb.vmin, pl.cb.vmax, 5);
    double w = 0;
    for (auto& l : tick_labels(t, false)) w = std::max(w, measure(cr, l, kCbFont).w);
    pl.m_right = kPad + 10 + 11 + 5 + w;
    if (!pl.cb.title.empty()) pl.m_right += 5 + measure(cr, pl.cb.title, kLabelFont).h;
  }
  if (!pl.y.categorical && !pl.y.labels.empty()) pl.m_top = std::max(pl.m_top, kPad + 5);
}

std::vector<std::pair<double, double>> device_points(const PanelPlan& pl) {
  std::vector<std::pair<double, double>> pts;
  const Box& b = pl.plot;
  auto add = [&](double x, double y) {
    double X = pl.x.map(x, b.x, b.right()), Y = pl.y.map(y, b.bottom(), b.y);
    if (std::isfinite(X) && std::isfinite(Y)) pts.push_back({X, Y});
  };
  for (auto& s : pl.panel->series) {
    if (auto* l = std::get_if<Line>(&s)) {
      for (size_t i = 0; i < l->x.size(); i++) {
        add(l->x[i], l->y[i]);
        if (i + 1 < l->x.size())  // sample along segments too
          for (double t : {0.25, 0.5, 0.75})
            add(l->x[i] + t * (l->x[i + 1] - l->x[i]), l->y[i] + t * (l->y[i + 1] - l->y[i]));
      }
    } else if (auto* sc = std::get_if<Scatter>(&s)) {
      for (size_t i = 0; i < sc->x.size(); i++) add(sc->x[i], sc->y[i]);
    } else if (auto* sg = std::get_if<Segments>(&s)) {
      for (size_t i = 0; i < sg->x0.size(); i++)
        for (double t : {0.0, 0.5, 1.0})
          add(sg->x0[i] + t * (sg->x1[i] - sg->x0[i]), sg->y0[i] + t * (sg->y1[i] - sg->y0[i]));
    } else if (auto* h = std::get_if<Histogram>(&s)) {
      Binned bins = histogram_bins(*h);
      for (size_t i = 0; i < bins.counts.size(); i++)
        for (double y = 0; y <= bins.counts[i]; y += std::max(bins.counts[i] / 4, 1e-9))
          add(0.5 * (bins.edges[i] + bins.edges[i + 1]), y);
    } else if (auto* c = std::get_if<Cdf>(&s)) {
      std::vector<double> v = c->values;
      std::sort(v.begin(), v.end());
      for (size_t i = 0; i < v.size(); i++) add(v[i], double(i + 1) / v.size());
    } else if (auto* bar = std::get_if<Bar>(&s)) {
      for (size_t i = 0; i < bar->values.size(); i++)
        for (double t : {0.0, 0.5, 1.0}) add(double(i), t * bar->values[i]);
    } else if (auto* bp = std::get_if<BoxPlot>(&s)) {
      for (size_t i = 0; i < bp->x.size(); i++) {
        BoxStats st = box_stats(bp->samples[i]);
        if (!st.n) continue;
        for (double y : {st.lower_fence, st.q1, st.median, st.q3, st.upper_fence}) add(bp->x[i], y);
        for (double o : st.outliers) add(bp->x[i], o);
      }
    }
  }
  return pts;
}

void draw_legend(cairo_t* cr, const PanelPlan& pl) {
  if (pl.legend.empty()) return;
  Font f{8.5};
  double tw = 0, rowh = 0;
  for (auto& it : pl.legend) {
    auto s = measure(cr, it.name, f);
    tw = std::max(tw, s.w), rowh = std::max(rowh, s.h);
  }
  double handle = 18, w = 4 + handle + 5 + tw + 5, h = 3 + rowh * pl.legend.size() + 3;
  const Box& b = pl.plot;
  double inset = 5;
  Box corners[4] = {{b.right() - inset - w, b.y + inset, w, h},
                    {b.x + inset, b.y + inset, w, h},
                    {b.x + inset, b.bottom() - inset - h, w, h},
                    {b.right() - inset - w, b.bottom() - inset - h, w, h}};
  int pick = 0;
  switch (pl.panel->legend) {
    case Legend::UpperRight: pick = 0; break;
    case Legend::UpperLeft: pick = 1; break;
    case Legend::LowerLeft: pick = 2; break;
    case Legend::LowerRight: pick = 3; break;
    default: {
      auto pts = device_points(pl);
      size_t best = SIZE_MAX;
      for (int c = 0; c < 4; c++) {
        size_t n = 0;
        for (auto& [x, y] : pts)
          n += x >= corners[c].x && x <= corners[c].right() && y >= corners[c].y && y <= corners[c].bottom();
        if (n < best) best = n, pick = c;
      }
    }
  }
  Box L = corners[pick];
  cairo_save(cr);
  cairo_rectangle(cr, L.x, L.y, L.w, L.h);
  cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
  cairo_fill_preserve(cr);
  cairo_set_source_rgb(cr, 0.8, 0.8, 0.8);
  cairo_set_line_width(cr, 0.8);
  cairo_stroke(cr);
  for (size_t i = 0; i < pl.legend.size(); i++) {
    auto& it = pl.legend[i];
    double cy = L.y + 3 + rowh * (i + 0.5), hx = L.x + 4;
    if (it.patch || it.band) {
      cairo_rectangle(cr, hx, cy - 4, handle, 8);
      set_color(cr, it.color, it.band ? 0.2 : 1);
      cairo_fill(cr);
    }
    if (it.line) {
      cairo_move_to(cr, hx, cy);
      cairo_line_to(cr, hx + handle, cy);
      set_color(cr, it.color);
      cairo_set_line_width(cr, 1.5);
      set_dash(cr, it.dash, 1.5);
      cairo_stroke(cr);
      cairo_set_dash(cr, nullptr, 0, 0);
    }
    draw_marker(cr, it.marker, hx + handle / 2, cy, 3, it.color, 1, false);
    draw_text(cr, it.name, f, hx + handle + 5, cy, 0, 0.5);
  }
  cairo_restore(cr);
}

void draw_axes(cairo_t* cr, const PanelPlan& pl) {
  const Box& b = pl.plot;
  cairo_set_line_width(cr, 0.8);
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_dash(cr, nullptr, 0, 0);
  // x ticks
  for (size_t i = 0; i < pl.x.ticks.size(); i++) {
    if (pl.x.categorical && i % pl.x.stride) continue;
    double X = pl.x.map(pl.x.ticks[i], b.x, b.right());
    cairo_move_to(cr, X, b.bottom());
    cairo_line_to(cr, X, b.bottom() + kTickLen);
    cairo_stroke(cr);
    if (!pl.x.show_ticks) continue;
    if (pl.x.angle == 90)
      draw_text(cr, pl.x.labels[i], {pl.x.font_size}, X, b.bottom() + kTickLen + kTickPad, 1, 0.5, 90);
    else draw_text(cr, pl.x.labels[i], {pl.x.font_size}, X, b.bottom() + kTickLen + kTickPad, 0.5, 0);
  }
  for (size_t i = 0; i < pl.y.ticks.size(); i++) {
    if (pl.y.categorical && i % pl.y.stride) continue;
    double Y = pl.y.map(pl.y.ticks[i], b.bottom(), b.y);
    cairo_move_to(cr, b.x, Y);
    cairo_line_to(cr, b.x - kTickLen, Y);
    cairo_stroke(cr);
    if (pl.y.show_ticks) draw_text(cr, pl.y.labels[i], {pl.y.font_size}, b.x - kTickLen - kTickPad, Y, 1, 0.5);
  }
  cairo_rectangle(cr, b.x, b.y, b.w, b.h);
  cairo_stroke(cr);
  if (pl.x.show_title && !pl.x.title.empty())
    draw_text(cr, pl.x.title, kLabelFont, b.x + b.w / 2, pl.cell.bottom() - kPad, 0.5, 1);
  if (pl.y.show_title && !pl.y.title.empty())
    draw_text(cr, pl.y.title, kLabelFont, pl.cell.x + kPad, b.y + b.h / 2, 0.5, 0, 90);
  if (!pl.panel->title.empty())
    draw_text(cr, fit_text(cr, pl.panel->title, kTitleFont, pl.cell.w - 2 * kPad), kTitleFont, b.x + b.w / 2,
              b.y - 4 - (pl.y.categorical ? 0 : 0), 0.5, 1);
}

void draw_grid_lines(cairo_t* cr, const PanelPlan& pl) {
  const Box& b = pl.plot;
  cairo_save(cr);
  cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
  cairo_set_line_width(cr, 0.6);
  if (pl.x.grid)
    for (double t : pl.x.ticks) {
      double d = pl.x.map(t, b.x, b.right());
      cairo_move_to(cr, d, b.y), cairo_line_to(cr, d, b.bottom());
    }
  if (pl.y.grid)
    for (double t : pl.y.ticks) {
      double d = pl.y.map(t, b.bottom(), b.y);
      cairo_move_to(cr, b.x, d), cairo_line_to(cr, b.right(), d);
    }
  cairo_stroke(cr);
  cairo_restore(cr);
}

void draw_refs(cairo_t* cr, const PanelPlan& pl) {
  const Box& b = pl.plot;
  for (auto& r : pl.panel->refs) {
    cairo_save(cr);
    set_color(cr, r.color);
    cairo_set_line_width(cr, 1.2);
    set_dash(cr, r.dash, 1.2);
    if (r.kind == RefLine::Horizontal) {
      double Y = pl.y.map(r.value, b.bottom(), b.y);
      cairo_move_to(cr, b.x, Y), cairo_line_to(cr, b.right(), Y);
    } else if (r.kind == RefLine::Vertical) {
      double X = pl.x.map(r.value, b.x, b.right());
      cairo_move_to(cr, X, b.y), cairo_line_to(cr, X, b.bottom());
    } else {
      double lo = std::max(pl.x.lo, pl.y.lo), hi = std::min(pl.x.hi, pl.y.hi);
      lo = std::min(pl.x.lo, pl.y.lo), hi = std::max(pl.x.hi, pl.y.hi);  // clipped to the box anyway
      int n = 64;  // a polyline so y = x is straight on mixed log/linear axes too
      for (int i = 0; i <= n; i++) {
        double v = pl.x.log || pl.y.log ? lo * std::pow(hi / lo, double(i) / n) : lo + (hi - lo) * i / n;
        double X = pl.x.map(v, b.x, b.right()), Y = pl.y.map(v, b.bottom(), b.y);
        if (i == 0) cairo_move_to(cr, X, Y);
        else cairo_line_to(cr, X, Y);
      }
    }
    cairo_stroke(cr);
    cairo_restore(cr);
  }
}

Figure small_multiples(const Figure& fig) {
  size_t n = fig.frames.size(), shown = std::min<size_t>(n, std::max(1, fig.static_frames));
  Figure out;
  out.id = fig.id;
  out.title = fig.title;
  out.cols = int(std::min<size_t>(shown, 4));
  out.rows = int((shown + out.cols - 1) / out.cols);
  out.share_x = out.share_y = true;
  auto [w, h] = static_size(fig);
  out.width = w, out.height = h;
  for (size_t k = 0; k < shown; k++) {
    size_t f = shown == 1 ? 0 : size_t(std::lround(double(k) * (n - 1) / (shown - 1)));
    Panel p = fig.panels[0];
    p.series = fig.frames[f].series;
    p.title = fig.frames[f].name;
    p.legend = Legend::None;
    out.panels.push_back(p);
  }
  return out;
}

void draw_figure(cairo_t* cr, const Figure& fig) {
  double W = fig.width * 72, H = fig.height * 72;
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  double top = 0;
  if (!fig.title.empty()) {
    std::string t = fit_text(cr, fig.title, kSuptitleFont, W - 20);
    double th = measure(cr, t, kSuptitleFont).h;
    draw_text(cr, t, kSuptitleFont, W / 2, 6, 0.5, 0);
    top = th + 8;
  }
  std::vector<PanelPlan> plans;
  for (size_t i = 0; i < fig.panels.size(); i++) {
    plans.push_back(plan_panel(fig.panels[i]));
    plans.back().row = int(i) / fig.cols, plans.back().col = int(i) % fig.cols;
  }
  // Shared axes: one range over every axes panel; inner tick labels and titles hidden.
  auto share = [&](bool is_x) {
    double lo = INFINITY, hi = -INFINITY;
    for (auto& p : plans)
      if (p.kind == PanelPlan::Axes) {
        AxisPlan& a = is_x ? p.x : p.y;
        lo = std::min(lo, a.lo), hi = std::max(hi, a.hi);
      }
    for (auto& p : plans) {
      if (p.kind != PanelPlan::Axes) continue;
      AxisPlan& a = is_x ? p.x : p.y;
      a.lo = lo, a.hi = hi;
      bool outer = is_x ? (p.row == fig.rows - 1 || size_t(p.row + 1) * fig.cols + p.col >= plans.size()) : p.col == 0;
      a.show_ticks = outer;
      a.show_title = outer;
    }
  };
  if (fig.share_x) share(true);
  if (fig.share_y) share(false);
  double cw = W / fig.cols, ch = (H - top) / fig.rows;
  for (auto& p : plans) {
    p.cell = {p.col * cw, top + p.row * ch, cw, ch};
    p.plot = {p.cell.x + 50, p.cell.y + 20, std::max(10.0, cw - 70), std::max(10.0, ch - 50)};
  }
  for (int iter = 0; iter < 3; iter++) {
    // Shared axes get the same ticks everywhere: those that fit the smallest panel.
    double min_w = INFINITY, min_h = INFINITY;
    for (auto& p : plans)
      if (p.kind == PanelPlan::Axes) min_w = std::min(min_w, p.plot.w), min_h = std::min(min_h, p.plot.h);
    for (auto& p : plans) {
      if (p.kind != PanelPlan::Axes) {
        plan_margins(cr, p);
        continue;
      }
      make_ticks(cr, p.x, p.panel->x, fig.share_x ? min_w : p.plot.w, true, W, H);
      make_ticks(cr, p.y, p.panel->y, fig.share_y ? min_h : p.plot.h, false, W, H);
      plan_margins(cr, p);
    }
    std::vector<double> left(fig.cols, 0), right(fig.cols, 0), topm(fig.rows, 0), bottom(fig.rows, 0);
    for (auto& p : plans) {
      if (p.kind == PanelPlan::Empty) continue;
      topm[p.row] = std::max(topm[p.row], p.m_top);
      if (p.kind != PanelPlan::Axes) continue;
      left[p.col] = std::max(left[p.col], p.m_left), right[p.col] = std::max(right[p.col], p.m_right);
      bottom[p.row] = std::max(bottom[p.row], p.m_bottom);
    }
    for (int c = 1; c < fig.cols; c++) left[c] += 10;  // space between a colour bar and the next panel
    for (int r = 1; r < fig.rows; r++) topm[r] += 6;
    // Equal plot sizes across the grid: each column/row is as wide/tall as its margins plus one
    // common plot width/height (a row with rotated token labels grows instead of squashing its plot).
    double sum_lr = 0, sum_tb = 0;
    for (int c = 0; c < fig.cols; c++) sum_lr += left[c] + right[c];
    for (int r = 0; r < fig.rows; r++) sum_tb += topm[r] + bottom[r];
    double pw = std::max(10.0, (W - sum_lr) / fig.cols), ph = std::max(10.0, (H - top - sum_tb) / fig.rows);
    std::vector<double> xs(fig.cols + 1, 0), ys(fig.rows + 1, top);
    for (int c = 0; c < fig.cols; c++) xs[c + 1] = xs[c] + left[c] + pw + right[c];
    for (int r = 0; r < fig.rows; r++) ys[r + 1] = ys[r] + topm[r] + ph + bottom[r];
    for (auto& p : plans) {
      p.cell = {xs[p.col], ys[p.row], xs[p.col + 1] - xs[p.col], ys[p.row + 1] - ys[p.row]};
      if (p.kind != PanelPlan::Empty) p.m_top = topm[p.row];
      if (p.kind == PanelPlan::Axes) p.m_left = left[p.col], p.m_right = right[p.col], p.m_bottom = bottom[p.row];
      p.plot = {p.cell.x + p.m_left, p.cell.y + p.m_top, std::max(10.0, p.cell.w - p.m_left - p.m_right),
                std::max(10.0, p.cell.h - p.m_top - p.m_bottom)};
    }
  }
  for (auto& p : plans) {
    switch (p.kind) {
      case PanelPlan::Empty: break;
      case PanelPlan::TextOnly: draw_text_panel(cr, p); break;
      case PanelPlan::Surface3D: draw_surface(cr, p); break;
      case PanelPlan::Axes:
        draw_grid_lines(cr, p);
        cairo_save(cr);
        cairo_rectangle(cr, p.plot.x, p.plot.y, p.plot.w, p.plot.h);
        cairo_clip(cr);
        draw_series(cr, p);
        draw_refs(cr, p);
        cairo_restore(cr);
        draw_axes(cr, p);
        if (p.cb.on) {
          Box bar{p.plot.right() + 10, p.plot.y, 11, p.plot.h};
          draw_colorbar(cr, p.cb, bar);
          if (!p.cb.title.empty())
            draw_text(cr, p.cb.title, kLabelFont, p.cell.right() - kPad, bar.y + bar.h / 2, 0.5, 1, 90);
        }
        draw_legend(cr, p);
        break;
    }
  }
}

cairo_status_t append(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

}  // namespace

std::pair<double, double> static_size(const Figure& fig) {
  if (fig.frames.empty()) return {fig.width, fig.height};
  size_t shown = std::min<size_t>(fig.frames.size(), std::max(1, fig.static_frames));
  size_t cols = std::min<size_t>(shown, 4), rows = (shown + cols - 1) / cols;
  return {std::max(fig.width, cols * 2.8), std::max(fig.height * 0.6, rows * 2.1 + 0.6)};
}

std::pair<int, int> png_size(const Figure& fig, double dpi) {
  auto [w, h] = static_size(fig);
  return {int(std::lround(w * dpi)), int(std::lround(h * dpi))};
}

std::string render_bytes(const Figure& fig_in, Format format, const RenderOptions& opt) {
  validate(fig_in);
  if (!(opt.dpi >= 10 && opt.dpi <= 1200)) fail("dpi ", opt.dpi, " is out of range (10 to 1200)");
  const Figure fig = fig_in.frames.empty() ? fig_in : small_multiples(fig_in);
  std::string out;
  double Wpt = fig.width * 72, Hpt = fig.height * 72;
  cairo_surface_t* surface = nullptr;
  if (format == Format::Png) {
    auto [pw, ph] = png_size(fig, opt.dpi);
    surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, pw, ph);
  } else if (format == Format::Svg) {
    surface = cairo_svg_surface_create_for_stream(append, &out, Wpt, Hpt);
  } else {
    surface = cairo_pdf_surface_create_for_stream(append, &out, Wpt, Hpt);
  }
  if (cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS)
    fail("figure '", fig.id, "': cannot create a ", extension(format),
         " surface: ", cairo_status_to_string(cairo_surface_status(surface)));
  cairo_t* cr = cairo_create(surface);
  if (format == Format::Png) cairo_scale(cr, opt.dpi / 72, opt.dpi / 72);
  draw_figure(cr, fig);
  cairo_status_t st = cairo_status(cr);
  cairo_destroy(cr);
  if (format == Format::Png && st == CAIRO_STATUS_SUCCESS)
    st = cairo_surface_write_to_png_stream(surface, append, &out);
  cairo_surface_finish(surface);
  if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_status(surface);
  cairo_surface_destroy(surface);
  if (st != CAIRO_STATUS_SUCCESS) fail("figure '", fig.id, "': cairo failed: ", cairo_status_to_string(st));
  return out;
}

void render(const Figure& fig, Format format, const std::string& path, const RenderOptions& opt) {
  write_file_atomic(path, render_bytes(fig, format, opt));
}

}  // namespace mechscope::report
