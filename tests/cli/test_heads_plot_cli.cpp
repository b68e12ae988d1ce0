// heads plot / heads all, --sentiment-model and the prompt overrides through the CLI, on the 2-layer
// GPT-2 fixture and the DistilBERT sentiment fixture (transformers' float64 class logits).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>

#include "analysis/heads/head_spec.h"
#include "analysis/sentiment/classifier.h"
#include "core/fs.h"
#include "io/safetensors.h"
#include "tensor_util.h"
#include "test_util.h"

using namespace mechscope;
using mstest::contains;
using mstest::run_cli;

namespace {

void put(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

void expect_error(const std::vector<std::string>& args, const std::string& needle) {
  auto r = run_cli(args);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, needle)) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& more) {
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

std::string gpt2() { return mstest::fixture("gpt2/model"); }
std::string sst() { return mstest::fixture("distilbert_sst/model"); }

// Two emotions of three pairs each (one pair of different token lengths).
std::string profile(const std::string& name) {
  std::string dir = mstest::tmp_dir(name);
  put(join_path(dir, "joy.jsonl"),
      "{\"emotion\": \"Today I really appreciate the gift, and\", \"neutral\": \"Today I just noticed the gift, "
      "and\"}\n"
      "{\"emotion\": \"Honestly, I am so thankful for your help. I\", \"neutral\": \"Honestly, I saw your help. I\"}\n"
      "{\"emotion\": \"We love the garden, so we\", \"neutral\": \"We saw the garden, so we\"}\n");
  put(join_path(dir, "rage.jsonl"),
      "{\"emotion\": \"I am furious about the noise, so\", \"neutral\": \"I am thinking about the noise, so\"}\n"
      "{\"emotion\": \"We hate the new schedule. It\", \"neutral\": \"We saw the new schedule. It\"}\n"
      "{\"emotion\": \"They are angry at the delay, and\", \"neutral\": \"They are looking at the delay, and\"}\n");
  put(join_path(dir, "keywords.json"),
      "{\"joy\": [\"thank\", \"glad\", \"the\"], \"rage\": [\"angry\", \"hate\", \"and\"]}");
  return dir;
}

std::vector<nlohmann::json> json_lines(const std::string& out) {
  std::vector<nlohmann::json> v;
  size_t start = 0;
  for (size_t nl; (nl = out.find('\n', start)) != std::string::npos; start = nl + 1)
    v.push_back(nlohmann::json::parse(out.substr(start, nl - start)));
  return v;
}

TEST(SentimentModelCli, PositiveEqualsTheDistilBertFixture) {
  auto ref = nlohmann::json::parse(read_file(mstest::fixture("distilbert_sst/reference.json")));
  auto logits = io::SafetensorsFile::open(mstest::fixture("distilbert_sst/reference.safetensors"))->get("logits");
  at::Tensor want = at::softmax(logits.to(at::kDouble), 1).select(1, 1);
  std::vector<std::string> args{"sentiment", "--sentiment-model", sst(), "--batch-size", "3"};
  for (int i = 0; i < 4; ++i) args.insert(args.end(), {"--text", ref["texts"][i].get<std::string>()});
  auto r = run_cli(args);
  ASSERT_EQ(r.code, 0) << r.err;
  auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(lines[i]["positive"].get<double>(), want[i].item<double>(), 1e-5) << i;
    EXPECT_TRUE(lines[i]["vader"].contains("compound"));
  }
  // Without a model there is no "positive".
  r = run_cli({"sentiment", "--text", "fine"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(json_lines(r.out)[0].contains("positive"));
  expect_error({"sentiment", "--text", "x", "--sentiment-model", gpt2()},
               "--sentiment-model '" + gpt2() + "' is not a sequence classifier (it is GPT2LMHeadModel)");
  expect_error({"sentiment", "--text", "x", "--sentiment-model", join_path(mstest::tmp_dir("no-model"), "none")},
               "none");
}

TEST(SentimentModelCli, AblateAndPatchScoreEveryContinuationWithTheClassifier) {
  std::string prof = profile("sm-prof");
  auto c = analysis::sentiment::load_sentiment_classifier(sst(), "--sentiment-model");
  for (const char* cmd : {"ablate", "patch"}) {
    std::string out = join_path(mstest::tmp_dir(std::string("sm-") + cmd), "out");
    auto r = run_cli({"heads", cmd, "--model", gpt2(), "--profile", prof, "--head-spec", "0:1", "--emotion", "joy",
                      "--max-tokens", "4", "--resamples", "100", "--sentiment-model", sst(), "--out", out});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "P(POSITIVE)")) << r.out;
    auto j = nlohmann::json::parse(read_file(join_path(out, "model_joy_01.json")));
    std::string side = std::string(cmd) == "ablate" ? "ablated" : "patched";
    EXPECT_EQ(j["sentiment_model"], sst());
    std::vector<std::string> texts;
    for (auto& p : j["prompts"])
      for (auto& s : {std::string("baseline"), side}) texts.push_back(p[s]["text"]);
    auto want = analysis::sentiment::classify_positive(c, texts, 1).positive;
    size_t k = 0;
    double diff = 0;
    for (auto& p : j["prompts"]) {
      EXPECT_NEAR(p["baseline"]["positive"].get<double>(), want[k++], 1e-6);
      EXPECT_NEAR(p[side]["positive"].get<double>(), want[k++], 1e-6);
      diff += p[side]["positive"].get<double>() - p["baseline"]["positive"].get<double>();
    }
    EXPECT_NEAR(j["comparison"]["positive"]["mean_diff"].get<double>(), diff / 3, 1e-12);
    auto st = io::SafetensorsFile::open(
        join_path(out, side == "ablated" ? "head_ablation.safetensors" : "head_patching.safetensors"));
    EXPECT_EQ(st->get("joy.baseline.positive").numel(), 3);
  }
  std::string out = join_path(mstest::tmp_dir("sm-bad"), "out");
  expect_error({"heads", "ablate", "--model", gpt2(), "--profile", prof, "--head-spec", "0:1", "--sentiment-model",
                gpt2(), "--out", out},
               "is not a sequence classifier");
  EXPECT_FALSE(dir_exists(out));
}

