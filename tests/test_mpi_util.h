// What the MPI and shard tests share (tests/cli/test_mpi*_cli.cpp, issue 18): running the binary under
// mpirun as root, skipping where MPI is missing, and comparing output folders byte for byte.
// A test file that includes this sets MECHSCOPE_TEST_MPI in a build with MPI (CMakeLists.txt).
#pragma once
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/fs.h"
#include "core/source_dir.h"  // MECHSCOPE_BINARY
#include "test_util.h"

namespace mstest::mpi {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

[[maybe_unused]] std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// OpenMPI refuses to start as root without these; --oversubscribe lets 3 ranks share 2 cores and
// --bind-to none keeps them off one core each (the machine runs other work).
[[maybe_unused]] const char* const kRootEnv = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ";
[[maybe_unused]] std::string mpirun(int np) {
  return "mpirun -np " + std::to_string(np) + " --oversubscribe --bind-to none " + quote(MECHSCOPE_BINARY);
}

[[maybe_unused]] mstest::RunResult run_mpi(int np, const std::vector<std::string>& args) {
  std::string cmd = kRootEnv + mpirun(np);
  for (auto& a : args) cmd += " " + quote(a);
  return mstest::run_shell(cmd);
}

// Why the MPI tests cannot run here ("" when they can).
[[maybe_unused]] std::string no_mpi_reason() {
#ifndef MECHSCOPE_TEST_MPI
  return "this build has no MPI (configure found no MPI library, or -DMECHSCOPE_MPI=OFF)";
#else
  if (mstest::run_shell("command -v mpirun").code != 0) return "mpirun is not installed (apt-get install openmpi-bin)";
  return "";
#endif
}
#define SKIP_WITHOUT_MPI()                          \
  do {                                              \
    std::string why = mstest::mpi::no_mpi_reason(); \
    if (!why.empty()) GTEST_SKIP() << why;          \
  } while (0)

// Every file of a run folder by relative path, each as `bytes(name, its bytes)` gives it; the manifest
// (command line, timings), index.html (wall time) and the lock are left out.
[[maybe_unused]] std::map<std::string, std::string> files_of(
    const std::string& dir, const std::function<std::string(const fs::path& path, std::string bytes)>& bytes) {
  std::map<std::string, std::string> out;
  for (auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::string name = e.path().filename().string();
    if (name == "manifest.json" || name == "index.html" || name == ".mechscope.lock") continue;
    out[fs::relative(e.path(), dir).string()] = bytes(e.path(), mechscope::read_file(e.path().string()));
  }
  return out;
}

// Every file of a run that holds numbers or figures, byte for byte; locating_summary.json without its
// one timing.
[[maybe_unused]] std::map<std::string, std::string> results(const std::string& dir) {
  return files_of(dir, [](const fs::path& path, std::string bytes) {
    if (path.filename() != "locating_summary.json") return bytes;
    json j = json::parse(bytes);
    j.erase("seconds_tracing_this_run");
    return j.dump(1);
  });
}

// "" when equal; otherwise the paths that differ or are missing on one side.
[[maybe_unused]] std::string differ(const std::map<std::string, std::string>& a,
                                    const std::map<std::string, std::string>& b) {
  std::string d;
  for (auto& [k, v] : a)
    if (!b.count(k)) d += "missing:" + k + " ";
    else if (b.at(k) != v) d += "differs:" + k + " ";
  for (auto& [k, v] : b)
    if (!a.count(k)) d += "extra:" + k + " ";
  return d;
}

// `cmd(out)` run by one process into DIR/one and by 2 and 3 ranks: `tensors` byte for byte, and the
// JSON `numbers` (timings removed) equal.
[[maybe_unused]] void expect_ranks_equal_one_process(
    const std::string& dir, const std::function<std::vector<std::string>(const std::string&)>& cmd,
    const std::string& tensors, const std::function<json(const std::string&)>& numbers) {
  auto one = run_cli(cmd(dir + "/one"));
  ASSERT_EQ(one.code, 0) << one.err;
  for (int np : {2, 3}) {
    std::string out = dir + "/np" + std::to_string(np);
    auto r = run_mpi(np, cmd(out));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(mechscope::read_file(dir + "/one/" + tensors), mechscope::read_file(out + "/" + tensors)) << np;
    EXPECT_EQ(numbers(dir + "/one"), numbers(out)) << np;
  }
}

// The keys that hold timings (and the thread count) in the commands' JSON files.
[[maybe_unused]] void drop_timings(json& j) {
  if (j.is_object()) {
    for (const char* k : {"timings", "seconds", "threads", "total_s"}) j.erase(k);
    for (auto& [k, v] : j.items()) drop_timings(v);
  } else if (j.is_array()) {
    for (auto& v : j) drop_timings(v);
  }
}

// Every file of an output folder, JSON without its timings (drop_timings).
[[maybe_unused]] std::map<std::string, std::string> folder(const std::string& dir) {
  return files_of(dir, [](const fs::path& path, std::string bytes) {
    if (path.extension() != ".json") return bytes;
    json j = json::parse(bytes);
    drop_timings(j);
    return j.dump(1);
  });
}

using Cmd = std::function<std::vector<std::string>(const std::string&)>;

// `cmd(out)` by one process into DIR/one (at least min_files result files), then by 2 and 3 ranks:
// the same folder, and a manifest that says complete.
[[maybe_unused]] void expect_folders_equal_one_process(const std::string& dir, const Cmd& cmd, size_t min_files) {
  auto one = run_cli(cmd(dir + "/one"));
  ASSERT_EQ(one.code, 0) << one.err;
  auto ref = folder(dir + "/one");
  ASSERT_GE(ref.size(), min_files);
  for (int np : {2, 3}) {
    std::string out = dir + "/np" + std::to_string(np);
    auto r = run_mpi(np, cmd(out));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(differ(ref, folder(out)), "") << "-np " << np;
    EXPECT_EQ(json::parse(mechscope::read_file(out + "/manifest.json"))["status"], "complete") << np;
  }
}

// Seven patch pairs of 8 token ids (the answer position 4 differs) in DIR/pairs.jsonl; returns its path.
[[maybe_unused]] std::string write_pairs(const std::string& dir) {
  std::string pairs = dir + "/pairs.jsonl";
  std::ofstream f(pairs);
  for (int i = 0; i < 7; ++i) {
    std::vector<int> c;
    for (int k = 0; k < 8; ++k) c.push_back(1 + (i * 37 + k * 11) % 190);
    std::vector<int> d = c;
    d[4] = 1 + (d[4] + 50 + i) % 190;
    f << json{{"clean_ids", c}, {"corrupt_ids", d}, {"answer_id", c[4]}, {"wrong_id", d[4]}}.dump() << "\n";
  }
  return pairs;
}

// A heads profile of two emotions (3 and 2 pairs, prompts of several lengths) in dir: joy.jsonl,
// rage.jsonl and keywords.json.
[[maybe_unused]] void write_emotion_profile(const std::string& dir) {
  std::ofstream(dir + "/joy.jsonl")
      << "{\"emotion\": \"Today I really appreciate the gift, and\", \"neutral\": \"Today I just noticed the gift, "
         "and\"}\n"
         "{\"emotion\": \"Honestly, I am so thankful for your help. I\", \"neutral\": \"Honestly, I saw your help. "
         "I\"}\n"
         "{\"emotion\": \"We are glad you came, so\", \"neutral\": \"We are told you came, so\"}\n";
  std::ofstream(dir + "/rage.jsonl")
      << "{\"emotion\": \"I am furious about the noise, so\", \"neutral\": \"I am thinking about the noise, so\"}\n"
         "{\"emotion\": \"We hate the new schedule. It\", \"neutral\": \"We saw the new schedule. It\"}\n";
  std::ofstream(dir + "/keywords.json") << "{\"joy\": [\"thank\", \"glad\"], \"rage\": [\"angry\", \"hate\"]}";
}

}  // namespace
}  // namespace mstest::mpi
