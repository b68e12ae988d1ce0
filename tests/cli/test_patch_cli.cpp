// mechscope patch / ablate end to end: the GPT-2 fixture's reference numbers through the CLI, outputs,
// text prompts with the real GPT-2 vocabulary, and the user errors.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "core/fs.h"
#include "io/safetensors.h"
#include "tensor_util.h"
#include "test_util.h"

using namespace mechscope;
using mstest::contains;
using mstest::gpt2_tokenizer;
using mstest::ids_arg;
using mstest::run_cli;

namespace {

const std::string kModel = mstest::fixture("gpt2/model");
std::shared_ptr<io::SafetensorsFile> ref() {
  static auto f = io::SafetensorsFile::open(mstest::fixture("gpt2/reference.safetensors"));
  return f;
}
std::vector<std::string> fixture_args() {
  return {"--model",       kModel,
          "--clean-ids",   ids_arg(ref()->get("patch.clean_ids")),
          "--corrupt-ids", ids_arg(ref()->get("patch.corrupt_ids")),
          "--answer-id",   "10714",
          "--wrong-id",    "45261"};
}
nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  return nlohmann::json::parse(f);
}

TEST(PatchCli, FixtureReferenceExactAndNaive) {
  for (const char* method : {"exact", "naive"}) {
    std::string out = mstest::tmp_dir(std::string("patch-") + method);
    auto args = fixture_args();
    args.insert(args.begin(), "patch");
    for (const char* s : {"--targets", "resid_pre,attn_out,mlp_out,z_all_pos", "--method", method, "--out"})
      args.push_back(s);
    args.push_back(out);
    auto r = run_cli(args);
    ASSERT_EQ(r.code, 0) << r.err;
    auto st = io::SafetensorsFile::open(join_path(out, "patch.safetensors"));
    EXPECT_TRUE(mstest::close(st->get("resid_pre"), ref()->get("patch.resid_pre"), 1e-4, 1e-4)) << method;
    EXPECT_TRUE(mstest::close(st->get("attn_out"), ref()->get("patch.attn_out"), 1e-4, 1e-4)) << method;
    EXPECT_TRUE(mstest::close(st->get("mlp_out"), ref()->get("patch.mlp_out"), 1e-4, 1e-4)) << method;
    EXPECT_TRUE(mstest::close(st->get("z_all_pos"), ref()->get("patch.head_z_all_pos"), 1e-4, 1e-4)) << method;
    auto j = read_json(join_path(out, "patch.json"));
    EXPECT_NEAR(j["metric"]["clean"].get<double>(), 3.2045623529563425, 1e-4);
    EXPECT_NEAR(j["metric"]["corrupt"].get<double>(), 3.9349198735722504, 1e-4);
    EXPECT_EQ(j["targets"].size(), 4u);
    EXPECT_EQ(j["targets"][0]["axes"], (std::vector<std::string>{"layer", "pos"}));
    EXPECT_EQ(j["positions"].size(), 10u);
    EXPECT_TRUE(j["timings"].contains("resid_pre_s"));
    for (const char* f : {"resid_pre.png", "z_all_pos.png", "resid_pre_surface.png", "resid_pre_by_layer.png",
                          "index.html", "manifest.json"})
      EXPECT_TRUE(file_exists(join_path(out, f))) << f;
  }
}

TEST(PatchCli, RawMetricAndBlockEvery) {
  std::string out = mstest::tmp_dir("patch-raw");
  auto args = fixture_args();
  args.insert(args.begin(), "patch");
  for (const char* s : {"--targets", "block_every", "--raw", "--out"}) args.push_back(s);
  args.push_back(out);
  auto r = run_cli(args);
  ASSERT_EQ(r.code, 0) << r.err;
  auto st = io::SafetensorsFile::open(join_path(out, "patch.safetensors"));
  double clean = 3.2045623529563425, corrupt = 3.9349198735722504;
  EXPECT_TRUE(
      mstest::close(st->get("resid_pre"), ref()->get("patch.resid_pre") * (clean - corrupt) + corrupt, 1e-4, 1e-4));
  EXPECT_TRUE(mstest::close(st->get("mlp_out"), ref()->get("patch.mlp_out") * (clean - corrupt) + corrupt, 1e-4, 1e-4));
}

TEST(PatchCli, AttributionWithComparison) {
  std::string out = mstest::tmp_dir("patch-attr");
  auto args = fixture_args();
  args.insert(args.begin(), "patch");
  for (const char* s : {"--targets", "resid_pre,z_all_pos", "--method", "attribution", "--compare-exact", "--out"})
    args.push_back(s);
  args.push_back(out);
  auto r = run_cli(args);
  ASSERT_EQ(r.code, 0) << r.err;
  auto st = io::SafetensorsFile::open(join_path(out, "patch.safetensors"));
  EXPECT_TRUE(mstest::close(st->get("exact.resid_pre"), ref()->get("patch.resid_pre"), 1e-4, 1e-4));
  EXPECT_EQ(st->get("resid_pre").sizes(), (at::IntArrayRef{2, 10}));
  EXPECT_TRUE(file_exists(join_path(out, "attribution_vs_exact.png")));
}

