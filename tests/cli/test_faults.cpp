// Faults a run must survive (issue 17): signals at seeded moments, SIGKILL and --resume, a file size
// limit and a folder in the way, two runs into one folder, targets that are not regular files,
// folders mechscope did not make, and inputs too large to hold. After each: no temporary left,
// every file in --out whole, earlier results unchanged.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <thread>

#include "core/error.h"
#include "core/fs.h"
#include "core/source_dir.h"  // MECHSCOPE_BINARY
#include "io/safetensors.h"
#include "faults_util.h"
#include "test_util.h"

using namespace mechscope;
using mstest::contains;
using mstest::kg_facts;
using mstest::run_cli;
using namespace mstest::faults;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kKg = mstest::source_dir() + "/examples/kg/model";

std::vector<std::string> locate_cmd(const std::string& facts, const std::string& out,
                                    const std::string& samples = "3") {
  return {"locate", "--model", kKg,       "--kg-file", facts, "--num-noise-samples",
          samples,  "--kinds", "all,mlp", "--window",  "2",   "--threads",
          "1",      "--out",   out};
}
std::vector<std::string> trace_cmd(const std::string& out) {
  return {"trace",   "--model", kKg,        "--prompt", "gi to R_20 ->", "--subject", "gi to", "--samples", "3",
          "--kinds", "all,mlp", "--window", "2",        "--threads",     "1",         "--out", out};
}
std::vector<std::string> run_cmd(const std::string& out) {
  return {"run",     "--model",  kKg,         "--prompt", "gi to R_20 ->", "--prompt", "re zo R_18 ->",
          "--cache", "blocks.*", "--threads", "1",        "--out",         out};
}

// `cmd` with the value of `flag` replaced.
std::vector<std::string> with(std::vector<std::string> cmd, const std::string& flag, const std::string& value) {
  for (size_t i = 0; i + 1 < cmd.size(); ++i)
    if (cmd[i] == flag) cmd[i + 1] = value;
  return cmd;
}

}  // namespace

// 1. SIGINT / SIGTERM at seeded moments of a staged, an in-place and a single-file command.
TEST(Faults, SignalsLeaveNoTemporaries) {
  std::string dir = mstest::tmp_dir("faults-signals");
  std::string facts = kg_facts(dir, 6);
  struct Case {
    std::string name;
    std::vector<std::string> cmd;
    std::string out;
  };
  std::vector<Case> cases{{"trace", trace_cmd(dir + "/trace"), dir + "/trace"},
                          {"locate", locate_cmd(facts, dir + "/locate"), dir + "/locate"},
                          {"run", run_cmd(dir + "/run/r.safetensors"), dir + "/run"}};
  std::mt19937 rng(17);
  int interrupted = 0;
  for (auto& c : cases) {
    // An uninterrupted run first: its wall time spreads the signals over the run, and the trace's
    // earlier results must survive every interrupted run after it.
    auto t0 = std::chrono::steady_clock::now();
    auto first = c.cmd;
    ASSERT_EQ(run_cli(first).code, 0) << c.name;
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    auto before = c.name == "trace" ? snapshot(c.out) : std::map<std::string, std::string>{};
    for (int round = 0; round < 3; ++round) {
      int sig = round % 2 ? SIGTERM : SIGINT;
      auto cmd = c.cmd;
      if (c.name == "locate") cmd.push_back("--overwrite");  // traces every fact again
      Child ch = spawn(cmd, dir + "/" + c.name + std::to_string(round));
      std::uniform_real_distribution<double> when(0.2 * ms, 0.9 * ms);
      std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(when(rng)));
      ::kill(ch.pid, sig);
      int code = wait_for(ch);
      std::string err = err_of(ch);
      SCOPED_TRACE(c.name + " round " + std::to_string(round) + ": " + err);
      EXPECT_TRUE(code == 0 || code == 128 + sig) << code;
      if (code == 128 + sig && contains(err, "interrupted")) {
        ++interrupted;
        // One line says it; a signal that lands after the results were moved into place says so instead.
        EXPECT_EQ(err.rfind("interrupted"), err.find("interrupted"));
        EXPECT_TRUE(contains(err, sig == SIGINT ? "SIGINT" : "SIGTERM"));
        if (c.name == "locate") EXPECT_TRUE(contains(err, "interrupted; rerun with --resume"));
        else EXPECT_TRUE(contains(err, "nothing was written to") || contains(err, "after the run was written to"));
      }
      EXPECT_EQ(temporaries(c.out), std::vector<std::string>{});
      expect_whole(c.out);
      bool published = code == 0 || contains(err, "after the run was written to");
      if (c.name == "trace" && !published)
        EXPECT_EQ(differing(snapshot(c.out), before), "") << "earlier results changed";
      if (c.name == "trace" && published) before = snapshot(c.out);
      if (c.name == "locate") {
        std::string status = manifest_of(c.out)["status"];
        // A signal before the handler exists (libtorch still loading) kills the process as the
        // default action does, leaving the status an earlier round wrote.
        EXPECT_TRUE(status == "complete" || status == "interrupted (SIGINT)" || status == "interrupted (SIGTERM)")
            << status;
      }
    }
  }
  EXPECT_GT(interrupted, 0) << "no run was signalled before it finished";
}

