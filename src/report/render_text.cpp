// Text, markers, dashes and colour bars for the cairo renderer. Every string goes through pango with a
// family list that falls back from Latin to CJK/Hangul to colour emoji; metrics are unhinted so a
// label measures the same in PNG, SVG and PDF.
#include <dlfcn.h>
#include <pango/pangocairo.h>

#include <cmath>
#include <cstdlib>
#include <mutex>

#include "core/utf8.h"
#include "report/label.h"
#include "report/render.h"
#include "report/render_internal.h"
#include "report/ticks.h"

namespace mechscope::report {

// Noto Color Emoji is deliberately not named: in a family list pango then takes digits, '*' and '#'
// from it (they are emoji keycap bases) and draws them as grey keycap glyphs. fontconfig's fallback
// still finds it for real emoji.
const char* const kFontFamily = "DejaVu Sans, Noto Sans CJK JP";
const char* const kMonoFamily = "DejaVu Sans Mono, Noto Sans Mono CJK JP";

namespace detail {

namespace {

#if defined(__SANITIZE_ADDRESS__)
// Sanitizer builds only (make test-asan): fontconfig, cairo and pango keep their font caches until the
// process ends, which LeakSanitizer reports as leaks; releasing them at exit, as their debugging
// entry points are meant for, leaves it only real leaks to report.
void release_font_caches() {
  pango_cairo_font_map_set_default(nullptr);
  cairo_debug_reset_static_data();
  using Fn = void (*)();
  if (auto fini = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "FcFini"))) fini();
}
void release_font_caches_at_exit() {
  static std::once_flag once;
  std::call_once(once, [] { std::atexit(release_font_caches); });
}
#else
void release_font_caches_at_exit() {}
#endif

PangoLayout* make_layout(cairo_t* cr, const std::string& text, const Font& font) {
  release_font_caches_at_exit();
  PangoLayout* layout = pango_cairo_create_layout(cr);
  PangoContext* ctx = pango_layout_get_context(layout);
  pango_cairo_context_set_resolution(ctx, 72);  // 1 pt = 1 user unit
  cairo_font_options_t* fo = cairo_font_options_create();
  cairo_font_options_set_hint_metrics(fo, CAIRO_HINT_METRICS_OFF);
  cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_NONE);
  pango_cairo_context_set_font_options(ctx, fo);
  cairo_font_options_destroy(fo);
  pango_layout_context_changed(layout);
  PangoFontDescription* desc = pango_font_description_from_string(font.mono ? kMonoFamily : kFontFamily);
  pango_font_description_set_size(desc, int(font.size * PANGO_SCALE));
  if (font.bold) pango_font_description_set_weight(desc, PANGO_WEIGHT_BOLD);
  pango_layout_set_font_description(layout, desc);
  pango_font_description_free(desc);
  std::string clean = valid_utf8(text);
  pango_layout_set_text(layout, clean.c_str(), int(clean.size()));
  return layout;
}

}  // namespace

TextSize measure(cairo_t* cr, const std::string& text, const Font& font) {
  if (text.empty()) return {0, 0};
  PangoLayout* layout = make_layout(cr, text, font);
  PangoRectangle logical;
  pango_layout_get_extents(layout, nullptr, &logical);
  g_object_unref(layout);
  return {double(logical.width) / PANGO_SCALE, double(logical.height) / PANGO_SCALE};
}

void draw_text(cairo_t* cr, const std::string& text, const Font& font, double x, double y, double ax, double ay,
               double angle, Rgb color) {
  if (text.empty()) return;
  PangoLayout* layout = make_layout(cr, text, font);
  PangoRectangle logical;
  pango_layout_get_extents(layout, nullptr, &logical);
  double w = double(logical.width) / PANGO_SCALE, h = double(logical.height) / PANGO_SCALE;
  cairo_save(cr);
  cairo_translate(cr, x, y);
  if (angle != 0) cairo_rotate(cr, -angle * M_PI / 180);
  cairo_move_to(cr, -ax * w - double(logical.x) / PANGO_SCALE, -ay * h - double(logical.y) / PANGO_SCALE);
  set_color(cr, color);
  pango_cairo_show_layout(cr, layout);
  cairo_restore(cr);
  g_object_unref(layout);
}

std::string fit_text(cairo_t* cr, const std::string& text, const Font& font, double max_w) {
  if (measure(cr, text, font).w <= max_w) return text;
  size_t n = utf8::decode(valid_utf8(text)).size();
  while (n > 1) {
    std::string t = truncate_label(text, --n);
    if (measure(cr, t, font).w <= max_w) return t;
  }
  return "…";
}

void set_color(cairo_t* cr, Rgb c, double alpha) {
  if (alpha >= 1) cairo_set_source_rgb(cr, c.r, c.g, c.b);
  else cairo_set_source_rgba(cr, c.r, c.g, c.b, alpha);
}

