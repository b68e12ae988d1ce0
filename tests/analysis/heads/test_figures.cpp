// heads plot's figures from hand-made results: every number drawn is the one read (scores in the
// heatmap cells, the top heads in order, the paired change with its interval as asymmetric error bars
// in both renderers' data), and the readers' errors.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "analysis/heads/figures.h"
#include "core/error.h"
#include "core/fs.h"
#include "report/html.h"
#include "report/render.h"
#include "test_util.h"

using namespace mechscope;
namespace H = mechscope::analysis::heads;

namespace {

H::HeadScoreTable table() {
  H::HeadScoreTable t;
  t.path = "scores.json", t.score = "keyword-attention";
  t.n_layers = 2, t.n_heads = 3;
  t.emotions = {"anger", "joy"};
  t.scores["anger"] = {0.1, -0.5, 0.2, 0.0, 0.3, -0.05};
  t.scores["joy"] = {0.4, 0.01, -0.02, 0.6, 0.0, 0.03};
  return t;
}

H::ExperimentSummary experiment(const std::string& emotion, const std::string& side) {
  H::ExperimentSummary s;
  s.path = emotion + ".json", s.emotion = emotion, s.side = side, s.head_spec = "0:1";
  s.sentiment = {10, 0.5, 0.4, -0.1, -0.25, 0.02, 0.04};
  s.keywords["anger"] = {10, 0.2, 0.5, 0.3, 0.1, 0.6, 0.2};
  s.keywords["joy"] = {10, 1.0, 0.9, -0.1, -0.3, 0.05, 0.5};
  s.keyword_totals["anger"] = {2, 5};
  s.keyword_totals["joy"] = {10, 9};
  return s;
}

TEST(HeadFigures, HeatmapAndTopHeadsDrawTheScores) {
  auto t = table();
  auto f = H::head_reaction_heatmap(t, {"anger", "joy"});
  ASSERT_EQ(f.panels.size(), 2u);
  auto& h = std::get<report::Heatmap>(f.panels[1].series[0]);
  EXPECT_EQ(h.z, t.scores["joy"]);
  EXPECT_EQ(h.rows, 2u);
  EXPECT_EQ(h.cols, 3u);
  EXPECT_DOUBLE_EQ(h.vmax, 0.6);  // shared by both panels
  EXPECT_DOUBLE_EQ(std::get<report::Heatmap>(f.panels[0].series[0]).vmin, -0.6);
  auto top = H::top_heads_figure(t, {"anger", "joy"}, 3);
  auto& b = std::get<report::Bar>(top.panels[0].series[0]);
  EXPECT_EQ(b.categories, (std::vector<std::string>{"L1H0 joy", "L0H1 anger", "L0H0 joy"}));
  EXPECT_EQ(b.values, (std::vector<double>{0.6, -0.5, 0.4}));
  auto only = H::top_heads_figure(t, {"anger"}, 2);
  EXPECT_EQ(std::get<report::Bar>(only.panels[0].series[0]).categories, (std::vector<std::string>{"L0H1", "L1H1"}));
}

TEST(HeadFigures, ComparisonsCarryTheirIntervalsAsErrorBars) {
  auto f = H::ablation_sentiment_figure({experiment("joy", "ablated"), experiment("anger", "ablated")});
  ASSERT_EQ(f.panels.size(), 2u);  // no classifier: VADER only
  auto& means = std::get<report::Bar>(f.panels[0].series[0]);
  EXPECT_EQ(means.values, (std::vector<double>{0.5, 0.4, 0.5, 0.4}));
  // On the ablated mean: baseline + the change's interval, i.e. [0.25, 0.52].
  EXPECT_NEAR(means.values[1] - means.err_minus[1], 0.25, 1e-12);
  EXPECT_NEAR(means.values[1] + means.err_plus[1], 0.52, 1e-12);
  EXPECT_EQ(means.err_plus[0], 0);
  auto& change = std::get<report::Bar>(f.panels[1].series[0]);
  EXPECT_EQ(change.values, (std::vector<double>{-0.1, -0.1}));
  EXPECT_NEAR(change.err_minus[0], 0.15, 1e-12);
  EXPECT_NEAR(change.err_plus[0], 0.12, 1e-12);
  // One head set per emotion: the emotion names its bars, the heads are in the caption (long labels are cut).
  EXPECT_EQ(change.categories[0], "joy (p=0.040)");
  EXPECT_EQ(means.categories[1], "joy: ablated");
  EXPECT_NE(f.caption.find("joy: 0:1; anger: 0:1"), std::string::npos);
  auto two = experiment("joy", "ablated");
  two.head_spec = "1:0";
  auto same = H::ablation_sentiment_figure({experiment("joy", "ablated"), two});  // one emotion, two head sets
  EXPECT_EQ(std::get<report::Bar>(same.panels[1].series[0]).categories,
            (std::vector<std::string>{"joy 0:1 (p=0.040)", "joy 1:0 (p=0.040)"}));
  auto j = report::plotly_figure(f);
  bool found = false;
  for (auto& tr : j["data"])
    if (tr.contains("error_y") && tr["y"][0].get<double>() == -0.1) {
      found = true;
      EXPECT_NEAR(tr["error_y"]["arrayminus"][0].get<double>(), 0.15, 1e-12);
      EXPECT_NEAR(tr["error_y"]["array"][0].get<double>(), 0.12, 1e-12);
    }
  EXPECT_TRUE(found);
  std::string png = join_path(mstest::tmp_dir("head-figures"), "a.png");
  report::render(f, report::Format::Png, png);
  EXPECT_TRUE(file_exists(png));

  auto with_model = experiment("joy", "ablated");
  with_model.positive = H::Comparison{10, 0.9, 0.8, -0.1, -0.2, 0.0, 0.1};
  EXPECT_EQ(H::ablation_sentiment_figure({with_model}).panels.size(), 4u);

  auto k = H::patching_keyword_figure({experiment("joy", "patched")});
  auto& kb = std::get<report::Bar>(k.panels[0].series[0]);
  EXPECT_EQ(kb.categories, (std::vector<std::string>{"anger 2->5", "joy 10->9"}));
  EXPECT_EQ(kb.values, (std::vector<double>{0.3, -0.1}));
  EXPECT_NEAR(kb.err_plus[0], 0.3, 1e-12);

  report::Bar bad;
  bad.categories = {"a", "b"}, bad.values = {1, 2}, bad.err_minus = {0.1}, bad.err_plus = {0.1};
  auto g = report::single_panel("bad", "bad");
  g.panels[0].series.push_back(bad);
  EXPECT_THROW(report::validate(g), Error);
}

TEST(HeadFigures, GenerationTablesJoinTheAblationAndPatchingOfAPair) {
  auto a = experiment("joy", "ablated");
  auto p = experiment("joy", "patched");
  a.rows = {{"I love it", "", " base a", " abl a", 0.1, 0.2, {}, {}}};
  p.rows = {{"I see it", "I love it", " base p", " pat p", 0.0, 0.5, {}, {}}};
  auto t = H::generation_tables({a}, {p});
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].header.size(), 9u);
  EXPECT_EQ(t[0].rows[0], (std::vector<std::string>{"1", "I love it", " base a", " abl a", "0.100 -> 0.200 (+0.100)",
                                                    "I see it", " base p", " pat p", "0.000 -> 0.500 (+0.500)"}));
  p.rows[0].source_prompt = "another prompt";  // not the same pairs: two tables
  EXPECT_EQ(H::generation_tables({a}, {p}).size(), 2u);
  report::HtmlReport page("t");
  page.add_table(t[0].id, t[0].title, t[0].header, t[0].rows);
  EXPECT_NE(page.html().find("<td> abl a</td>"), std::string::npos);
  EXPECT_THROW(page.add_table("bad id", "x", {"a"}, {}), Error);
}

TEST(HeadFigures, ReadersNameTheFileAndTheProblem) {
  std::string dir = mstest::tmp_dir("head-readers");
  std::string f = join_path(dir, "x.json");
  auto write = [&](const std::string& s) {
    std::ofstream o(f);
    o << s;
  };
  auto msg = [&](const std::function<void()>& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  write(
      "{\"scores\": [{\"layer\": 5, \"head\": 0, \"emotion\": \"joy\", \"score\": 1}], \"n_layers\": 2, \"n_heads\": "
      "1}");
  EXPECT_NE(
      msg([&] { H::read_head_scores(f, "--head-scores"); }).find("\"layer\" is 5, expected a whole number in 0 .. 1"),
      std::string::npos);
  write(
      "{\"emotion\": \"joy\", \"prompts\": [{\"prompt\": \"a\", \"baseline\": {}, \"ablated\": {}}], \"comparison\": "
      "{}}");
  EXPECT_NE(msg([&] { H::read_experiments(f, "ablated", "--ablation-file"); }).find("missing \"head_spec\""),
            std::string::npos);
  EXPECT_NE(msg([&] { H::read_experiments(dir, "patched", "--patching-file"); }).find("holds no heads patch output"),
            std::string::npos);
}

}  // namespace
