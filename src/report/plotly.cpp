// Figure → plotly.js figure JSON (data, layout, frames), from the same model as the static renderer:
// same colour maps (as explicit colour scales), same colour limits, same histogram bins.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "report/html.h"
#include "report/label.h"
#include "report/ticks.h"

namespace mechscope::report {

using nlohmann::json;

namespace {

// 6 significant digits keep the page small; NaN/inf → null (a gap in plotly).
json num(double v) {
  if (!std::isfinite(v)) return nullptr;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return std::strtod(buf, nullptr);
}

json nums(const std::vector<double>& v) {
  json a = json::array();
  for (double x : v) a.push_back(num(x));
  return a;
}

// Hover and tick text is pseudo-HTML in plotly: a token "<|endoftext|>" must not become a tag.
std::string esc(const std::string& s) { return html_escape(valid_utf8(s)); }

json colorscale(const std::string& name) {
  json a = json::array();
  for (auto& [t, c] : colormap(name).stops) a.push_back({num(t), to_css(c)});
  return a;
}

std::string rgba(Rgb c, double a) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "rgba(%d,%d,%d,%.2f)", int(std::lround(c.r * 255)), int(std::lround(c.g * 255)),
                int(std::lround(c.b * 255)), a);
  return buf;
}

std::string symbol(Marker m) {
  switch (m) {
    case Marker::Square: return "square";
    case Marker::Triangle: return "triangle-up";
    case Marker::Diamond: return "diamond";
    case Marker::Cross: return "x";
    default: return "circle";
  }
}

std::string dash(Dash d) { return d == Dash::Dashed ? "dash" : d == Dash::Dotted ? "dot" : "solid"; }

std::string suffix(size_t k) { return k == 0 ? "" : std::to_string(k + 1); }

struct Domain {
  double x0, x1, y0, y1;
};

struct Ctx {
  const Figure& fig;
  size_t k;  // panel index
  Domain d;
  std::string xref, yref;
  size_t color_i = 0;
  std::string xname, yname;
};

json colorbar(const Ctx& c, const std::string& title) {
  json cb = {{"thickness", 12},     {"len", c.d.y1 - c.d.y0}, {"y", (c.d.y0 + c.d.y1) / 2}, {"yanchor", "middle"},
             {"x", c.d.x1 + 0.012}, {"xanchor", "left"},      {"outlinewidth", 0.8}};
  if (!title.empty()) cb["title"] = {{"text", esc(title)}, {"side", "right"}};
  return cb;
}

std::vector<std::string> labels_or_index(const std::vector<std::string>& labels, size_t n) {
  std::vector<std::string> out;
  for (size_t i = 0; i < n; i++) out.push_back(labels.empty() ? std::to_string(i) : labels[i]);
  return out;
}

// Traces of one series.
// Plotly's automatic ticks on a short whole-number axis (a few layers) fall between the numbers;
// one per number there, as the PNG's whole-number ticks.
void whole_number_ticks(json& ax, double lo, double hi) {
  if (hi >= lo && hi - lo <= 10) ax["tick0"] = 0, ax["dtick"] = 1;
}

