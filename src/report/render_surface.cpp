// 3-D surface for the static renderer: matplotlib's default view (elevation 30°, azimuth −60°),
// orthographic, quads filled by the colour map at their mean height and painted back to front,
// on a box with grey back panes, grid lines and ticks on the three outer edges.
#include <algorithm>
#include <array>
#include <cmath>

#include "report/render.h"
#include "report/render_internal.h"
#include "report/ticks.h"

namespace mechscope::report::detail {

namespace {

struct P3 {
  double x, y, z;  // unit cube coordinates in [0, 1]
};

struct View {
  double cphi, sphi, ce, se, scale = 1, ox = 0, oy = 0;
  // Box aspect 1 : 1 : 0.75 like matplotlib's (4, 4, 3).
  void raw(P3 p, double& sx, double& sy, double& depth) const {
    double px = p.x - 0.5, py = p.y - 0.5, pz = (p.z - 0.5) * 0.75;
    double x1 = px * cphi - py * sphi, y1 = px * sphi + py * cphi;
    sx = x1;
    sy = pz * ce + y1 * se;     // up
    depth = y1 * ce - pz * se;  // larger = farther
  }
  void screen(P3 p, double& X, double& Y) const {
    double sx, sy, d;
    raw(p, sx, sy, d);
    X = ox + sx * scale, Y = oy - sy * scale;
  }
  double depth(P3 p) const {
    double sx, sy, d;
    raw(p, sx, sy, d);
    return d;
  }
};

}  // namespace

void draw_surface(cairo_t* cr, const PanelPlan& pl) {
  const Surface* sp = nullptr;
  for (auto& s : pl.panel->series)
    if ((sp = std::get_if<Surface>(&s))) break;
  const Surface& s = *sp;
  // Plain doubles, not a structured binding: lambdas below capture them (C++17, and clang 14).
  const auto zrange = color_range(s.z, s.vmin, s.vmax, false, 0);
  const double zlo = zrange.first, zhi = zrange.second;
  std::vector<double> xs = s.x, ys = s.y;
  if (xs.empty())
    for (size_t c = 0; c < s.cols; c++) xs.push_back(double(c));
  if (ys.empty())
    for (size_t r = 0; r < s.rows; r++) ys.push_back(double(r));
  double xlo = *std::min_element(xs.begin(), xs.end()), xhi = *std::max_element(xs.begin(), xs.end());
  double ylo = *std::min_element(ys.begin(), ys.end()), yhi = *std::max_element(ys.begin(), ys.end());
  if (xhi == xlo) xhi = xlo + 1;
  if (yhi == ylo) yhi = ylo + 1;
  auto unit = [&](size_t r, size_t c) {
    double z = s.z[r * s.cols + c];
    return P3{(xs[c] - xlo) / (xhi - xlo), (ys[r] - ylo) / (yhi - ylo), std::clamp((z - zlo) / (zhi - zlo), 0.0, 1.0)};
  };
  const double phi = 30 * M_PI / 180, elev = 30 * M_PI / 180;  // azimuth −60° seen from the front-right
  View v{std::cos(phi), std::sin(phi), std::cos(elev), std::sin(elev)};
  // Fit the projected cube into the panel, leaving room for tick labels, titles and the colour bar.
  Box area{pl.cell.x + 8, pl.cell.y + pl.m_top + 4, pl.cell.w - 16 - 60, pl.cell.h - pl.m_top - 12};
  double minx = 1e9, maxx = -1e9, miny = 1e9, maxy = -1e9;
  for (int i = 0; i < 8; i++) {
    double sx, sy, d;
    v.raw({double(i & 1), double((i >> 1) & 1), double((i >> 2) & 1)}, sx, sy, d);
    minx = std::min(minx, sx), maxx = std::max(maxx, sx), miny = std::min(miny, sy), maxy = std::max(maxy, sy);
  }
  double margin = 48;  // tick labels and axis titles around the box
  v.scale = std::min((area.w - 2 * margin) / (maxx - minx), (area.h - 1.5 * margin) / (maxy - miny));
  v.scale = std::max(v.scale, 10.0);
  v.ox = area.x + area.w / 2 - (minx + maxx) / 2 * v.scale;
  v.oy = area.y + area.h / 2 + (miny + maxy) / 2 * v.scale;

  // Back panes: for each axis the wall farther from the viewer.
  double xwall = v.depth({1, 0.5, 0.5}) > v.depth({0, 0.5, 0.5}) ? 1 : 0;
  double ywall = v.depth({0.5, 1, 0.5}) > v.depth({0.5, 0, 0.5}) ? 1 : 0;
  auto poly = [&](std::initializer_list<P3> pts) {
    cairo_new_path(cr);
    for (auto& p : pts) {
      double X, Y;
      v.screen(p, X, Y);
      cairo_line_to(cr, X, Y);
    }
    cairo_close_path(cr);
  };
  cairo_set_line_width(cr, 0.6);
  for (int w = 0; w < 3; w++) {
    if (w == 0) poly({{0, 0, 0}, {1, 0, 0}, {1, 1, 0}, {0, 1, 0}});
    if (w == 1) poly({{xwall, 0, 0}, {xwall, 1, 0}, {xwall, 1, 1}, {xwall, 0, 1}});
    if (w == 2) poly({{0, ywall, 0}, {1, ywall, 0}, {1, ywall, 1}, {0, ywall, 1}});
    cairo_set_source_rgb(cr, 0.95, 0.95, 0.95);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.8, 0.8, 0.8);
    cairo_stroke(cr);
  }
  // Grid coordinates that are all whole numbers (layers, positions) get whole-number ticks.
  auto xt = nice_ticks(xlo, xhi, 5, all_whole(xs)), yt = nice_ticks(ylo, yhi, 5, all_whole(ys)),
       zt = nice_ticks(zlo, zhi, 4);
  auto line3 = [&](P3 a, P3 b) {
    double X0, Y0, X1, Y1;
    v.screen(a, X0, Y0), v.screen(b, X1, Y1);
    cairo_move_to(cr, X0, Y0), cairo_line_to(cr, X1, Y1);
  };
  cairo_set_source_rgb(cr, 0.85, 0.85, 0.85);
  for (double t : xt) {
    double u = (t - xlo) / (xhi - xlo);
    line3({u, 0, 0}, {u, 1, 0}), line3({u, ywall, 0}, {u, ywall, 1});
  }
  for (double t : yt) {
    double u = (t - ylo) / (yhi - ylo);
    line3({0, u, 0}, {1, u, 0}), line3({xwall, u, 0}, {xwall, u, 1});
  }
  for (double t : zt) {
    double u = (t - zlo) / (zhi - zlo);
    line3({0, ywall, u}, {1, ywall, u}), line3({xwall, 0, u}, {xwall, 1, u});
  }
  cairo_stroke(cr);

