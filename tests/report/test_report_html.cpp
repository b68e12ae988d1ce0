#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "core/error.h"
#include "report/html.h"
#include "report/run.h"
#include "test_util.h"

using namespace mechscope::report;
using nlohmann::json;

namespace {

Figure token_heatmap() {
  Figure f = single_panel("tok", "Tokens </script> & <b>", 4, 3);
  Heatmap h;
  h.rows = 2;
  h.cols = 2;
  h.z = {0.1, 0.2, 0.3, 0.4};
  h.row_labels = {"<|endoftext|>", "東京"};
  h.col_labels = {"0", "1"};
  h.row_name = "token";
  h.col_name = "layer";
  h.value_name = "p";
  f.panels[0].series.push_back(h);
  return f;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

TEST(PlotlyJs, EmbeddedBundleIsPlotly) {
  std::string_view js = plotly_js();
  EXPECT_GT(js.size(), 1000000u);
  EXPECT_EQ(js.substr(0, 3), "/**");
  EXPECT_EQ(plotly_version().substr(0, 2), "2.");
}

TEST(PlotlyFigure, HeatmapHoverNamesTokenLayerAndValue) {
  json f = plotly_figure(token_heatmap());
  ASSERT_EQ(f["data"].size(), 1u);
  const json& t = f["data"][0];
  EXPECT_EQ(t["type"], "heatmap");
  std::string hover = t["text"][0][1];
  EXPECT_EQ(hover, "token: &lt;|endoftext|&gt;<br>layer: 1<br>p: 0.2");
  // Positions are numbers (duplicate tokens must not merge), labels are tick text; row 0 on top.
  EXPECT_EQ(f["layout"]["yaxis"]["ticktext"][1], "東京");
  EXPECT_EQ(f["layout"]["yaxis"]["range"][0], 1.5);
  EXPECT_EQ(t["colorscale"][0][1], "rgb(68,1,84)");  // Viridis
}

TEST(PlotlyFigure, GridAnimationAndSurface) {
  Figure g = grid("g", "grid", 1, 2, 6, 3);
  g.panels[0].series.push_back(Line{{0, 1}, {1, 2}, {0.1, 0.1}, "a"});
  Surface s;
  s.rows = s.cols = 2;
  s.z = {0, 1, 1, 2};
  g.panels[1].series.push_back(s);
  json j = plotly_figure(g);
  EXPECT_EQ(j["data"].size(), 3u);  // band + line + surface
  EXPECT_EQ(j["data"][2]["type"], "surface");
  EXPECT_EQ(j["data"][2]["scene"], "scene2");
  EXPECT_TRUE(j["layout"].contains("scene2"));
  EXPECT_EQ(j["data"][1]["xaxis"], "x");
  // Whole-number grids (layers, positions) get one tick per number on short axes.
  EXPECT_EQ(j["layout"]["scene2"]["xaxis"]["dtick"], 1);
  EXPECT_EQ(j["layout"]["scene2"]["yaxis"]["dtick"], 1);
  EXPECT_FALSE(j["layout"]["xaxis"].contains("dtick"));  // the line's x axis is not marked integer
  g.panels[0].x.integer = true;
  EXPECT_EQ(plotly_figure(g)["layout"]["xaxis"]["dtick"], 1);
  g.panels[0].series[0] = Line{{0, 40}, {1, 2}, {}, "a"};  // long axes: plotly's own ticks are whole
  EXPECT_FALSE(plotly_figure(g)["layout"]["xaxis"].contains("dtick"));

  Figure a = single_panel("a", "anim");
  for (int k = 0; k < 3; k++) {
    Bar b;
    b.categories = {"x", "y"};
    b.values = {double(k), 1};
    a.frames.push_back({"layer " + std::to_string(k), {b}});
  }
  json ja = plotly_figure(a);
  EXPECT_EQ(ja["frames"].size(), 3u);
  EXPECT_EQ(ja["frames"][2]["name"], "layer 2");
  EXPECT_EQ(ja["layout"]["sliders"][0]["steps"].size(), 3u);
  EXPECT_EQ(ja["layout"]["updatemenus"][0]["buttons"][0]["method"], "animate");
}

TEST(HtmlReport, SelfContainedWithTocNumbersAndEscapes) {
  HtmlReport page("Run <1>", "subtitle");
  page.add_number("facts", "1000");
  page.add_number("mean AIE", 0.123456, 3);
  page.add_figure(token_heatmap(), {"tok.png"});
  std::string h = page.html();
  EXPECT_NE(h.find("<a href=\"#fig-tok\">"), std::string::npos);
  EXPECT_NE(h.find("id=\"fig-tok\""), std::string::npos);
  EXPECT_NE(h.find("id=\"plot-tok\""), std::string::npos);
  EXPECT_NE(h.find("<a href=\"#key-numbers\">"), std::string::npos);
  EXPECT_NE(h.find("0.123"), std::string::npos);
  EXPECT_NE(h.find("Run &lt;1&gt;"), std::string::npos);
  EXPECT_EQ(h.find("http://"), h.find("http://www.w3.org"));  // no remote scripts (svg namespaces aside)
  EXPECT_EQ(h.find("<script src"), std::string::npos);
  // The figure title "</script>" cannot end the inline script early.
  size_t scripts = 0, pos = 0;
  while ((pos = h.find("</script>", pos)) != std::string::npos) scripts++, pos++;
  EXPECT_EQ(scripts, 2u);  // plotly.js + one figure
}

// index.html in headless Chromium (playwright-core): no console errors, every plot drawn, TOC resolves.
TEST(HtmlReport, OpensInHeadlessChromiumWithoutErrors) {
  std::string dir = mstest::tmp_dir("html-browser");
  std::string argv0 = "test";
  char* argv[] = {argv0.data()};
  RunOutput out(dir, 1, argv, "test", "browser check");
  Figure line = single_panel("line", "line");
  line.panels[0].series.push_back(Line{{0, 1, 2}, {1, 3, 2}, {}, "l"});
  out.save_figure(token_heatmap());
  out.save_figure(line);
  Figure a = single_panel("anim", "anim");
  for (int k = 0; k < 3; k++) {
    Bar b;
    b.categories = {"x", "y"};
    b.values = {double(k), 1};
    a.frames.push_back({"layer " + std::to_string(k), {b}});
  }
  out.save_figure(a);
  out.finish();
  auto r = mstest::run_shell("cd '" + mstest::source_dir() + "' && node tests/report/check_html.mjs '" + dir +
                             "/index.html'");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  json v = json::parse(r.out);
  EXPECT_TRUE(v["ok"].get<bool>()) << r.out;
  EXPECT_EQ(v["plots"].size(), 3u);
  EXPECT_EQ(v["toc"]["broken"].size(), 0u);
  EXPECT_EQ(v["plots"][2]["frames"], 3);
}

TEST(Manifest, RecordsFilesWithSizesAndSettings) {
  std::string dir = mstest::tmp_dir("manifest");
  std::string a0 = "mechscope", a1 = "trace";
  char* argv[] = {a0.data(), a1.data()};
  RunOutput out(dir, 2, argv, "trace", "t");
  out.manifest.model = "gpt2";
  out.manifest.seed = 7;
  out.formats = parse_formats("png,svg");
  out.save_figure(token_heatmap());
  EXPECT_THROW(out.save_figure(token_heatmap()), mechscope::Error);  // the same id twice
  out.finish();
  json m = json::parse(slurp(dir + "/manifest.json"));
  EXPECT_EQ(m["argv"][1], "trace");
  EXPECT_EQ(m["model"], "gpt2");
  EXPECT_EQ(m["seed"], 7);
  EXPECT_EQ(m["versions"]["mechscope"].get<std::string>().empty(), false);
  EXPECT_GE(m["wall_seconds"].get<double>(), 0.0);
  ASSERT_EQ(m["files"].size(), 3u);  // tok.png, tok.svg, index.html
  for (auto& f : m["files"]) EXPECT_GT(f["bytes"].get<long long>(), 0) << f["path"];
  EXPECT_THROW(parse_formats("png,gif"), mechscope::Error);
}
