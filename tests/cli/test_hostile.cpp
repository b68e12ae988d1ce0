// Inputs a new user gives by mistake, each found by trying to break mechscope: every one must end
// with one clear line on stderr, exit code 2, nothing half-written, and no libtorch/libgomp/nlohmann
// text leaking through.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "core/fs.h"
#include "test_util.h"
#include "core/source_dir.h"  // MECHSCOPE_SOURCE_DIR, MECHSCOPE_BINARY

using namespace mechscope;
using mstest::contains;
using mstest::run_cli;
using mstest::run_shell;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kKg = mstest::source_dir() + "/examples/kg/model";
const std::string kGpt2 = mstest::fixture("gpt2/model");

// One line on stderr, exit 2, none of the internals' wording.
void expect_clean_error(const mstest::RunResult& r, const std::string& needle) {
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, needle)) << "wanted '" << needle << "' in: " << r.err;
  for (const char* leak : {"internal error", "json.exception", "c10::", "libgomp", "Exception raised", "terminate"})
    EXPECT_FALSE(contains(r.err, leak)) << leak << " in: " << r.err;
  size_t lines = 0;
  for (char c : r.err) lines += c == '\n';
  EXPECT_EQ(lines, 1u) << r.err;
}

// A copy of a model folder whose files are links to the original, except config.json (rewritten).
std::string model_copy(const std::string& src, const std::string& name) {
  std::string dir = mstest::tmp_dir(name);
  for (auto& e : fs::directory_iterator(src)) fs::create_symlink(e.path(), fs::path(dir) / e.path().filename());
  return dir;
}
void replace_file(const std::string& path, const std::string& text) {
  fs::remove(path);
  std::ofstream(path) << text;
}
std::string edit_config(const std::string& src, const std::string& name, const std::function<void(json&)>& edit) {
  std::string dir = model_copy(src, name);
  json cfg = json::parse(read_file(src + "/config.json"));
  edit(cfg);
  replace_file(dir + "/config.json", cfg.dump());
  return dir;
}

std::string facts_file(const std::string& dir, const std::string& text) {
  std::string p = dir + "/facts.jsonl";
  std::ofstream(p) << text;
  return p;
}
// Two facts of the shipped KG model (it predicts both answers).
const char* kTwoFacts =
    "{\"answer\":\"E_001\",\"id\":\"E_000_R_20\",\"prompt\":\"gi to R_20 ->\",\"subject\":\"gi to\"}\n"
    "{\"answer\":\"E_002\",\"id\":\"E_000_R_18\",\"prompt\":\"gi to R_18 ->\",\"subject\":\"gi to\"}\n";

std::vector<std::string> locate_cmd(const std::string& facts, const std::string& out) {
  return {"locate", "--model",  kKg, "--kg-file", facts, "--num-noise-samples", "2", "--kinds",
          "all",    "--window", "2", "--out",     out};
}

}  // namespace

TEST(Hostile, JsonNumbersBeyondADouble) {
  // config.json
  std::string dir = model_copy(kGpt2, "hostile-json-config");
  std::string text = read_file(kGpt2 + "/config.json");
  text.replace(text.find("\"n_embd\": 32"), 12, "\"n_embd\": 1e400");
  replace_file(dir + "/config.json", text);
  expect_clean_error(run_cli({"info", "--model", dir}), "config.json' is not valid JSON");
  // tokenizer.json
  dir = model_copy(kKg, "hostile-json-tokenizer");
  text = read_file(kKg + "/tokenizer.json");
  text.replace(text.find('{'), 1, "{\"padding\": 1e400, ");
  replace_file(dir + "/tokenizer.json", text);
  expect_clean_error(run_cli({"tokenize", "--model", dir, "gi to"}), "tokenizer.json' is not valid JSON");
  // a safetensors header
  dir = mstest::tmp_dir("hostile-json-st");
  std::string header = "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,1e400]}}";
  std::string bytes(8, '\0');
  uint64_t n = header.size();
  std::memcpy(&bytes[0], &n, 8);
  bytes += header + std::string(4, '\0');
  { std::ofstream(dir + "/model.safetensors", std::ios::binary) << bytes; }
  fs::copy_file(kGpt2 + "/config.json", dir + "/config.json");
  expect_clean_error(run_cli({"info", "--model", dir}), "the header of '");
}

