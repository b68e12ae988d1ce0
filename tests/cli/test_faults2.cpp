// Issue 17 for the commands that claimed no folder (sae train, sae eval, kg generate) or claimed it
// only after their work (heads screen/ablate/patch, sae stats/tsea), and for the readers of user
// files that read lines unbounded: a locked folder is refused at once, a foreign one without
// --overwrite, a failing run leaves nothing that looks finished and the earlier result intact, and a
// huge line is refused naming the file and the line.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <ATen/ATen.h>

#include <filesystem>
#include <fstream>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/fs.h"
#include "faults_util.h"
#include "io/safetensors.h"
#include "test_util.h"

using namespace mechscope;
using namespace mstest::faults;
using mstest::contains;
using mstest::run_cli;

namespace {

const std::string kModel = mstest::fixture("gpt2/model");

// A random standard SAE on blocks.L.hook_resid_pre in SAELens's format (as test_sae_cli.cpp's).
std::string make_sae(const std::string& dir, int layer, int64_t d_sae, int64_t d_in) {
  at::manual_seed(layer);
  make_dirs(dir);
  json cfg{{"d_in", d_in},
           {"d_sae", d_sae},
           {"architecture", "standard"},
           {"hook_name", "blocks." + std::to_string(layer) + ".hook_resid_pre"},
           {"model_name", "tiny-gpt2"}};
  write_file_atomic(dir + "/cfg.json", cfg.dump());
  io::write_safetensors(dir + "/sae_weights.safetensors", {{"W_enc", at::randn({d_in, d_sae})},
                                                           {"b_enc", at::zeros({d_sae})},
                                                           {"W_dec", at::randn({d_sae, d_in})},
                                                           {"b_dec", at::zeros({d_in})}});
  io::write_safetensors(dir + "/sparsity.safetensors", {{"sparsity", -at::rand({d_sae}) * 8}});
  return dir;
}

// Two emotions of two pairs each (as test_heads_cli.cpp's).
std::string small_profile(const std::string& dir) {
  make_dirs(dir);
  write_file_atomic(dir + "/joy.jsonl",
                    "{\"emotion\": \"Today I really appreciate the gift, and\", \"neutral\": \"Today I just noticed "
                    "the gift, and\"}\n"
                    "{\"emotion\": \"Honestly, I am so thankful for your help. I\", \"neutral\": \"Honestly, I saw "
                    "your help. I\"}\n");
  write_file_atomic(
      dir + "/rage.jsonl",
      "{\"emotion\": \"I am furious about the noise, so\", \"neutral\": \"I am thinking about the noise, so\"}\n"
      "{\"emotion\": \"We hate the new schedule. It\", \"neutral\": \"We saw the new schedule. It\"}\n");
  write_file_atomic(dir + "/keywords.json", "{\"joy\": [\"thank\", \"glad\"], \"rage\": [\"angry\", \"hate\"]}");
  return dir;
}

std::string corpus(const std::string& dir) {
  std::string p = dir + "/corpus.txt";
  write_file_atomic(p, "The capital of France is Paris.\nThe Eiffel Tower is in Paris.\n\nA cat sat on the mat.\n");
  return p;
}

std::vector<std::string> sae_train_cmd(const std::string& corpus, const std::string& out,
                                       const std::string& steps = "20") {
  return {"sae",         "train",
          "--model",     kModel,
          "--tokenizer", mstest::gpt2_tokenizer(),
          "--hook",      "blocks.0.hook_resid_pre",
          "--corpus",    corpus,
          "--d-sae",     "16",
          "--steps",     steps,
          "--batch",     "16",
          "--log-every", "10",
          "--threads",   "1",
          "--out",       out};
}
std::vector<std::string> sae_eval_cmd(const std::string& sae, const std::string& corpus, const std::string& out) {
  return {"sae",   "eval", "--model",  kModel, "--tokenizer", mstest::gpt2_tokenizer(),
          "--sae", sae,    "--corpus", corpus, "--threads",   "1",
          "--out", out};
}
std::vector<std::string> kg_cmd(const std::string& out, const std::string& seed = "2") {
  return {"kg", "generate", "--out", out, "--entities", "25", "--relations", "3", "--seed", seed};
}
std::vector<std::string> screen_cmd(const std::string& prof, const std::string& out) {
  return {"heads", "screen", "--model", kModel, "--profile", prof, "--threads", "1", "--out", out};
}
std::vector<std::string> heads_cmd(const std::string& sub, const std::string& prof, const std::string& out) {
  return {"heads",     sub,   "--model",      kModel, "--profile", prof, "--head-spec", "0:1",
          "--emotion", "joy", "--max-tokens", "3",    "--threads", "1",  "--out",       out};
}
std::vector<std::string> stats_cmd(const std::string& sae, const std::string& out) {
  return {"sae",   "stats", "--model",   kModel, "--tokenizer", mstest::gpt2_tokenizer(),
          "--sae", sae,     "--threads", "1",    "--out",       out};
}
std::vector<std::string> tsea_cmd(const std::string& model, const std::string& sae, const std::string& out) {
  return {"sae", "tsea",   "--model",      model,       "--sae", sae,     "--top-features",
          "5",   "--sets", "a,all_digits", "--threads", "1",     "--out", out};
}

std::vector<std::string> plus(std::vector<std::string> cmd, const std::string& flag) {
  cmd.push_back(flag);
  return cmd;
}

// `cmd` with the value of `flag` replaced.
std::vector<std::string> with_value(std::vector<std::string> cmd, const std::string& flag, const std::string& value) {
  for (size_t i = 0; i + 1 < cmd.size(); ++i)
    if (cmd[i] == flag) cmd[i + 1] = value;
  return cmd;
}

// The names directly in `dir`.
std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> out;
  for (auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// The BERT fixture without its masked-LM head (and with its tokenizer): a model with no W_U.
std::string bare_bert(const std::string& dir) {
  make_dirs(dir);
  auto src = io::SafetensorsFile::open(mstest::fixture("bert/model/model.safetensors"));
  std::vector<std::pair<std::string, at::Tensor>> kept;
  for (auto& [name, info] : src->tensors())
    if (name.rfind("bert.", 0) == 0) kept.emplace_back(name.substr(5), src->get(name));
  io::write_safetensors(dir + "/model.safetensors", kept);
  for (auto& e : fs::directory_iterator(mstest::fixture("bert/model")))
    if (e.path().filename() != "model.safetensors") fs::copy_file(e.path(), dir + "/" + e.path().filename().string());
  return dir;
}

}  // namespace

// 3 + item 2: a folder another run holds is refused at once by every one of these commands, with
// exit 2 naming the folder and the holder's pid, and nothing written into it. "At once": before any
// work, which for the heads commands would print a progress line per emotion, and for sae stats and
// tsea would stop on an error that only the work finds (an SAE of another width, a model with no W_U).
TEST(Faults2, LockedFolderIsRefusedBeforeAnyWork) {
  std::string dir = mstest::tmp_dir("faults2-lock");
  std::string text = corpus(dir), sae = make_sae(dir + "/sae", 1, 24, 32), narrow = make_sae(dir + "/sae8", 0, 8, 8);
  std::string bert = bare_bert(dir + "/bert"), bert_sae = make_sae(dir + "/sae-bert", 0, 8, 32);
  std::string prof = small_profile(dir + "/prof"), out = dir + "/out";
  HeldLock lock(out);
  std::string want = "--out '" + out + "' is in use by another mechscope run (pid " + std::to_string(::getpid()) + ")";
  std::vector<std::vector<std::string>> cmds{
      sae_train_cmd(text, out), sae_eval_cmd(sae, text, out),   kg_cmd(out),
      screen_cmd(prof, out),    heads_cmd("ablate", prof, out), heads_cmd("patch", prof, out),
      stats_cmd(narrow, out),   tsea_cmd(bert, bert_sae, out)};
  for (auto& cmd : cmds) {
    SCOPED_TRACE(cmd[0] + " " + cmd[1]);
    auto r = run_cli(cmd);
    expect_one_line_error(r, want);
    EXPECT_EQ(names_in(out), std::vector<std::string>{".mechscope.lock"}) << "refused before writing anything";
  }
}

// 4: a run refused by the lock leaves an earlier complete result byte for byte as it was, its
// manifest included (an in-place claim marks "running" only once it holds the lock); so does one
// refused as foreign.
TEST(Faults2, RefusedRunsLeaveAnEarlierResultByteIdentical) {
  std::string dir = mstest::tmp_dir("faults2-refused");
  std::string text = corpus(dir), sae = make_sae(dir + "/sae", 1, 24, 32);
  struct Case {
    std::vector<std::string> cmd;
    std::string out;
  };
  std::vector<Case> cases{{sae_train_cmd(text, dir + "/train"), dir + "/train"},
                          {sae_eval_cmd(sae, text, dir + "/eval"), dir + "/eval"},
                          {kg_cmd(dir + "/kg"), dir + "/kg"}};
  for (auto& c : cases) {
    SCOPED_TRACE(c.cmd[0] + " " + c.cmd[1]);
    ASSERT_EQ(run_cli(c.cmd).code, 0);
    std::string before = read_file(c.out + "/manifest.json");
    auto files = snapshot(c.out);
    {
      HeldLock lock(c.out);
      auto again = c.cmd;
      if (c.cmd[1] == "train") again.push_back("--resume");
      expect_one_line_error(run_cli(again),
                            "is in use by another mechscope run (pid " + std::to_string(::getpid()) + ")");
    }
    EXPECT_EQ(read_file(c.out + "/manifest.json"), before);
    EXPECT_EQ(differing(snapshot(c.out), files), "");
  }
  // Refused after the claim, having written nothing (a --resume whose checkpoint is another shape):
  // the complete result keeps its manifest as it was, not "failed"; one that wrote files is marked.
  std::string tr = dir + "/train", before = read_file(tr + "/manifest.json");
  auto other = with_value(plus(sae_train_cmd(text, tr), "--resume"), "--d-sae", "8");
  expect_one_line_error(run_cli(other), "--resume: the checkpoint in");
  EXPECT_EQ(read_file(tr + "/manifest.json"), before);
  ASSERT_EQ(run_cli(sae_train_cmd(text, dir + "/train2")).code, 0);
  fs::remove(dir + "/train2/sparsity.safetensors");
  fs::create_directories(dir + "/train2/sparsity.safetensors");  // the run fails at its last SAE file
  auto r = run_cli(sae_train_cmd(text, dir + "/train2", "30"));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(contains(manifest_of(dir + "/train2")["status"].get<std::string>(), "failed: ")) << r.err;
}

// 5: a folder that holds files mechscope did not write is refused (before the work) without
// --overwrite and left as it was; with it, mechscope's files are written beside the others. kg
// generate's folder is its own afterwards (a manifest), and so is one from before it wrote one.
TEST(Faults2, ForeignFoldersNeedOverwrite) {
  std::string dir = mstest::tmp_dir("faults2-foreign");
  std::string text = corpus(dir), sae = make_sae(dir + "/sae", 1, 24, 32), prof = small_profile(dir + "/prof");
  struct Case {
    std::string name;
    std::vector<std::string> cmd;
    std::string out;
  };
  std::vector<Case> cases{{"sae train", sae_train_cmd(text, dir + "/train"), dir + "/train"},
                          {"sae eval", sae_eval_cmd(sae, text, dir + "/eval"), dir + "/eval"},
                          {"kg generate", kg_cmd(dir + "/kg"), dir + "/kg"},
                          {"heads screen", screen_cmd(prof, dir + "/screen"), dir + "/screen"},
                          {"sae stats", stats_cmd(sae, dir + "/stats"), dir + "/stats"}};
  for (auto& c : cases) {
    SCOPED_TRACE(c.name);
    fs::create_directories(c.out);
    std::ofstream(c.out + "/notes.txt") << "my notes";
    auto r = run_cli(c.cmd);
    expect_one_line_error(r, "--out '" + c.out + "' holds files mechscope did not write (e.g. 'notes.txt')");
    EXPECT_EQ(names_in(c.out), std::vector<std::string>{"notes.txt"});
    r = run_cli(plus(c.cmd, "--overwrite"));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(read_file(c.out + "/notes.txt"), "my notes");
    EXPECT_EQ(manifest_of(c.out)["tool"], "mechscope");
    EXPECT_EQ(manifest_of(c.out)["status"], "complete");
    EXPECT_EQ(manifest_of(c.out)["command"], c.name);
    EXPECT_EQ(temporaries(c.out), std::vector<std::string>{});
  }
  // Its own folder again, without --overwrite; and a kg folder of an earlier version (no manifest).
  std::string kg = dir + "/kg";
  ASSERT_EQ(run_cli(kg_cmd(kg, "3")).code, 0);
  fs::remove(kg + "/manifest.json");
  auto r = run_cli(kg_cmd(kg, "4"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(read_file(kg + "/kg.json"))["seed"], 4);
  EXPECT_EQ(manifest_of(kg)["seed"], 4);
}

// 2 + 4: a run that fails leaves no folder that looks finished and the earlier result as it was.
TEST(Faults2, FailedRunsLeaveEarlierResultsIntact) {
  std::string dir = mstest::tmp_dir("faults2-failed");
  std::string text = corpus(dir), sae = make_sae(dir + "/sae", 1, 24, 32);

  // kg generate (staged): a folder where its last file goes; nothing of the new graph is moved in.
  std::string kg = dir + "/kg";
  ASSERT_EQ(run_cli(kg_cmd(kg, "2")).code, 0);
  fs::remove(kg + "/kg.json");
  fs::create_directories(kg + "/kg.json");
  auto before = snapshot(kg);
  auto r = run_cli(kg_cmd(kg, "3"));
  expect_one_line_error(r, "kg.json' is a folder where this run's kg.json goes");
  EXPECT_EQ(differing(snapshot(kg), before), "") << "the earlier graph is kept whole";
  EXPECT_EQ(temporaries(kg), std::vector<std::string>{});

  // sae eval (staged): a file size limit that eval.json fits under and its manifest does not.
  std::string ev = dir + "/eval";
  ASSERT_EQ(run_cli(sae_eval_cmd(sae, text, ev)).code, 0);
  size_t eval_bytes = fs::file_size(ev + "/eval.json"), manifest_bytes = fs::file_size(ev + "/manifest.json");
  ASSERT_LT(eval_bytes + 64, manifest_bytes);
  before = snapshot(ev);
  write_file_atomic(dir + "/other.txt", "A dog sat on the log.\n");
  rlim_t limit = eval_bytes + 32;
  Child c = spawn(sae_eval_cmd(sae, dir + "/other.txt", ev), dir + "/eval-fsize", [limit] { limit_file_size(limit); });
  EXPECT_EQ(wait_for(c), 2) << err_of(c);
  EXPECT_TRUE(contains(err_of(c), "file size limit")) << err_of(c);
  EXPECT_EQ(differing(snapshot(ev), before), "")
      << "eval.json of the failed run must not stand beside the old manifest";
  EXPECT_EQ(temporaries(ev), std::vector<std::string>{});

  // sae train (in place): the run is marked failed in its manifest, not left "complete"; the earlier
  // SAE files, which the run had not reached, are whole and unchanged.
  std::string tr = dir + "/train";
  ASSERT_EQ(run_cli(sae_train_cmd(text, tr)).code, 0);
  std::string weights = read_file(tr + "/sae_weights.safetensors");
  size_t limit2 = fs::file_size(tr + "/manifest.json") + 512;
  ASSERT_LT(limit2, weights.size());
  c = spawn(sae_train_cmd(text, tr, "30"), dir + "/train-fsize", [limit2] { limit_file_size(limit2); });
  EXPECT_EQ(wait_for(c), 2) << err_of(c);
  json m = manifest_of(tr);
  EXPECT_TRUE(contains(m["status"].get<std::string>(), "failed: ")) << m["status"];
  EXPECT_TRUE(contains(m["status"].get<std::string>(), "file size limit")) << m["status"];
  EXPECT_EQ(read_file(tr + "/sae_weights.safetensors"), weights);
  EXPECT_EQ(temporaries(tr), std::vector<std::string>{});
  expect_whole(tr);
  r = run_cli(sae_train_cmd(text, tr, "30"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(manifest_of(tr)["status"], "complete");
}

// 8: a line longer than 16 MiB in a knowledge graph, a heads profile, an SAE corpus or a training
// corpus is refused with exit 2 naming the file and the line, and nothing is written.
TEST(Faults2, HugeLinesInGraphsProfilesAndCorporaAreRefusedByLine) {
  std::string dir = mstest::tmp_dir("faults2-lines");
  std::string huge(17 << 20, 'a');
  std::string kg = dir + "/graph.jsonl";
  std::ofstream(kg) << "{\"subject\":\"E_0\",\"relation\":\"R_0\",\"object\":\"E_1\",\"subject_name\":\"gi\",\"object_"
                       "name\":\"zo\"}\n"
                    << "{\"subject\":\"" << huge << "\"}\n";
  expect_one_line_error(
      run_cli({"train", "--kg", kg, "--tokenizer", mstest::source_dir() + "/examples/kg/tokenizer.json", "--steps", "1",
               "--out", dir + "/model"}),
      "graph.jsonl:2: the line is longer than 16 MiB");
  EXPECT_FALSE(fs::exists(dir + "/model"));

  std::string prof = small_profile(dir + "/prof");
  std::ofstream(prof + "/joy.jsonl", std::ios::app) << "{\"emotion\": \"" << huge << "\", \"neutral\": \"x\"}\n";
  expect_one_line_error(run_cli(screen_cmd(prof, dir + "/screen")), "joy.jsonl:3: the line is longer than 16 MiB");
  EXPECT_FALSE(fs::exists(dir + "/screen"));

  std::string text = dir + "/corpus.txt";
  std::ofstream(text) << "A cat sat on the mat.\n" << huge << "\n";
  expect_one_line_error(run_cli(sae_train_cmd(text, dir + "/sae")), "corpus.txt:2: the line is longer than 16 MiB");
  EXPECT_FALSE(fs::exists(dir + "/sae"));

  std::string jsonl = dir + "/texts.jsonl";
  std::ofstream(jsonl) << "{\"text\": \"A cat sat on the mat.\"}\n{\"text\": \"" << huge << "\"}\n";
  expect_one_line_error(run_cli({"train", "--corpus", jsonl, "--steps", "1", "--out", dir + "/lm"}),
                        "texts.jsonl:2: the line is longer than 16 MiB");
  EXPECT_FALSE(fs::exists(dir + "/lm"));
  std::string strings = dir + "/strings.jsonl";
  std::ofstream(strings) << "\"A cat sat on the mat.\"\n\"" << huge << "\"\n";
  expect_one_line_error(
      run_cli({"tokenize", "--model", kModel, "--tokenizer", mstest::gpt2_tokenizer(), "--jsonl", strings}),
      "strings.jsonl:2: the line is longer than 16 MiB");
}

// 1: SIGINT in the middle of sae train (in place) says to --resume, marks the folder interrupted,
// leaves no temporary, and --resume completes it; SIGTERM during sae eval (staged) leaves the
// earlier result as it was.
TEST(Faults2, InterruptedSaeRunsSayWhatWasKept) {
  std::string dir = mstest::tmp_dir("faults2-signals");
  std::string text = corpus(dir), out = dir + "/train";
  auto cmd = with_value(with_value(sae_train_cmd(text, out, "200000"), "--log-every", "1000"), "--d-sae", "64");
  cmd.insert(cmd.end() - 2, {"--checkpoint-every", "1000"});
  Child c = spawn(cmd, dir + "/train-int");
  // Interrupted once training runs: after the claim's "running" manifest and the first checkpoint.
  bool training = false;
  for (int i = 0; i < 3000 && !training; ++i) {
    training = fs::exists(out + "/checkpoint/state.json");
    if (!training) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(training) << err_of(c);
  ::kill(c.pid, SIGINT);
  EXPECT_EQ(wait_for(c), 130) << err_of(c);
  std::string err = err_of(c);
  EXPECT_TRUE(contains(err, "interrupted; rerun with --resume to continue")) << err;
  EXPECT_TRUE(contains(err, "(SIGINT)")) << err;
  EXPECT_EQ(err.find("interrupted"), err.rfind("interrupted")) << "one line says it: " << err;
  EXPECT_EQ(temporaries(out), std::vector<std::string>{});
  expect_whole(out);
  EXPECT_EQ(manifest_of(out)["status"], "interrupted (SIGINT)") << "not finished, and not looking finished";
  long long at = json::parse(read_file(out + "/checkpoint/state.json"))["step"].get<long long>();
  auto resume = with_value(plus(cmd, "--resume"), "--steps", std::to_string(at + 10));
  auto r = run_cli(resume);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(manifest_of(out)["status"], "complete");

  std::string sae = make_sae(dir + "/sae", 1, 24, 32), ev = dir + "/eval";
  ASSERT_EQ(run_cli(sae_eval_cmd(sae, text, ev)).code, 0);
  auto before = snapshot(ev);
  std::string many;
  for (int i = 0; i < 400; ++i)
    many += "The capital of France is Paris, and the cat sat on the mat number " + std::to_string(i) + ".\n";
  write_file_atomic(dir + "/many.txt", many);
  c = spawn(sae_eval_cmd(sae, dir + "/many.txt", ev), dir + "/eval-term");
  bool staged = false;
  for (int i = 0; i < 3000 && !staged; ++i) {
    for (auto& e : fs::directory_iterator(ev)) staged |= contains(e.path().filename().string(), ".run.tmp.");
    if (!staged) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(c.pid, SIGTERM);
  int code = wait_for(c);
  err = err_of(c);
  if (code == 143 && !contains(err, "after the run was written")) {
    EXPECT_TRUE(contains(err, "interrupted; nothing was written to " + ev)) << err;
    EXPECT_TRUE(contains(err, "(SIGTERM)")) << err;
    EXPECT_EQ(differing(snapshot(ev), before), "");
  }
  EXPECT_TRUE(staged) << "the staging folder exists while eval runs";
  EXPECT_EQ(temporaries(ev), std::vector<std::string>{});
}