// 1. Temporaries of killed processes are removed by the next run into the same place; a live
// process's are not.
TEST(Faults, StaleTemporariesOfKilledRunsAreRemoved) {
  std::string dir = mstest::tmp_dir("faults-stale");
  ASSERT_EQ(run_cli(trace_cmd(dir + "/t")).code, 0);
  long dead = dead_pid();
  std::string stale_file = cat(dir, "/t/trace.png.tmp.", dead), stale_dir = cat(dir, "/t/.run.tmp.", dead);
  std::string live = cat(dir, "/t/trace.json.tmp.", ::getppid());  // the test's parent: alive, started earlier
  write_file_atomic(stale_file, std::string(1000, 'x'));
  fs::create_directories(stale_dir);
  write_file_atomic(stale_dir + "/index.html", "half");
  write_file_atomic(live, "in flight");
  ASSERT_EQ(run_cli(trace_cmd(dir + "/t")).code, 0);
  EXPECT_FALSE(fs::exists(stale_file));
  EXPECT_FALSE(fs::exists(stale_dir));
  EXPECT_TRUE(fs::exists(live));
  fs::remove(live);
  // Beside a single output file.
  std::string r = dir + "/r.safetensors", stale_r = cat(r, ".tmp.", dead), other = cat(dir, "/other.bin.tmp.", dead);
  write_file_atomic(stale_r, "x");
  write_file_atomic(other, "x");
  ASSERT_EQ(run_cli(run_cmd(r)).code, 0);
  EXPECT_FALSE(fs::exists(stale_r));
  EXPECT_TRUE(fs::exists(other)) << "only the temporaries of the target itself are its run's business";
}

// 2. A file size limit mid-run: the staged command leaves the earlier results as they were; the
// batch command marks its manifest failed, keeps what it finished, and --resume completes it.
TEST(Faults, FailedRunsAreMarked) {
  std::string dir = mstest::tmp_dir("faults-failed");
  std::string t = dir + "/t";
  ASSERT_EQ(run_cli(trace_cmd(t)).code, 0);
  auto before = snapshot(t);
  auto cmd = with(trace_cmd(t), "--kinds", "all");  // a different run
  Child c = spawn(cmd, dir + "/trace-fsize", [] { limit_file_size(6000); });
  EXPECT_EQ(wait_for(c), 2) << err_of(c);
  std::string err = err_of(c);
  EXPECT_TRUE(contains(err, "file size limit")) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_FALSE(contains(err, ".run.tmp.")) << "errors name the output, not the staging folder: " << err;
  EXPECT_EQ(differing(snapshot(t), before), "");
  EXPECT_EQ(temporaries(t), std::vector<std::string>{});

  std::string facts = kg_facts(dir, 3), l = dir + "/l";
  c = spawn(locate_cmd(facts, l), dir + "/locate-fsize", [] { limit_file_size(6000); });
  EXPECT_EQ(wait_for(c), 2) << err_of(c);
  json m = manifest_of(l);
  EXPECT_EQ(m["tool"], "mechscope");
  EXPECT_TRUE(contains(m["status"].get<std::string>(), "failed: ")) << m["status"];
  EXPECT_TRUE(contains(m["status"].get<std::string>(), "file size limit")) << m["status"];
  EXPECT_EQ(temporaries(l), std::vector<std::string>{});
  expect_whole(l);
  auto resume = locate_cmd(facts, l);
  resume.push_back("--resume");
  auto r = run_cli(resume);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(manifest_of(l)["status"], "complete");
  expect_whole(l);
}