void series_traces(Ctx& c, const Series& s, json& data, json& layout) {
  auto base = [&](const char* type) {
    json t = {{"type", type}};
    t["xaxis"] = c.xref;
    t["yaxis"] = c.yref;
    return t;
  };
  auto next_color = [&](const std::optional<Rgb>& col) { return col ? *col : cycle_color(c.color_i++); };
  std::string xa = "xaxis" + suffix(c.k), ya = "yaxis" + suffix(c.k);
  if (auto* h = std::get_if<Heatmap>(&s)) {
    auto rows = labels_or_index(h->row_labels, h->rows), cols = labels_or_index(h->col_labels, h->cols);
    auto [lo, hi] = color_range(h->z, h->vmin, h->vmax, h->centered, h->center);
    json z = json::array(), text = json::array();
    for (size_t r = 0; r < h->rows; r++) {
      json zr = json::array(), tr = json::array();
      for (size_t col = 0; col < h->cols; col++) {
        zr.push_back(num(h->z[r * h->cols + col]));
        tr.push_back(esc(h->row_name) + ": " + esc(rows[r]) + "<br>" + esc(h->col_name) + ": " + esc(cols[col]) +
                     "<br>" + esc(h->value_name) + ": " + format_number(h->z[r * h->cols + col], -1));
      }
      z.push_back(zr);
      text.push_back(tr);
    }
    json t = base("heatmap");
    std::vector<double> xi, yi;
    for (size_t i = 0; i < h->cols; i++) xi.push_back(double(i));
    for (size_t i = 0; i < h->rows; i++) yi.push_back(double(i));
    t["x"] = nums(xi);
    t["y"] = nums(yi);
    t["z"] = z;
    t["text"] = text;
    t["hovertemplate"] = "%{text}<extra></extra>";
    t["colorscale"] = colorscale(h->cmap);
    t["zmin"] = num(lo);
    t["zmax"] = num(hi);
    t["xgap"] = 0;
    t["ygap"] = 0;
    t["showscale"] = h->colorbar;
    if (h->colorbar) t["colorbar"] = colorbar(c, h->colorbar_title);
    if (h->cell_text) {
      t["texttemplate"] = "%{z:." + std::to_string(h->cell_decimals) + "f}";
      t["textfont"] = {{"size", 9}};
    }
    data.push_back(t);
    // Duplicate tokens would merge on a category axis: positions are numbers, labels are tick text.
    auto ticks = [](const std::vector<std::string>& labels) {
      size_t stride = labels.size() > 60 ? (labels.size() + 59) / 60 : 1;
      json vals = json::array(), text = json::array();
      // Long tokens are cut on the axis (the hover text has them whole).
      for (size_t i = 0; i < labels.size(); i += stride)
        vals.push_back(i), text.push_back(esc(truncate_label(labels[i], 18)));
      return std::make_pair(vals, text);
    };
    auto [xv, xt] = ticks(cols);
    auto [yv, yt] = ticks(rows);
    layout[xa]["tickvals"] = xv;
    layout[xa]["ticktext"] = xt;
    layout[xa]["range"] = {-0.5, double(h->cols) - 0.5};
    layout[ya]["tickvals"] = yv;
    layout[ya]["ticktext"] = yt;
    layout[ya]["range"] = {double(h->rows) - 0.5, -0.5};  // row 0 on top
    layout[xa]["showgrid"] = false;
    layout[ya]["showgrid"] = false;
  } else if (auto* l = std::get_if<Line>(&s)) {
    Rgb col = next_color(l->color);
    if (!l->err.empty() && !l->err_bars) {
      json band = base("scatter");
      std::vector<double> bx = l->x, by;
      for (size_t i = 0; i < l->y.size(); i++) by.push_back(l->y[i] + l->err[i]);
      for (size_t i = l->x.size(); i-- > 0;) bx.push_back(l->x[i]), by.push_back(l->y[i] - l->err[i]);
      band["x"] = nums(bx);
      band["y"] = nums(by);
      band["fill"] = "toself";
      band["fillcolor"] = rgba(col, 0.2);
      band["line"] = {{"width", 0}};
      band["hoverinfo"] = "skip";
      band["showlegend"] = false;
      band["mode"] = "lines";
      data.push_back(band);
    }
    json t = base("scatter");
    t["x"] = nums(l->x);
    t["y"] = nums(l->y);
    t["mode"] = l->marker == Marker::None ? "lines" : "lines+markers";
    t["line"] = {{"color", to_css(col)}, {"width", l->width * 1.33}, {"dash", dash(l->dash)}};
    if (l->marker != Marker::None) t["marker"] = {{"symbol", symbol(l->marker)}, {"size", 7}, {"color", to_css(col)}};
    if (!l->name.empty()) t["name"] = esc(l->name);
    t["showlegend"] = !l->name.empty();
    if (!l->err.empty() && l->err_bars)
      t["error_y"] = {{"type", "data"}, {"array", nums(l->err)}, {"visible", true}, {"color", to_css(col)}};
    if (!l->hover.empty()) {
      json ht = json::array();
      for (auto& h : l->hover) ht.push_back(esc(h));
      t["hovertext"] = ht;
      t["hovertemplate"] = "%{hovertext}<extra></extra>";
    } else {
      std::string err = l->err.empty() ? "" : " ± %{customdata:.4g}";
      if (!l->err.empty()) t["customdata"] = nums(l->err);
      t["hovertemplate"] =
          esc(c.xname) + ": %{x}<br>" + esc(c.yname) + ": %{y:.4g}" + err + "<extra>" + esc(l->name) + "</extra>";
    }
    data.push_back(t);
  } else if (auto* sc = std::get_if<Scatter>(&s)) {
    Rgb col = next_color(sc->color);
    json t = base(sc->x.size() > 3000 ? "scattergl" : "scatter");
    t["x"] = nums(sc->x);
    t["y"] = nums(sc->y);
    bool labelled = std::any_of(sc->labels.begin(), sc->labels.end(), [](auto& s) { return !s.empty(); });
    t["mode"] = labelled ? "markers+text" : "markers";
    json marker = {{"symbol", symbol(sc->marker)}, {"size", sc->size * 2 * 1.33}, {"opacity", sc->alpha}};
    if (!sc->c.empty()) {
      auto [lo, hi] = color_range(sc->c, sc->vmin, sc->vmax, false, 0);
      marker["color"] = nums(sc->c);
      marker["colorscale"] = colorscale(sc->cmap);
      marker["cmin"] = num(lo);
      marker["cmax"] = num(hi);
      marker["showscale"] = true;
      marker["colorbar"] = colorbar(c, sc->colorbar_title);
    } else {
      marker["color"] = to_css(col);
    }
    t["marker"] = marker;
    if (labelled) {
      json lt = json::array();
      for (auto& s : sc->labels) lt.push_back(esc(s));
      t["text"] = lt;
      t["textposition"] = "top center";
      t["textfont"] = {{"size", 10}};
    }
    const auto& hv = sc->hover.empty() ? sc->labels : sc->hover;
    std::string cpart = sc->c.empty() ? ""
                                      : "<br>" + esc(sc->colorbar_title.empty() ? "colour" : sc->colorbar_title) +
                                            ": %{marker.color:.4g}";
    if (!hv.empty()) {
      json ht = json::array();
      for (auto& h : hv) ht.push_back(esc(h));
      t["hovertext"] = ht;
      t["hovertemplate"] = "%{hovertext}<br>" + esc(c.xname) + ": %{x:.4g}<br>" + esc(c.yname) + ": %{y:.4g}" + cpart +
                           "<extra></extra>";
    } else {
      t["hovertemplate"] = esc(c.xname) + ": %{x:.4g}<br>" + esc(c.yname) + ": %{y:.4g}" + cpart + "<extra>" +
                           esc(sc->name) + "</extra>";
    }
    if (!sc->name.empty()) t["name"] = esc(sc->name);
    t["showlegend"] = !sc->name.empty();
    data.push_back(t);
  } else if (auto* b = std::get_if<Bar>(&s)) {
    Rgb col = next_color(b->color);
    json t = base("bar");
    std::vector<double> xi;
    for (size_t i = 0; i < b->values.size(); i++) xi.push_back(double(i));
    t["x"] = nums(xi);
    t["y"] = nums(b->values);
    if (!b->cmap.empty()) {
      auto [lo, hi] = color_range(b->values, kAuto, kAuto, b->centered, 0);
      if (!b->centered) lo = std::min(lo, 0.0);
      t["marker"] = {{"color", nums(b->values)},
                     {"colorscale", colorscale(b->cmap)},
                     {"cmin", num(lo)},
                     {"cmax", num(hi)},
                     {"line", {{"color", "rgba(0,0,0,0.6)"}, {"width", 0.7}}}};
    } else {
      t["marker"] = {{"color", to_css(col)}, {"line", {{"color", "rgba(0,0,0,0.6)"}, {"width", 0.7}}}};
    }
    json cats = json::array(), vals = json::array();
    for (size_t i = 0; i < b->categories.size(); i++) cats.push_back(esc(b->categories[i])), vals.push_back(i);
    if (b->value_labels) {
      t["texttemplate"] = b->decimals >= 0 ? "%{y:." + std::to_string(b->decimals) + "f}" : "%{y:.4g}";
      t["textposition"] = "outside";
      t["cliponaxis"] = false;
    }
    t["customdata"] = cats;
    t["hovertemplate"] = esc(c.xname.empty() ? "category" : c.xname) + ": %{customdata}<br>" +
                         esc(c.yname.empty() ? "value" : c.yname) + ": %{y:.4g}<extra></extra>";
    if (!b->err_plus.empty()) {
      t["error_y"] = {{"type", "data"},
                      {"symmetric", false},
                      {"array", nums(b->err_plus)},
                      {"arrayminus", nums(b->err_minus)},
                      {"color", "#222"},
                      {"thickness", 1.2},
                      {"width", 5}};
      // The value label would sit on the error bar; the hover still gives the value.
      t.erase("texttemplate");
    }
    if (!b->name.empty()) t["name"] = esc(b->name);
    t["showlegend"] = !b->name.empty();
    data.push_back(t);
    layout[xa]["tickvals"] = vals;
    layout[xa]["ticktext"] = cats;
  } else if (auto* h = std::get_if<Histogram>(&s)) {
    Rgb col = next_color(h->color);
    Binned bins = histogram_bins(*h);
    std::vector<double> centers, widths;
    json lab = json::array();
    for (size_t i = 0; i + 1 < bins.edges.size(); i++) {
      centers.push_back(0.5 * (bins.edges[i] + bins.edges[i + 1]));
      widths.push_back(bins.edges[i + 1] - bins.edges[i]);
      lab.push_back("[" + format_number(bins.edges[i]) + ", " + format_number(bins.edges[i + 1]) + ")");
    }
    json t = base("bar");
    t["x"] = nums(centers);
    t["y"] = nums(bins.counts);
    t["width"] = nums(widths);
    t["customdata"] = lab;
    t["marker"] = {{"color", rgba(col, 0.85)}, {"line", {{"color", "white"}, {"width", 0.8}}}};
    t["hovertemplate"] = esc(c.xname.empty() ? "bin" : c.xname) + ": %{customdata}<br>" +
                         (h->density ? "density" : "count") + ": %{y:.4g}<extra></extra>";
    if (!h->name.empty()) t["name"] = esc(h->name);
    t["showlegend"] = !h->name.empty();
    data.push_back(t);
    layout["bargap"] = 0;
  } else if (auto* cd = std::get_if<Cdf>(&s)) {
    Rgb col = next_color(cd->color);
    std::vector<double> v;
    for (double x : cd->values)
      if (std::isfinite(x)) v.push_back(x);
    std::sort(v.begin(), v.end());
    std::vector<double> y;
    for (size_t i = 0; i < v.size(); i++) y.push_back(double(i + 1) / v.size());
    json t = base("scatter");
    t["x"] = nums(v);
    t["y"] = nums(y);
    t["mode"] = "lines";
    t["line"] = {{"color", to_css(col)}, {"width", 2}, {"shape", "hv"}};
    t["hovertemplate"] = esc(c.xname) + ": %{x:.4g}<br>fraction ≤ x: %{y:.3f}<extra></extra>";
    if (!cd->name.empty()) t["name"] = esc(cd->name);
    t["showlegend"] = !cd->name.empty();
    data.push_back(t);
    if (cd->mark_median && !v.empty()) {
      double m = median(v);
      json med = base("scatter");
      med["x"] = {num(m), num(m)};
      med["y"] = {0, 1};
      med["mode"] = "lines";
      med["line"] = {{"color", "rgb(214,39,40)"}, {"dash", "dash"}, {"width", 1.6}};
      med["name"] = "median = " + format_number(m);
      med["showlegend"] = true;
      med["hovertemplate"] = "median: " + format_number(m) + "<extra></extra>";
      data.push_back(med);
    }
  } else if (auto* tx = std::get_if<Text>(&s)) {
    std::string body;
    for (auto& line : tx->lines) {
      std::string e = esc(line), sp;
      for (char ch : e) sp += ch == ' ' ? std::string("&nbsp;") : std::string(1, ch);
      body += (body.empty() ? "" : "<br>") + sp;
    }
    layout["annotations"].push_back(
        {{"text", body},
         {"xref", "paper"},
         {"yref", "paper"},
         {"x", c.d.x0},
         {"y", c.d.y1},
         {"xanchor", "left"},
         {"yanchor", "top"},
         {"align", "left"},
         {"showarrow", false},
         {"font", {{"family", tx->monospace ? "DejaVu Sans Mono, monospace" : "sans-serif"}, {"size", 12}}},
         {"bgcolor", "#f7f7f7"},
         {"bordercolor", "#bbb"},
         {"borderpad", 8}});
    layout[xa]["visible"] = false;
    layout[ya]["visible"] = false;
    // An invisible trace keeps the panel's axes (and its div's plot) well formed.
    json t = base("scatter");
    t["x"] = json::array();
    t["y"] = json::array();
    t["showlegend"] = false;
    t["hoverinfo"] = "skip";
    data.push_back(t);
  } else if (auto* sg = std::get_if<Segments>(&s)) {
    // Plotly has one width and colour per trace: segments are grouped by colour and by width rounded
    // to 0.25 pt, each group one trace with null breaks between its segments.
    Rgb col = next_color(sg->color);
    std::vector<std::pair<std::pair<std::string, long>, std::vector<size_t>>> groups;
    for (size_t i = 0; i < sg->x0.size(); i++) {
      double w = sg->widths.empty() ? sg->width : sg->widths[i];
      std::pair<std::string, long> key{rgba(sg->colors.empty() ? col : sg->colors[i], sg->alpha), std::lround(w * 4)};
      auto it = std::find_if(groups.begin(), groups.end(), [&](auto& g) { return g.first == key; });
      if (it == groups.end()) groups.push_back({key, {i}});
      else it->second.push_back(i);
    }
    bool legend = !sg->name.empty();
    for (auto& [key, idx] : groups) {
      json t = base("scatter");
      json xs = json::array(), ys = json::array();
      for (size_t i : idx) {
        xs.push_back(num(sg->x0[i])), xs.push_back(num(sg->x1[i])), xs.push_back(nullptr);
        ys.push_back(num(sg->y0[i])), ys.push_back(num(sg->y1[i])), ys.push_back(nullptr);
      }
      t["x"] = xs;
      t["y"] = ys;
      t["mode"] = "lines";
      t["line"] = {{"color", key.first}, {"width", std::max(0.25, key.second / 4.0) * 1.33}};
      t["hoverinfo"] = "skip";
      t["showlegend"] = legend;
      if (legend) t["name"] = esc(sg->name), t["legendgroup"] = esc(sg->name);
      else t["showlegend"] = false;
      legend = false;
      data.push_back(t);
    }
    if (!sg->hover.empty()) {
      json t = base("scatter");
      std::vector<double> mx, my;
      json ht = json::array();
      for (size_t i = 0; i < sg->x0.size(); i++) {
        mx.push_back(0.5 * (sg->x0[i] + sg->x1[i])), my.push_back(0.5 * (sg->y0[i] + sg->y1[i]));
        ht.push_back(esc(sg->hover[i]));
      }
      t["x"] = nums(mx);
      t["y"] = nums(my);
      t["mode"] = "markers";
      t["marker"] = {{"size", 6}, {"opacity", 0}};
      t["hovertext"] = ht;
      t["hovertemplate"] = "%{hovertext}<extra></extra>";
      t["showlegend"] = false;
      data.push_back(t);
    }
  } else if (auto* bp = std::get_if<BoxPlot>(&s)) {
    // Plotly's precomputed-statistics box (q1/median/q3/fences) with only the outliers as its sample,
    // so the page shows box_stats' numbers (those of the PNG) and carries no more points than it draws.
    // One trace per box: plotly colours a trace as a whole.
    Rgb col = next_color(bp->color);
    bool legend = !bp->name.empty();
    for (size_t i = 0; i < bp->x.size(); i++) {
      BoxStats st = box_stats(bp->samples[i]);
      if (!st.n) continue;
      Rgb ci = bp->colors.empty() ? col : bp->colors[i];
      json t = base("box");
      t["x"] = json::array({num(bp->x[i])});
      t["q1"] = json::array({num(st.q1)});
      t["median"] = json::array({num(st.median)});
      t["q3"] = json::array({num(st.q3)});
      t["lowerfence"] = json::array({num(st.lower_fence)});
      t["upperfence"] = json::array({num(st.upper_fence)});
      t["y"] = json::array({nums(st.outliers)});
      t["boxpoints"] = "outliers";
      t["width"] = num(bp->width);
      t["line"] = {{"color", to_css(ci)}, {"width", 1.33}};
      t["fillcolor"] = rgba(ci, 0.5);
      t["marker"] = {{"color", to_css(ci)}, {"size", bp->point_size * 2 * 1.33}, {"opacity", 0.8}};
      if (!bp->hover.empty()) t["name"] = esc(bp->hover[i]);
      t["showlegend"] = legend;
      if (legend) t["name"] = esc(bp->name), t["legendgroup"] = esc(bp->name);
      legend = false;
      data.push_back(t);
    }
  } else if (auto* sf = std::get_if<Surface>(&s)) {
    std::string scene = "scene" + suffix(c.k);
    auto [lo, hi] = color_range(sf->z, sf->vmin, sf->vmax, false, 0);
    json z = json::array();
    for (size_t r = 0; r < sf->rows; r++) {
      json zr = json::array();
      for (size_t col = 0; col < sf->cols; col++) zr.push_back(num(sf->z[r * sf->cols + col]));
      z.push_back(zr);
    }
    json t = {{"type", "surface"}, {"scene", scene}, {"z", z}, {"colorscale", colorscale(sf->cmap)},
              {"cmin", num(lo)},   {"cmax", num(hi)}};
    std::vector<double> xs = sf->x, ys = sf->y;
    if (xs.empty())
      for (size_t i = 0; i < sf->cols; i++) xs.push_back(double(i));
    if (ys.empty())
      for (size_t i = 0; i < sf->rows; i++) ys.push_back(double(i));
    t["x"] = nums(xs);
    t["y"] = nums(ys);
    t["colorbar"] = colorbar(c, sf->z_title);
    t["hovertemplate"] = esc(sf->x_title.empty() ? "x" : sf->x_title) + ": %{x}<br>" +
                         esc(sf->y_title.empty() ? "y" : sf->y_title) + ": %{y}<br>" +
                         esc(sf->z_title.empty() ? "z" : sf->z_title) + ": %{z:.4g}<extra></extra>";
    data.push_back(t);
    layout[scene] = {{"domain", {{"x", {c.d.x0, c.d.x1}}, {"y", {c.d.y0, c.d.y1}}}},
                     {"xaxis", {{"title", {{"text", esc(sf->x_title)}}}}},
                     {"yaxis", {{"title", {{"text", esc(sf->y_title)}}}}},
                     {"zaxis", {{"title", {{"text", esc(sf->z_title)}}}}},
                     {"camera", {{"eye", {{"x", 1.5}, {"y", -1.5}, {"z", 1.1}}}}}};
    auto [xlo, xhi] = std::minmax_element(xs.begin(), xs.end());
    auto [ylo, yhi] = std::minmax_element(ys.begin(), ys.end());
    if (all_whole(xs)) whole_number_ticks(layout[scene]["xaxis"], *xlo, *xhi);
    if (all_whole(ys)) whole_number_ticks(layout[scene]["yaxis"], *ylo, *yhi);
    layout[xa]["visible"] = false;
    layout[ya]["visible"] = false;
  }
}