TEST(HeadsPromptOverrides, EmotionAndNeutralPromptFilesReplaceTheProfilesPairs) {
  std::string prof = profile("ov-prof");
  std::string dir = mstest::tmp_dir("ov-files");
  std::string ef = join_path(dir, "emotion.txt"), nf = join_path(dir, "neutral.jsonl");
  put(ef, "I am so grateful for the rain, and\n\n\"Thank you for the coffee, it\"\n");
  put(nf, "{\"text\": \"I am looking at the rain, and\"}\n\"I see the coffee, it\"\n");
  std::string out = join_path(mstest::tmp_dir("ov-out"), "out");
  auto r = run_cli({"heads",
                    "patch",
                    "--model",
                    gpt2(),
                    "--profile",
                    prof,
                    "--head-spec",
                    "1:0",
                    "--emotion",
                    "joy",
                    "--emotion-prompts",
                    ef,
                    "--neutral-prompts",
                    nf,
                    "--max-tokens",
                    "3",
                    "--resamples",
                    "50",
                    "--out",
                    out});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(read_file(join_path(out, "model_joy_10.json")));
  ASSERT_EQ(j["prompts"].size(), 2u);
  EXPECT_EQ(j["prompts"][0]["prompt"], "I am looking at the rain, and");
  EXPECT_EQ(j["prompts"][0]["source_prompt"], "I am so grateful for the rain, and");
  EXPECT_EQ(j["prompts"][1]["prompt"], "I see the coffee, it");
  EXPECT_EQ(j["prompts"][1]["source_prompt"], "Thank you for the coffee, it");
  // One side only: the other side stays the profile's, pair by pair (three prompts for three pairs).
  std::string e3 = join_path(dir, "e3.txt");
  put(e3, "Today I truly love the gift, and\nHonestly, I adore your help. I\nWe cherish the garden, so we\n");
  out = join_path(mstest::tmp_dir("ov-out2"), "out");
  r = run_cli({"heads", "ablate", "--model", gpt2(), "--profile", prof, "--head-spec", "1:0", "--emotion", "joy",
               "--emotion-prompts", e3, "--max-tokens", "2", "--resamples", "50", "--out", out});
  ASSERT_EQ(r.code, 0) << r.err;
  j = nlohmann::json::parse(read_file(join_path(out, "model_joy_10.json")));
  EXPECT_EQ(j["prompts"][2]["prompt"], "We cherish the garden, so we");
  // Bad input: counts that differ, a broken JSON line, no --emotion, an empty file.
  std::string bad = join_path(mstest::tmp_dir("ov-bad"), "out");
  std::vector<std::string> base{"heads", "patch",       "--model", gpt2(),  "--profile",
                                prof,    "--head-spec", "1:0",     "--out", bad};
  expect_error(with(base, {"--emotion", "joy", "--emotion-prompts", e3, "--neutral-prompts", nf}),
               "--emotion-prompts '" + e3 + "' has 3 prompts but --neutral-prompts '" + nf + "' has 2");
  expect_error(with(base, {"--emotion", "joy", "--neutral-prompts", nf}),
               "--neutral-prompts '" + nf + "' has 2 prompts but the joy pairs it replaces one side of");
  std::string broken = join_path(dir, "broken.jsonl");
  put(broken, "fine prompt\n{\"text\": \"unterminated}\n");
  expect_error(with(base, {"--emotion", "joy", "--emotion-prompts", broken, "--neutral-prompts", nf}),
               "broken.jsonl:2");
  expect_error(with(base, {"--emotion-prompts", e3}),
               "--emotion-prompts replaces one emotion's prompts: give --emotion NAME too");
  std::string empty = join_path(dir, "empty.txt");
  put(empty, "\n  \n");
  expect_error(with(base, {"--emotion", "joy", "--neutral-prompts", empty}), "empty.txt' has no prompts");
  EXPECT_FALSE(dir_exists(bad));
}