TEST(Hostile, ConfigValuesOutsideTheirDomain) {
  auto theta = edit_config(mstest::fixture("llama/model"), "hostile-theta", [](json& c) {
    if (c.contains("rope_parameters")) c["rope_parameters"]["rope_theta"] = -1;
    else c["rope_theta"] = -1;
  });
  expect_clean_error(run_cli({"info", "--model", theta}), "rope_theta");
  auto eps = edit_config(kGpt2, "hostile-eps", [](json& c) { c["layer_norm_epsilon"] = 0; });
  expect_clean_error(run_cli({"info", "--model", eps}), "epsilon");
}

TEST(Hostile, NumericFlagsOutsideTheirDomain) {
  std::string out = mstest::tmp_dir("hostile-flags");
  expect_clean_error(run_cli({"generate", "--model", kKg, "--prompt", "gi to R_20 ->", "--temperature", "nan"}),
                     "--temperature: expected a finite number, got 'nan'");
  expect_clean_error(run_cli({"generate", "--model", kKg, "--prompt", "gi to R_20 ->", "--seed", "abc"}), "got 'abc'");
  for (auto [flag, value] : std::vector<std::pair<std::string, std::string>>{{"--lr", "nan"},
                                                                             {"--lr", "inf"},
                                                                             {"--lr", "-1"},
                                                                             {"--weight-decay", "nan"},
                                                                             {"--clip", "-1"},
                                                                             {"--layers", "1e3"}}) {
    auto r =
        run_cli({"train", "--kg", mstest::source_dir() + "/examples/kg/graph.jsonl", "--out", out + "/m", flag, value});
    expect_clean_error(r, "'" + value + "'");
    EXPECT_TRUE(contains(r.err, flag)) << r.err;
    EXPECT_FALSE(fs::exists(out + "/m")) << flag << " " << value;
  }
  // Noise that overflows float32 activations, and rules quoted as typed.
  auto r = run_cli({"trace", "--model", kKg, "--prompt", "gi to R_20 ->", "--subject", "gi to", "--noise", "1e39",
                    "--out", out + "/t"});
  expect_clean_error(r, "too large for float32");
  EXPECT_FALSE(fs::exists(out + "/t"));
  std::string facts = facts_file(out, kTwoFacts);
  for (const char* bad : {"abc", "a=-1", "s1e400", "nan"}) {
    auto cmd = locate_cmd(facts, out + "/l");
    cmd.insert(cmd.end(), {"--noise-level", bad});
    expect_clean_error(run_cli(cmd), std::string("got '") + bad + "'");
  }
}

TEST(Hostile, AbsoluteNoiseLevelAsDocumented) {
  std::string dir = mstest::tmp_dir("hostile-noise-a");
  auto cmd = locate_cmd(facts_file(dir, kTwoFacts), dir + "/out");
  cmd.insert(cmd.end(), {"--noise-level", "a=0.5", "--num-samples", "1"});
  auto r = run_cli(cmd);
  ASSERT_EQ(r.code, 0) << r.err;
  json run = json::parse(read_file(dir + "/out/facts/run.json"));
  EXPECT_EQ(run["noise_level"], 0.5);
  EXPECT_EQ(run["noise_rule"], "a=0.5");
}

TEST(Hostile, TooBigToAllocateCreatesNothing) {
  std::string out = mstest::tmp_dir("hostile-alloc") + "/model";
  auto r = run_cli({"train", "--kg", mstest::source_dir() + "/examples/kg/graph.jsonl", "--out", out, "--d-model",
                    "1000000000", "--heads", "1"});
  expect_clean_error(r, "GB to train");
  EXPECT_FALSE(fs::exists(out));
}

