// SAE training: the loss falls, L0 falls as the L1 coefficient grows, the saved folder reloads to the
// same reconstruction, and a resumed run equals an uninterrupted one.
#include <gtest/gtest.h>

#include <random>

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
  EXPECT_TRUE(mstest::close(acts[0].slice(0, 3, 5), cache.get("blocks.1.hook_resid_pre")[0], 1e-5, 1e-6));
  EXPECT_THROW(S::harvest_activations(*m, seqs, {"blocks.9.hook_resid_pre"}), Error);
}

// Batched harvesting (longest first, right-padded, padding masked) gives, in corpus order, the rows each
// sequence's own unpadded forward gives: a learned-position decoder, a rotary one, a sliding-window
// one (Gemma-2) and a bidirectional encoder, where padding would leak into real rows if it were not masked.
TEST(TrainSae, BatchedHarvestEqualsOneForwardPerSequence) {
  for (std::string name : {"gpt2", "llama", "gemma2", "bert"}) {
    SCOPED_TRACE(name);
    auto m = models::load_model(mstest::fixture(name + "/model"));
    std::string hook = "blocks." + std::to_string(m->config().n_layers - 1) + ".hook_resid_post";
    std::string z = "blocks.0.attn.hook_z";
    std::mt19937 gen(5);
    std::vector<std::vector<int64_t>> seqs;
    for (int len : {3, 9, 1, 9, 5, 0, 2, 7, 4, 6, 8}) {
      std::vector<int64_t> s;
      for (int i = 0; i < len; ++i)
        s.push_back(std::uniform_int_distribution<int64_t>(5, m->config().d_vocab - 1)(gen));
      seqs.push_back(s);
    }
    S::HarvestOptions small;
    small.max_seqs = 3;
    small.max_tokens = 20;  // batches of 2 or 3 sequences of unequal lengths
    auto batched = S::harvest_activations(*m, seqs, {hook, z}, small);
    std::vector<at::Tensor> want_h, want_z;
    for (auto& s : seqs) {
      if (s.empty()) continue;
      hooks::HookSet hs;
      hooks::ActivationCache cache;
      cache.attach(hs, {hook, z});
      models::RunContext ctx;
      ctx.hooks = &hs;
      m->forward(at::tensor(s, at::kLong).unsqueeze(0), ctx);
      want_h.push_back(cache.get(hook)[0]);
      want_z.push_back(cache.get(z)[0].flatten(1));
    }
    ASSERT_EQ(batched.size(), 2u);
    EXPECT_EQ(batched[0].size(0), 54);
    // float32 rounding of a batched GEMM, relative to the activations' scale (Gemma-2's residual
    // stream is scaled by sqrt(d_model)); a leak of padding would be of the activations' own size.
    at::Tensor h = at::cat(want_h, 0), zz = at::cat(want_z, 0);
    double sh = h.abs().max().item<double>(), sz = zz.abs().max().item<double>();
    EXPECT_TRUE(mstest::close(batched[0], h, 1e-4, 1e-5 * sh));
    EXPECT_TRUE(mstest::close(batched[1], zz, 1e-4, 1e-5 * sz));
    auto whole = S::harvest_activations(*m, seqs, {hook});  // the default: one batch
    EXPECT_TRUE(mstest::close(whole[0], h, 1e-4, 1e-5 * sh));
  }
}

}  // namespace