  // Each grid cell as four triangles around its centre, painted back to front, each coloured by the
  // mean of its three corners: a one-cell ridge keeps its colour instead of averaging to the middle.
  const Colormap& m = colormap(s.cmap);
  struct Tri {
    double depth;
    P3 a, b, c;
    double z;  // mean data value
  };
  std::vector<Tri> tris;
  for (size_t r = 0; r + 1 < s.rows; r++)
    for (size_t c = 0; c + 1 < s.cols; c++) {
      P3 p[4] = {unit(r, c), unit(r, c + 1), unit(r + 1, c + 1), unit(r + 1, c)};
      double z[4] = {s.z[r * s.cols + c], s.z[r * s.cols + c + 1], s.z[(r + 1) * s.cols + c + 1],
                     s.z[(r + 1) * s.cols + c]};
      P3 mid{(p[0].x + p[2].x) / 2, (p[0].y + p[2].y) / 2, (p[0].z + p[1].z + p[2].z + p[3].z) / 4};
      double zmid = (z[0] + z[1] + z[2] + z[3]) / 4;
      for (int k = 0; k < 4; k++) {
        const P3 &a = p[k], &b = p[(k + 1) % 4];
        P3 cen{(a.x + b.x + mid.x) / 3, (a.y + b.y + mid.y) / 3, (a.z + b.z + mid.z) / 3};
        tris.push_back({v.depth(cen), a, b, mid, (z[k] + z[(k + 1) % 4] + zmid) / 3});
      }
    }
  std::sort(tris.begin(), tris.end(), [](const Tri& a, const Tri& b) { return a.depth > b.depth; });
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  for (auto& t : tris) {
    poly({t.a, t.b, t.c});
    set_color(cr, m.at((t.z - zlo) / (zhi - zlo)));
    cairo_fill_preserve(cr);
    cairo_set_line_width(cr, 0.25);
    cairo_stroke(cr);  // same colour: closes antialiasing seams between triangles
    // The triangle's outer side is a cell edge: a faint wireframe, occluded like the surface.
    double X0, Y0, X1, Y1;
    v.screen(t.a, X0, Y0), v.screen(t.b, X1, Y1);
    cairo_move_to(cr, X0, Y0), cairo_line_to(cr, X1, Y1);
    cairo_set_source_rgba(cr, 0, 0, 0, 0.25);
    cairo_set_line_width(cr, 0.3);
    cairo_stroke(cr);
  }