// 2. A folder standing where a figure goes.
TEST(Faults, FolderWhereAFigureGoes) {
  std::string dir = mstest::tmp_dir("faults-dir-in-way");
  std::string t = dir + "/t";
  ASSERT_EQ(run_cli(trace_cmd(t)).code, 0);
  fs::remove(t + "/trace_mlp.png");
  fs::create_directories(t + "/trace_mlp.png");
  auto before = snapshot(t);
  auto r = run_cli(trace_cmd(t));
  expect_one_line_error(r, "trace_mlp.png' is a folder where this run's trace_mlp.png goes");
  EXPECT_EQ(differing(snapshot(t), before), "") << "nothing is replaced when one file cannot be";
  EXPECT_EQ(temporaries(t), std::vector<std::string>{});

  // In place (locate): the run stops at that figure, marked failed; the facts before it stay.
  std::string facts = kg_facts(dir, 3), l = dir + "/l";
  ASSERT_EQ(run_cli(locate_cmd(facts, l)).code, 0);
  fs::remove(l + "/facts/001_E_000_R_18.safetensors");
  fs::remove(l + "/trace_001_E_000_R_18_mlp.png");
  fs::create_directories(l + "/trace_001_E_000_R_18_mlp.png");
  std::string kept = read_file(l + "/facts/000_E_000_R_20.safetensors");
  auto resume = locate_cmd(facts, l);
  resume.push_back("--resume");
  r = run_cli(resume);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "trace_001_E_000_R_18_mlp.png': a folder stands there")) << r.err;
  EXPECT_TRUE(contains(manifest_of(l)["status"].get<std::string>(), "failed: ")) << manifest_of(l)["status"];
  EXPECT_EQ(read_file(l + "/facts/000_E_000_R_20.safetensors"), kept);
  EXPECT_EQ(temporaries(l), std::vector<std::string>{});
  expect_whole(l);
}

