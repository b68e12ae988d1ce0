// Colour maps with the control points of matplotlib / plotly, so a figure here reads like the one in
// the paper it reproduces (ROME: Purples/Greens/Reds; patching: RdBu; SAE plots: Viridis, Portland, Turbo).
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace mechscope::report {

struct Rgb {
  double r = 0, g = 0, b = 0;  // each in [0, 1]
};
Rgb rgb_hex(const std::string& hex);  // "#rrggbb"; Error on anything else
std::string to_hex(Rgb c);            // "#rrggbb"
std::string to_css(Rgb c);            // "rgb(r,g,b)", as plotly colour scales want it

struct Colormap {
  std::string name;
  std::vector<std::pair<double, Rgb>> stops;  // positions ascending, 0 first, 1 last
  Rgb at(double t) const;                     // t clamped to [0, 1]; linear between stops; NaN → light grey
};

// "Purples", "Greens", "Reds", "Blues", "Greys", "RdBu", "Viridis", "Portland", "Turbo"; a "_r" suffix
// reverses any of them ("RdBu_r"). Error listing the names on an unknown one.
const Colormap& colormap(const std::string& name);
std::vector<std::string> colormap_names();

// Qualitative cycle for lines/series without a colour (matplotlib's tab10).
Rgb cycle_color(size_t i);
// ROME's component colours: block/all states, MLP, attention.
Rgb rome_color(const std::string& kind);  // "all" | "mlp" | "attn"

}  // namespace mechscope::report
