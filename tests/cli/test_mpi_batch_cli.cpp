// Issue 18 for the batch commands beyond locate: ablate and heads ablate/patch over MPI ranks, and
// --shard i/N + merge for patch --pairs and heads patch, give the folder one process writes (every
// safetensors file and figure byte for byte, every JSON number); merge refuses shards that are
// missing, duplicated, unfinished or made with other options. The rank tests skip (with the reason)
// in a build without MPI; the shard tests need none.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/fs.h"
#include "test_mpi_util.h"
#include "test_util.h"

using mstest::contains;
using mstest::run_cli;
using namespace mstest::mpi;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// Shards 0/3, 1/3, 2/3 into DIR/s0..s2, merged in the order 2, 0, 1: the folder of one process.
void expect_shards_merge_equal(const std::string& dir, const Cmd& cmd, size_t min_files) {
  auto one = run_cli(cmd(dir + "/one"));
  ASSERT_EQ(one.code, 0) << one.err;
  for (int i = 0; i < 3; ++i) {
    auto c = cmd(dir + "/s" + std::to_string(i));
    c.insert(c.end(), {"--shard", std::to_string(i) + "/3"});
    auto r = run_cli(c);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(contains(r.err, "shard " + std::to_string(i) + "/3: ")) << r.err;
    EXPECT_FALSE(fs::exists(dir + "/s" + std::to_string(i) + "/patch.safetensors"));
  }
  auto m = run_cli({"merge", dir + "/merged", dir + "/s2", dir + "/s0", dir + "/s1"});
  ASSERT_EQ(m.code, 0) << m.err;
  auto ref = folder(dir + "/one");
  ASSERT_GE(ref.size(), min_files);
  EXPECT_EQ(differ(ref, folder(dir + "/merged")), "");
}

// merge into DIR/bad from the named shard folders: exit 2, one line naming `msg`, nothing written.
void expect_refused(const std::string& dir, const std::vector<std::string>& shards, const std::string& msg) {
  std::vector<std::string> cmd{"merge", dir + "/bad"};
  for (auto& s : shards) cmd.push_back(dir + "/" + s);
  auto r = run_cli(cmd);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, msg)) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(fs::exists(dir + "/bad"));
}

// heads ablate|patch of two heads, 4 new tokens, batches of 2 prompts (so an emotion is several items).
Cmd heads_cmd(const std::string& sub, const std::string& profile) {
  return [=](const std::string& out) {
    return std::vector<std::string>{"heads",        sub,     "--model",      mstest::fixture("gpt2/model"),
                                    "--profile",    profile, "--head-spec",  "0:0,1:2",
                                    "--max-tokens", "4",     "--batch-size", "2",
                                    "--resamples",  "200",   "--threads",    "1",
                                    "--out",        out};
  };
}

Cmd patch_cmd(const std::string& pairs, const std::string& targets = "resid_pre,z_all_pos") {
  return [=](const std::string& out) {
    return std::vector<std::string>{
        "patch", "--model", mstest::fixture("gpt2/model"), "--pairs", pairs, "--targets", targets, "--threads", "1",
        "--out", out};
  };
}

}  // namespace

// ablate --kind resample over 2 and 3 ranks: each reference prompt is an item (a run over every
// target); rank 0 adds them in reference order and divides, so ablate.safetensors, the figures and
// ablate.json's numbers are those of one process.
TEST(MpiBatch, AblateResampleRanksEqualOneProcess) {
  SKIP_WITHOUT_MPI();
  std::string dir = mstest::tmp_dir("mpib-ablate");
  {
    std::ofstream f(dir + "/refs.jsonl");
    for (int i = 0; i < 5; ++i) {
      std::vector<int> ids;
      for (int k = 0; k < 8; ++k) ids.push_back(3 + (i * 53 + k * 29) % 400);
      f << json{{"ids", ids}}.dump() << "\n";
    }
  }
  auto cmd = [&](const std::string& out) {
    return std::vector<std::string>{"ablate",
                                    "--model",
                                    mstest::fixture("gpt2/model"),
                                    "--ids",
                                    "5,17,99,230,4,61,88,12",
                                    "--answer-id",
                                    "7",
                                    "--wrong-id",
                                    "9",
                                    "--kind",
                                    "resample",
                                    "--reference",
                                    dir + "/refs.jsonl",
                                    "--targets",
                                    "z_all_pos,resid_pre",
                                    "--threads",
                                    "1",
                                    "--out",
                                    out};
  };
  // ablate.safetensors, ablate.json, two heatmaps, resid_pre's surface and animation figures.
  expect_folders_equal_one_process(dir, cmd, 6);
}

