// Box plots: box_stats equals plotly.js's box calc (checked by hand and against a plain re-statement of
// its rules), the PNG draws filled boxes, medians and outlier dots, the plotly trace carries the same
// numbers, the page opens in headless Chromium, and bad sizes are one clear error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.h"
#include "png_util.h"
#include "report/html.h"
#include "report/render.h"
#include "report/run.h"
#include "test_util.h"

using namespace mechscope::report;
using nlohmann::json;

namespace {

// plotly's rules written out plainly: quartile at sorted position p * n - 0.5 (clamped, linear between
// neighbours); fences the furthest values within 1.5 IQR, never inside the box.
BoxStats plain_box(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  BoxStats b;
  b.n = v.size();
  auto q = [&](double p) {
    double pos = std::clamp(p * v.size() - 0.5, 0.0, double(v.size() - 1));
    size_t i = size_t(pos);
    return i + 1 < v.size() ? v[i] + (pos - i) * (v[i + 1] - v[i]) : v[i];
  };
  b.q1 = q(0.25), b.median = q(0.5), b.q3 = q(0.75);
  double iqr = b.q3 - b.q1;
  b.lower_fence = b.q1, b.upper_fence = b.q3;
  for (double x : v) {
    if (x >= b.q1 - 1.5 * iqr) b.lower_fence = std::min(b.lower_fence, x);
    if (x <= b.q3 + 1.5 * iqr) b.upper_fence = std::max(b.upper_fence, x);
  }
  for (double x : v)
    if (x < b.lower_fence || x > b.upper_fence) b.outliers.push_back(x);
  return b;
}

TEST(BoxStats, AsPlotlyBoxCalc) {
  // n = 10: Q1 at position 2, the median between 4 and 5, Q3 at 7 (numpy would give 3.25 / 5.5 / 7.75).
  BoxStats b = box_stats({30, 1, 2, 3, 4, 5, 6, 7, 8, 9, NAN, INFINITY});
  EXPECT_EQ(b.n, 10u);
  EXPECT_DOUBLE_EQ(b.q1, 3);
  EXPECT_DOUBLE_EQ(b.median, 5.5);
  EXPECT_DOUBLE_EQ(b.q3, 8);
  EXPECT_DOUBLE_EQ(b.lower_fence, 1);
  EXPECT_DOUBLE_EQ(b.upper_fence, 9);
  ASSERT_EQ(b.outliers, std::vector<double>({30}));

  BoxStats one = box_stats({2.5});
  EXPECT_EQ(one.q1, 2.5);
  EXPECT_EQ(one.q3, 2.5);
  EXPECT_EQ(one.lower_fence, 2.5);
  EXPECT_TRUE(one.outliers.empty());
  EXPECT_EQ(box_stats({NAN}).n, 0u);

  std::mt19937 rng(7);
  std::student_t_distribution<double> heavy(2.0);
  for (int trial = 0; trial < 200; trial++) {
    std::vector<double> v(1 + rng() % 60);
    for (auto& x : v) x = trial % 3 == 0 ? std::round(heavy(rng)) : heavy(rng);  // ties too
    BoxStats got = box_stats(v), want = plain_box(v);
    ASSERT_DOUBLE_EQ(got.q1, want.q1) << trial;
    ASSERT_DOUBLE_EQ(got.median, want.median) << trial;
    ASSERT_DOUBLE_EQ(got.q3, want.q3) << trial;
    ASSERT_EQ(got.lower_fence, want.lower_fence) << trial;
    ASSERT_EQ(got.upper_fence, want.upper_fence) << trial;
    ASSERT_EQ(got.outliers, want.outliers) << trial;
  }
}

Figure box_figure(bool with_outlier) {
  Figure f = single_panel("box", "Boxes", 4, 3);
  BoxPlot b;
  b.x = {0, 1};
  std::vector<double> s;
  for (int i = 0; i < 40; i++) s.push_back(i % 10);
  b.samples = {s, s};
  if (with_outlier) b.samples[0].push_back(40);
  b.colors = {{1, 0, 0}, {0, 0, 1}};
  b.hover = {"layer 0", "layer 1"};
  b.point_size = 3;
  f.panels[0].series.push_back(b);
  return f;
}

int count(const mstest::Image& img, int r, int g, int b, int tol = 40) {
  int n = 0;
  for (int y = 0; y < img.h; y++)
    for (int x = 0; x < img.w; x++)
      if (std::abs(img.r(x, y) - r) < tol && std::abs(img.g(x, y) - g) < tol && std::abs(img.b(x, y) - b) < tol) n++;
  return n;
}

TEST(BoxPlot, DrawsFilledBoxesMediansAndOutliers) {
  auto plain = mstest::decode_png(render_bytes(box_figure(false), Format::Png));
  auto outlier = mstest::decode_png(render_bytes(box_figure(true), Format::Png));
  ASSERT_GT(plain.w, 0);
  // The boxes are filled with their colour at half opacity over white, edged and split in full colour.
  EXPECT_GT(count(plain, 255, 128, 128), 500);
  EXPECT_GT(count(plain, 128, 128, 255), 500);
  EXPECT_GT(count(plain, 255, 0, 0), 100);
  // The outlier adds a red dot (and stretches the axis, so the boxes shrink: compare against blue).
  double red = count(outlier, 255, 0, 0, 60), blue = count(outlier, 0, 0, 255, 60);
  double red0 = count(plain, 255, 0, 0, 60), blue0 = count(plain, 0, 0, 255, 60);
  EXPECT_GT(red / blue, red0 / blue0 * 1.02);
}

TEST(BoxPlot, PlotlyTracesCarryTheSameStatistics) {
  auto j = plotly_figure(box_figure(true));
  auto& data = j["data"];
  ASSERT_EQ(data.size(), 2u);  // one trace per box
  BoxStats st = box_stats(std::get<BoxPlot>(box_figure(true).panels[0].series[0]).samples[0]);
  EXPECT_EQ(data[0]["type"], "box");
  EXPECT_EQ(data[0]["x"][0], 0);
  EXPECT_DOUBLE_EQ(data[0]["q1"][0].get<double>(), st.q1);
  EXPECT_DOUBLE_EQ(data[0]["median"][0].get<double>(), st.median);
  EXPECT_DOUBLE_EQ(data[0]["q3"][0].get<double>(), st.q3);
  EXPECT_DOUBLE_EQ(data[0]["lowerfence"][0].get<double>(), st.lower_fence);
  EXPECT_DOUBLE_EQ(data[0]["upperfence"][0].get<double>(), st.upper_fence);
  EXPECT_EQ(data[0]["y"], json::array({json::array({40})}));  // only the outliers travel
  EXPECT_EQ(data[1]["y"], json::array({json::array()}));
  EXPECT_EQ(data[0]["boxpoints"], "outliers");
  EXPECT_EQ(data[0]["line"]["color"], "rgb(255,0,0)");
  EXPECT_EQ(data[1]["name"], "layer 1");
}

TEST(BoxPlot, OpensInHeadlessChromium) {
  std::string dir = mstest::tmp_dir("box-browser");
  std::string argv0 = "test";
  char* argv[] = {argv0.data()};
  RunOutput out(dir, 1, argv, "test", "box check");
  Figure f = box_figure(true);
  f.panels[0].y.log = true;
  std::get<BoxPlot>(f.panels[0].series[0]).samples[0].push_back(0);  // dropped by the log axis
  out.save_figure(f);
  out.finish();
  auto r = mstest::run_shell("cd '" + mstest::source_dir() + "' && node tests/report/check_html.mjs '" + dir +
                             "/index.html'");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  json v = json::parse(r.out);
  EXPECT_TRUE(v["ok"].get<bool>()) << r.out;
}

TEST(BoxPlot, ValidateNamesTheProblem) {
  Figure f = box_figure(false);
  std::get<BoxPlot>(f.panels[0].series[0]).colors = {{1, 0, 0}};
  try {
    validate(f);
    FAIL();
  } catch (const mechscope::Error& e) {
    EXPECT_NE(std::string(e.what()).find("1 colours for 2 boxes"), std::string::npos) << e.what();
  }
  f = box_figure(false);
  std::get<BoxPlot>(f.panels[0].series[0]).samples.pop_back();
  EXPECT_THROW(validate(f), mechscope::Error);
  f = box_figure(false);
  std::get<BoxPlot>(f.panels[0].series[0]).width = 0;
  EXPECT_THROW(validate(f), mechscope::Error);
}

}  // namespace