bool panel_has_colorbar(const Panel& p) {
  for (auto& s : p.series) {
    if (auto* h = std::get_if<Heatmap>(&s); h && h->colorbar) return true;
    if (auto* sc = std::get_if<Scatter>(&s); sc && !sc->c.empty()) return true;
    if (std::holds_alternative<Surface>(s)) return true;
  }
  return false;
}

void panel_extent(const std::vector<Series>& series, double& lo, double& hi, bool y) {
  for (auto& s : series) {
    auto add = [&](double v) {
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    };
    if (auto* l = std::get_if<Line>(&s))
      for (size_t i = 0; i < l->y.size(); i++) {
        if (!y) add(l->x[i]);
        else add(l->y[i] - (l->err.empty() ? 0 : l->err[i])), add(l->y[i] + (l->err.empty() ? 0 : l->err[i]));
      }
    if (auto* sc = std::get_if<Scatter>(&s))
      for (double v : y ? sc->y : sc->x) add(v);
    if (auto* sg = std::get_if<Segments>(&s)) {
      for (double v : y ? sg->y0 : sg->x0) add(v);
      for (double v : y ? sg->y1 : sg->x1) add(v);
    }
    if (auto* b = std::get_if<Bar>(&s); b && y) {
      add(0);
      for (double v : b->values) add(v);
      for (size_t i = 0; i < b->err_plus.size(); i++)
        add(b->values[i] - b->err_minus[i]), add(b->values[i] + b->err_plus[i]);
    }
    if (auto* h = std::get_if<Histogram>(&s); h && !y)
      for (double v : h->values) add(v);
    if (auto* bp = std::get_if<BoxPlot>(&s))
      for (size_t i = 0; i < bp->x.size(); i++) {
        if (!y) {
          add(bp->x[i] - bp->width / 2), add(bp->x[i] + bp->width / 2);
          continue;
        }
        BoxStats st = box_stats(bp->samples[i]);
        add(st.lower_fence), add(st.upper_fence);
        for (double o : st.outliers) add(o);
      }
  }
}

}  // namespace

