// `mechscope train --corpus` through the CLI (outputs, bad input), and the shipped emotion model
// (examples/emotion/model) that `mechscope heads` uses by default: it takes every profile prompt and
// its heads carry the emotion.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "core/fs.h"
#include "test_util.h"
#include "tokenizers/tokenizer.h"

using namespace mechscope;
using mstest::contains;
using mstest::run_cli;
using nlohmann::json;

namespace {

std::string write_corpus(const std::string& dir, const std::vector<std::string>& lines) {
  std::string p = dir + "/corpus.jsonl";
  std::ofstream f(p);
  for (auto& l : lines) f << l << "\n";
  return p;
}

void expect_clean_error(const mstest::RunResult& r, const std::string& needle) {
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, needle)) << "wanted '" << needle << "' in: " << r.err;
  size_t lines = 0;
  for (char c : r.err) lines += c == '\n';
  EXPECT_EQ(lines, 1u) << r.err;
}

std::vector<std::string> small_args(const std::string& corpus, const std::string& out) {
  return {"train", "--corpus", corpus, "--out",    out, "--layers", "1", "--d-model", "16", "--heads",
          "2",     "--steps",  "20",   "--warmup", "2", "--batch",  "4", "--n-ctx",   "16", "--lowercase"};
}

TEST(TrainTextCli, TrainsAModelFolderThatMechscopeRuns) {
  std::string dir = mstest::tmp_dir("train-text-cli");
  std::string corpus =
      write_corpus(dir, {R"({"text": "I am glad. It was lovely."})", R"({"text": "I am angry. It was awful."})"});
  auto r = run_cli(small_args(corpus, dir + "/m"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "(2 texts)")) << r.out;
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"})
    EXPECT_TRUE(file_exists(dir + "/m/" + f)) << f;
  auto tok = json::parse(read_file(dir + "/m/tokenizer.json"));
  EXPECT_EQ(tok["model"]["type"], "WordLevel");
  EXPECT_EQ(tok["normalizer"]["type"], "Lowercase");
  auto g = run_cli({"generate", "--model", dir + "/m", "--prompt", "I am glad.", "--max-new-tokens", "3"});
  EXPECT_EQ(g.code, 0) << g.err;
  // Resuming a finished run keeps the model.
  auto again = small_args(corpus, dir + "/m");
  again.push_back("--resume");
  EXPECT_EQ(run_cli(again).code, 0);
}

TEST(TrainTextCli, BadCorporaAndFlagsExitTwoAndWriteNothing) {
  std::string dir = mstest::tmp_dir("train-text-cli-bad");
  std::string out = dir + "/m";
  expect_clean_error(run_cli(small_args(write_corpus(dir, {}), out)), "has no texts");
  expect_clean_error(run_cli(small_args(write_corpus(dir, {R"({"text": "fine"})", R"({"text": "broken)"}), out)),
                     "corpus.jsonl:2");
  expect_clean_error(run_cli(small_args(write_corpus(dir, {R"({"text": "fine"})", R"({"text": "  "})"}), out)),
                     "corpus.jsonl:2: the text has no tokens");
  expect_clean_error(run_cli(small_args(write_corpus(dir, {R"({"words": "fine"})"}), out)), "expected {\"text\"");
  expect_clean_error(run_cli(small_args(dir + "/missing.jsonl", out)), "does not exist");
  std::string ok = write_corpus(dir, {R"({"text": "one two three four five six seven eight nine ten"})"});
  auto args = small_args(ok, out);
  args[args.size() - 2] = "4";  // --n-ctx 4
  expect_clean_error(run_cli(args), "more than --n-ctx 4");
  args = small_args(ok, out);
  args.insert(args.end(), {"--kg", mstest::source_dir() + "/examples/kg/graph.jsonl"});
  expect_clean_error(run_cli(args), "give one of --kg FILE and --corpus FILE");
  args = small_args(ok, out);
  args.insert(args.end(), {"--tokenizer", mstest::source_dir() + "/examples/kg/tokenizer.json"});
  expect_clean_error(run_cli(args), "--lowercase applies to the tokenizer built from --corpus");
  args = small_args(ok, out);
  args.pop_back();
  args.insert(args.end(), {"--tokenizer", dir});
  expect_clean_error(run_cli(args), "is not a tokenizer.json file");
  args = small_args(ok, out);
  args.insert(args.end(), {"--steps", "0"});
  expect_clean_error(run_cli(args), "--steps");
  EXPECT_FALSE(std::filesystem::exists(out));
}

const std::string kModel = mstest::source_dir() + "/examples/emotion/model";

TEST(EmotionModel, IsSmallAndTakesEveryProfilePromptWithoutUnknownWords) {
  uint64_t bytes = 0;
  for (auto& e : std::filesystem::directory_iterator(kModel)) bytes += e.is_regular_file() ? e.file_size() : 0;
  EXPECT_LE(bytes, 10u * 1000 * 1000);
  EXPECT_FALSE(std::filesystem::exists(kModel + "/checkpoint"));
  auto cfg = json::parse(read_file(kModel + "/config.json"));
  EXPECT_EQ(cfg["model_type"], "gpt2");
  auto tok = tokenizers::load_tokenizer(kModel);
  ASSERT_TRUE(tok->unk_id());
  size_t prompts = 0;
  for (const char* profile : {"baseline", "extended"})
    for (const char* emotion : {"gratitude", "anger", "apology"}) {
      std::ifstream f(mstest::source_dir() + "/examples/emotion/profiles/" + profile + "/" + emotion + ".jsonl");
      for (std::string line; std::getline(f, line);) {
        auto j = json::parse(line);
        for (const char* side : {"emotion", "neutral"}) {
          auto ids = tok->encode(j[side].get<std::string>());
          ++prompts;
          for (int64_t id : ids) EXPECT_NE(id, *tok->unk_id()) << j[side];
          EXPECT_LE((int64_t)ids.size() + 15, cfg["n_positions"].get<int64_t>()) << j[side];
        }
      }
    }
  EXPECT_EQ(prompts, 2u * 3 * (70 + 220));
}

// The claim the shipped model exists for (examples/emotion/README.md): zeroing its emotion heads
// changes the VADER sentiment of what it generates from the baseline profile's prompts, with a
// bootstrap interval that excludes 0, for every emotion; and `heads` finds the model by default.
TEST(EmotionModel, AblatingItsEmotionHeadsChangesSentiment) {
  std::string out = mstest::tmp_dir("emotion-ablate") + "/run";
  auto r = run_cli({"heads", "ablate", "--head-spec", "0:0,1:1,1:3", "--resamples", "2000", "--out", out});
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* e : {"gratitude", "anger", "apology"}) {
    std::string file;
    for (auto& f : std::filesystem::directory_iterator(out))
      if (contains(f.path().filename().string(), std::string("model_") + e + "_")) file = f.path().string();
    ASSERT_FALSE(file.empty()) << e;
    auto j = json::parse(read_file(file));
    EXPECT_TRUE(contains(j["model"].get<std::string>(), "examples/emotion/model"));
    auto c = j["comparison"]["sentiment"];
    double lo = c["ci95"][0], hi = c["ci95"][1];
    EXPECT_TRUE(lo > 0 || hi < 0) << e << ": [" << lo << ", " << hi << "]";
    // Gratitude loses its warmth; anger and apology lose their negativity.
    if (std::string(e) == "gratitude") EXPECT_LT(c["mean_diff"].get<double>(), -0.1) << e;
    else EXPECT_GT(c["mean_diff"].get<double>(), 0.1) << e;
  }
}

}  // namespace
