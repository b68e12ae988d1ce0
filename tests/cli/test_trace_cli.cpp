// `mechscope trace` and `mechscope locate` end to end: ROME's numbers through the CLI, every output
// file of the seed's report, resume, and the bad inputs a user can give.
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
using mstest::run_cli;

using json = nlohmann::json;

namespace {

const std::string kModel = mstest::fixture("gpt2/model");

std::string write_facts(const std::string& dir, const std::string& text) {
  std::string p = join_path(dir, "facts.jsonl");
  write_file_atomic(p, text);
  return p;
}

const char* kFacts =
    "{\"id\": \"E_008_R_27\", \"prompt\": \"The Space Needle is located in the city of\", \"subject\": \"The Space "
    "Needle\"}\n"
    "{\"id\": \"E_003_R_09\", \"prompt\": \"Barack Obama was born in the state of\", \"subject\": \"Barack Obama\"}\n"
    "\n"
    "{\"id\": \"E_010_R_01\", \"prompt\": \"The Eiffel Tower is in\", \"subject\": \"Eiffel Tower\", \"answer\": "
    "\"Paris\"}\n"
    "{\"prompt\": \"Tokyo is the capital of\", \"subject\": \"Tokyo\"}\n";

}  // namespace

TEST(TraceCli, ReproducesRomeOnTheFixture) {
  json ref = json::parse(read_file(mstest::fixture("gpt2/reference.json")))["trace"];
  auto st = io::SafetensorsFile::open(mstest::fixture("gpt2/reference.safetensors"));
  std::string ids;
  for (int64_t x : mstest::to_vec(st->get("trace.input_ids"))) ids += (ids.empty() ? "" : ",") + std::to_string(x);
  std::string out = mstest::tmp_dir("trace_cli_ref");
  auto r = run_cli({"trace", "--model", kModel, "--ids", ids, "--subject-range", "1,4", "--noise", "1.021656110018547",
                    "--samples", "10", "--window", "10", "--out", out, "--threads", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(read_file(join_path(out, "trace.json")));
  EXPECT_EQ(j["answer_id"], ref["answer_id"]);
  EXPECT_NEAR(j["low_score"].get<double>(), ref["low_score"].get<double>(), 1e-6);
  EXPECT_NEAR(j["high_score"].get<double>(), ref["high_score"].get<double>(), 1e-6);
  EXPECT_EQ(j["subject_range"], json({1, 4}));
  EXPECT_DOUBLE_EQ(j["noise_level"].get<double>(), 1.021656110018547);
  auto got = io::SafetensorsFile::open(join_path(out, "trace.safetensors"));
  for (const char* k : {"all", "mlp", "attn"})
    EXPECT_TRUE(
        mstest::close(got->get(std::string("scores.") + k), st->get(std::string("trace.scores.") + k), 1e-4, 1e-7))
        << k;
  for (const char* f : {"trace.png", "trace_mlp.png", "trace_attn.png", "index.html", "manifest.json"})
    EXPECT_TRUE(file_exists(join_path(out, f))) << f;
  EXPECT_EQ(j["method"], "fast");
  json manifest = json::parse(read_file(join_path(out, "manifest.json")));
  EXPECT_FALSE(manifest["versions"]["openblas_kernels"].get<std::string>().empty());
  // --naive: ROME's way, the same numbers.
  std::string naive = mstest::tmp_dir("trace_cli_ref_naive");
  r = run_cli({"trace", "--model", kModel, "--ids", ids, "--subject-range", "1,4", "--noise", "1.021656110018547",
               "--samples", "10", "--window", "10", "--out", naive, "--threads", "1", "--naive"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(read_file(join_path(naive, "trace.json")))["method"], "naive");
  auto slow = io::SafetensorsFile::open(join_path(naive, "trace.safetensors"));
  for (const char* k : {"all", "mlp", "attn"})
    EXPECT_TRUE(
        mstest::close(slow->get(std::string("scores.") + k), st->get(std::string("trace.scores.") + k), 1e-4, 1e-7))
        << k;
}

TEST(TraceCli, TextPromptSubjectAndNoiseRules) {
  std::string out = mstest::tmp_dir("trace_cli_text");
  auto r = run_cli({"trace", "--model", kModel, "--tokenizer", gpt2_tokenizer(), "--prompt",
                    "The Space Needle is located in the city of", "--subject", "Space Needle", "--noise", "u0.5",
                    "--kinds", "all", "--samples", "3", "--out", out});
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(read_file(join_path(out, "trace.json")));
  EXPECT_EQ(j["subject_range"], json({1, 4}));  // "The| Space| Need|le"
  EXPECT_EQ(j["noise_distribution"], "uniform");
  EXPECT_TRUE(file_exists(join_path(out, "trace.png")));
  EXPECT_FALSE(file_exists(join_path(out, "trace_mlp.png")));
  // --answer scores a given token; --expect checks the prediction.
  r = run_cli({"trace", "--model", kModel, "--tokenizer", gpt2_tokenizer(), "--prompt", "Tokyo is the capital of",
               "--subject", "Tokyo", "--answer", "Japan", "--kinds", "mlp", "--samples", "2", "--out", out});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(read_file(join_path(out, "trace.json")))["answer"], " Japan");
  r = run_cli({"trace", "--model", kModel, "--tokenizer", gpt2_tokenizer(), "--prompt", "Tokyo is the capital of",
               "--subject", "Tokyo", "--expect", "Japan", "--samples", "2", "--out", out});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "--expect 'Japan': the model predicts")) << r.err;
}

