// Head screening against brute force on the GPT-2 fixture (2 layers × 4 heads, real vocabulary) with
// pairs from the shipped baseline profile: keyword attention from per-head loops over the pattern,
// output norm from z × W_O by hand, and the causal screen from one naive hooked forward per head.
#include <gtest/gtest.h>

#include "analysis/heads/screen.h"
#include "core/error.h"
#include "tensor_util.h"
#include "test_util.h"
#include "tokenizers/tokenizer.h"

using namespace mechscope;
namespace H = mechscope::analysis::heads;

namespace {

const models::HookedModel& model() {
  static auto m = models::load_model(mstest::fixture("gpt2/model"));
  return *m;
}

std::vector<H::AlignedPair> pairs(bool unequal = false) {
  auto tok = tokenizers::load_tokenizer(mstest::fixture("gpt2/model"));
  auto prof = H::load_profile(mstest::source_dir() + "/examples/emotion/profiles/baseline");
  std::vector<H::AlignedPair> out;
  for (int i = 0; i < 3; ++i) {
    auto& p = prof.of("gratitude")[i];
    out.push_back(H::align_pair(tok->encode(p.emotion), tok->encode(p.neutral)));
  }
  // A pair of different lengths, aligned on the last tokens.
  if (unequal)
    out.push_back(H::align_pair(tok->encode("Today I really really appreciate the gift, and"),
                                tok->encode("Today I saw the gift, and")));
  return out;
}

at::Tensor capture(const std::vector<int64_t>& ids, const std::string& name) {
  at::NoGradGuard g;
  hooks::HookSet hs;
  at::Tensor out;
  hs.add(name, [&out](at::Tensor& t, const hooks::HookContext&) { out = t.detach().to(at::kDouble).clone(); });
  models::RunContext ctx;
  ctx.hooks = &hs;
  model().forward(at::tensor(ids, at::kLong).unsqueeze(0), ctx);
  return out;
}

TEST(HeadScreen, KeywordAttentionEqualsPerHeadLoops) {
  auto ps = pairs(true);
  at::Tensor got = H::keyword_attention_scores(model(), ps);
  const auto& cfg = model().config();
  for (int64_t l = 0; l < cfg.n_layers; ++l)
    for (int64_t h = 0; h < cfg.n_heads; ++h) {
      double total = 0;
      for (auto& p : ps) {
        auto mass = [&](const std::vector<int64_t>& ids, int64_t b, int64_t e) {
          at::Tensor pat = capture(ids, "blocks." + std::to_string(l) + ".attn.hook_pattern");
          double s = 0;
          int64_t n = (int64_t)ids.size();
          for (int64_t q = e; q < n; ++q)
            for (int64_t k = b; k < e; ++k) s += pat[0][h][q][k].item<double>();
          return s / (double)(n - e);
        };
        total += mass(p.emotion_ids, p.emotion_phrase_begin, p.emotion_phrase_end) -
                 mass(p.neutral_ids, p.neutral_phrase_begin, p.neutral_phrase_end);
      }
      EXPECT_NEAR(got[l][h].item<double>(), total / (double)ps.size(), 1e-6) << l << ":" << h;
    }
  // The score depends on the head (the seed's gave every head one value).
  EXPECT_GT((got - got.mean()).abs().max().item<double>(), 1e-4);
}

TEST(HeadScreen, OutputNormEqualsZTimesWo) {
  auto ps = pairs(true);
  at::Tensor got = H::output_norm_scores(model(), ps);
  const auto& cfg = model().config();
  std::map<std::string, at::Tensor> params;
  for (auto& [k, t] : model().parameters()) params[k] = t.to(at::kDouble);
  for (int64_t l = 0; l < cfg.n_layers; ++l) {
    at::Tensor wo = params.at("transformer.h." + std::to_string(l) + ".attn.c_proj.weight");  // [H*dh, d]
    for (int64_t h = 0; h < cfg.n_heads; ++h) {
      double total = 0;
      for (auto& p : ps) {
        auto norm = [&](const std::vector<int64_t>& ids, int64_t e) {
          at::Tensor z = capture(ids, "blocks." + std::to_string(l) + ".attn.hook_z")[0];  // [n, H, dh]
          double s = 0;
          for (int64_t q = e; q < (int64_t)ids.size(); ++q)
            s += at::matmul(z[q][h], wo.narrow(0, h * cfg.d_head, cfg.d_head)).norm().item<double>();
          return s / (double)((int64_t)ids.size() - e);
        };
        total += norm(p.emotion_ids, p.emotion_phrase_end) - norm(p.neutral_ids, p.neutral_phrase_end);
      }
      EXPECT_NEAR(got[l][h].item<double>(), total / (double)ps.size(), 1e-4) << l << ":" << h;
    }
  }
}

TEST(HeadScreen, CausalEqualsOneNaiveForwardPerHead) {
  auto ps = pairs(true);
  std::vector<int64_t> kw{5875, 14066, 5875, 1049};  // " thank", " grateful" (duplicate counted once), " great"
  at::Tensor got = H::causal_scores(model(), ps, kw);
  const auto& cfg = model().config();
  at::Tensor cols = at::tensor(std::vector<int64_t>{1049, 5875, 14066}, at::kLong);
  for (int64_t l = 0; l < cfg.n_layers; ++l)
    for (int64_t h = 0; h < cfg.n_heads; ++h) {
      double total = 0;
      for (auto& p : ps) {
        at::NoGradGuard g;
        std::string name = "blocks." + std::to_string(l) + ".attn.hook_z";
        at::Tensor src = H::aligned_source(capture(p.emotion_ids, name), capture(p.neutral_ids, name)).to(at::kFloat);
        at::Tensor ids = at::tensor(p.neutral_ids, at::kLong).unsqueeze(0);
        models::RunContext plain;
        at::Tensor base = at::log_softmax(model().forward(ids, plain)[0][-1].to(at::kDouble), 0);
        hooks::HookSet hs;
        hs.add(name, hooks::replace_with(src, {{}, {h}}));
        models::RunContext ctx;
        ctx.hooks = &hs;
        at::Tensor lp = at::log_softmax(model().forward(ids, ctx)[0][-1].to(at::kDouble), 0);
        total += at::logsumexp(lp.index_select(0, cols), 0).item<double>() -
                 at::logsumexp(base.index_select(0, cols), 0).item<double>();
      }
      EXPECT_NEAR(got[l][h].item<double>(), total / (double)ps.size(), 1e-4) << l << ":" << h;
    }
  EXPECT_GT(got.abs().max().item<double>(), 1e-4);  // patching changes something here
  EXPECT_THROW(H::causal_scores(model(), ps, {}), Error);
  EXPECT_THROW(H::causal_scores(model(), ps, {50257}), Error);
}

TEST(HeadScreen, ScoreNamesAndPairsWithoutAFollowingToken) {
  EXPECT_EQ(H::parse_screen_score("causal", "--score"), H::ScreenScore::Causal);
  EXPECT_EQ(H::screen_score_name(H::parse_screen_score("output-norm", "--score")), "output-norm");
  EXPECT_THROW(H::parse_screen_score("attention", "--score"), Error);
  auto bad = H::align_pair({1, 2, 3}, {1, 2, 4});  // the phrase is the last token: nothing reads it
  EXPECT_THROW(H::keyword_attention_scores(model(), {bad}), Error);
}

}  // namespace