void set_dash(cairo_t* cr, Dash d, double width) {
  if (d == Dash::Dashed) {
    double pat[] = {3.7 * width, 1.6 * width};  // matplotlib's scaled dash pattern
    cairo_set_dash(cr, pat, 2, 0);
  } else if (d == Dash::Dotted) {
    double pat[] = {1 * width, 1.65 * width};
    cairo_set_dash(cr, pat, 2, 0);
  } else {
    cairo_set_dash(cr, nullptr, 0, 0);
  }
}

void draw_marker(cairo_t* cr, Marker m, double x, double y, double r, Rgb fill, double alpha, bool edge) {
  if (m == Marker::None) return;
  cairo_new_path(cr);
  switch (m) {
    case Marker::Circle: cairo_arc(cr, x, y, r, 0, 2 * M_PI); break;
    case Marker::Square: cairo_rectangle(cr, x - r * 0.89, y - r * 0.89, r * 1.78, r * 1.78); break;
    case Marker::Triangle:
      cairo_move_to(cr, x, y - r * 1.15);
      cairo_line_to(cr, x + r * 1.1, y + r * 0.75);
      cairo_line_to(cr, x - r * 1.1, y + r * 0.75);
      cairo_close_path(cr);
      break;
    case Marker::Diamond:
      cairo_move_to(cr, x, y - r * 1.2);
      cairo_line_to(cr, x + r * 0.9, y);
      cairo_line_to(cr, x, y + r * 1.2);
      cairo_line_to(cr, x - r * 0.9, y);
      cairo_close_path(cr);
      break;
    case Marker::Cross:
      cairo_move_to(cr, x - r, y - r);
      cairo_line_to(cr, x + r, y + r);
      cairo_move_to(cr, x + r, y - r);
      cairo_line_to(cr, x - r, y + r);
      set_color(cr, fill, alpha);
      cairo_set_line_width(cr, r * 0.5);
      cairo_set_dash(cr, nullptr, 0, 0);
      cairo_stroke(cr);
      return;
    default: break;
  }
  set_color(cr, fill, alpha);
  if (edge) {
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_set_line_width(cr, 0.6);
    cairo_set_dash(cr, nullptr, 0, 0);
    cairo_stroke(cr);
  } else {
    cairo_fill(cr);
  }
}

double AxisPlan::map(double v, double a, double b) const {
  double l = lo, h = hi;
  if (log) {
    v = v > 0 ? std::log10(v) : -INFINITY;
    l = std::log10(lo);
    h = std::log10(hi);
  }
  double t = (v - l) / (h - l);
  if (inverted) t = 1 - t;
  return a + t * (b - a);
}

void draw_colorbar(cairo_t* cr, const ColorbarPlan& cb, const Box& bar) {
  const Colormap& m = colormap(cb.cmap);
  // The maps are piecewise linear in RGB, so a cairo gradient through the same stops is the map exactly.
  cairo_pattern_t* g = cairo_pattern_create_linear(0, bar.bottom(), 0, bar.y);
  for (auto& [t, c] : m.stops) cairo_pattern_add_color_stop_rgb(g, t, c.r, c.g, c.b);
  cairo_rectangle(cr, bar.x, bar.y, bar.w, bar.h);
  cairo_set_source(cr, g);
  cairo_fill(cr);
  cairo_pattern_destroy(g);
  cairo_set_line_width(cr, 0.8);
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_rectangle(cr, bar.x, bar.y, bar.w, bar.h);
  cairo_stroke(cr);
  auto ticks = nice_ticks(cb.vmin, cb.vmax, std::max(3, int(bar.h / 40)));
  auto labels = tick_labels(ticks, false);
  Font f{8.5};
  for (size_t i = 0; i < ticks.size(); i++) {
    double y = bar.bottom() - (ticks[i] - cb.vmin) / (cb.vmax - cb.vmin) * bar.h;
    cairo_move_to(cr, bar.right(), y);
    cairo_line_to(cr, bar.right() + 3, y);
    cairo_stroke(cr);
    draw_text(cr, labels[i], f, bar.right() + 5, y, 0, 0.5);
  }
}

}  // namespace detail

int unknown_glyphs(const std::string& text) {
  cairo_surface_t* s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 4, 4);
  cairo_t* cr = cairo_create(s);
  detail::release_font_caches_at_exit();
  PangoLayout* layout = pango_cairo_create_layout(cr);
  PangoFontDescription* desc = pango_font_description_from_string(kFontFamily);
  pango_font_description_set_size(desc, 10 * PANGO_SCALE);
  pango_layout_set_font_description(layout, desc);
  pango_font_description_free(desc);
  std::string clean = valid_utf8(text);
  pango_layout_set_text(layout, clean.c_str(), int(clean.size()));
  int n = pango_layout_get_unknown_glyphs_count(layout);
  g_object_unref(layout);
  cairo_destroy(cr);
  cairo_surface_destroy(s);
  return n;
}

}  // namespace mechscope::report