TEST(TraceCli, BadInput) {
  std::string out = mstest::tmp_dir("trace_cli_bad");
  auto r = run_cli({"trace", "--model", kModel, "--tokenizer", gpt2_tokenizer(), "--prompt", "Tokyo is the capital of",
                    "--subject", "Kyoto", "--out", out});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "subject 'Kyoto' is not in the prompt 'Tokyo is the capital of'")) << r.err;
  r = run_cli({"trace", "--model", kModel, "--ids", "1,2,3", "--subject-range", "2,5", "--out", out});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "--subject-range 2,5")) << r.err;
  r = run_cli({"trace", "--model", kModel, "--ids", "1,2,3", "--subject-range", "0,1", "--noise", "x7", "--out", out});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "--noise")) << r.err;
  r = run_cli({"trace", "--model", kModel, "--ids", "1,2,3", "--out", out});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "--subject-range")) << r.err;
  r = run_cli({"trace", "--model", kModel, "--tokenizer", gpt2_tokenizer(), "--prompt", "Tokyo is the capital of",
               "--subject", "Tokyo", "--answer", "Antidisestablishmentarianism", "--out", out});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "tokens; causal tracing scores one token")) << r.err;
}

TEST(LocateCli, EveryOutputResumeAndSkips) {
  std::string dir = mstest::tmp_dir("locate_cli");
  std::string facts = write_facts(dir, kFacts);
  std::string out = join_path(dir, "out");
  std::vector<std::string> cmd{"locate",
                               "--model-dir",
                               kModel,
                               "--tokenizer",
                               gpt2_tokenizer(),
                               "--kg-file",
                               facts,
                               "--num-samples",
                               "4",
                               "--noise-level",
                               "3.0",
                               "--num-noise-samples",
                               "3",
                               "--out",
                               out};
  auto r = run_cli(cmd);
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* f :
       {"locating_summary.json", "aggregate_analysis.png", "layer_importance.png", "average_heatmap.png",
        "average_heatmap_mlp.png", "average_heatmap_attn.png", "t0_aie_by_layer.png", "trace.safetensors", "index.html",
        "manifest.json", "trace_000_E_008_R_27.png", "trace_000_E_008_R_27_mlp.png", "trace_000_E_008_R_27_attn.png",
        "trace_001_E_003_R_09.png", "trace_003.png"})
    EXPECT_TRUE(file_exists(join_path(out, f))) << f;
  json s = json::parse(read_file(join_path(out, "locating_summary.json")));
  // The model (random weights) does not predict " Paris": that fact is skipped and counted.
  EXPECT_EQ(s["facts_traced"], 3);
  EXPECT_EQ(s["facts_skipped"], 1);
  EXPECT_TRUE(contains(s["skipped"][0]["reason"].get<std::string>(), "expected 'Paris'"));
  EXPECT_EQ(s["facts"][0]["subject_range"], json({0, 4}));
  EXPECT_EQ(s["aie"]["mlp"]["aie"].size(), 6u);
  auto st = io::SafetensorsFile::open(join_path(out, "trace.safetensors"));
  EXPECT_TRUE(st->has("000_E_008_R_27.scores.all"));
  EXPECT_TRUE(st->has("003.scores.attn"));
  EXPECT_TRUE(st->has("aie.all"));
  at::Tensor first = st->get("000_E_008_R_27.scores.mlp");

  // A second run into the same folder needs --resume (or --overwrite).
  r = run_cli(cmd);
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "--resume")) << r.err;
  // Resume after losing a fact: only that fact is traced again, with the same numbers.
  std::remove(join_path(out, "facts/000_E_008_R_27.safetensors").c_str());
  auto resumed = cmd;
  resumed.push_back("--resume");
  r = run_cli(resumed);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "resuming: 3 of 4 facts already done")) << r.err;
  st = io::SafetensorsFile::open(join_path(out, "trace.safetensors"));
  EXPECT_TRUE(mstest::close(st->get("000_E_008_R_27.scores.mlp"), first, 0, 0));
  // Resume with other settings is refused.
  resumed[resumed.size() - 4] = "5";  // --num-noise-samples
  r = run_cli(resumed);
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "samples differs")) << r.err;
}

