// Head specifications: every accepted spelling, and one clear error for each malformed one.
#include <gtest/gtest.h>

#include "analysis/heads/head_spec.h"
#include "core/error.h"

using namespace mechscope;
namespace H = mechscope::analysis::heads;

namespace {

std::string error_of(const std::string& spec, int64_t layers = 12, int64_t heads = 12) {
  try {
    H::parse_head_spec(spec, layers, heads, "--head-spec");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(HeadSpec, ListsWholeLayersSortedAndDeduplicated) {
  auto h = H::parse_head_spec(" 3:5, 0:0 ,3:5", 12, 12, "--head-spec");
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0], (H::HeadRef{0, 0}));
  EXPECT_EQ(h[1], (H::HeadRef{3, 5}));
  auto all = H::parse_head_spec("1:*,1:2", 2, 4, "--head-spec");
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[3], (H::HeadRef{1, 3}));
  EXPECT_EQ(H::format_head_spec(all), "1:0,1:1,1:2,1:3");
  auto by = H::heads_by_layer(H::parse_head_spec("2:3,0:1,2:0", 4, 4, "--x"));
  ASSERT_EQ(by.size(), 2u);
  EXPECT_EQ(by[2], (std::vector<int64_t>{0, 3}));
}

TEST(HeadSpec, ErrorsNameTheFlagAndTheItem) {
  std::string e = error_of("12:0");
  EXPECT_NE(e.find("--head-spec"), std::string::npos) << e;
  EXPECT_NE(e.find("layer 12 is out of range"), std::string::npos) << e;
  EXPECT_NE(e.find("12 layers"), std::string::npos) << e;
  e = error_of("0:12");
  EXPECT_NE(e.find("head 12 is out of range"), std::string::npos) << e;
  e = error_of("a:b");
  EXPECT_NE(e.find("'a:b'"), std::string::npos) << e;
  EXPECT_NE(e.find("layer 'a'"), std::string::npos) << e;
  for (const char* bad : {"", "  ", "3", "1:", ":1", "1:2,", "1:-1", "-1:0", "1:2:3", "1:2 3", "0:+1", "99999999999:0"})
    EXPECT_FALSE(error_of(bad).empty()) << "accepted '" << bad << "'";
}

}  // namespace
