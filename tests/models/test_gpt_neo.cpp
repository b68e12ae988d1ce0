// GPT-Neo against Hugging Face transformers (float64 reference in tests/fixtures/gpt_neo: 12 tokens,
// so layer 1's local window of 4 cuts off most keys).
#include <gtest/gtest.h>

#include "core/error.h"
#include "fixture_checks.h"

using namespace mechscope;

namespace {

struct GptNeo : ::testing::Test {
  std::unique_ptr<models::HookedModel> m = models::load_model(mstest::fixture("gpt_neo/model"));
  std::shared_ptr<io::SafetensorsFile> ref = mstest::reference("gpt_neo");
};

// GPT-Neo's scores are not scaled by 1/sqrt(d_head), so float32 rounding of q.k reaches the logits
// amplified: in float32 they agree to 1e-4 absolute (|logits| up to 6), in float64 to 5e-6.
constexpr double kFloat32LogitsAtol = 1e-4;

TEST_F(GptNeo, LogitsHiddenStatesAndPatternsMatchTransformers) {
  mstest::expect_matches_reference(*m, *ref, kFloat32LogitsAtol);
}

TEST_F(GptNeo, Float64MatchesTransformersTightly) { mstest::expect_float64_matches_reference("gpt_neo", *ref); }

TEST_F(GptNeo, GreedyGenerationMatchesTransformers) { mstest::expect_greedy_generation(*m, *ref); }

TEST_F(GptNeo, KvCacheStepsEqualOneFullForward) {
  // Steps past the window: the local layer must drop cached keys older than 4 positions.
  // GPT-Neo neither scales attention scores nor computes them above float32 (as transformers does),
  // so rounding differences between one-row and many-row GEMMs (OpenBLAS sums in another order)
  // reach ~3e-5 on logits of magnitude ~6: the tolerance its logits test uses too.
  mstest::expect_kv_cache_steps_equal_full_forward(*m, ref->get("input_ids")[0].unsqueeze(0), 3, 1e-4);
}

TEST_F(GptNeo, PaddedBatchGivesEachPromptItsOwnResult) {
  mstest::expect_padded_batch_equals_single_runs(*m, {{5, 77, 301, 12, 9, 400, 2, 8}, {33, 18}, {7, 7, 100}}, 0);
}

TEST_F(GptNeo, LocalLayersSeeOnlyTheWindow) {
  at::NoGradGuard ng;
  hooks::HookSet hs;
  hooks::ActivationCache c;
  c.attach(hs, {"blocks.*.attn.hook_pattern"});
  models::RunContext ctx;
  ctx.hooks = &hs;
  m->forward(ref->get("input_ids"), ctx);
  at::Tensor global = c.get("blocks.0.attn.hook_pattern"), local = c.get("blocks.1.attn.hook_pattern");
  at::Tensor q = at::arange(12).unsqueeze(1), k = at::arange(12).unsqueeze(0);
  at::Tensor outside_local = (k > q).logical_or(k <= q - 4);
  EXPECT_EQ(local.masked_select(outside_local.view({1, 1, 12, 12})).abs().max().item<double>(), 0.0);
  EXPECT_EQ(global.masked_select((k > q).view({1, 1, 12, 12})).abs().max().item<double>(), 0.0);
  EXPECT_GT(global.select(2, 11).select(2, 0).min().item<double>(), 0.0);  // global: the first token is visible
}

TEST_F(GptNeo, EveryHookNameFiresWithTheDocumentedShape) {
  auto seen = mstest::fired_hooks(*m, ref->get("input_ids"));
  using V = std::vector<int64_t>;
  EXPECT_EQ(seen["hook_embed"], (V{2, 12, 32}));
  EXPECT_EQ(seen["hook_pos_embed"], (V{2, 12, 32}));
  EXPECT_EQ(seen["blocks.1.attn.hook_k"], (V{2, 12, 4, 8}));
  EXPECT_EQ(seen["blocks.1.attn.hook_attn_scores"], (V{2, 4, 12, 12}));
  EXPECT_EQ(seen["blocks.0.attn.hook_result"], (V{2, 12, 4, 32}));
  EXPECT_EQ(seen["blocks.0.mlp.hook_post"], (V{2, 12, 128}));
  EXPECT_FALSE(seen.count("blocks.0.attn.hook_rot_q"));
}

TEST_F(GptNeo, ScoresAreNotScaled) {
  // hook_attn_scores = q . k exactly (no 1/sqrt(d_head)), for the visible keys.
  at::NoGradGuard ng;
  hooks::HookSet hs;
  hooks::ActivationCache c;
  c.attach(hs, {"blocks.0.attn.hook_q", "blocks.0.attn.hook_k", "blocks.0.attn.hook_attn_scores",
                "blocks.0.attn.hook_result", "blocks.0.hook_attn_out"});
  models::RunContext ctx;
  ctx.hooks = &hs;
  m->forward(ref->get("input_ids"), ctx);
  at::Tensor qk =
      at::matmul(c.get("blocks.0.attn.hook_q").transpose(1, 2), c.get("blocks.0.attn.hook_k").permute({0, 2, 3, 1}));
  at::Tensor causal = at::ones({12, 12}, at::kBool).tril().view({1, 1, 12, 12});
  EXPECT_TRUE(mstest::close(c.get("blocks.0.attn.hook_attn_scores").masked_select(causal), qk.masked_select(causal),
                            1e-5, 1e-5));
  at::Tensor out_b = m->parameters()[8].second;  // transformer.h.0.attn.attention.out_proj.bias
  EXPECT_TRUE(
      mstest::close(c.get("blocks.0.attn.hook_result").sum(2) + out_b, c.get("blocks.0.hook_attn_out"), 1e-5, 1e-5));
}

TEST_F(GptNeo, AttentionTypesMustCoverEveryLayer) {
  std::string dir = mstest::model_variant("gpt_neo", "neo-bad-types", [](nlohmann::json& c) {
    c.erase("attention_layers");
    c["attention_types"] = nlohmann::json::parse(R"([[["global", "local"], 2]])");
  });
  try {
    models::load_model(dir);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("attention_types name 4 layers, num_layers is 2"), std::string::npos)
        << e.what();
  }
  // attention_types alone (no expanded attention_layers) is enough.
  std::string ok =
      mstest::model_variant("gpt_neo", "neo-types-only", [](nlohmann::json& c) { c.erase("attention_layers"); });
  at::NoGradGuard ng;
  models::RunContext ctx;
  EXPECT_TRUE(mstest::close(models::load_model(ok)->forward(ref->get("input_ids"), ctx), ref->get("logits"), 1e-4,
                            kFloat32LogitsAtol));
}

}  // namespace