// heads ablate over 2 and 3 ranks: the items are generation batches (emotion, side, 2 prompts), the
// same batches one process generates; rank 0 scores and compares, so every file is the same.
TEST(MpiBatch, HeadsAblateRanksEqualOneProcess) {
  SKIP_WITHOUT_MPI();
  std::string dir = mstest::tmp_dir("mpib-heads-ablate");
  write_emotion_profile(dir);
  // One JSON per emotion and head_ablation.safetensors.
  expect_folders_equal_one_process(dir, heads_cmd("ablate", dir), 3);
}

// heads all over 2 and 3 ranks: the screen's pairs, then each emotion's ablation and patching batches
// are items (rank 0 sends the chosen heads); the folder, figures included, is that of one process.
TEST(MpiBatch, HeadsAllRanksEqualOneProcess) {
  SKIP_WITHOUT_MPI();
  std::string dir = mstest::tmp_dir("mpib-heads-all");
  write_emotion_profile(dir);
  auto cmd = [&](const std::string& out) {
    return std::vector<std::string>{"heads",        "all", "--model",      mstest::fixture("gpt2/model"),
                                    "--profile",    dir,   "--top-n",      "2",
                                    "--max-tokens", "4",   "--batch-size", "2",
                                    "--resamples",  "200", "--threads",    "1",
                                    "--out",        out};
  };
  // run.json, the screen's two files, two emotions' ablation and patching pairs, four figures.
  expect_folders_equal_one_process(dir, cmd, 15);
}

// patch --pairs as shards 0/3, 1/3, 2/3 merged in any order equal one process; merge refuses a
// missing shard, a duplicate, a shard of other options and an unfinished one, one error each.
TEST(MpiBatch, PatchShardsMergeEqualOneProcess) {
  std::string dir = mstest::tmp_dir("mpib-patch-shards");
  std::string pairs = write_pairs(dir);
  // patch.safetensors, patch.json, two heatmaps, resid_pre's surface and animation.
  expect_shards_merge_equal(dir, patch_cmd(pairs), 6);

  expect_refused(dir, {"s0", "s2"}, "shard 1/3 is missing");
  expect_refused(dir, {"s0", "s1", "s1", "s2"}, "are both shard 1/3");
  auto other = patch_cmd(pairs, "resid_pre")(dir + "/t1");
  other.insert(other.end(), {"--shard", "1/3"});
  ASSERT_EQ(run_cli(other).code, 0);
  expect_refused(dir, {"s0", "t1", "s2"},
                 "different --targets ([\"resid_pre\"] there, [\"resid_pre,z_all_pos\"] here)");

  // A shard whose record says it did not finish (killed before its last item) is refused.
  fs::copy(dir + "/s1", dir + "/u1", fs::copy_options::recursive);
  json rec = json::parse(mechscope::read_file(dir + "/u1/shard.json"));
  rec["complete"] = false;
  std::ofstream(dir + "/u1/shard.json") << rec.dump(1);
  expect_refused(dir, {"s0", "u1", "s2"}, "u1 (shard 1/3) did not finish");
  // An item in a shard it does not belong to is a duplicate.
  fs::copy(dir + "/s1", dir + "/d1", fs::copy_options::recursive);
  fs::copy_file(dir + "/s0/items/0.bin", dir + "/d1/items/0.bin");
  expect_refused(dir, {"s0", "d1", "s2"}, "item 0 is in both");
  // Inputs that changed after the shards ran (the pairs file) are refused, not merged.
  {
    std::ofstream f(pairs, std::ios::app);
    f << mechscope::read_file(pairs).substr(0, mechscope::read_file(pairs).find('\n') + 1);
  }
  expect_refused(dir, {"s0", "s1", "s2"}, "other inputs");
}

