// manifest.json's runtime block: what a run ran on, recorded once by the CLI (set_manifest_runtime)
// or per manifest, and left out when nothing was recorded.
#include <gtest/gtest.h>

#include "report/manifest.h"
#include "test_util.h"

using namespace mechscope;

namespace {

TEST(Manifest, RuntimeBlockIsTheRecordedOneOrAbsent) {
  std::string dir = mstest::tmp_dir("manifest_runtime");
  report::set_manifest_runtime(nullptr);
  report::Manifest m;
  m.start();
  EXPECT_FALSE(m.to_json(dir).contains("runtime"));
  nlohmann::json rt{{"device", "cpu"}, {"libtorch", "1.13.0"}, {"cuda", nullptr}, {"gpu", nullptr}};
  report::set_manifest_runtime(rt);
  EXPECT_EQ(m.to_json(dir)["runtime"], rt);
  m.runtime = {{"device", "cuda:1"}};
  EXPECT_EQ(m.to_json(dir)["runtime"]["device"], "cuda:1");  // a manifest's own wins
  report::set_manifest_runtime(nullptr);
}

}  // namespace
