// mechscope attnviz end to end: outputs on the BERT fixture and the shipped KG model, attention
// recomputed from the written (normalised) vectors, and the user errors (exit 2, one line, nothing
// written).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <set>
#include <fstream>

#include "core/fs.h"
#include "io/safetensors.h"
#include "test_util.h"

using namespace mechscope;
using mstest::contains;
using mstest::run_cli;

namespace {

const std::string kBert = mstest::fixture("bert/model");
const std::string kKg = mstest::source_dir() + "/examples/kg/model";

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  return nlohmann::json::parse(f);
}

TEST(AttnvizCli, BertOutputsAndAttentionFromTheWrittenVectors) {
  std::string out = mstest::tmp_dir("attnviz-bert");
  auto r = run_cli({"attnviz", "--model", kBert, "--text", "The brown capybara is sleeping now.", "--text",
                    "A brown dog sleeps.", "--highlight", "brown:capybara", "--scope", "layer", "--lines", "mass:0.5",
                    "--dims", "3", "--out", out});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "highlight brown:capybara")) << r.err;
  for (const char* f :
       {"attnviz.json", "attnviz.safetensors", "index.html", "manifest.json", "result_layer0.html",
        "result_layer1.html", "layer0_heads.png", "L0_H0_joint.png", "L0_H0_dot_distance.png", "L1_H0_joint.png"})
    EXPECT_TRUE(file_exists(join_path(out, f))) << f;
  EXPECT_TRUE(contains(read_file(join_path(out, "index.html")), "result_layer1.html"));
  auto j = read_json(join_path(out, "attnviz.json"));
  EXPECT_LT(j["attention_max_abs_diff"].get<double>(), 1e-5);
  ASSERT_EQ(j["normalization"].size(), 2u);  // one group per layer
  for (auto& g : j["normalization"]) {
    EXPECT_LE(g["max_pattern_change"].get<double>(), 1e-5);
    EXPECT_EQ(g["translation"].size(), 8u);
    EXPECT_EQ(g["explained_variance_ratio"].size(), 3u);
  }
  auto& hl = j["highlights"][0];
  EXPECT_EQ(hl["query_word"], "brown");
  // "capybara" is several word pieces in the fixture's vocabulary: every piece is a key of the pair.
  std::set<int64_t> key_pos;
  for (auto& p : hl["pairs"]) key_pos.insert(p["key_pos"].get<int64_t>());
  EXPECT_GE(key_pos.size(), 2u);
  EXPECT_EQ(hl["summary"]["pairs"].get<int>(), int(hl["pairs"].size()));

  auto st = io::SafetensorsFile::open(join_path(out, "attnviz.safetensors"));
  at::Tensor lengths = st->get("lengths");
  for (int l = 0; l < 2; ++l) {
    std::string b = "blocks." + std::to_string(l) + ".";
    at::Tensor q = st->get(b + "q_normalized").to(at::kDouble), k = st->get(b + "k_normalized").to(at::kDouble);
    at::Tensor pat = st->get(b + "pattern").to(at::kDouble);
    ASSERT_EQ(q.dim(), 4);
    EXPECT_EQ(q.size(2), 4);
    EXPECT_EQ(st->get(b + "q").sizes(), q.sizes());
    EXPECT_EQ(st->get(b + "q_coords").size(3), 3);
    // BERT's rule, written out here: softmax(q·k / sqrt(d_head)) over the text's real keys.
    for (int64_t t = 0; t < 2; ++t) {
      int64_t n = lengths[t].item<int64_t>();
      at::Tensor qt = q[t].narrow(0, 0, n), kt = k[t].narrow(0, 0, n);
      at::Tensor s = at::einsum("ihd,jhd->hij", {qt, kt}) / std::sqrt(8.0);
      at::Tensor p = at::softmax(s, -1);
      EXPECT_LT((p - pat[t].narrow(1, 0, n).narrow(2, 0, n)).abs().max().item<double>(), 1e-5)
          << "layer " << l << " text " << t;
      // Padding positions are zero.
      if (n < q.size(1)) EXPECT_EQ(st->get(b + "q")[t].narrow(0, n, q.size(1) - n).abs().max().item<float>(), 0.0f);
    }
  }
}

TEST(AttnvizCli, KgModelWithTsneAndSearch) {
  std::string out = mstest::tmp_dir("attnviz-kg");
  auto r = run_cli({"attnviz",
                    "--model",
                    kKg,
                    "--text",
                    "gi to R_20 ->",
                    "--text",
                    "re zo R_18 ->",
                    "--layers",
                    "0,5",
                    "--heads",
                    "1,3",
                    "--normalize",
                    "search",
                    "--projection",
                    "tsne",
                    "--tsne-iterations",
                    "300",
                    "--scope",
                    "model",
                    "--png-heads",
                    "5:3",
                    "--out",
                    out});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = read_json(join_path(out, "attnviz.json"));
  ASSERT_EQ(j["normalization"].size(), 1u);
  EXPECT_LT(j["normalization"][0]["c_effect"].get<double>(), 1e-9);
  EXPECT_LE(j["normalization"][0]["max_pattern_change"].get<double>(), 1e-5);
  EXPECT_TRUE(file_exists(join_path(out, "L5_H3_joint.png")));
  EXPECT_FALSE(file_exists(join_path(out, "L0_H1_joint.png")));
  auto st = io::SafetensorsFile::open(join_path(out, "attnviz.safetensors"));
  at::Tensor c = st->get("blocks.5.q_coords");
  EXPECT_EQ(c.sizes(), (std::vector<int64_t>{2, 4, 2, 2}));
  EXPECT_TRUE(at::isfinite(c).all().item<bool>());
}

void expect_user_error(const std::vector<std::string>& extra, const std::string& needle) {
  std::string out = mstest::tmp_dir("attnviz-bad") + "/out";
  std::vector<std::string> args{"attnviz", "--model", kBert};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back("--out");
  args.push_back(out);
  auto r = run_cli(args);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, needle)) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(dir_exists(out)) << "output written for: " << r.err;
}

TEST(AttnvizCli, BadInputIsOneClearError) {
  const std::string text = "The brown capybara is sleeping now.";
  expect_user_error({"--text", text, "--highlight", "brown:giraffe"}, "'giraffe' is not a word of any text");
  expect_user_error({"--text", text, "--highlight", "brown:giraffe"}, "[CLS] the brown cap");  // lists the tokens
  expect_user_error({"--text", text, "--layers", "2"}, "--layers: layer 2 is out of range");
  expect_user_error({"--text", text, "--heads", "0,4"}, "--heads: head 4 is out of range");
  std::string long_text;
  for (int i = 0; i < 80; ++i) long_text += "word ";
  expect_user_error({"--text", text, "--text", long_text}, "--text #2 has");
  expect_user_error({"--text", long_text}, "context of 64");
  expect_user_error({"--text", "a", "--no-special-tokens", "--projection", "tsne"}, "t-SNE needs at least 3 points");
  expect_user_error({"--text", text, "--lines", "topk:0"}, "--lines");
  expect_user_error({"--text", text, "--normalize", "best"}, "--normalize");
  expect_user_error({"--text", text, "--highlight", "brown"}, "--highlight: expected QUERY_WORD:KEY_WORD");
  expect_user_error({}, "--text TEXT");
  expect_user_error({"--texts", "/nonexistent/texts.txt"}, "/nonexistent/texts.txt");
}

}  // namespace
