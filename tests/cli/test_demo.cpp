// `mechscope demo` (what `make demo` runs), reduced to 3 facts: every output is there and valid.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../report/png_util.h"
#include "core/fs.h"
#include "test_util.h"
#include "core/source_dir.h"  // MECHSCOPE_SOURCE_DIR, MECHSCOPE_BINARY

using namespace mechscope;

namespace {

TEST(Demo, TracesTheShippedModelAndWritesAValidReport) {
  std::string out = mstest::tmp_dir("demo") + "/locating_results";
  auto r = mstest::run_shell("cd '" + mstest::source_dir() + "' && '" + MECHSCOPE_BINARY +
                             "' demo --num-samples 3 --out '" + out + "'");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("3 facts traced"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("index.html"), std::string::npos) << r.out;

  auto s = nlohmann::json::parse(read_file(out + "/locating_summary.json"));
  EXPECT_EQ(s["facts_traced"], 3);
  for (const char* k : {"model", "settings", "aie", "mean_high_score", "mean_low_score", "facts"})
    EXPECT_TRUE(s.contains(k)) << k;
  for (const char* kind : {"all", "mlp", "attn"}) EXPECT_TRUE(s["aie"].contains(kind)) << kind;
  // The shipped model knows its facts: the clean run puts most probability on the answer.
  EXPECT_GT(s["mean_high_score"].get<double>(), 0.9);
  EXPECT_LT(s["mean_low_score"].get<double>(), s["mean_high_score"].get<double>());

  std::vector<std::string> pngs{"average_heatmap.png", "average_heatmap_mlp.png", "average_heatmap_attn.png",
                                "t0_aie_by_layer.png", "aggregate_analysis.png",  "layer_importance.png"};
  for (auto& f : s["facts"])
    for (auto& fig : f["figures"]) pngs.push_back(fig.get<std::string>());
  EXPECT_EQ(pngs.size(), 6u + 3 * 3);
  for (auto& p : pngs) {
    ASSERT_TRUE(file_exists(out + "/" + p)) << p;
    auto img = mstest::decode_png(read_file(out + "/" + p));
    EXPECT_GT(img.w, 100) << p;
    EXPECT_GT(img.h, 100) << p;
  }
  for (const char* f : {"trace.safetensors", "manifest.json", "index.html"})
    EXPECT_TRUE(file_exists(out + "/" + f)) << f;

  auto html = mstest::run_shell("cd '" + mstest::source_dir() + "' && node tests/report/check_html.mjs '" + out +
                                "/index.html'");
  ASSERT_EQ(html.code, 0) << html.out << html.err;
  auto verdict = nlohmann::json::parse(html.out);
  EXPECT_TRUE(verdict["ok"].get<bool>()) << html.out;
  EXPECT_GE(verdict["plots"].size(), 6u);
}

}  // namespace

namespace {

TEST(KgAndTrain, ThroughTheCommandLine) {
  std::string dir = mstest::tmp_dir("kg-cli");
  auto g =
      mstest::run_cli({"kg", "generate", "--out", dir + "/kg", "--entities", "25", "--relations", "3", "--seed", "2"});
  ASSERT_EQ(g.code, 0) << g.err;
  for (const char* f : {"graph.jsonl", "facts.jsonl", "tokenizer.json", "kg.json"})
    EXPECT_TRUE(file_exists(dir + "/kg/" + f)) << f;
  auto t =
      mstest::run_cli({"train", "--kg", dir + "/kg/graph.jsonl", "--out", dir + "/model", "--layers", "1", "--d-model",
                       "16", "--heads", "2", "--steps", "30", "--eval-every", "30", "--checkpoint-every", "10"});
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.out.find("fact accuracy"), std::string::npos) << t.out;
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                        "training_log.jsonl", "train_summary.json"})
    EXPECT_TRUE(file_exists(dir + "/model/" + f)) << f;
  // The trained directory is a model mechscope loads and traces.
  auto info = mstest::run_cli({"info", "--model", dir + "/model", "--json"});
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_EQ(nlohmann::json::parse(info.out)["n_layers"], 1);

  auto bad = mstest::run_cli({"train", "--kg", dir + "/nope.jsonl", "--out", dir + "/m2"});
  EXPECT_EQ(bad.code, 2);
  auto bad2 = mstest::run_cli({"kg", "generate", "--out", dir + "/k2", "--entities", "2"});
  EXPECT_EQ(bad2.code, 2);
  EXPECT_NE(bad2.err.find("--entities"), std::string::npos) << bad2.err;
  // The library names its option fields (d_model, n_heads); the command line shows the flags that
  // filled them, --heads included though its field is n_heads.
  auto bad3 = mstest::run_cli({"train", "--kg", dir + "/kg/graph.jsonl", "--out", dir + "/m3", "--layers", "1",
                               "--d-model", "16", "--heads", "3", "--steps", "1"});
  EXPECT_EQ(bad3.code, 2);
  EXPECT_NE(bad3.err.find("--d-model 16 is not divisible by --heads 3"), std::string::npos) << bad3.err;
  EXPECT_EQ(bad3.err.find('\x1e'), std::string::npos) << bad3.err;
}

}  // namespace