TEST(HeadsEncoding, PromptsGoThroughTheOnePromptEncoder) {
  std::string prof = profile("enc-prof");
  std::string out = join_path(mstest::tmp_dir("enc"), "out");
  auto r = run_cli({"heads", "ablate", "--model", gpt2(), "--profile", prof, "--head-spec", "0:0", "--emotion", "rage",
                    "--max-tokens", "2", "--resamples", "20", "--prepend-bos", "--out", out});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(read_file(join_path(out, "model_rage_00.json")));
  for (auto& p : j["prompts"]) {
    auto t = run_cli({"tokenize", "--model", gpt2(), "--json", "--prepend-bos", p["prompt"].get<std::string>()});
    ASSERT_EQ(t.code, 0) << t.err;
    EXPECT_EQ(p["prompt_ids"], nlohmann::json::parse(t.out)["ids"]);
    EXPECT_EQ(p["prompt_ids"][0], 50256);
  }
}

// screen, ablate and patch outputs of one profile, for heads plot.
struct Runs {
  std::string prof, screen, ablate, patch;
};
const Runs& runs() {
  static Runs r = [] {
    Runs x;
    x.prof = profile("plot-prof");
    std::string d = mstest::tmp_dir("plot-runs");
    x.screen = join_path(d, "screen"), x.ablate = join_path(d, "ablate"), x.patch = join_path(d, "patch");
    auto a = run_cli({"heads", "screen", "--model", gpt2(), "--profile", x.prof, "--out", x.screen});
    EXPECT_EQ(a.code, 0) << a.err;
    a = run_cli({"heads", "ablate", "--model", gpt2(), "--profile", x.prof, "--head-spec", "0:1,1:2", "--max-tokens",
                 "4", "--resamples", "200", "--sentiment-model", sst(), "--out", x.ablate});
    EXPECT_EQ(a.code, 0) << a.err;
    a = run_cli({"heads", "patch", "--model", gpt2(), "--profile", x.prof, "--head-spec", "0:1,1:2", "--max-tokens",
                 "4", "--resamples", "200", "--sentiment-model", sst(), "--out", x.patch});
    EXPECT_EQ(a.code, 0) << a.err;
    return x;
  }();
  return r;
}

bool is_png(const std::string& path) {
  if (!file_exists(path)) return false;
  std::string b = read_file(path);
  return b.size() > 1000 && b.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0;
}

