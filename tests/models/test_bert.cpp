// BERT against Hugging Face transformers (BertForMaskedLM, float64 reference in tests/fixtures/bert:
// two padded texts with attention mask and token types), and a bare BertModel without the MLM head.
#include <gtest/gtest.h>

#include "core/error.h"
#include "fixture_checks.h"

using namespace mechscope;

namespace {

struct Bert : ::testing::Test {
  std::unique_ptr<models::HookedModel> m = models::load_model(mstest::fixture("bert/model"));
  std::shared_ptr<io::SafetensorsFile> ref = mstest::reference("bert");
  models::RunContext context() {
    models::RunContext ctx;
    ctx.attention_mask = ref->get("attention_mask");
    ctx.token_type_ids = ref->get("token_type_ids");
    return ctx;
  }
};

TEST_F(Bert, LogitsHiddenStatesPatternsAndProjectionsMatchTransformers) {
  at::NoGradGuard ng;
  hooks::HookSet hs;
  hooks::ActivationCache cache;
  cache.attach(hs, {"blocks.*.hook_resid_pre", "blocks.*.hook_normalized_resid_post", "blocks.*.attn.hook_pattern",
                    "blocks.*.attn.hook_q", "blocks.*.attn.hook_k"});
  models::RunContext ctx = context();
  ctx.hooks = &hs;
  EXPECT_TRUE(mstest::close(m->forward(ref->get("input_ids"), ctx), ref->get("logits"))) << "logits";
  // hidden_states: 0 = embeddings after their LayerNorm, i = output of layer i - 1 (no final norm).
  EXPECT_TRUE(mstest::close(cache.get("blocks.0.hook_resid_pre"), ref->get("hidden_states.0")));
  for (int l = 0; l < 2; ++l) {
    std::string L = std::to_string(l);
    EXPECT_TRUE(mstest::close(cache.get("blocks." + L + ".hook_normalized_resid_post"),
                              ref->get("hidden_states." + std::to_string(l + 1)))) << l;
    EXPECT_TRUE(mstest::close(cache.get("blocks." + L + ".attn.hook_pattern"), ref->get("attentions." + L))) << l;
    EXPECT_TRUE(mstest::close(cache.get("blocks." + L + ".attn.hook_q").flatten(2), ref->get("layer" + L + ".query"))) << l;
    EXPECT_TRUE(mstest::close(cache.get("blocks." + L + ".attn.hook_k").flatten(2), ref->get("layer" + L + ".key"))) << l;
  }
  EXPECT_TRUE(at::equal(cache.get("blocks.1.hook_resid_pre"), cache.get("blocks.0.hook_normalized_resid_post")));
}

TEST_F(Bert, Float64MatchesTransformersTightly) { mstest::expect_float64_matches_reference("bert", *ref, context()); }

TEST_F(Bert, ReferenceUsesPaddingAndTokenTypes) {
  // The fixture exercises both: without them the logits differ.
  at::Tensor mask = ref->get("attention_mask"), types = ref->get("token_type_ids");
  EXPECT_LT(mask.sum().item<int64_t>(), mask.numel());
  at::NoGradGuard ng;
  models::RunContext no_types;
  no_types.attention_mask = mask;
  at::Tensor a = m->forward(ref->get("input_ids"), no_types);
  if (types.max().item<int64_t>() > 0) EXPECT_FALSE(mstest::close(a, ref->get("logits")));
  // Token type 1 everywhere: the type embedding's second row is added.
  hooks::HookSet hs;
  hooks::ActivationCache c;
  c.attach(hs, {"embed.hook_token_type_embed"});
  models::RunContext ones;
  ones.attention_mask = mask;
  ones.token_type_ids = at::ones_like(types);
  ones.hooks = &hs;
  EXPECT_FALSE(mstest::close(m->forward(ref->get("input_ids"), ones), a));
  at::Tensor type_rows = m->parameters()[2].second;  // bert.embeddings.token_type_embeddings.weight
  EXPECT_TRUE(at::equal(c.get("embed.hook_token_type_embed")[1][5], type_rows[1]));
  models::RunContext no_mask;
  no_mask.token_type_ids = types;
  EXPECT_FALSE(mstest::close(m->forward(ref->get("input_ids"), no_mask), ref->get("logits")));
}

TEST_F(Bert, PaddedBatchGivesEachTextItsOwnResult) {
  at::NoGradGuard ng;
  models::RunContext ctx = context();
  at::Tensor batched = m->forward(ref->get("input_ids"), ctx);
  at::Tensor mask = ref->get("attention_mask");
  for (int64_t i = 0; i < 2; ++i) {
    int64_t n = mask[i].sum().item<int64_t>();
    models::RunContext one;
    one.token_type_ids = ref->get("token_type_ids")[i].narrow(0, 0, n).unsqueeze(0);
    at::Tensor alone = m->forward(ref->get("input_ids")[i].narrow(0, 0, n).unsqueeze(0), one)[0];
    EXPECT_TRUE(mstest::close(batched[i].narrow(0, 0, n), alone, 1e-5, 1e-5)) << i;
  }
}

TEST_F(Bert, EveryHookNameFiresWithTheDocumentedShape) {
  auto seen = mstest::fired_hooks(*m, ref->get("input_ids"), context());
  using V = std::vector<int64_t>;
  EXPECT_EQ(seen["embed.hook_embed"], (V{2, 18, 32}));
  EXPECT_EQ(seen["embed.hook_pos_embed"], (V{2, 18, 32}));
  EXPECT_EQ(seen["embed.hook_token_type_embed"], (V{2, 18, 32}));
  EXPECT_EQ(seen["embed.ln.hook_scale"], (V{2, 18, 1}));
  EXPECT_EQ(seen["blocks.1.attn.hook_v"], (V{2, 18, 4, 8}));
  EXPECT_EQ(seen["blocks.1.attn.hook_pattern"], (V{2, 4, 18, 18}));
  EXPECT_EQ(seen["blocks.1.attn.hook_result"], (V{2, 18, 4, 32}));
  EXPECT_EQ(seen["blocks.0.mlp.hook_pre"], (V{2, 18, 128}));
  EXPECT_EQ(seen["blocks.0.hook_normalized_resid_post"], (V{2, 18, 32}));
  EXPECT_EQ(seen["mlm_head.ln.hook_normalized"], (V{2, 18, 32}));
  EXPECT_FALSE(seen.count("hook_embed"));
  EXPECT_FALSE(seen.count("ln_final.hook_normalized"));
}

TEST_F(Bert, PostLayerNormHooksRelateAsTheBlockComputesThem) {
  at::NoGradGuard ng;
  hooks::HookSet hs;
  hooks::ActivationCache c;
  c.attach(hs, {"blocks.0.*"});
  models::RunContext ctx = context();
  ctx.hooks = &hs;
  m->forward(ref->get("input_ids"), ctx);
  auto g = [&](const std::string& n) { return c.get("blocks.0." + n); };
  EXPECT_TRUE(mstest::close(g("hook_resid_pre") + g("hook_attn_out"), g("hook_resid_mid"), 1e-6, 1e-6));
  EXPECT_TRUE(mstest::close(g("ln1.hook_normalized") + g("hook_mlp_out"), g("hook_resid_post"), 1e-6, 1e-6));
  EXPECT_TRUE(at::equal(g("ln2.hook_normalized"), g("hook_normalized_resid_post")));
  // Padding keys get no attention.
  at::Tensor pad = ref->get("attention_mask").eq(0).view({2, 1, 1, 18}).expand({2, 4, 18, 18});
  EXPECT_EQ(g("attn.hook_pattern").masked_select(pad).abs().max().item<double>(), 0.0);
}

TEST_F(Bert, GenerateIsRefused) {
  try {
    models::GenerateOptions g;
    models::generate(*m, {2, 5, 3}, g);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a causal language model"), std::string::npos) << e.what();
  }
}

TEST_F(Bert, BareBertModelHasActivationsButNoLogits) {
  // BertModel.save_pretrained: no "bert." prefix, no cls.* head.
  std::string dir = mstest::tmp_dir("bert-bare");
  auto src = io::SafetensorsFile::open(mstest::fixture("bert/model/model.safetensors"));
  std::vector<std::pair<std::string, at::Tensor>> kept;
  for (auto& [name, info] : src->tensors())
    if (name.rfind("bert.", 0) == 0) kept.emplace_back(name.substr(5), src->get(name));
  io::write_safetensors(dir + "/model.safetensors", kept);
  mstest::run_shell("cp " + mstest::fixture("bert/model/config.json") + " " + dir + "/");
  auto bare = models::load_model(dir);
  EXPECT_FALSE(bare->has_lm_head());
  EXPECT_TRUE(m->has_lm_head());
  EXPECT_EQ(bare->parameter_count(), m->parameter_count() - (32 * 32 + 32 + 2 * 32 + 3959));
  at::NoGradGuard ng;
  models::RunContext ctx = context();
  auto seen = mstest::fired_hooks(*bare, ref->get("input_ids"), ctx);
  EXPECT_FALSE(seen.count("mlm_head.ln.hook_normalized"));
  at::Tensor r = bare->embed(ref->get("input_ids"), ctx);
  for (int l = 0; l < 2; ++l) r = bare->block(l, r, ctx);
  EXPECT_TRUE(mstest::close(bare->final_norm(r, ctx), ref->get("hidden_states.2")));
  try {
    bare->unembed(r);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no logits"), std::string::npos) << e.what();
  }
}

TEST_F(Bert, UnembedColumnsEqualFullLogitColumns) {
  at::NoGradGuard ng;
  at::Tensor x = at::randn({3, 32});
  at::Tensor cols = at::tensor(std::vector<int64_t>{10, 3958, 0}, at::kLong);
  EXPECT_TRUE(mstest::close(m->unembed(x, cols), m->unembed(x).index_select(1, cols), 1e-6, 1e-6));
}

}  // namespace