// heads patch as shards merged equals one process (the items: generation batches).
TEST(MpiBatch, HeadsPatchShardsMergeEqualOneProcess) {
  std::string dir = mstest::tmp_dir("mpib-heads-patch-shards");
  write_emotion_profile(dir);
  expect_shards_merge_equal(dir, heads_cmd("patch", dir), 3);
}

// --shard under mpirun is refused: the ranks already divide the items.
TEST(MpiBatch, ShardUnderMpirunRefused) {
  SKIP_WITHOUT_MPI();
  std::string dir = mstest::tmp_dir("mpib-shard-mpirun");
  auto cmd = patch_cmd(write_pairs(dir))(dir + "/o");
  cmd.insert(cmd.end(), {"--shard", "0/2"});
  auto r = run_mpi(2, cmd);
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.err, "--shard is for runs without mpirun")) << r.err;
}

// A shard killed part-way (its record not complete, an item missing) rerun with --resume computes only
// the missing items, keeps the others as they are, and merges into the folder of one process; --resume
// with other options is refused.
TEST(MpiBatch, ShardResumeComputesOnlyMissingItems) {
  std::string dir = mstest::tmp_dir("mpib-shard-resume");
  std::string pairs = write_pairs(dir);
  auto cmd = patch_cmd(pairs);
  ASSERT_EQ(run_cli(cmd(dir + "/one")).code, 0);
  for (int i = 0; i < 2; ++i) {
    auto c = cmd(dir + "/s" + std::to_string(i));
    c.insert(c.end(), {"--shard", std::to_string(i) + "/2"});
    ASSERT_EQ(run_cli(c).code, 0);
  }
  // Shard 0/2 holds items 0, 2, 4, 6: as if killed after three of them.
  fs::remove(dir + "/s0/items/4.bin");
  json rec = json::parse(mechscope::read_file(dir + "/s0/shard.json"));
  rec["complete"] = false;
  std::ofstream(dir + "/s0/shard.json") << rec.dump(1);
  auto kept = fs::last_write_time(dir + "/s0/items/2.bin");
  expect_refused(dir, {"s0", "s1"}, "did not finish");

  auto again = cmd(dir + "/s0");
  again.insert(again.end(), {"--shard", "0/2", "--resume"});
  auto r = run_cli(again);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "resuming: 3 of 4 items of shard 0/2 already done")) << r.err;
  EXPECT_EQ(fs::last_write_time(dir + "/s0/items/2.bin"), kept);
  auto m = run_cli({"merge", dir + "/merged", dir + "/s1", dir + "/s0"});
  ASSERT_EQ(m.code, 0) << m.err;
  EXPECT_EQ(differ(folder(dir + "/one"), folder(dir + "/merged")), "");

  auto other = patch_cmd(pairs, "resid_pre")(dir + "/s0");
  other.insert(other.end(), {"--shard", "0/2", "--resume"});
  auto o = run_cli(other);
  EXPECT_EQ(o.code, 2);
  EXPECT_TRUE(contains(o.err, "--resume: the shard in")) << o.err;
  EXPECT_TRUE(contains(o.err, "other options")) << o.err;
  auto plain = cmd(dir + "/p");
  plain.push_back("--resume");
  auto p = run_cli(plain);
  EXPECT_EQ(p.code, 2);
  EXPECT_TRUE(contains(p.err, "--resume goes with --shard")) << p.err;
}