TEST(LocateCli, BadFactsFiles) {
  std::string dir = mstest::tmp_dir("locate_cli_bad");
  std::string out = join_path(dir, "out");
  auto run = [&](const std::string& text, bool skip_bad = false) {
    std::string facts = write_facts(dir, text);
    std::vector<std::string> cmd{"locate",
                                 "--model-dir",
                                 kModel,
                                 "--tokenizer",
                                 gpt2_tokenizer(),
                                 "--kg-file",
                                 facts,
                                 "--num-noise-samples",
                                 "2",
                                 "--kinds",
                                 "all",
                                 "--out",
                                 out,
                                 "--overwrite"};
    if (skip_bad) cmd.push_back("--skip-bad");
    return run_cli(cmd);
  };
  auto r = run("");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "no facts")) << r.err;
  r = run("{\"prompt\": \"Tokyo is the capital of\", \"subject\": \"Tokyo\"}\n{\"prompt\": \"oops\",\n");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "facts.jsonl:2: the line is not valid JSON")) << r.err;
  EXPECT_TRUE(contains(r.err, "--skip-bad")) << r.err;
  r = run("{\"prompt\": \"Tokyo is the capital of\"}\n");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "facts.jsonl:1: missing \"subject\"")) << r.err;
  r = run("{\"prompt\": \"Tokyo is the capital of\", \"subject\": \"Kyoto\"}\n");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "facts.jsonl:1: subject 'Kyoto' is not in the prompt")) << r.err;
  r =
      run("{\"prompt\": \"Tokyo is the capital of\", \"subject\": \"Tokyo\"}\n[1, 2]\n"
          "{\"prompt\": \"Tokyo is the capital of\", \"subject\": \"Kyoto\"}\n",
          true);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "skipped ")) << r.err;
  EXPECT_TRUE(contains(r.err, "facts.jsonl:2: expected a JSON object")) << r.err;
  json s = json::parse(read_file(join_path(out, "locating_summary.json")));
  EXPECT_EQ(s["facts_traced"], 1);
  EXPECT_EQ(s["facts_skipped"], 2);
}