TEST(Hostile, ThreadCounts) {
  expect_clean_error(run_cli({"info", "--model", kKg, "--threads", "100000"}), "--threads must be an integer in 0 ..");
  expect_clean_error(run_cli({"info", "--model", kKg, "--threads", "-1"}), "got '-1'");
  // RLIMIT_NPROC: only root may lower it and still start the process (a normal user's fork would fail).
  // With a process limit of 2 (`ulimit -u 2`) there is room for one thread: two (when the machine has two cores) are refused.
  if (geteuid() == 0 && std::thread::hardware_concurrency() >= 2) {
    auto r = run_shell("prlimit --nproc=2 '" MECHSCOPE_BINARY "' info --model '" + kKg + "' --threads 2");
    expect_clean_error(r, "ulimit -u");
  }
}

TEST(Hostile, OpenMpVariablesThatLibgompCannotRead) {
  auto r = run_shell("OMP_NUM_THREADS=abc OMP_THREAD_LIMIT=x '" MECHSCOPE_BINARY "' info --model '" + kKg + "'");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  // A valid value is left alone (the tests themselves run with OMP_NUM_THREADS=1).
  r = run_shell("OMP_NUM_THREADS=1 '" MECHSCOPE_BINARY "' info --model '" + kKg + "'");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
}

TEST(Hostile, UsageMistakes) {
  auto r = run_cli({});
  expect_clean_error(r, "no command given");
  EXPECT_EQ(r.out, "");
  expect_clean_error(run_cli({"tokenize", "--model", kKg, "gi", "to"}), "unexpected argument 'to'");
  expect_clean_error(run_cli({"run", "--model", kKg, "--prompt", "gi to", "--out", ""}), "--out needs a path");
  std::string dir = mstest::tmp_dir("hostile-empty-out");
  expect_clean_error(run_cli({"trace", "--model", kKg, "--prompt", "gi to R_20 ->", "--subject", "gi to", "--out", ""}),
                     "--out needs a path");
}

TEST(Hostile, EncodersAreNotTraced) {
  std::string dir = mstest::tmp_dir("hostile-bert");
  std::string bert = mstest::fixture("bert/model");
  auto r = run_cli({"trace", "--model", bert, "--prompt", "the cat sat", "--subject", "cat", "--out", dir + "/t"});
  expect_clean_error(r, "bidirectional encoder");
  EXPECT_FALSE(fs::exists(dir + "/t"));
  std::string facts = facts_file(dir, "{\"prompt\": \"the cat sat\", \"subject\": \"cat\"}\n");
  r = run_cli({"locate", "--model", bert, "--kg-file", facts, "--out", dir + "/l"});
  expect_clean_error(r, "bidirectional encoder");
  EXPECT_FALSE(fs::exists(dir + "/l"));
}

TEST(Hostile, UnknownWordsWhereOneRealTokenIsNeeded) {
  std::string dir = mstest::tmp_dir("hostile-unk");
  auto r = run_cli({"trace", "--model", kKg, "--prompt", "gi to R_20 ->", "--subject", "gi to", "--answer", "Zanzibar",
                    "--out", dir + "/t"});
  expect_clean_error(r, "the word 'Zanzibar' is not in the tokenizer's vocabulary");
  // In a facts file: the subject and the answer, named with the file's line.
  std::string facts =
      facts_file(dir, "{\"prompt\": \"gi to R_20 ->\", \"subject\": \"gi to\", \"answer\": \"Zanzibar\"}\n");
  expect_clean_error(run_cli(locate_cmd(facts, dir + "/l")), "facts.jsonl:1: answer 'Zanzibar'");
  facts = facts_file(dir, "{\"prompt\": \"gi Qqq R_20 ->\", \"subject\": \"gi Qqq\"}\n");
  expect_clean_error(run_cli(locate_cmd(facts, dir + "/l")), "the word 'Qqq'");
}

