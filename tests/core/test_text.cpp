#include <gtest/gtest.h>

#include <algorithm>

#include "core/text.h"

using namespace mechscope;
using V = std::vector<std::string>;

TEST(Text, SplitKeepsEveryFieldEmptyOnesIncluded) {
  EXPECT_EQ(split("a,,b", ','), (V{"a", "", "b"}));
  EXPECT_EQ(split("", ','), (V{""}));
  EXPECT_EQ(split(",", ','), (V{"", ""}));
  EXPECT_EQ(split("0:1, 2:3", ','), (V{"0:1", " 2:3"}));
  // Rejoining the fields gives the text back, for every text over a small alphabet.
  const std::string alphabet = "a, ";
  for (int n = 0; n <= 5; ++n) {
    int total = 1;
    for (int i = 0; i < n; ++i) total *= 3;
    for (int code = 0; code < total; ++code) {
      std::string s;
      for (int i = 0, c = code; i < n; ++i, c /= 3) s += alphabet[c % 3];
      V parts = split(s, ',');
      std::string joined;
      for (size_t i = 0; i < parts.size(); ++i) joined += (i ? "," : "") + parts[i];
      EXPECT_EQ(joined, s);
      EXPECT_EQ(parts.size(), (size_t)std::count(s.begin(), s.end(), ',') + 1) << s;
    }
  }
}

TEST(Text, TrimAndListItems) {
  EXPECT_EQ(trim(" \t x y \r\n"), "x y");
  EXPECT_EQ(trim(" \v\f "), "");
  EXPECT_EQ(list_items("png, svg,,pdf "), (V{"png", "svg", "pdf"}));
  EXPECT_EQ(list_items("all mlp,attn", ", "), (V{"all", "mlp", "attn"}));
  EXPECT_EQ(list_items(" , ,"), V{});
  EXPECT_EQ(list_items("[1, 2]", ", []"), (V{"1", "2"}));
  EXPECT_EQ(list_items("a,a"), (V{"a", "a"})) << "duplicates are the caller's to judge";
}
