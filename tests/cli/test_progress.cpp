// Long work shows progress on stderr when stderr is a terminal (and only then): trace, patch and
// ablate count cells. `script` gives the command a pseudo-terminal.
#include <gtest/gtest.h>

#include <string>

#include "test_util.h"
#include "core/source_dir.h"  // MECHSCOPE_SOURCE_DIR, MECHSCOPE_BINARY

using mstest::contains;

namespace {

const std::string kModel = mstest::fixture("gpt2/model");

std::string on_terminal(const std::string& args) {
  auto r = mstest::run_shell("script -qec \"" + std::string(MECHSCOPE_BINARY) + " " + args + "\" /dev/null");
  EXPECT_EQ(r.code, 0) << r.out;
  return r.out;
}

}  // namespace

TEST(Progress, CellsCountedOnATerminalOnly) {
  std::string dir = mstest::tmp_dir("progress");
  std::string trace =
      "trace --model " + kModel + " --ids 1,2,3,4,5,6 --subject-range 1,3 --samples 3 --out " + dir + "/t";
  // 3 kinds x 6 tokens x 2 layers; the rate and time left follow.
  EXPECT_TRUE(contains(on_terminal(trace), "trace cells 36/36 ")) << on_terminal(trace);
  EXPECT_TRUE(contains(on_terminal(trace + " --naive"), "trace cells 36/36 "));
  std::string patch = "patch --model " + kModel +
                      " --clean-ids 1,2,3,4,5 --corrupt-ids 1,2,9,4,5 --answer-id 3 --wrong-id 7 "
                      "--targets resid_pre,z --out " +
                      dir + "/p";
  std::string out = on_terminal(patch);  // resid_pre 2 x 5 + z 2 x 5 x 4 heads
  EXPECT_TRUE(contains(out, "patch cells 50/50 ")) << out;
  EXPECT_TRUE(contains(out, "s left")) << out;
  out = on_terminal("ablate --model " + kModel +
                    " --ids 1,2,3,4,5 --answer-id 3 --wrong-id 7 --targets z_all_pos --out " + dir + "/a");
  EXPECT_TRUE(contains(out, "ablate cells 8/8 ")) << out;
  // Not a terminal: no progress line.
  auto r = mstest::run_cli({"trace", "--model", kModel, "--ids", "1,2,3,4,5,6", "--subject-range", "1,3", "--samples",
                            "3", "--out", dir + "/t2"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(contains(r.err, "trace cells")) << r.err;
}