TEST(Hostile, FactIdsBecomeSafeFileNames) {
  std::string dir = mstest::tmp_dir("hostile-id");
  std::string facts = facts_file(dir,
                                 "{\"id\": \"fact.1\", \"prompt\": \"gi to R_20 ->\", \"subject\": \"gi to\"}\n"
                                 "{\"id\": \"../x\", \"prompt\": \"gi to R_18 ->\", \"subject\": \"gi to\"}\n");
  auto r = run_cli(locate_cmd(facts, dir + "/out"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(file_exists(dir + "/out/trace_000_fact_1.png"));
  EXPECT_TRUE(file_exists(dir + "/out/facts/001____x.safetensors"));
  EXPECT_FALSE(fs::exists(dir + "/x.safetensors"));
}

TEST(Hostile, ResumeOverACorruptRunFile) {
  std::string dir = mstest::tmp_dir("hostile-resume");
  auto cmd = locate_cmd(facts_file(dir, kTwoFacts), dir + "/out");
  cmd.insert(cmd.end(), {"--num-samples", "1"});
  ASSERT_EQ(run_cli(cmd).code, 0);
  auto resume = cmd;
  resume.push_back("--resume");
  for (const char* text : {"", "{\"model\": ", "[1, 2]"}) {
    replace_file(dir + "/out/facts/run.json", text);
    auto r = run_cli(resume);
    expect_clean_error(r, "run.json");
    EXPECT_TRUE(contains(r.err, "--overwrite")) << r.err;
  }
  auto over = cmd;
  over.push_back("--overwrite");
  EXPECT_EQ(run_cli(over).code, 0);
}

TEST(Hostile, PerFactFilesOfOtherSettingsAreNotReused) {
  std::string dir = mstest::tmp_dir("hostile-settings");
  auto cmd = locate_cmd(facts_file(dir, kTwoFacts), dir + "/out");
  ASSERT_EQ(run_cli(cmd).code, 0);
  fs::remove(dir + "/out/facts/run.json");
  // Without run.json the folder still holds an earlier run.
  auto seed2 = cmd;
  seed2.insert(seed2.end(), {"--seed", "2"});
  expect_clean_error(run_cli(seed2), "holds an earlier locate run");
  seed2.push_back("--resume");
  auto r = run_cli(seed2);
  expect_clean_error(r, "was traced with seed 1, this run has 2");
  EXPECT_TRUE(contains(r.err, "000_E_000_R_20.safetensors")) << r.err;
  // The same settings resume and reuse both facts.
  auto same = cmd;
  same.push_back("--resume");
  r = run_cli(same);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "2 of 2 facts already done")) << r.err;
}

TEST(Hostile, NothingTracedNamesNoSite) {
  std::string dir = mstest::tmp_dir("hostile-none");
  // The model predicts E_001 here, so every fact is skipped.
  std::string facts = facts_file(dir, "{\"answer\":\"E_002\",\"prompt\":\"gi to R_20 ->\",\"subject\":\"gi to\"}\n");
  auto r = run_cli({"demo", "--kg-file", facts, "--out", dir + "/out", "--num-samples", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  json s = json::parse(read_file(dir + "/out/locating_summary.json"));
  EXPECT_EQ(s["facts_traced"], 0);
  EXPECT_TRUE(s["located_site"].is_null());
  EXPECT_TRUE(contains(r.out, "nothing was traced")) << r.out;
  EXPECT_FALSE(contains(r.out, "index.html")) << r.out;
}

TEST(Hostile, TrainResumeWithAnotherShape) {
  std::string dir = mstest::tmp_dir("hostile-train");
  auto g = run_cli({"kg", "generate", "--out", dir + "/kg", "--entities", "12", "--relations", "2", "--seed", "1"});
  ASSERT_EQ(g.code, 0) << g.err;
  std::vector<std::string> cmd{"train",
                               "--kg",
                               dir + "/kg/graph.jsonl",
                               "--out",
                               dir + "/m",
                               "--layers",
                               "1",
                               "--d-model",
                               "8",
                               "--heads",
                               "2",
                               "--steps",
                               "4",
                               "--eval-every",
                               "4",
                               "--checkpoint-every",
                               "2"};
  ASSERT_EQ(run_cli(cmd).code, 0);
  auto other = cmd;
  other[6] = "2";  // --layers
  other.push_back("--resume");
  expect_clean_error(run_cli(other), "n_layer 1, this run asks for 2");
  auto lr = cmd;
  lr.insert(lr.end(), {"--lr", "0.5", "--resume"});
  expect_clean_error(run_cli(lr), "trained with lr");
}
