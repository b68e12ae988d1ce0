// Segments (lines between point pairs with a width and colour each): drawn with their widths and
// colours in the PNG, grouped into plotly traces by colour and width, validated.
#include <gtest/gtest.h>

#include "core/error.h"
#include "png_util.h"
#include "report/html.h"
#include "report/render.h"

using namespace mechscope::report;

namespace {

Figure segments_figure(double red_width) {
  Figure f = single_panel("seg", "Segments", 4, 3);
  Segments s;
  s.x0 = {0, 0, 0.2};
  s.y0 = {0.3, 0.7, 0.1};
  s.x1 = {1, 1, 0.8};
  s.y1 = {0.3, 0.7, 0.1};
  s.widths = {red_width, 2, 0};  // the third has no width: not drawn
  s.colors = {{1, 0, 0}, {0, 0, 1}, {0, 1, 0}};
  s.alpha = 1;
  s.hover = {"a", "b", "c"};
  f.panels[0].series.push_back(s);
  f.panels[0].x.min = 0, f.panels[0].x.max = 1, f.panels[0].y.min = 0, f.panels[0].y.max = 1;
  return f;
}

// Pixels close to a pure colour.
int count(const mstest::Image& img, int r, int g, int b) {
  int n = 0;
  for (int y = 0; y < img.h; y++)
    for (int x = 0; x < img.w; x++)
      if (std::abs(img.r(x, y) - r) < 60 && std::abs(img.g(x, y) - g) < 60 && std::abs(img.b(x, y) - b) < 60) n++;
  return n;
}

TEST(Segments, DrawnWithTheirWidthsAndColours) {
  auto thin = mstest::decode_png(render_bytes(segments_figure(1), Format::Png));
  auto thick = mstest::decode_png(render_bytes(segments_figure(6), Format::Png));
  ASSERT_GT(thin.w, 0);
  int red_thin = count(thin, 255, 0, 0), red_thick = count(thick, 255, 0, 0);
  EXPECT_GT(red_thin, 50);
  EXPECT_GT(red_thick, 4 * red_thin);
  EXPECT_GT(count(thick, 0, 0, 255), 100);
  EXPECT_EQ(count(thick, 0, 255, 0), 0);  // width 0
}

TEST(Segments, PlotlyTracesGroupByColourAndWidth) {
  auto j = plotly_figure(segments_figure(6));
  auto& data = j["data"];
  ASSERT_EQ(data.size(), 4u);  // three (colour, width) groups + the hover markers
  EXPECT_EQ(data[0]["x"].size(), 3u);
  EXPECT_TRUE(data[0]["x"][2].is_null());
  EXPECT_NEAR(data[0]["line"]["width"].get<double>(), 6 * 1.33, 1e-9);
  EXPECT_EQ(data[3]["hovertext"][1], "b");
  EXPECT_EQ(data[3]["x"][0].get<double>(), 0.5);
}

TEST(Segments, ValidateNamesTheProblem) {
  Figure f = segments_figure(1);
  std::get<Segments>(f.panels[0].series[0]).widths = {1, 2};
  try {
    validate(f);
    FAIL();
  } catch (const mechscope::Error& e) {
    EXPECT_NE(std::string(e.what()).find("2 widths for 3 segments"), std::string::npos) << e.what();
  }
  std::get<Segments>(f.panels[0].series[0]).widths = {1, -2, 0};
  EXPECT_THROW(validate(f), mechscope::Error);
}

}  // namespace
