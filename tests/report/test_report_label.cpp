#include <gtest/gtest.h>

#include <cmath>

#include "report/label.h"
#include "report/ticks.h"

using namespace mechscope::report;

TEST(Label, ByteLevelDecode) {
  EXPECT_EQ(byte_level_decode("\xC4\xA0the"), " the");                 // Ġthe
  EXPECT_EQ(byte_level_decode("\xC4\x8A"), "\n");                      // Ċ
  EXPECT_EQ(byte_level_decode("caf\xC3\x83\xC2\xA9"), "caf\xC3\xA9");  // cafÃ© → café
  // Ġä¸Ń → " 中"
  EXPECT_EQ(byte_level_decode("\xC4\xA0\xC3\xA4\xC2\xB8\xC5\x83"), " \xE4\xB8\xAD");
}

TEST(Label, Gpt2TokenLabel) {
  EXPECT_EQ(gpt2_token_label("\xC4\xA0Paris"), "·Paris");
  LabelStyle plain;
  plain.dot_spaces = false;
  EXPECT_EQ(gpt2_token_label("\xC4\xA0Paris", plain), " Paris");
  EXPECT_EQ(gpt2_token_label("\xC4\x8A"), "⏎");
  // Half of an emoji's UTF-8 (byte-level BPE splits them): shown as bytes, never as garbage.
  EXPECT_EQ(gpt2_token_label("\xC3\xB0\xC5\x81"), "\\xF0\\x9F");
}

TEST(Label, TokenLabelControlAndEmpty) {
  EXPECT_EQ(token_label(""), "∅");
  EXPECT_EQ(token_label("\t"), "⇥");
  EXPECT_EQ(token_label(std::string("\x01", 1)), "␁");
  EXPECT_EQ(token_label("한국어"), "한국어");
  EXPECT_EQ(token_label("🙂"), "🙂");
}

TEST(Label, Truncate) {
  EXPECT_EQ(truncate_label("abcdef", 4), "abc…");
  EXPECT_EQ(truncate_label("東京都庁", 3), "東京…");
  EXPECT_EQ(truncate_label("ab", 4), "ab");
  LabelStyle st;
  st.max_chars = 5;
  EXPECT_EQ(token_label("supercalifragilistic", st), "supe…");
}

TEST(Label, ValidUtf8) {
  EXPECT_EQ(valid_utf8("a\xFF"
                       "b"),
            "a\\xFFb");
  EXPECT_EQ(valid_utf8("ok"), "ok");
}

TEST(Ticks, NiceTicksOneTwoFive) {
  auto t = nice_ticks(0, 47, 5);
  ASSERT_GE(t.size(), 3u);
  EXPECT_EQ(t.front(), 0);
  double step = t[1] - t[0];
  EXPECT_TRUE(step == 10 || step == 20 || step == 5) << step;
  auto u = nice_ticks(-0.13, 0.98, 5);
  for (double v : u) EXPECT_TRUE(v >= -0.13 && v <= 0.98);
  EXPECT_NEAR(u[1] - u[0], 0.2, 1e-12);
}

TEST(Ticks, IntegerAxesGetWholeNumbersOnly) {
  // A 2-layer model's layer axis: 0 and 1, not 0, 0.2, ..., 1.
  EXPECT_EQ(nice_ticks(0, 1, 5, true), (std::vector<double>{0, 1}));
  EXPECT_EQ(nice_ticks(0, 1, 5).size(), 6u);
  EXPECT_EQ(nice_ticks(0, 3, 9, true), (std::vector<double>{0, 1, 2, 3}));
  auto t = nice_ticks(0, 47, 5, true);
  EXPECT_EQ(t, nice_ticks(0, 47, 5));  // wide ranges: the same 1-2-5 ticks
  for (double v : nice_ticks(-2, 13, 7, true)) EXPECT_EQ(v, std::round(v)) << v;
}

TEST(Ticks, LabelsShareDecimalsAndUseRealMinus) {
  auto l = tick_labels({-0.2, 0, 0.2, 0.4}, false);
  EXPECT_EQ(l[0], "−0.2");
  EXPECT_EQ(l[1], "0.0");
  EXPECT_EQ(l[3], "0.4");
  auto d = tick_labels({0, 10, 20}, false);
  EXPECT_EQ(d[2], "20");
}

TEST(Ticks, LogDecades) {
  auto t = log_ticks(0.005, 20, 6);
  ASSERT_EQ(t.size(), 4u);
  EXPECT_DOUBLE_EQ(t[0], 0.01);
  auto l = tick_labels(t, true);
  EXPECT_EQ(l[0], "0.01");
  EXPECT_EQ(l[3], "10");
  EXPECT_EQ(tick_labels(log_ticks(0.0005, 2, 6), true)[0], "10⁻³");  // one style per axis
  auto tiny = tick_labels({1e-6, 1e-4}, true);
  EXPECT_EQ(tiny[0], "10⁻⁶");
}