  // Ticks and labels on the two front edges of the floor, offset away from the box along the other
  // floor axis (as matplotlib does), and on the vertical edge at the leftmost floor corner.
  Font tf{8};
  double yfront = 1 - ywall, xfront = 1 - xwall;
  auto away = [&](P3 from, P3 to, double& dx, double& dy) {
    double X0, Y0, X1, Y1;
    v.screen(from, X0, Y0), v.screen(to, X1, Y1);
    double n = std::hypot(X1 - X0, Y1 - Y0);
    dx = (X1 - X0) / n, dy = (Y1 - Y0) / n;
  };
  double xdx, xdy, ydx, ydy;
  away({0, ywall, 0}, {0, yfront, 0}, xdx, xdy);  // x tick labels move towards the front in y
  away({xwall, 0, 0}, {xfront, 0, 0}, ydx, ydy);
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_line_width(cr, 0.8);
  line3({0, yfront, 0}, {1, yfront, 0});
  line3({xfront, 0, 0}, {xfront, 1, 0});
  cairo_stroke(cr);
  auto labels_x = tick_labels(xt, false), labels_y = tick_labels(yt, false), labels_z = tick_labels(zt, false);
  double X, Y, xw = 0, yw = 0;
  auto tick = [&](P3 p, double dx, double dy, const std::string& label, double& widest) {
    v.screen(p, X, Y);
    cairo_move_to(cr, X, Y);
    cairo_line_to(cr, X + dx * 4, Y + dy * 4);
    cairo_stroke(cr);
    auto sz = measure(cr, label, tf);
    // Centre of the label box far enough along (dx, dy) that the box clears the tick.
    double reach = 7 + 0.5 * (std::abs(dx) * sz.w + std::abs(dy) * sz.h);
    draw_text(cr, label, tf, X + dx * reach, Y + dy * reach, 0.5, 0.5);
    widest = std::max(widest, std::abs(dx) * sz.w + std::abs(dy) * sz.h);
  };
  for (size_t i = 0; i < xt.size(); i++) tick({(xt[i] - xlo) / (xhi - xlo), yfront, 0}, xdx, xdy, labels_x[i], xw);
  for (size_t i = 0; i < yt.size(); i++) tick({xfront, (yt[i] - ylo) / (yhi - ylo), 0}, ydx, ydy, labels_y[i], yw);
  // z axis: the vertical edge at the leftmost floor corner.
  P3 best{0, 0, 0};
  double bx = 1e9;
  for (int i = 0; i < 4; i++) {
    P3 p{double(i & 1), double(i >> 1), 0};
    double sx, sy;
    v.screen(p, sx, sy);
    if (sx < bx) bx = sx, best = p;
  }
  line3({best.x, best.y, 0}, {best.x, best.y, 1});
  cairo_stroke(cr);
  double zw = 0;
  for (size_t i = 0; i < zt.size(); i++) {
    v.screen({best.x, best.y, (zt[i] - zlo) / (zhi - zlo)}, X, Y);
    cairo_move_to(cr, X, Y);
    cairo_line_to(cr, X - 4, Y);
    cairo_stroke(cr);
    draw_text(cr, labels_z[i], tf, X - 6, Y, 1, 0.5);
    zw = std::max(zw, measure(cr, labels_z[i], tf).w);
  }
  Font lf{9.5};
  if (!s.x_title.empty()) {
    v.screen({0.5, yfront, 0}, X, Y);
    double reach = 14 + xw + 0.5 * measure(cr, s.x_title, lf).h;
    draw_text(cr, s.x_title, lf, X + xdx * reach, Y + xdy * reach, 0.5, 0.5);
  }
  if (!s.y_title.empty()) {
    v.screen({xfront, 0.5, 0}, X, Y);
    double reach = 14 + yw + 0.5 * measure(cr, s.y_title, lf).h;
    draw_text(cr, s.y_title, lf, X + ydx * reach, Y + ydy * reach, 0.5, 0.5);
  }
  if (!s.z_title.empty()) {
    v.screen({best.x, best.y, 0.5}, X, Y);
    draw_text(cr, s.z_title, lf, X - 10 - zw, Y, 0.5, 1, 90);
  }
  if (!pl.panel->title.empty())
    draw_text(cr, pl.panel->title, {10.5, true}, pl.cell.x + pl.cell.w / 2, pl.cell.y + pl.m_top - 4, 0.5, 1);
  // Colour bar beside the box, 60% of its height.
  double bar_h = 0.6 * (maxy - miny) * v.scale;
  Box bar{std::min(v.ox + maxx * v.scale + 45, pl.cell.right() - 50), v.oy - (miny + maxy) / 2 * v.scale - bar_h / 2,
          10, bar_h};
  draw_colorbar(cr, {true, s.cmap, "", zlo, zhi}, bar);
}

}  // namespace mechscope::report::detail