TEST(PatchCli, ZeroAblationOfHeadsMatchesReference) {
  std::string out = mstest::tmp_dir("ablate-zero");
  auto r = run_cli({"ablate", "--model", kModel, "--ids", ids_arg(ref()->get("patch.clean_ids")), "--answer-id",
                    "10714", "--wrong-id", "45261", "--targets", "z_all_pos", "--kind", "zero", "--out", out});
  ASSERT_EQ(r.code, 0) << r.err;
  auto st = io::SafetensorsFile::open(join_path(out, "ablate.safetensors"));
  EXPECT_TRUE(mstest::close(st->get("z_all_pos"), ref()->get("ablate.head_z_zero_clean"), 1e-4, 1e-4));
  EXPECT_TRUE(file_exists(join_path(out, "z_all_pos.png")));
  EXPECT_TRUE(file_exists(join_path(out, "index.html")));
}

TEST(PatchCli, MeanAndResampleAblation) {
  std::string dir = mstest::tmp_dir("ablate-ref");
  write_file_atomic(
      join_path(dir, "ref.txt"),
      "{\"ids\": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}\n{\"ids\": [11, 12, 13, 14, 15, 16, 17, 18, 19, 20]}\n");
  for (const char* kind : {"mean", "resample"}) {
    std::string out = join_path(dir, kind);
    auto r = run_cli({"ablate", "--model", kModel, "--ids", ids_arg(ref()->get("patch.clean_ids")), "--answer-id",
                      "10714", "--wrong-id", "45261", "--targets", "z_all_pos,resid_pre", "--kind", kind, "--reference",
                      join_path(dir, "ref.txt"), "--out", out});
    ASSERT_EQ(r.code, 0) << r.err;
    auto st = io::SafetensorsFile::open(join_path(out, "ablate.safetensors"));
    EXPECT_EQ(st->get("resid_pre").sizes(), (at::IntArrayRef{2, 10}));
  }
  auto r = run_cli({"ablate", "--model", kModel, "--ids", "1,2,3", "--answer-id", "1", "--wrong-id", "2", "--kind",
                    "mean", "--out", join_path(dir, "x")});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "--reference")) << r.err;
}

TEST(PatchCli, TextPromptsWithRealVocabularyAndPairs) {
  std::string out = mstest::tmp_dir("patch-text");
  auto r = run_cli({"patch", "--model", kModel, "--tokenizer", gpt2_tokenizer(), "--clean",
                    "After John and Mary went to the store, Mary gave a bottle of milk to", "--corrupt",
                    "After John and Mary went to the store, John gave a bottle of milk to", "--answer", " John",
                    "--wrong", " Mary", "--prepend-bos", "--targets", "resid_pre,pattern", "--out", out});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = read_json(join_path(out, "patch.json"));
  EXPECT_EQ(j["n_pos"], 17);  // BOS + 16 tokens
  EXPECT_EQ(j["clean_ids"], (std::vector<int64_t>{50256, 3260, 1757, 290, 5335, 1816, 284, 262, 3650, 11, 5335, 2921,
                                                  257, 9294, 286, 7545, 284}));
  EXPECT_EQ(j["positions"][10], "10 Mary/John");
  EXPECT_EQ(j["targets"][1]["shape"], (std::vector<int64_t>{2, 4, 17}));

  std::string pairs = join_path(out, "pairs.jsonl");
  write_file_atomic(
      pairs,
      "{\"clean\": \"When Tom and Anna met, Anna thanked\", \"corrupt\": \"When Tom and Anna met, Tom thanked\", "
      "\"answer\": \" Tom\", \"wrong\": \" Anna\"}\n"
      "{\"clean_ids\": [1, 2, 3, 4, 5, 6, 7, 8], \"corrupt_ids\": [1, 2, 3, 4, 9, 6, 7, 8], \"answer_id\": 5, "
      "\"wrong_id\": 9}\n");
  auto p = run_cli({"patch", "--model", kModel, "--tokenizer", gpt2_tokenizer(), "--pairs", pairs, "--targets",
                    "resid_pre", "--out", join_path(out, "pairs")});
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_EQ(read_json(join_path(out, "pairs/patch.json"))["pairs"], 2);
}

TEST(PatchCli, UserErrors) {
  std::string out = mstest::tmp_dir("patch-errors");
  auto base = [&](std::vector<std::string> extra) {
    std::vector<std::string> a{"patch", "--model", kModel, "--out", join_path(out, "x")};
    a.insert(a.end(), extra.begin(), extra.end());
    return run_cli(a);
  };
  auto r = base({"--clean-ids", "1,2,3", "--corrupt-ids", "1,2", "--answer-id", "1", "--wrong-id", "2"});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "same token length")) << r.err;
  r = run_cli({"patch", "--model", kModel, "--tokenizer", gpt2_tokenizer(), "--clean", "a b", "--corrupt", "a c",
               "--answer", " Johnathan Smithsonian", "--wrong", " Mary", "--out", join_path(out, "y")});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "single token")) << r.err;
  r = base({"--clean-ids", "1,2,3", "--corrupt-ids", "1,2,4", "--answer-id", "1", "--wrong-id", "2", "--targets",
            "resid_pree"});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "unknown patch target 'resid_pree'")) << r.err;
  r = base({"--clean-ids", "1,2,3", "--corrupt-ids", "1,2,4", "--answer-id", "1"});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "--wrong")) << r.err;
  r = base(
      {"--clean-ids", "1,2,3", "--corrupt-ids", "1,2,4", "--answer-id", "1", "--wrong-id", "2", "--method", "fast"});
  EXPECT_EQ(r.code, 2);
  EXPECT_FALSE(file_exists(join_path(out, "x/patch.json")));
}

}  // namespace