json plotly_figure(const Figure& fig) {
  validate(fig);
  json data = json::array(), layout = json::object(), frames = json::array();
  bool any_cb = false;
  for (auto& p : fig.panels) any_cb = any_cb || panel_has_colorbar(p);
  double cw = 1.0 / fig.cols, rh = 1.0 / fig.rows;
  layout["annotations"] = json::array();
  layout["shapes"] = json::array();
  for (size_t k = 0; k < fig.panels.size(); k++) {
    const Panel& p = fig.panels[k];
    int r = int(k) / fig.cols, col = int(k) % fig.cols;
    bool cb = panel_has_colorbar(p);
    // Room between columns for a colour bar (ticks + title) and the next panel's y-axis title.
    Domain d{col * cw + (col > 0 ? 0.06 : 0.0), (col + 1) * cw - (cb ? 0.12 : (col + 1 < fig.cols ? 0.03 : 0.0)),
             1 - (r + 1) * rh + (r + 1 < fig.rows ? 0.09 / fig.rows * 2 : 0.0),
             1 - r * rh - (fig.rows > 1 && r > 0 ? 0.04 : 0.0)};
    if (fig.rows > 1) d.y1 -= 0.03;
    Ctx c{fig,
          k,
          d,
          "x" + suffix(k),
          "y" + suffix(k),
          0,
          p.x.label.empty() ? "x" : p.x.label,
          p.y.label.empty() ? "y" : p.y.label};
    std::string xa = "xaxis" + suffix(k), ya = "yaxis" + suffix(k);
    auto axis = [&](const Axis& a, bool is_x) {
      json ax = {{"domain", is_x ? json{d.x0, d.x1} : json{d.y0, d.y1}},
                 {"anchor", is_x ? c.yref : c.xref},
                 {"showline", true},
                 {"mirror", true},
                 {"linecolor", "black"},
                 {"linewidth", 1},
                 {"ticks", "outside"},
                 {"zeroline", false},
                 {"showgrid", a.grid},
                 {"gridcolor", "#e5e5e5"},
                 {"automargin", true}};
      if (!a.label.empty()) ax["title"] = {{"text", esc(a.label)}, {"standoff", 6}};
      if (a.log) ax["type"] = "log", ax["dtick"] = 1;  // decades only, like the PNG
      if (!std::isnan(a.min) && !std::isnan(a.max))
        ax["range"] = a.log ? json{std::log10(a.min), std::log10(a.max)} : json{a.min, a.max};
      if (!a.ticks.empty()) {
        ax["tickvals"] = nums(a.ticks);
        if (a.tick_labels.size() == a.ticks.size()) {
          json t = json::array();
          for (auto& s : a.tick_labels) t.push_back(esc(s));
          ax["ticktext"] = t;
        }
      }
      if (a.integer && !a.log && a.ticks.empty()) {
        double lo = INFINITY, hi = -INFINITY;
        panel_extent(p.series, lo, hi, !is_x);
        whole_number_ticks(ax, lo, hi);
      }
      if (k > 0 && (is_x ? fig.share_x : fig.share_y)) ax["matches"] = is_x ? "x" : "y";
      return ax;
    };
    layout[xa] = axis(p.x, true);
    layout[ya] = axis(p.y, false);
    const std::vector<Series>& series = (k == 0 && !fig.frames.empty()) ? fig.frames[0].series : p.series;
    size_t first = data.size();
    for (auto& s : series) series_traces(c, s, data, layout);
    if (!p.title.empty())
      layout["annotations"].push_back({{"text", "<b>" + esc(p.title) + "</b>"},
                                       {"xref", "paper"},
                                       {"yref", "paper"},
                                       {"x", (d.x0 + d.x1) / 2},
                                       {"y", d.y1},
                                       {"xanchor", "center"},
                                       {"yanchor", "bottom"},
                                       {"showarrow", false},
                                       {"font", {{"size", 13}}}});
    double lo = INFINITY, hi = -INFINITY;
    panel_extent(series, lo, hi, false);
    panel_extent(series, lo, hi, true);
    for (auto& ref : p.refs) {
      json line = {{"color", to_css(ref.color)}, {"dash", dash(ref.dash)}, {"width", 1.5}};
      if (ref.kind == RefLine::Diagonal) {
        if (!(lo <= hi)) continue;
        json t = {{"type", "scatter"},
                  {"xaxis", c.xref},
                  {"yaxis", c.yref},
                  {"x", {num(lo), num(hi)}},
                  {"y", {num(lo), num(hi)}},
                  {"mode", "lines"},
                  {"line", line},
                  {"hoverinfo", "skip"},
                  {"showlegend", !ref.name.empty()}};
        if (!ref.name.empty()) t["name"] = esc(ref.name);
        data.push_back(t);
      } else {
        bool hz = ref.kind == RefLine::Horizontal;
        json sh = {{"type", "line"}, {"line", line}};
        sh["xref"] = hz ? c.xref + " domain" : c.xref;
        sh["yref"] = hz ? c.yref : c.yref + " domain";
        sh["x0"] = hz ? json(0) : num(ref.value);
        sh["x1"] = hz ? json(1) : num(ref.value);
        sh["y0"] = hz ? num(ref.value) : json(0);
        sh["y1"] = hz ? num(ref.value) : json(1);
        layout["shapes"].push_back(sh);
      }
    }
    if (fig.panels.size() > 1) {
      // One legend per panel, in its top-right corner (plotly ≥ 2.22 supports several legends).
      std::string lg = "legend" + suffix(k);
      bool any = false;
      for (size_t i = first; i < data.size(); i++)
        if (data[i].value("showlegend", false)) data[i]["legend"] = lg, any = true;
      if (any)
        layout[lg] = {{"x", d.x1 - 0.005},
                      {"y", d.y1 - 0.005},
                      {"xanchor", "right"},
                      {"yanchor", "top"},
                      {"xref", "paper"},
                      {"yref", "paper"},
                      {"bgcolor", "rgba(255,255,255,0.85)"},
                      {"bordercolor", "#ccc"},
                      {"borderwidth", 1},
                      {"font", {{"size", 11}}}};
    }
    if (k == 0 && !fig.frames.empty()) {
      // Fixed y range over all frames, so the animation shows change rather than rescaling.
      double flo = INFINITY, fhi = -INFINITY;
      for (auto& f : fig.frames) panel_extent(f.series, flo, fhi, true);
      if (flo <= fhi && !layout[ya].contains("range")) {
        double m = 0.08 * (fhi - flo + 1e-12);
        layout[ya]["range"] = {num(flo - m), num(fhi + m)};
      }
      json steps = json::array();
      for (auto& f : fig.frames) {
        Ctx fc = c;
        fc.color_i = 0;
        json fdata = json::array(), scratch = layout;
        for (auto& s : f.series) series_traces(fc, s, fdata, scratch);
        json idx = json::array();
        for (size_t i = 0; i < fdata.size(); i++) idx.push_back(first + i);
        frames.push_back({{"name", esc(f.name)}, {"data", fdata}, {"traces", idx}});
        steps.push_back({{"label", esc(f.name)},
                         {"method", "animate"},
                         {"args",
                          {{esc(f.name)},
                           {{"mode", "immediate"},
                            {"frame", {{"duration", 0}, {"redraw", true}}},
                            {"transition", {{"duration", 0}}}}}}});
      }
      layout["sliders"] = {{{"active", 0},
                            {"steps", steps},
                            {"x", 0.1},
                            {"len", 0.9},
                            {"y", 0},
                            {"yanchor", "top"},
                            {"pad", {{"t", 110}}},
                            {"currentvalue", {{"prefix", ""}, {"font", {{"size", 13}}}}}}};
      layout["updatemenus"] = {
          {{"type", "buttons"},
           {"showactive", false},
           {"x", 0.08},
           {"y", 0},
           {"xanchor", "right"},
           {"yanchor", "top"},
           {"pad", {{"t", 120}, {"r", 10}}},
           {"direction", "left"},
           {"buttons",
            {{{"label", "▶ Play"},
              {"method", "animate"},
              {"args",
               {nullptr,
                {{"fromcurrent", true},
                 {"frame", {{"duration", 600}, {"redraw", true}}},
                 {"transition", {{"duration", 0}}}}}}},
             {{"label", "❚❚ Pause"},
              {"method", "animate"},
              {"args", {{nullptr}, {{"mode", "immediate"}, {"frame", {{"duration", 0}, {"redraw", false}}}}}}}}}}};
    }
  }
  if (!fig.title.empty()) layout["title"] = {{"text", esc(fig.title)}, {"x", 0.5}, {"xanchor", "center"}};
  layout["height"] = int(std::lround(std::max(fig.height, 3.0) * 100)) + (fig.frames.empty() ? 0 : 180);
  layout["margin"] = {
      {"l", 70}, {"r", any_cb ? 60 : 30}, {"t", fig.title.empty() ? 40 : 70}, {"b", fig.frames.empty() ? 60 : 220}};
  layout["plot_bgcolor"] = "white";
  layout["paper_bgcolor"] = "white";
  layout["font"] = {{"family", "DejaVu Sans, Noto Sans CJK JP, sans-serif"}, {"size", 12}};
  layout["hovermode"] = "closest";
  layout["legend"] = {{"bgcolor", "rgba(255,255,255,0.85)"}, {"bordercolor", "#ccc"}, {"borderwidth", 1}};
  json out = {{"data", data}, {"layout", layout}};
  if (!frames.empty()) out["frames"] = frames;
  return out;
}

}  // namespace mechscope::report
