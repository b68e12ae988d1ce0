#include "hooks/hooks.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "tensor_util.h"

using namespace mechscope;
using namespace mechscope::hooks;

namespace {

TEST(GlobMatch, ExactStarAndQuestionMark) {
  EXPECT_TRUE(glob_match("blocks.3.attn.hook_z", "blocks.3.attn.hook_z"));
  EXPECT_FALSE(glob_match("blocks.3.attn.hook_z", "blocks.13.attn.hook_z"));
  EXPECT_TRUE(glob_match("blocks.*.attn.hook_z", "blocks.13.attn.hook_z"));
  EXPECT_FALSE(glob_match("blocks.*.attn.hook_z", "blocks.13.attn.hook_zz"));
  EXPECT_TRUE(glob_match("*hook_resid_*", "blocks.0.hook_resid_pre"));
  EXPECT_TRUE(glob_match("blocks.?.hook_mlp_out", "blocks.7.hook_mlp_out"));
  EXPECT_FALSE(glob_match("blocks.?.hook_mlp_out", "blocks.10.hook_mlp_out"));
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_FALSE(glob_match("a*b*c", "aXbY"));
}

TEST(HookSet, FiresInOrderAndScopedGuardRemovesOnlyItsHooks) {
  HookSet hs;
  std::vector<int> order;
  hs.add("x", [&](at::Tensor&, const HookContext&) { order.push_back(1); });
  {
    ScopedHooks scope(hs);
    scope.add("x", [&](at::Tensor&, const HookContext&) { order.push_back(2); });
    scope.add("*", [&](at::Tensor&, const HookContext&) { order.push_back(3); });
    at::Tensor t = at::zeros({1});
    hs.fire("x", t);
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  }
  order.clear();
  at::Tensor t = at::zeros({1});
  hs.fire("x", t);
  EXPECT_EQ(order, (std::vector<int>{1}));
  EXPECT_TRUE(hs.wants("x"));
  EXPECT_FALSE(hs.wants("y"));
}

TEST(HookSet, ShapeChangeIsAnError) {
  HookSet hs;
  hs.add("x", [](at::Tensor& t, const HookContext&) { t = at::zeros({3}); });
  at::Tensor t = at::zeros({2});
  EXPECT_THROW(hs.fire("x", t), Error);
}

// [batch 1, pos 3, head 2, d 2] filled with 1..12.
at::Tensor z_like() { return at::arange(1, 13, at::kFloat).view({1, 3, 2, 2}); }

TEST(Interventions, ZeroSelectedPositionsAndHeads) {
  at::Tensor t = z_like();
  HookContext ctx{"blocks.0.attn.hook_z", 0, 0};
  zero({{1}, {0}})(t, ctx);
  at::Tensor expect = z_like();
  expect[0][1][0].zero_();
  EXPECT_TRUE(mstest::close(t, expect, 0, 0));
  // Heads only: every position.
  t = z_like();
  zero({{}, {1}})(t, ctx);
  expect = z_like();
  expect.select(2, 1).zero_();
  EXPECT_TRUE(mstest::close(t, expect, 0, 0));
}

TEST(Interventions, ReplaceTakesTheSameIndicesFromTheSource) {
  at::Tensor src = -z_like();
  HookContext ctx{"blocks.0.attn.hook_z", 0, 0};
  at::Tensor t = z_like();
  replace_with(src, {{0, 2}, {1}})(t, ctx);
  at::Tensor expect = z_like();
  for (int p : {0, 2}) expect[0][p][1] = src[0][p][1];
  EXPECT_TRUE(mstest::close(t, expect, 0, 0));
  // With a KV cache, a one-position call at absolute position 2 takes the source's position 2.
  at::Tensor step = at::zeros({1, 1, 2, 2});
  HookContext later{"blocks.0.attn.hook_z", 0, 2};
  replace_with(src, {})(step, later);
  EXPECT_TRUE(mstest::close(step, src.narrow(1, 2, 1), 0, 0));
}

TEST(Interventions, FillSetsSelectedHeadsAtEveryPositionOfEveryCall) {
  at::Tensor mean = at::tensor({7.0f, 8.0f}).view({1, 2});  // [heads 1, d_head 2]
  HookContext ctx{"blocks.0.attn.hook_z", 0, 0};
  at::Tensor t = z_like();
  fill(mean, {{}, {1}})(t, ctx);
  at::Tensor expect = z_like();
  expect.select(2, 1).copy_(mean.expand({1, 3, 2}));
  EXPECT_TRUE(mstest::close(t, expect, 0, 0));
  // A generation step (one position at absolute position 5) is filled the same way.
  at::Tensor step = at::zeros({1, 1, 2, 2});
  HookContext later{"blocks.0.attn.hook_z", 0, 5};
  fill(mean, {{}, {0}})(step, later);
  EXPECT_EQ(step[0][0][0][1].item<float>(), 8.0f);
  EXPECT_EQ(step[0][0][1][1].item<float>(), 0.0f);
  at::Tensor wrong = z_like();
  EXPECT_THROW(fill(at::zeros({3}), {{}, {1}})(wrong, ctx), Error);
}

TEST(Interventions, AddAndScaleOnResidualPositions) {
  at::Tensor r = at::ones({2, 4, 3});
  HookContext ctx{"blocks.1.hook_resid_pre", 1, 0};
  add(at::full({3}, 2.0), {{3}, {}})(r, ctx);
  EXPECT_EQ(r[0][3][0].item<float>(), 3.0f);
  EXPECT_EQ(r[1][2][0].item<float>(), 1.0f);
  scale(0.5)(r, ctx);
  EXPECT_EQ(r[1][3][2].item<float>(), 1.5f);
  EXPECT_THROW(zero({{}, {0}})(r, ctx), Error);  // no head axis on the residual stream
}

TEST(Interventions, PatternHeadsAndQueryPositions) {
  at::Tensor p = at::ones({1, 2, 3, 3});
  HookContext ctx{"blocks.0.attn.hook_pattern", 0, 0};
  zero({{2}, {1}})(p, ctx);
  EXPECT_EQ(p.sum().item<float>(), 18 - 3);
  EXPECT_EQ(p[0][1][2].sum().item<float>(), 0);
}

TEST(ActivationCache, KeepsCopiesNotAliases) {
  HookSet hs;
  ActivationCache c;
  c.attach(hs, {"a"});
  at::Tensor t = at::ones({2});
  hs.fire("a", t);
  t.fill_(5);
  EXPECT_EQ(c.get("a")[0].item<float>(), 1.0f);
  EXPECT_THROW(c.get("b"), Error);
}

}  // namespace
