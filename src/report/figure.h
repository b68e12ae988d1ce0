// The figure model every analysis fills in and both renderers read: a Figure is a grid of Panels, each
// with two axes and a list of series (heatmap, line, scatter, bar, histogram, CDF, text, 3-D surface,
// segments, box plots).
// Plain std::vector<double> data, no libtorch: analyses convert their tensors before calling in.
//
//   Figure fig = single_panel("trace_0", "Causal trace: The Space Needle is in downtown");
//   Heatmap h;  h.rows = n_tokens;  h.cols = n_layers;  h.z = scores;      // row-major [rows, cols]
//   h.row_labels = tokens;  h.cmap = "Purples";  h.colorbar_title = "p(Seattle)";
//   fig.panels[0].series.push_back(h);  fig.panels[0].x.label = "single restored layer";
//   render(fig, Format::Png, "out/trace_0.png");   // render.h
//   report.add_figure(fig);                        // html.h: the interactive twin in index.html
#pragma once
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "report/colormap.h"

namespace mechscope::report {

constexpr double kAuto = std::numeric_limits<double>::quiet_NaN();  // "from the data"

enum class Marker { None, Circle, Square, Triangle, Diamond, Cross };
enum class Dash { Solid, Dashed, Dotted };

// Cells drawn as cells (never interpolated). Row 0 is drawn at the top, like ROME's token rows.
struct Heatmap {
  size_t rows = 0, cols = 0;
  std::vector<double> z;                            // row-major [rows, cols]; NaN = empty cell
  std::vector<std::string> row_labels, col_labels;  // empty: 0, 1, 2, …
  std::string cmap = "Viridis";
  double vmin = kAuto, vmax = kAuto;  // colour limits; auto = data range
  bool centered = false;              // symmetric limits around `center` (RdBu patching plots)
  double center = 0;
  std::string colorbar_title;
  bool colorbar = true;
  bool cell_text = false;  // value printed in each cell
  int cell_decimals = 2;
  // Names used in hover text in index.html ("token", "layer", "value").
  std::string row_name = "row", col_name = "column", value_name = "value";
};

// A line with optional markers and a ± band (or error bars) of half-width err[i].
struct Line {
  std::vector<double> x, y, err;  // err empty: none
  std::string name;               // legend entry (none when empty)
  std::optional<Rgb> color;       // default: next colour of the cycle
  Marker marker = Marker::None;
  Dash dash = Dash::Solid;
  double width = 1.5;              // points
  bool err_bars = false;           // false: shaded band (alpha 0.2); true: vertical bars with caps
  std::vector<std::string> hover;  // per point, index.html only
};

struct Scatter {
  std::vector<double> x, y;
  std::vector<double> c;  // colour by value (empty: one colour)
  std::string cmap = "Viridis";
  double vmin = kAuto, vmax = kAuto;
  std::string colorbar_title;
  std::vector<std::string> labels;  // drawn beside the point where non-empty (placed so they don't overlap)
  std::vector<std::string> hover;   // index.html hover text per point (default: labels)
  std::string name;
  std::optional<Rgb> color;
  Marker marker = Marker::Circle;
  double size = 3.5;  // marker radius, points
  double alpha = 0.8;
};

struct Bar {
  std::vector<std::string> categories;  // x tick labels
  std::vector<double> values;
  std::string name;
  std::optional<Rgb> color;
  std::string cmap;       // non-empty: each bar coloured by its value
  bool centered = false;  // colour limits symmetric around 0 (diverging cmap)
  bool value_labels = true;
  int decimals = -1;  // -1: enough to tell the values apart
  // Error bars with caps from values[i] - err_minus[i] to values[i] + err_plus[i] (asymmetric, e.g. a
  // bootstrap interval); both empty: none, else both one per bar.
  std::vector<double> err_minus, err_plus;
};

struct Histogram {
  std::vector<double> values;
  int bins = 0;  // 0: automatic (unit bins for integer data, else max(Sturges, Freedman–Diaconis))
  bool density = false;
  std::string name;
  std::optional<Rgb> color;
};

// Empirical cumulative distribution, optionally with its median marked by a red dashed line.
struct Cdf {
  std::vector<double> values;
  std::string name;
  std::optional<Rgb> color;
  bool mark_median = true;
};

// A text panel: summary statistics and the like; the panel draws no axes.
struct Text {
  std::vector<std::string> lines;
  bool monospace = true;
};

// z over a grid: x along columns, y along rows.
struct Surface {
  size_t rows = 0, cols = 0;
  std::vector<double> z;     // row-major [rows, cols]
  std::vector<double> x, y;  // column / row coordinates (empty: indices)
  std::string cmap = "Viridis";
  std::string x_title, y_title, z_title;
  double vmin = kAuto, vmax = kAuto;
};

// Straight segments between point pairs, each with its own width and colour: links between points
// (AttentionViz's query-key lines, width proportional to attention). Drawn under markers of the same
// panel when listed before them.
struct Segments {
  std::vector<double> x0, y0, x1, y1;
  std::vector<double> widths;  // points per segment (empty: `width` for all)
  double width = 1;
  std::vector<Rgb> colors;  // per segment (empty: `color`, else the next colour of the cycle)
  std::optional<Rgb> color;
  double alpha = 0.6;
  std::vector<std::string> hover;  // index.html: per segment, shown at its midpoint
  std::string name;                // legend entry (none when empty)
};

// Box plots at numeric x positions, drawn as plotly's box trace draws them (the seed's px.box): a box
// from Q1 to Q3 with a line at the median, whiskers to the furthest values within 1.5 IQR of the box,
// and the values beyond them as points (boxpoints "outliers"). box_stats() gives the numbers, so the
// PNG and index.html show the same boxes.
struct BoxPlot {
  std::vector<double> x;                     // one position per box
  std::vector<std::vector<double>> samples;  // the values of each box (non-finite ones ignored)
  std::vector<Rgb> colors;                   // per box (empty: `color`, else the next colour of the cycle)
  std::optional<Rgb> color;
  std::vector<std::string> hover;  // per box, index.html hover title (empty: none)
  std::string name;                // legend entry (none when empty)
  double width = 0.6;              // box width in x units
  double point_size = 1.5;         // outlier marker radius, points
};

using Series = std::variant<Heatmap, Line, Scatter, Bar, Histogram, Cdf, Text, Surface, Segments, BoxPlot>;

// A reference line across the panel: y = value, x = value, or the diagonal y = x.
struct RefLine {
  enum Kind { Horizontal, Vertical, Diagonal } kind = Horizontal;
  double value = 0;
  Rgb color{0.3, 0.3, 0.3};
  Dash dash = Dash::Dashed;
  std::string name;  // legend entry (none when empty)
};

struct Axis {
  std::string label;
  bool log = false;
  double min = kAuto, max = kAuto;
  std::vector<double> ticks;             // explicit ticks (empty: automatic 1-2-5 ticks)
  std::vector<std::string> tick_labels;  // labels for explicit ticks
  bool integer = false;                  // automatic ticks on whole numbers only (layers, positions)
  bool grid = false;
};

enum class Legend { Best, UpperLeft, UpperRight, LowerLeft, LowerRight, None };

struct Panel {
  std::string title;
  Axis x, y;
  std::vector<Series> series;
  std::vector<RefLine> refs;
  Legend legend = Legend::Best;
};

// One step of an animation: replaces panel 0's series.
struct Frame {
  std::string name;  // slider label ("layer 3")
  std::vector<Series> series;
};

struct Figure {
  std::string id;       // file stem and HTML anchor: letters, digits, '_' and '-'
  std::string title;    // drawn above the grid
  std::string caption;  // shown under the figure in index.html
  int rows = 1, cols = 1;
  std::vector<Panel> panels;              // row-major, at most rows * cols
  bool share_x = false, share_y = false;  // one range for all panels; inner tick labels hidden
  double width = 6.4, height = 4.8;       // inches (matplotlib's default size)
  // Animation through panel 0 (plotly frames + slider + play button in index.html). The static
  // renderer draws the frames as small multiples with one shared y range.
  std::vector<Frame> frames;
  int static_frames = 12;  // at most this many frames in the small-multiples image (evenly spaced)
};

// A Figure with one panel; the usual start.
Figure single_panel(const std::string& id, const std::string& title, double width = 6.4, double height = 4.8);
// A rows x cols grid of empty panels.
Figure grid(const std::string& id, const std::string& title, int rows, int cols, double width, double height);

// Derived data both renderers draw from, so the PNG and index.html agree.
struct Binned {
  std::vector<double> edges;   // bins + 1
  std::vector<double> counts;  // per bin (a density when Histogram::density)
};
Binned histogram_bins(const Histogram& h);
// Colour limits actually used: explicit, else the finite data range; centred: symmetric around center.
std::pair<double, double> color_range(const std::vector<double>& v, double vmin, double vmax, bool centered,
                                      double center);
double median(std::vector<double> v);

// One box as plotly.js's box trace computes it (src/traces/box/calc.js, quartilemethod "linear"):
// quartiles and median by Lib.interp (position p * n - 0.5 in the sorted sample, clamped to its ends;
// not numpy's p * (n - 1)); lower fence = min(Q1, the smallest value >= Q1 - 1.5 IQR), upper fence =
// max(Q3, the largest value <= Q3 + 1.5 IQR); outliers: the values outside the fences, ascending.
struct BoxStats {
  size_t n = 0;  // finite values
  double q1 = NAN, median = NAN, q3 = NAN, lower_fence = NAN, upper_fence = NAN;
  std::vector<double> outliers;
};
BoxStats box_stats(std::vector<double> sample);

// Throws Error naming the figure, panel and field on inconsistent sizes, bad ids, unknown colour maps.
void validate(const Figure& fig);

}  // namespace mechscope::report
