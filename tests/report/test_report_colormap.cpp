#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "report/colormap.h"

using namespace mechscope::report;

namespace {

void expect_rgb(Rgb c, int r, int g, int b, int tol = 0) {
  EXPECT_NEAR(std::lround(c.r * 255), r, tol);
  EXPECT_NEAR(std::lround(c.g * 255), g, tol);
  EXPECT_NEAR(std::lround(c.b * 255), b, tol);
}

}  // namespace

// matplotlib's published viridis: cm.viridis(0) = #440154, (0.25) = #3b528b, (0.5) = #21918c,
// (0.75) = #5ec962, (1) = #fde725.
TEST(Colormap, ViridisMatchesMatplotlib) {
  const Colormap& v = colormap("Viridis");
  expect_rgb(v.at(0), 0x44, 0x01, 0x54);
  // Interior points: matplotlib's 256-entry table is sampled at int(t * 256), one level of slack.
  expect_rgb(v.at(0.25), 0x3b, 0x52, 0x8b, 2);
  expect_rgb(v.at(0.5), 0x21, 0x91, 0x8c, 2);
  expect_rgb(v.at(0.75), 0x5e, 0xc9, 0x62, 2);
  expect_rgb(v.at(1), 0xfd, 0xe7, 0x25);
}

TEST(Colormap, RomeSequentialEnds) {
  expect_rgb(colormap("Purples").at(0), 0xfc, 0xfb, 0xfd);
  expect_rgb(colormap("Purples").at(1), 0x3f, 0x00, 0x7d);
  expect_rgb(colormap("Greens").at(1), 0x00, 0x44, 0x1b);
  expect_rgb(colormap("Reds").at(1), 0x67, 0x00, 0x0d);
}

TEST(Colormap, RdBuDivergesFromWhite) {
  const Colormap& m = colormap("RdBu");
  expect_rgb(m.at(0), 0x67, 0x00, 0x1f);
  expect_rgb(m.at(0.5), 0xf7, 0xf7, 0xf7);
  expect_rgb(m.at(1), 0x05, 0x30, 0x61);
  expect_rgb(colormap("RdBu_r").at(0), 0x05, 0x30, 0x61);
}

TEST(Colormap, PortlandAndTurboEnds) {
  expect_rgb(colormap("Portland").at(0), 12, 51, 131);
  expect_rgb(colormap("Portland").at(0.5), 242, 211, 56);
  expect_rgb(colormap("Turbo").at(0), 0x30, 0x12, 0x3b);
  expect_rgb(colormap("Turbo").at(1), 0x7a, 0x04, 0x02);
}

TEST(Colormap, ClampsAndInterpolates) {
  const Colormap& m = colormap("Greys");
  expect_rgb(m.at(-3), 255, 255, 255);
  expect_rgb(m.at(7), 0, 0, 0);
  Rgb mid = m.at(0.5);  // stop 4 of 8: #969696
  expect_rgb(mid, 0x96, 0x96, 0x96);
}

TEST(Colormap, UnknownNameListsTheKnownOnes) {
  try {
    colormap("Jet");
    FAIL();
  } catch (const mechscope::Error& e) {
    EXPECT_NE(std::string(e.what()).find("Viridis"), std::string::npos);
  }
}

TEST(Colormap, HexRoundTrip) {
  EXPECT_EQ(to_hex(rgb_hex("#21918c")), "#21918c");
  EXPECT_EQ(to_css(rgb_hex("#ff0000")), "rgb(255,0,0)");
  EXPECT_THROW(rgb_hex("red"), mechscope::Error);
}
