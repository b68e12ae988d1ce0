// SAE training: the loss falls, L0 falls as the L1 coefficient grows, the saved folder reloads to the
// same reconstruction, and a resumed run equals an uninterrupted one.
#include <gtest/gtest.h>

#include "analysis/sae/train.h"
#include "core/error.h"
#include "core/fs.h"
#include "models/model.h"
#include "sae/sae.h"
#include "tensor_util.h"
#include "test_util.h"

using namespace mechscope;
namespace S = mechscope::analysis::sae;

namespace {

// Sparse synthetic activations: each token a few of 24 ground-truth directions in 16 dims.
at::Tensor synthetic(int64_t n) {
  at::manual_seed(11);
  at::Tensor dirs = at::randn({24, 16});
  dirs = dirs / dirs.norm(2, {1}, true);
  at::Tensor coef = at::rand({n, 24}) * (at::rand({n, 24}) < 0.1).to(at::kFloat) * 3;
  return at::matmul(coef, dirs) + 0.5;
}

S::SaeTrainOptions opts(double l1, int64_t steps) {
  S::SaeTrainOptions o;
  o.d_sae = 48;
  o.l1 = l1;
  o.lr = 3e-3;
  o.steps = steps;
  o.batch = 128;
  o.log_every = 25;
  o.seed = 3;
  return o;
}

TEST(TrainSae, LossFallsAndL0FallsWithTheL1Coefficient) {
  at::Tensor acts = synthetic(2000);
  sae::SAEConfig base;
  base.hook_name = "blocks.0.hook_resid_pre";
  S::SaeTrainResult lo = S::train_sae(acts, base, opts(1e-3, 300));
  ASSERT_GE(lo.log.size(), 2u);
  EXPECT_LT(lo.log.back().mse, 0.5 * lo.log.front().mse);
  EXPECT_GT(lo.log.back().explained_variance, 0.9);
  S::SaeTrainResult hi = S::train_sae(acts, base, opts(0.3, 300));
  EXPECT_LT(hi.log.back().l0, lo.log.back().l0);
  // Decoder rows stay at unit norm; sparsity is log10 of the firing fraction.
  EXPECT_TRUE(mstest::close(hi.sae.W_dec.norm(2, {1}), at::ones({48}), 1e-5, 1e-5));
  at::Tensor frac = (sae::encode(hi.sae, acts) > 0).to(at::kDouble).mean({0});
  EXPECT_TRUE(mstest::close(hi.sae.log_sparsity, (frac + 1e-10).log10(), 1e-5, 1e-5));
  EXPECT_EQ(hi.sae.cfg.hook_name, "blocks.0.hook_resid_pre");
}

TEST(TrainSae, SavedFolderReloadsAndResumeEqualsUninterrupted) {
  at::Tensor acts = synthetic(800);
  sae::SAEConfig base;
  base.hook_name = "blocks.1.hook_resid_pre";
  base.model_name = "synthetic";
  S::SaeTrainResult full = S::train_sae(acts, base, opts(0.01, 120));
  std::string dir = mstest::tmp_dir("train-save");
  sae::save_sae(full.sae, dir + "/sae");
  sae::SAE back = sae::load_sae(dir + "/sae");
  EXPECT_TRUE(mstest::close(sae::reconstruct(back, acts), sae::reconstruct(full.sae, acts), 0, 0));
  EXPECT_TRUE(mstest::close(back.log_sparsity, full.sae.log_sparsity, 0, 0));
  EXPECT_EQ(back.cfg.model_name, "synthetic");

  S::SaeTrainOptions o = opts(0.01, 50);
  o.checkpoint_dir = dir + "/ckpt";
  o.checkpoint_every = 20;
  S::train_sae(acts, base, o);  // stops at 50: checkpoint at the end
  o.steps = 120;
  o.resume = true;
  S::SaeTrainResult resumed = S::train_sae(acts, base, o);
  EXPECT_EQ(resumed.resumed_from, 50);
  EXPECT_TRUE(mstest::close(resumed.sae.W_dec, full.sae.W_dec, 1e-6, 1e-7));
  EXPECT_TRUE(mstest::close(resumed.sae.b_enc, full.sae.b_enc, 1e-6, 1e-7));
  EXPECT_EQ(resumed.log.back().step, 120);
  o.d_sae = 10;
  EXPECT_THROW(S::train_sae(acts, base, o), Error);  // checkpoint of another shape
}

TEST(TrainSae, HarvestGivesEveryPositionAtTheHook) {
  auto m = models::load_model(mstest::fixture("gpt2/model"));
  std::vector<std::vector<int64_t>> seqs{{464, 3139, 286}, {4881, 318}};
  auto acts = S::harvest_activations(*m, seqs, {"blocks.1.hook_resid_pre", "blocks.0.attn.hook_z"});
  ASSERT_EQ(acts.size(), 2u);
  EXPECT_EQ(acts[0].sizes(), (std::vector<int64_t>{5, 32}));
  EXPECT_EQ(acts[1].sizes(), (std::vector<int64_t>{5, 32}));  // 4 heads x 8 flattened
  hooks::HookSet hs;
  hooks::ActivationCache cache;
  cache.attach(hs, {"blocks.1.hook_resid_pre"});
  models::RunContext ctx;
  ctx.hooks = &hs;
  m->forward(at::tensor(seqs[1], at::kLong).unsqueeze(0), ctx);
  EXPECT_TRUE(mstest::close(acts[0].slice(0, 3, 5), cache.get("blocks.1.hook_resid_pre")[0], 0, 0));
  EXPECT_THROW(S::harvest_activations(*m, seqs, {"blocks.9.hook_resid_pre"}), Error);
}

}  // namespace