// 3. Two runs into one folder: the second exits at once naming the folder and the holder's pid; a
// holder that died holds nothing.
TEST(Faults, SecondRunIntoOneFolderIsRefused) {
  std::string dir = mstest::tmp_dir("faults-lock");
  std::string facts = kg_facts(dir, 6), out = dir + "/out";
  fs::create_directories(out);
  {
    // Another process holding the lock: this test, by flock as mechscope takes it.
    int fd = ::open((out + "/.mechscope.lock").c_str(), O_RDWR | O_CREAT, 0644);
    ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
    std::string pid = std::to_string(::getpid()) + "\n";
    ASSERT_EQ(::write(fd, pid.data(), pid.size()), (ssize_t)pid.size());
    auto r = run_cli(locate_cmd(facts, out));
    expect_one_line_error(
        r, "--out '" + out + "' is in use by another mechscope run (pid " + std::to_string(::getpid()) + ")");
    EXPECT_FALSE(fs::exists(out + "/facts")) << "refused before writing anything";
    auto t = run_cli(trace_cmd(out));
    expect_one_line_error(t, "is in use by another mechscope run");
    ::close(fd);
  }
  // The lock file of a process that is gone (its pid inside, no flock) does not stop a run.
  write_file_atomic(out + "/.mechscope.lock", std::to_string(dead_pid()) + "\n");
  ASSERT_EQ(run_cli(locate_cmd(facts, out)).code, 0);

  // Two real runs: the first stopped while it holds the folder, the second refused with its pid.
  auto cmd = locate_cmd(facts, out);
  cmd.push_back("--overwrite");
  Child first = spawn(cmd, dir + "/first");
  std::string want = std::to_string(first.pid) + "\n";
  bool held = false;
  for (int i = 0; i < 20000 && !held; ++i) {
    std::ifstream f(out + "/.mechscope.lock");
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    held = text == want;
    if (held) ::kill(first.pid, SIGSTOP);
    else std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  ASSERT_TRUE(held) << "the first run never took the lock";
  auto second = run_cli(cmd);
  ::kill(first.pid, SIGCONT);
  expect_one_line_error(second, "(pid " + std::to_string(first.pid) + ")");
  EXPECT_EQ(wait_for(first), 0) << err_of(first);
  EXPECT_EQ(manifest_of(out)["status"], "complete");
}

// 4. A FIFO, a socket or a device node as --out is refused and left as it was.
TEST(Faults, TargetsThatAreNotRegularFiles) {
  std::string dir = mstest::tmp_dir("faults-special");
  std::string fifo = dir + "/out.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  expect_one_line_error(run_cli(run_cmd(fifo)), "is a FIFO, not a regular file");
  expect_one_line_error(run_cli(trace_cmd(fifo)), "is a FIFO, not a folder");
  struct stat st;
  ASSERT_EQ(::stat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(temporaries(dir), std::vector<std::string>{});
  // A FIFO inside the output folder, where a file goes.
  fs::create_directories(dir + "/t");
  ASSERT_EQ(run_cli(trace_cmd(dir + "/t")).code, 0);
  fs::remove(dir + "/t/trace.json");
  ASSERT_EQ(::mkfifo((dir + "/t/trace.json").c_str(), 0644), 0);
  expect_one_line_error(run_cli(trace_cmd(dir + "/t")), "is a FIFO");
  ASSERT_EQ(::stat((dir + "/t/trace.json").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  // Character devices: refused for anyone; only root could have replaced them, so only root sees
  // that they are still devices afterwards.
  for (const char* dev : {"/dev/null", "/dev/full"}) {
    if (!fs::exists(dev)) continue;
    expect_one_line_error(run_cli(run_cmd(dev)), "is a character device");
    expect_one_line_error(run_cli(trace_cmd(dev)), "is a character device");
    ASSERT_EQ(::stat(dev, &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode)) << dev;
  }
}

// 5. Folders and files mechscope did not make are not written without --overwrite; its own are.
TEST(Faults, ForeignOutputsNeedOverwrite) {
  std::string dir = mstest::tmp_dir("faults-foreign");
  std::string t = dir + "/mine";
  fs::create_directories(t);
  std::ofstream(t + "/notes.txt") << "my notes";
  auto r = run_cli(trace_cmd(t));
  expect_one_line_error(r, "holds files mechscope did not write (e.g. 'notes.txt')");
  EXPECT_TRUE(contains(r.err, "--overwrite"));
  EXPECT_EQ(differing(snapshot(t), {{"notes.txt", "my notes"}}), "");
  EXPECT_FALSE(fs::exists(t + "/.mechscope.lock"));
  auto over = trace_cmd(t);
  over.push_back("--overwrite");
  ASSERT_EQ(run_cli(over).code, 0);
  EXPECT_EQ(read_file(t + "/notes.txt"), "my notes") << "--overwrite writes into the folder, it does not empty it";
  EXPECT_EQ(manifest_of(t)["tool"], "mechscope");
  // Its own folder is rewritten without --overwrite, and files of the earlier run it did not rewrite go.
  ASSERT_TRUE(fs::exists(t + "/trace_mlp.png"));
  auto all = with(trace_cmd(t), "--kinds", "all");
  ASSERT_EQ(run_cli(all).code, 0);
  EXPECT_FALSE(fs::exists(t + "/trace_mlp.png"));
  EXPECT_TRUE(fs::exists(t + "/trace.png"));
  EXPECT_EQ(read_file(t + "/notes.txt"), "my notes");

  // train --out into a model folder that is not mechscope's.
  std::string model = dir + "/model";
  fs::create_directories(model);
  for (const char* f : {"config.json", "model.safetensors"})
    fs::copy_file(mstest::fixture(std::string("gpt2/model/") + f), model + "/" + f);
  std::string weights = read_file(model + "/model.safetensors");
  r = run_cli({"train", "--kg", mstest::source_dir() + "/examples/kg/graph.jsonl", "--out", model, "--steps", "1",
               "--layers", "1", "--d-model", "8", "--heads", "2"});
  expect_one_line_error(r, "--out '" + model + "' holds files mechscope did not write");
  EXPECT_EQ(read_file(model + "/model.safetensors"), weights);

  // run --out onto a file: another program's is kept, mechscope's own is replaced.
  std::string file = dir + "/data.safetensors";
  std::ofstream(file) << "not mine";
  expect_one_line_error(run_cli(run_cmd(file)), "exists and was not written by mechscope: pass --overwrite");
  EXPECT_EQ(read_file(file), "not mine");
  auto run_over = run_cmd(file);
  run_over.push_back("--overwrite");
  ASSERT_EQ(run_cli(run_over).code, 0);
  EXPECT_NO_THROW(io::SafetensorsFile::open(file));
  ASSERT_EQ(run_cli(run_cmd(file)).code, 0) << "its own output is replaced without --overwrite";
  // A folder given where a file goes, and a file where a folder goes.
  expect_one_line_error(run_cli(run_cmd(t)), "is a folder; give a file name");
  expect_one_line_error(run_cli(trace_cmd(file)), "is a file; trace writes a folder");
}

// 1 + resume: SIGKILL at seeded moments; after every kill each file is whole; the resumed result
// equals an uninterrupted run's bit for bit.
TEST(Faults, KilledLocateResumesBitForBit) {
  std::string dir = mstest::tmp_dir("faults-kill");
  std::string facts = kg_facts(dir, 8);
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(run_cli(locate_cmd(facts, dir + "/ref")).code, 0);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::string out = dir + "/out";
  auto cmd = locate_cmd(facts, out);
  cmd.push_back("--resume");
  std::mt19937 rng(2026);
  std::uniform_real_distribution<double> when(0.15 * ms, 0.6 * ms);
  int killed = 0;
  for (int round = 0; round < 5; ++round) {
    Child c = spawn(cmd, dir + "/kill" + std::to_string(round));
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(when(rng)));
    ::kill(c.pid, SIGKILL);
    killed += wait_for(c) == 128 + SIGKILL;
    if (fs::exists(out)) expect_whole(out);
  }
  EXPECT_GT(killed, 0);
  auto r = run_cli(cmd);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(temporaries(out), std::vector<std::string>{}) << "the last run removes what the killed ones left";
  EXPECT_EQ(manifest_of(out)["status"], "complete");

  json a = json::parse(read_file(dir + "/ref/locating_summary.json")),
       b = json::parse(read_file(out + "/locating_summary.json"));
  for (json* j : {&a, &b}) {
    j->erase("seconds_tracing_this_run");
    (*j)["kg_file"] = nullptr;
  }
  EXPECT_EQ(a, b);
  auto ra = io::SafetensorsFile::open(dir + "/ref/trace.safetensors"),
       rb = io::SafetensorsFile::open(out + "/trace.safetensors");
  ASSERT_EQ(ra->tensors().size(), rb->tensors().size());
  for (auto& [name, info] : ra->tensors()) {
    ASSERT_TRUE(rb->has(name)) << name;
    at::Tensor x = ra->get(name), y = rb->get(name);
    ASSERT_EQ(x.sizes(), y.sizes()) << name;
    EXPECT_EQ(std::memcmp(x.data_ptr(), y.data_ptr(), x.numel() * x.element_size()), 0) << name << " differs";
  }
}

// 8. Lines too long to hold are refused naming the file and line, before they are parsed.
TEST(Faults, HugeLinesAreRefusedByLine) {
  std::string dir = mstest::tmp_dir("faults-lines");
  std::string big = "{\"prompt\": \"" + std::string(17 << 20, 'a') + "\", \"subject\": \"a\"}\n";
  std::string first = "{\"answer\":\"E_001\",\"id\":\"x\",\"prompt\":\"gi to R_20 ->\",\"subject\":\"gi to\"}\n";
  std::string facts = dir + "/facts.jsonl";
  std::ofstream(facts) << first << big;
  expect_one_line_error(run_cli(locate_cmd(facts, dir + "/l")), "facts.jsonl:2: the line is longer than 16 MiB");
  EXPECT_FALSE(fs::exists(dir + "/l"));
  std::string pairs = dir + "/pairs.jsonl";
  std::ofstream(pairs) << big;
  expect_one_line_error(
      run_cli({"patch", "--model", kKg, "--pairs", pairs, "--answer-id", "1", "--wrong-id", "2", "--out", dir + "/p"}),
      "pairs.jsonl:1: the line is longer than 16 MiB");
  EXPECT_FALSE(fs::exists(dir + "/p"));
  std::string texts = dir + "/texts.txt";
  std::ofstream(texts) << "gi to R_20 ->\n" << big;
  expect_one_line_error(run_cli({"attnviz", "--model", kKg, "--texts", texts, "--out", dir + "/a"}),
                        "texts.txt:2: the line is longer than 16 MiB");
  EXPECT_FALSE(fs::exists(dir + "/a"));
}

// 8. Sizes a config.json or a safetensors header implies are checked against the file before
// anything of that size is allocated.
TEST(Faults, ImpliedSizesBeyondTheFileAreRefused) {
  std::string dir = mstest::tmp_dir("faults-sizes");
  std::string model = dir + "/model";
  fs::create_directories(model);
  for (auto& e : fs::directory_iterator(kKg))
    if (e.path().filename() != "config.json") fs::create_symlink(e.path(), model + "/" + e.path().filename().string());
  json cfg = json::parse(read_file(kKg + "/config.json"));
  cfg["vocab_size"] = 1000000000000LL;  // 4 TB of embeddings
  write_file_atomic(model + "/config.json", cfg.dump());
  expect_one_line_error(run_cli({"info", "--model", model}), "expected [1000000000000, 128] from config.json");
  cfg = json::parse(read_file(kKg + "/config.json"));
  cfg["n_positions"] = cfg["n_ctx"] = 100000000000LL;
  write_file_atomic(model + "/config.json", cfg.dump());
  expect_one_line_error(run_cli({"generate", "--model", model, "--prompt", "gi to", "--max-new-tokens", "5"}),
                        "expected [100000000000, 128] from config.json");
  // A header whose tensor is 4 GB in a 16-byte data section.
  std::string st = dir + "/st";
  fs::create_directories(st);
  fs::copy_file(kKg + "/config.json", st + "/config.json");
  std::string header = "{\"x\":{\"dtype\":\"F32\",\"shape\":[1000000000],\"data_offsets\":[0,4000000000]}}";
  std::string bytes(8, '\0');
  uint64_t n = header.size();
  std::memcpy(&bytes[0], &n, 8);
  write_file_atomic(st + "/model.safetensors", bytes + header + std::string(16, '\0'));
  expect_one_line_error(run_cli({"info", "--model", st}), "lie outside the data section");
  // More new tokens than the context holds.
  expect_one_line_error(run_cli({"generate", "--model", kKg, "--prompt", "gi to", "--max-new-tokens", "1000000"}),
                        "more than the model's context of 32");
}

namespace {

// 2 + 1: a --resume over a complete locate result, signalled before it writes anything (it loads the
// model and the stored facts first), leaves that result's manifest as it was, byte for byte; signalled
// later it says "interrupted (SIGINT)", never "running" under a dead pid. Either way every file is whole
// and a plain --resume completes it again.
TEST(Faults, InterruptedResumeOverACompleteResultIsNotLeftRunning) {
  std::string dir = mstest::tmp_dir("faults-resume-int");
  std::string facts = kg_facts(dir, 8), out = dir + "/out";
  auto cmd = locate_cmd(facts, out);
  ASSERT_EQ(run_cli(cmd).code, 0);
  std::string manifest = read_file(out + "/manifest.json");
  auto tree = snapshot(out);
  tree.erase("manifest.json");
  cmd.push_back("--resume");
  int restored = 0;
  for (int round = 0; round < 6 && restored == 0; ++round) {
    Child c = spawn(cmd, dir + "/int" + std::to_string(round));
    // Signalled as soon as the claim marks the folder running.
    bool running = false;
    for (int i = 0; i < 20000 && !running; ++i) {
      try {
        running = manifest_of(out).value("status", "") == "running";
      } catch (const std::exception&) {}
      if (!running) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    ::kill(c.pid, SIGINT);
    int code = wait_for(c);
    std::string err = err_of(c), now = read_file(out + "/manifest.json");
    SCOPED_TRACE("round " + std::to_string(round) + ": " + err);
    EXPECT_TRUE(running);
    EXPECT_EQ(temporaries(out), std::vector<std::string>{});
    expect_whole(out);
    if (code == 0) {  // finished before the signal arrived
      EXPECT_EQ(manifest_of(out)["status"], "complete");
      continue;
    }
    EXPECT_EQ(code, 130);
    auto files = snapshot(out);
    files.erase("manifest.json");
    if (contains(err, "holds its earlier complete result, unchanged")) {
      ++restored;
      EXPECT_EQ(now, manifest) << "the complete result's manifest, byte for byte";
      EXPECT_EQ(differing(files, tree), "");
    } else {
      EXPECT_EQ(manifest_of(out)["status"], "interrupted (SIGINT)") << now;
      EXPECT_TRUE(contains(err, "interrupted; rerun with --resume")) << err;
    }
    auto r = run_cli(cmd);  // completes it again for the next round
    ASSERT_EQ(r.code, 0) << r.err;
    manifest = read_file(out + "/manifest.json");
    tree = snapshot(out);
    tree.erase("manifest.json");
  }
  EXPECT_GT(restored, 0) << "no signal landed between the claim and the first write";
}

}  // namespace