TEST(HeadsPlotCli, TheFourFiguresAndTheGenerationsSideBySide) {
  const Runs& x = runs();
  std::string out = join_path(mstest::tmp_dir("plot-out"), "plots");
  auto r = run_cli({"heads", "plot", "--head-scores", join_path(x.screen, "head_scores.json"), "--ablation-file",
                    x.ablate, "--patching-file", x.patch, "--out", out, "--top-n", "5"});
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* f :
       {"head_reaction_heatmap", "top_heads", "ablation_sentiment_comparison", "patching_keyword_comparison"})
    EXPECT_TRUE(is_png(join_path(out, std::string(f) + ".png"))) << f;
  std::string html = read_file(join_path(out, "index.html"));
  // Interactive versions of the four figures, with the intervals as error bars.
  for (const char* id : {"plot-head_reaction_heatmap", "plot-top_heads", "plot-ablation_sentiment_comparison",
                         "plot-patching_keyword_comparison"})
    EXPECT_TRUE(contains(html, id)) << id;
  EXPECT_TRUE(contains(html, "\"error_y\""));
  // Every generation is in the table, joined per pair: the ablation's and the patching's of pair 1.
  auto aj = nlohmann::json::parse(read_file(join_path(x.ablate, "model_joy_01_12.json")));
  auto pj = nlohmann::json::parse(read_file(join_path(x.patch, "model_joy_01_12.json")));
  EXPECT_TRUE(contains(html, "id=\"table-generations_0_joy\""));
  size_t row = html.find("<tr><td>1</td>", html.find("id=\"table-generations_0_joy\""));
  ASSERT_NE(row, std::string::npos);
  std::string tr = html.substr(row, html.find("</tr>", row) - row);
  auto esc = [](std::string s) {
    std::string o;
    for (char c : s)
      o += c == '<'    ? std::string("&lt;")
           : c == '>'  ? std::string("&gt;")
           : c == '&'  ? std::string("&amp;")
           : c == '"'  ? std::string("&quot;")
           : c == '\'' ? std::string("&#39;")
                       : std::string(1, c);
    return o;
  };
  for (auto* t : {&aj["prompts"][0]["prompt"], &aj["prompts"][0]["ablated"]["text"], &pj["prompts"][0]["prompt"],
                  &pj["prompts"][0]["patched"]["text"]})
    EXPECT_TRUE(contains(tr, "<td>" + esc(t->get<std::string>()) + "</td>")) << *t;
  EXPECT_TRUE(contains(html, "P(POSITIVE)"));
  auto m = nlohmann::json::parse(read_file(join_path(out, "manifest.json")));
  EXPECT_EQ(m["command"], "heads plot");

  // One emotion only, from single files.
  std::string one = join_path(mstest::tmp_dir("plot-one"), "plots");
  r = run_cli({"heads", "plot", "--head-scores", x.screen, "--ablation-file",
               join_path(x.ablate, "model_rage_01_12.json"), "--out", one, "--emotion", "rage"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(is_png(join_path(one, "ablation_sentiment_comparison.png")));
  EXPECT_FALSE(file_exists(join_path(one, "patching_keyword_comparison.png")));
}

TEST(HeadsPlotCli, BadInputsAreOneClearErrorWithNothingWritten) {
  const Runs& x = runs();
  std::string out = join_path(mstest::tmp_dir("plot-bad"), "plots");
  std::vector<std::string> base{"heads", "plot", "--out", out};
  expect_error(with(base, {"--ablation-file", join_path(x.patch, "model_joy_01_12.json")}),
               "is a heads patch output; expected heads ablate's");
  expect_error(with(base, {"--head-scores", join_path(x.ablate, "model_joy_01_12.json")}),
               "is not a heads screen output");
  expect_error(with(base, {"--patching-file", x.screen}), "holds no heads patch output");
  expect_error(with(base, {"--head-scores", join_path(x.screen, "missing.json")}), "missing.json' does not exist");
  expect_error(with(base, {"--head-scores", x.screen, "--emotion", "fear"}),
               "--emotion 'fear' is not in --head-scores");
  expect_error(with(base, {"--head-scores", x.screen, "--top-n", "0"}), "--top-n");
  expect_error(base, "nothing to plot");
  std::string broken = join_path(mstest::tmp_dir("plot-broken"), "head_scores.json");
  put(broken,
      "{\"scores\": [{\"layer\": 0, \"head\": 0, \"emotion\": \"joy\", \"score\": 1}], \"n_layers\": 1, \"n_heads\": "
      "2}");
  expect_error(with(base, {"--head-scores", broken}), "no score for layer 0 head 1 of joy");
  EXPECT_FALSE(dir_exists(out));
}

TEST(HeadsAllCli, ScreenThenAblateAndPatchTheTopHeadsThenPlotAndResume) {
  std::string prof = profile("all-prof");
  std::string out = join_path(mstest::tmp_dir("all"), "run");
  std::vector<std::string> args{"heads",   "all",         "--model",      gpt2(), "--profile",   prof,
                                "--top-n", "2",           "--max-tokens", "3",    "--resamples", "100",
                                "--score", "output-norm", "--out",        out};
  auto r = run_cli(args);
  ASSERT_EQ(r.code, 0) << r.err;
  auto screen = nlohmann::json::parse(read_file(join_path(out, "screen/head_scores.json")));
  EXPECT_EQ(screen["score"], "output-norm");
  auto m = nlohmann::json::parse(read_file(join_path(out, "manifest.json")));
  EXPECT_EQ(m["command"], "heads all");
  for (const char* e : {"joy", "rage"}) {
    // The two heads of largest |score| of this emotion, found here from the screen's own scores.
    std::vector<std::pair<double, analysis::heads::HeadRef>> s;
    for (auto& row : screen["scores"])
      if (row["emotion"] == e) s.push_back({std::abs(row["score"].get<double>()), {row["layer"], row["head"]}});
    std::stable_sort(s.begin(), s.end(), [](auto& a, auto& b) { return a.first > b.first; });
    std::vector<analysis::heads::HeadRef> top{s[0].second, s[1].second};
    std::sort(top.begin(), top.end());
    std::string spec = analysis::heads::format_head_spec(top);
    EXPECT_EQ(m["settings"]["heads"][e], spec);
    // The same run as heads ablate with those heads.
    std::string one = join_path(mstest::tmp_dir(std::string("all-one-") + e), "out");
    auto a = run_cli({"heads", "ablate", "--model", gpt2(), "--profile", prof, "--head-spec", spec, "--emotion", e,
                      "--max-tokens", "3", "--resamples", "100", "--out", one});
    ASSERT_EQ(a.code, 0) << a.err;
    std::string name;
    for (auto& f : m["files"]) {
      std::string fs = f["path"];
      if (fs.rfind(std::string("ablation/model_") + e + "_", 0) == 0 && fs.size() > 5 &&
          fs.substr(fs.size() - 5) == ".json")
        name = fs;
    }
    ASSERT_FALSE(name.empty());
    auto got = nlohmann::json::parse(read_file(join_path(out, name)));
    auto want = nlohmann::json::parse(read_file(join_path(one, name.substr(9))));
    EXPECT_EQ(got["prompts"], want["prompts"]) << e;
    EXPECT_EQ(got["comparison"], want["comparison"]) << e;
    EXPECT_TRUE(file_exists(join_path(out, name.substr(0, name.size() - 5) + ".safetensors")));
  }
  for (const char* f : {"head_reaction_heatmap.png", "top_heads.png", "ablation_sentiment_comparison.png",
                        "patching_keyword_comparison.png", "index.html", "run.json"})
    EXPECT_TRUE(file_exists(join_path(out, f))) << f;
  // A second run into the same folder continues it, or is refused.
  expect_error(args, "holds an earlier heads all run: pass --resume");
  r = run_cli(with(args, {"--resume"}));
  ASSERT_EQ(r.code, 0) << r.err;
  m = nlohmann::json::parse(read_file(join_path(out, "manifest.json")));
  EXPECT_EQ(m["settings"]["stages_s"]["screen"], "resumed");
  EXPECT_EQ(m["settings"]["stages_s"]["ablation"]["joy"], "resumed");
  EXPECT_EQ(m["settings"]["stages_s"]["patching"]["rage"], "resumed");
  auto changed = args;
  changed[std::find(changed.begin(), changed.end(), "--max-tokens") - changed.begin() + 1] = "4";
  expect_error(with(changed, {"--resume"}), "--resume: max_tokens differs from the run in");
  std::string fresh = join_path(mstest::tmp_dir("all-bad"), "run");
  expect_error({"heads", "all", "--model", gpt2(), "--profile", prof, "--top-n", "0", "--out", fresh}, "--top-n");
  expect_error({"heads", "all", "--model", sst(), "--profile", prof, "--out", fresh}, "sequence classifier");
  EXPECT_FALSE(dir_exists(fresh));
}

}  // namespace
