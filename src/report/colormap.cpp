#include "report/colormap.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>

#include "core/error.h"

namespace mechscope::report {

Rgb rgb_hex(const std::string& hex) {
  unsigned r, g, b;
  if (hex.size() != 7 || hex[0] != '#' || std::sscanf(hex.c_str() + 1, "%2x%2x%2x", &r, &g, &b) != 3)
    fail("colour '", hex, "' is not of the form #rrggbb");
  return {r / 255.0, g / 255.0, b / 255.0};
}

static int byte(double v) { return (int)std::lround(std::clamp(v, 0.0, 1.0) * 255.0); }

std::string to_hex(Rgb c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", byte(c.r), byte(c.g), byte(c.b));
  return buf;
}

std::string to_css(Rgb c) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "rgb(%d,%d,%d)", byte(c.r), byte(c.g), byte(c.b));
  return buf;
}

Rgb Colormap::at(double t) const {
  if (std::isnan(t)) return {0.9, 0.9, 0.9};
  t = std::clamp(t, 0.0, 1.0);
  for (size_t i = 1; i < stops.size(); i++) {
    if (t <= stops[i].first) {
      double a = stops[i - 1].first, b = stops[i].first;
      double u = b > a ? (t - a) / (b - a) : 0;
      const Rgb &p = stops[i - 1].second, &q = stops[i].second;
      return {p.r + u * (q.r - p.r), p.g + u * (q.g - p.g), p.b + u * (q.b - p.b)};
    }
  }
  return stops.back().second;
}

namespace {

Colormap even(const std::string& name, const std::vector<const char*>& hexes) {
  Colormap m{name, {}};
  for (size_t i = 0; i < hexes.size(); i++) m.stops.push_back({double(i) / (hexes.size() - 1), rgb_hex(hexes[i])});
  return m;
}

std::map<std::string, Colormap> build() {
  std::map<std::string, Colormap> maps;
  auto add = [&](Colormap m) { maps[m.name] = std::move(m); };
  // matplotlib's _cm.py ColorBrewer sequential maps (9 classes), linearly segmented.
  add(even("Purples",
           {"#fcfbfd", "#efedf5", "#dadaeb", "#bcbddc", "#9e9ac8", "#807dba", "#6a51a3", "#54278f", "#3f007d"}));
  add(even("Greens",
           {"#f7fcf5", "#e5f5e0", "#c7e9c0", "#a1d99b", "#74c476", "#41ab5d", "#238b45", "#006d2c", "#00441b"}));
  add(even("Reds",
           {"#fff5f0", "#fee0d2", "#fcbba1", "#fc9272", "#fb6a4a", "#ef3b2c", "#cb181d", "#a50f15", "#67000d"}));
  add(even("Blues",
           {"#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b"}));
  add(even("Greys",
           {"#ffffff", "#f0f0f0", "#d9d9d9", "#bdbdbd", "#969696", "#737373", "#525252", "#252525", "#000000"}));
  // ColorBrewer RdBu (11 classes): red for low, white at the middle, blue for high (matplotlib and plotly
  // express agree on this orientation).
  add(even("RdBu", {"#67001f", "#b2182b", "#d6604d", "#f4a582", "#fddbc7", "#f7f7f7", "#d1e5f0", "#92c5de", "#4393c3",
                    "#2166ac", "#053061"}));
  // Viridis: plotly's 10 samples of matplotlib's map (at i/9) merged with matplotlib's values at the
  // quarters, so the curve follows matplotlib's 256-entry table to within a couple of levels.
  {
    Colormap v{"Viridis", {}};
    const char* tenth[] = {"#440154", "#482878", "#3e4989", "#31688e", "#26828e",
                           "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"};
    for (int i = 0; i < 10; i++) v.stops.push_back({i / 9.0, rgb_hex(tenth[i])});
    v.stops.push_back({0.25, rgb_hex("#3b528b")});
    v.stops.push_back({0.50, rgb_hex("#21918c")});
    v.stops.push_back({0.75, rgb_hex("#5ec962")});
    std::sort(v.stops.begin(), v.stops.end(), [](auto& a, auto& b) { return a.first < b.first; });
    add(v);
  }
  // plotly.js's Portland, verbatim.
  add({"Portland",
       {{0.0, {12 / 255., 51 / 255., 131 / 255.}},
        {0.25, {10 / 255., 136 / 255., 186 / 255.}},
        {0.5, {242 / 255., 211 / 255., 56 / 255.}},
        {0.75, {242 / 255., 143 / 255., 56 / 255.}},
        {1.0, {217 / 255., 30 / 255., 30 / 255.}}}});
  // plotly express's sequential Turbo (15 samples of Google's Turbo).
  add(even("Turbo", {"#30123b", "#4145ab", "#4675ed", "#39a2fc", "#1bcfd4", "#24eca6", "#61fc6c", "#a4fc3b", "#d1e834",
                     "#f3c63a", "#fe9b2d", "#f36315", "#d93806", "#b11901", "#7a0402"}));
  std::vector<Colormap> reversed;
  for (auto& [name, m] : maps) {
    Colormap r{name + "_r", {}};
    for (auto it = m.stops.rbegin(); it != m.stops.rend(); ++it) r.stops.push_back({1.0 - it->first, it->second});
    reversed.push_back(std::move(r));
  }
  for (auto& r : reversed) add(std::move(r));
  return maps;
}

const std::map<std::string, Colormap>& all() {
  static const std::map<std::string, Colormap> maps = build();
  return maps;
}

}  // namespace

const Colormap& colormap(const std::string& name) {
  auto& maps = all();
  auto it = maps.find(name);
  if (it == maps.end()) {
    std::string names;
    for (auto& n : colormap_names()) names += (names.empty() ? "" : ", ") + n;
    fail("unknown colour map '", name, "' (known: ", names, ", each also reversed with _r)");
  }
  return it->second;
}

std::vector<std::string> colormap_names() {
  std::vector<std::string> out;
  for (auto& [name, m] : all())
    if (name.size() < 2 || name.compare(name.size() - 2, 2, "_r") != 0) out.push_back(name);
  return out;
}

Rgb cycle_color(size_t i) {
  static const char* tab10[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return rgb_hex(tab10[i % 10]);
}

Rgb rome_color(const std::string& kind) {
  // The dark end of each of ROME's maps (Purples/Greens/Reds at ~0.8), so lines match the heatmaps.
  if (kind == "mlp") return colormap("Greens").at(0.8);
  if (kind == "attn") return colormap("Reds").at(0.8);
  return colormap("Purples").at(0.8);
}

}  // namespace mechscope::report
