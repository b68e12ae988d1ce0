// Shared between the renderer's files (not part of the public API): text through pango, scales,
// and the per-panel layout plan.
#pragma once
#include <cairo.h>

#include <string>
#include <vector>

#include "report/figure.h"

namespace mechscope::report::detail {

struct Box {
  double x = 0, y = 0, w = 0, h = 0;
  double right() const { return x + w; }
  double bottom() const { return y + h; }
  bool intersects(const Box& o) const { return x < o.right() && o.x < right() && y < o.bottom() && o.y < bottom(); }
};

struct Font {
  double size = 9;
  bool bold = false;
  bool mono = false;
};

struct TextSize {
  double w = 0, h = 0;
};

// All sizes in points (the renderer draws in points; PNGs are scaled by dpi / 72).
TextSize measure(cairo_t* cr, const std::string& text, const Font& font);
// Draws `text` with its box anchored at (x, y): ax/ay are fractions of the box (0 left/top, 1
// right/bottom); `angle` in degrees counter-clockwise, around the anchor.
void draw_text(cairo_t* cr, const std::string& text, const Font& font, double x, double y, double ax, double ay,
               double angle = 0, Rgb color = {0, 0, 0});
// `text` shortened with '…' until it fits in max_w.
std::string fit_text(cairo_t* cr, const std::string& text, const Font& font, double max_w);

void set_color(cairo_t* cr, Rgb c, double alpha = 1);
void set_dash(cairo_t* cr, Dash d, double width);
void draw_marker(cairo_t* cr, Marker m, double x, double y, double r, Rgb fill, double alpha, bool edge);

struct AxisPlan {
  double lo = 0, hi = 1;
  bool log = false, inverted = false, categorical = false;
  std::vector<double> ticks;
  std::vector<std::string> labels;
  std::string title;
  bool show_ticks = true, show_title = true, grid = false;
  double angle = 0;  // x tick labels: 0 or 90
  double font_size = 9;
  size_t stride = 1;                               // categorical: every stride-th label shown
  double map(double v, double a, double b) const;  // data → device between a (lo) and b (hi)
};

struct ColorbarPlan {
  bool on = false;
  std::string cmap, title;
  double vmin = 0, vmax = 1;
};

struct LegendItem {
  std::string name;
  Rgb color;
  Marker marker = Marker::None;
  Dash dash = Dash::Solid;
  bool line = true, patch = false, band = false;
};

struct PanelPlan {
  enum Kind { Axes, TextOnly, Surface3D, Empty } kind = Empty;
  const Panel* panel = nullptr;
  int row = 0, col = 0;
  AxisPlan x, y;
  ColorbarPlan cb;
  std::vector<LegendItem> legend;
  std::vector<Rgb> colors;  // resolved colour of each series
  double m_left = 0, m_right = 0, m_top = 0, m_bottom = 0;
  Box cell, plot;
};

// Series drawing (render_series.cpp), inside plan.plot with clipping set by the caller.
void draw_series(cairo_t* cr, const PanelPlan& plan);
void draw_text_panel(cairo_t* cr, const PanelPlan& plan);
void draw_surface(cairo_t* cr, const PanelPlan& plan);  // render_surface.cpp
void draw_colorbar(cairo_t* cr, const ColorbarPlan& cb, const Box& bar);

}  // namespace mechscope::report::detail
