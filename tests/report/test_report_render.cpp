#include <gtest/gtest.h>

#include <dirent.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "png_util.h"
#include "report/render.h"
#include "test_util.h"

using namespace mechscope::report;
using mstest::decode_png;
using mstest::Image;

namespace {

Figure heatmap_figure() {
  Figure f = single_panel("hm", "Known values", 4, 2);
  Heatmap h;
  h.rows = 2;
  h.cols = 3;
  h.z = {0, 0.5, 1, 1, 0.5, 0};
  h.row_labels = {"a", "b"};
  h.cmap = "Viridis";
  h.vmin = 0;
  h.vmax = 1;
  h.colorbar_title = "value";
  f.panels[0].series.push_back(h);
  return f;
}

// One figure per series kind (and the grid/animation forms).
std::vector<Figure> every_kind() {
  std::vector<Figure> figs;
  figs.push_back(heatmap_figure());
  {
    Figure f = single_panel("line", "Line with band", 5, 3.5);
    Line l;
    for (int i = 0; i < 12; i++) l.x.push_back(i), l.y.push_back(std::sin(i / 2.0)), l.err.push_back(0.2);
    l.marker = Marker::Square;
    l.name = "mean ± std";
    f.panels[0].series.push_back(l);
    f.panels[0].x.label = "layer";
    figs.push_back(f);
  }
  {
    Figure f = grid("grid", "Grid", 2, 2, 6, 5);
    f.share_x = true;
    for (int k = 0; k < 4; k++) {
      Line l;
      for (int i = 0; i < 10; i++) l.x.push_back(i), l.y.push_back(i * (k + 1));
      f.panels[k].series.push_back(l);
      f.panels[k].title = "panel " + std::to_string(k);
    }
    figs.push_back(f);
  }
  {
    Figure f = single_panel("hist", "Histogram", 4, 3);
    Histogram h;
    for (int i = 0; i < 300; i++) h.values.push_back(std::fmod(i * 0.618, 1.0) + (i % 3));
    f.panels[0].series.push_back(h);
    figs.push_back(f);
  }
  {
    Figure f = single_panel("bar", "Bars", 4, 3);
    Bar b;
    b.categories = {"L0", "L1", "L2", "L3"};
    b.values = {3, -1, 4, 1.5};
    b.cmap = "RdBu";
    b.centered = true;
    f.panels[0].series.push_back(b);
    figs.push_back(f);
  }
  {
    Figure f = single_panel("scatter", "Log scatter", 4, 4);
    Scatter s;
    for (int i = 1; i < 100; i++) s.x.push_back(i * 0.01), s.y.push_back(i * i * 1e-4), s.c.push_back(i);
    s.labels.assign(99, "");
    s.labels[98] = "top";
    f.panels[0].series.push_back(s);
    f.panels[0].x.log = f.panels[0].y.log = true;
    f.panels[0].refs.push_back({RefLine::Diagonal, 0, {1, 0, 0}, Dash::Dashed, "y = x"});
    figs.push_back(f);
  }
  {
    Figure f = single_panel("cdf", "CDF", 4, 3);
    Cdf c;
    for (int i = 0; i < 50; i++) c.values.push_back(std::sqrt(i));
    f.panels[0].series.push_back(c);
    figs.push_back(f);
  }
  {
    Figure f = single_panel("text", "Text", 4, 3);
    f.panels[0].series.push_back(Text{{"n = 100", "mean 0.25", "東京 한국어 🙂"}});
    figs.push_back(f);
  }
  {
    Figure f = single_panel("surface", "Surface", 5, 4);
    Surface s;
    s.rows = 6;
    s.cols = 8;
    for (int r = 0; r < 6; r++)
      for (int c = 0; c < 8; c++) s.z.push_back(std::sin(r / 2.0) * std::cos(c / 3.0));
    s.x_title = "position", s.y_title = "layer", s.z_title = "effect";
    f.panels[0].series.push_back(s);
    figs.push_back(f);
  }
  {
    Figure f = single_panel("anim", "Animation", 5, 3);
    for (int k = 0; k < 5; k++) {
      Bar b;
      b.categories = {"a", "b", "c"};
      b.values = {double(k), 1, -1};
      f.frames.push_back({"frame " + std::to_string(k), {b}});
    }
    figs.push_back(f);
  }
  return figs;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

TEST(Render, EveryFigureKindIsAValidNonBlankPngOfTheExpectedSize) {
  for (const Figure& f : every_kind()) {
    SCOPED_TRACE(f.id);
    std::string png = render_bytes(f, Format::Png, {100});
    ASSERT_EQ(png.compare(0, 8, "\x89PNG\r\n\x1a\n"), 0);
    Image img = decode_png(png);
    auto [w, h] = png_size(f, 100);
    ASSERT_EQ(img.w, w);
    ASSERT_EQ(img.h, h);
    EXPECT_GT(mstest::luminance_std(img), 10.0);  // not blank
  }
}

TEST(Render, PngSizeFollowsDpi) {
  Figure f = heatmap_figure();
  Image img = decode_png(render_bytes(f, Format::Png, {150}));
  EXPECT_EQ(img.w, 600);
  EXPECT_EQ(img.h, 300);
  auto [aw, ah] = static_size(every_kind().back());  // animation: small multiples grow the figure
  EXPECT_GE(aw, 5.0);
  EXPECT_GT(ah, 0.0);
}

// Golden pixels: the three cells of the top row are viridis(0), viridis(0.5), viridis(1) exactly as
// matplotlib publishes them (#440154, #21918c, #fde725), the bottom row the same reversed.
TEST(Render, HeatmapCellsHaveTheColourMapsColours) {
  Image img = decode_png(render_bytes(heatmap_figure(), Format::Png, {150}));
  ASSERT_GT(img.w, 0);
  struct Want {
    int r, g, b;
  };
  auto runs_in_row = [&](int y) {
    // Runs of one colour at least 30 px long, left to right.
    std::vector<Want> runs;
    int start = 0;
    for (int x = 1; x <= img.w; x++) {
      if (x < img.w && img.px[y * img.w + x] == img.px[y * img.w + start]) continue;
      if (x - start >= 30) runs.push_back({img.r(start, y), img.g(start, y), img.b(start, y)});
      start = x;
    }
    return runs;
  };
  auto near = [](Want a, Want b) {
    return std::abs(a.r - b.r) <= 1 && std::abs(a.g - b.g) <= 1 && std::abs(a.b - b.b) <= 1;
  };
  Want lo{0x44, 0x01, 0x54}, mid{0x21, 0x91, 0x8c}, hi{0xfd, 0xe7, 0x25};
  bool top_ok = false, bottom_ok = false;
  for (int y = 0; y < img.h; y++) {
    auto runs = runs_in_row(y);
    std::vector<Want> cells;
    for (auto& r : runs)
      if (!(r.r == 255 && r.g == 255 && r.b == 255)) cells.push_back(r);
    if (cells.size() != 3) continue;
    if (near(cells[0], lo) && near(cells[1], mid) && near(cells[2], hi)) top_ok = true;
    if (near(cells[0], hi) && near(cells[1], mid) && near(cells[2], lo)) bottom_ok = true;
  }
  EXPECT_TRUE(top_ok);
  EXPECT_TRUE(bottom_ok);
}

TEST(Render, DivergingHeatmapIsWhiteAtTheCentre) {
  Figure f = single_panel("div", "", 3, 2);
  Heatmap h;
  h.rows = 1;
  h.cols = 3;
  h.z = {-2, 0, 0.5};  // centred: limits ±2, so 0 is RdBu's middle #f7f7f7
  h.cmap = "RdBu";
  h.centered = true;
  h.colorbar = false;
  f.panels[0].series.push_back(h);
  Image img = decode_png(render_bytes(f, Format::Png, {100}));
  int found = 0;
  for (int y = 0; y < img.h; y++)
    for (int x = 0; x < img.w; x++)
      if (img.r(x, y) == 0xf7 && img.g(x, y) == 0xf7 && img.b(x, y) == 0xf7) found++;
  EXPECT_GT(found, 200);
}

TEST(Render, TokensInAnyScriptHaveGlyphs) {
  for (std::string s : {"東京", "한국어", "🙂", "café", "Привет", "·the", "⏎", "∅", "\\xF0\\x9F", "…"})
    EXPECT_EQ(unknown_glyphs(s), 0) << s;
  EXPECT_GT(unknown_glyphs("\xF3\xB0\x80\x80"), 0);  // a private-use code point no font has: the check works
}

TEST(Render, CjkHangulAndEmojiLabelsHaveInkAndColour) {
  Figure f = single_panel("labels", "", 4, 3);
  Heatmap h;
  h.rows = 3;
  h.cols = 2;
  h.z = {0, 0, 0, 0, 0, 0};
  h.row_labels = {"東京", "한국어", "🙂🙂🙂"};
  h.cmap = "Greys";
  h.vmin = 0;
  h.vmax = 1;
  h.colorbar = false;
  f.panels[0].series.push_back(h);
  Image img = decode_png(render_bytes(f, Format::Png, {150}));
  // The plot starts where the first white-to-not-white run of the middle row is; labels are left of it.
  int dark = 0, yellow = 0;
  for (int y = 0; y < img.h; y++)
    for (int x = 0; x < img.w / 3; x++) {
      if (img.lum(x, y) < 100) dark++;
      if (img.r(x, y) > 200 && img.g(x, y) > 150 && img.b(x, y) < 100) yellow++;  // the emoji's face
    }
  EXPECT_GT(dark, 150);
  EXPECT_GT(yellow, 50);  // colour emoji, not a monochrome outline or tofu box
}

TEST(Render, SvgAndPdfAreWellFormed) {
  Figure f = every_kind()[1];
  std::string svg = render_bytes(f, Format::Svg);
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_GT(svg.size(), 2000u);
  std::string pdf = render_bytes(f, Format::Pdf);
  EXPECT_EQ(pdf.compare(0, 5, "%PDF-"), 0);
  EXPECT_NE(pdf.find("%%EOF"), std::string::npos);
}

TEST(Render, WritesAtomicallyWithNoTemporaryLeft) {
  std::string dir = mstest::tmp_dir("render-atomic");
  render(heatmap_figure(), Format::Png, dir + "/hm.png");
  EXPECT_GT(slurp(dir + "/hm.png").size(), 100u);
  DIR* d = opendir(dir.c_str());
  int n = 0;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    EXPECT_EQ(name.find(".tmp"), std::string::npos) << name;
    n++;
  }
  closedir(d);
  EXPECT_EQ(n, 1);
}

TEST(Render, ValidateNamesTheProblem) {
  Figure f = single_panel("bad", "");
  Heatmap h;
  h.rows = 2;
  h.cols = 2;
  h.z = {1, 2, 3};
  f.panels[0].series.push_back(h);
  try {
    render_bytes(f, Format::Png);
    FAIL();
  } catch (const mechscope::Error& e) {
    EXPECT_NE(std::string(e.what()).find("3 values for 2 x 2"), std::string::npos) << e.what();
  }
  Figure g = single_panel("bad id!", "");
  EXPECT_THROW(render_bytes(g, Format::Png), mechscope::Error);
  EXPECT_THROW(parse_format("jpg"), mechscope::Error);
}

TEST(Render, NaNCellsAndEmptySeriesDoNotCrash) {
  Figure f = single_panel("nan", "", 3, 2);
  Heatmap h;
  h.rows = 1;
  h.cols = 2;
  h.z = {NAN, NAN};
  f.panels[0].series.push_back(h);
  EXPECT_NO_THROW(render_bytes(f, Format::Png, {72}));
  Figure e = single_panel("empty", "nothing");
  EXPECT_NO_THROW(render_bytes(e, Format::Png, {72}));
  Figure l = single_panel("emptyline", "");
  l.panels[0].series.push_back(Line{});
  l.panels[0].series.push_back(Cdf{});
  l.panels[0].series.push_back(Histogram{});
  EXPECT_NO_THROW(render_bytes(l, Format::Png, {72}));
}
