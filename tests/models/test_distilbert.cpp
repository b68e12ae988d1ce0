// DistilBERT against Hugging Face transformers (DistilBertForSequenceClassification, float64 reference in
// tests/fixtures/distilbert_sst: four padded texts; class logits, hidden states, attention), its labels,
// and a bare DistilBertModel.
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "fixture_checks.h"
#include "tokenizers/encoding.h"

using namespace mechscope;

namespace {

struct DistilBert : ::testing::Test {
  std::unique_ptr<models::HookedModel> m = models::load_model(mstest::fixture("distilbert_sst/model"));
  std::shared_ptr<io::SafetensorsFile> ref = mstest::reference("distilbert_sst");
  models::RunContext context() {
    models::RunContext ctx;
    ctx.attention_mask = ref->get("attention_mask");
    return ctx;
  }
  // embed -> blocks -> classify, with hooks.
  at::Tensor class_logits(const models::HookedModel& model, models::RunContext ctx) {
    at::NoGradGuard ng;
    at::Tensor r = model.embed(ref->get("input_ids"), ctx);
    for (int l = 0; l < model.config().n_layers; ++l) r = model.block(l, r, ctx);
    return model.classify(model.final_norm(r, ctx), ctx);
  }
};

TEST_F(DistilBert, ConfigAndLabels) {
  const auto& c = m->config();
  EXPECT_EQ(c.model_type, "distilbert");
  EXPECT_EQ(c.n_layers, 2);
  EXPECT_EQ(c.d_model, 32);
  EXPECT_EQ(c.n_heads, 4);
  EXPECT_EQ(c.d_mlp, 128);
  EXPECT_FALSE(c.causal);
  EXPECT_EQ(c.n_token_types, 0);
  EXPECT_TRUE(m->has_classifier());
  EXPECT_FALSE(m->has_lm_head());
  EXPECT_EQ(c.labels, (std::vector<std::string>{"NEGATIVE", "POSITIVE"}));
}

TEST_F(DistilBert, ClassLogitsProbabilitiesHiddenStatesAndAttentionMatchTransformers) {
  hooks::HookSet hs;
  hooks::ActivationCache cache;
  cache.attach(hs, {"blocks.*.hook_resid_pre", "blocks.*.hook_normalized_resid_post", "blocks.*.attn.hook_pattern"});
  models::RunContext ctx = context();
  ctx.hooks = &hs;
  at::Tensor logits = class_logits(*m, ctx);
  EXPECT_TRUE(mstest::close(logits, ref->get("logits"))) << "class logits";
  EXPECT_TRUE(mstest::close(at::softmax(logits, 1), at::softmax(ref->get("logits").to(at::kDouble), 1), 1e-4, 1e-6));
  // hidden_states: 0 = embeddings after their LayerNorm, i = output of layer i - 1.
  EXPECT_TRUE(mstest::close(cache.get("blocks.0.hook_resid_pre"), ref->get("hidden_states.0")));
  for (int l = 0; l < 2; ++l) {
    std::string L = std::to_string(l);
    EXPECT_TRUE(mstest::close(cache.get("blocks." + L + ".hook_normalized_resid_post"),
                              ref->get("hidden_states." + std::to_string(l + 1))))
        << l;
    EXPECT_TRUE(mstest::close(cache.get("blocks." + L + ".attn.hook_pattern"), ref->get("attentions." + L))) << l;
  }
  // Padding keys get no attention, and padding changes nothing: the fixture is padded.
  at::Tensor mask = ref->get("attention_mask");
  EXPECT_LT(mask.sum().item<int64_t>(), mask.numel());
  at::Tensor pad = mask.eq(0).view({4, 1, 1, 36}).expand({4, 4, 36, 36});
  EXPECT_EQ(cache.get("blocks.1.attn.hook_pattern").masked_select(pad).abs().max().item<double>(), 0.0);
  models::RunContext no_mask;
  EXPECT_FALSE(mstest::close(class_logits(*m, no_mask), ref->get("logits")));
}

TEST_F(DistilBert, Float64MatchesTransformersTightly) {
  models::LoadOptions o;
  o.dtype = at::kDouble;
  auto m64 = models::load_model(mstest::fixture("distilbert_sst/model"), o);
  hooks::HookSet hs;
  hooks::ActivationCache cache;
  cache.attach(hs, {"blocks.1.hook_normalized_resid_post", "blocks.1.attn.hook_pattern"});
  models::RunContext ctx = context();
  ctx.hooks = &hs;
  at::Tensor logits = class_logits(*m64, ctx);
  EXPECT_EQ(logits.scalar_type(), at::kDouble);
  EXPECT_TRUE(mstest::close(logits, ref->get("logits"), 1e-5, 1e-6));
  EXPECT_TRUE(mstest::close(cache.get("blocks.1.hook_normalized_resid_post"), ref->get("hidden_states.2"), 1e-5, 1e-6));
  EXPECT_TRUE(mstest::close(cache.get("blocks.1.attn.hook_pattern"), ref->get("attentions.1"), 1e-5, 1e-6));
}

TEST_F(DistilBert, PaddedBatchGivesEachTextItsOwnResult) {
  at::Tensor batched = class_logits(*m, context());
  at::Tensor mask = ref->get("attention_mask");
  at::NoGradGuard ng;
  for (int64_t i = 0; i < 4; ++i) {
    int64_t n = mask[i].sum().item<int64_t>();
    models::RunContext one;
    at::Tensor r = m->embed(ref->get("input_ids")[i].narrow(0, 0, n).unsqueeze(0), one);
    for (int l = 0; l < 2; ++l) r = m->block(l, r, one);
    EXPECT_TRUE(mstest::close(batched[i], m->classify(r, one)[0], 1e-5, 1e-5)) << i;
  }
}

TEST_F(DistilBert, TokenizerGivesTheReferenceIds) {
  // The reference's inputs are texts[0..3] of reference.json, encoded as tokenizer(text).
  auto refj = nlohmann::json::parse(std::ifstream(mstest::fixture("distilbert_sst/reference.json")));
  auto tok = tokenizers::load_tokenizer(mstest::fixture("distilbert_sst/model"));
  at::Tensor ids = ref->get("input_ids"), mask = ref->get("attention_mask");
  for (int64_t i = 0; i < 4; ++i) {
    auto e = tokenizers::encode_input(*tok, refj["texts"][i].get<std::string>(), {});
    EXPECT_EQ(e.ids, mstest::to_vec(ids[i].narrow(0, 0, mask[i].sum().item<int64_t>()))) << i;
  }
}

TEST_F(DistilBert, EveryHookNameFiresWithTheDocumentedShape) {
  auto seen = mstest::fired_hooks(*m, ref->get("input_ids"), context());
  using V = std::vector<int64_t>;
  EXPECT_EQ(seen["embed.hook_embed"], (V{4, 36, 32}));
  EXPECT_EQ(seen["embed.hook_pos_embed"], (V{4, 36, 32}));
  EXPECT_FALSE(seen.count("embed.hook_token_type_embed"));
  EXPECT_EQ(seen["embed.ln.hook_normalized"], (V{4, 36, 32}));
  EXPECT_EQ(seen["blocks.1.attn.hook_z"], (V{4, 36, 4, 8}));
  EXPECT_EQ(seen["blocks.1.attn.hook_pattern"], (V{4, 4, 36, 36}));
  EXPECT_EQ(seen["blocks.0.mlp.hook_post"], (V{4, 36, 128}));
  EXPECT_EQ(seen["blocks.1.hook_normalized_resid_post"], (V{4, 36, 32}));
}

TEST_F(DistilBert, NoTokenLogitsNoGenerationNoTokenTypes) {
  at::NoGradGuard ng;
  auto expect_error = [](auto f, const std::string& what) {
    try {
      f();
      ADD_FAILURE() << "expected an error mentioning " << what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  expect_error([&] { m->unembed(at::zeros({1, 32})); }, "sequence classifier");
  expect_error([&] { models::generate(*m, {2, 5, 3}, models::GenerateOptions{}); }, "not a causal language model");
  models::RunContext ctx;
  ctx.token_type_ids = at::ones({1, 3}, at::kLong);
  expect_error([&] { m->embed(at::tensor(std::vector<int64_t>{2, 5, 3}, at::kLong).unsqueeze(0), ctx); }, "token type");
}

TEST_F(DistilBert, BareDistilBertModelHasActivationsButNoHead) {
  // DistilBertModel.save_pretrained: no "distilbert." prefix, no classifier.
  std::string dir = mstest::tmp_dir("distilbert-bare");
  auto src = io::SafetensorsFile::open(mstest::fixture("distilbert_sst/model/model.safetensors"));
  std::vector<std::pair<std::string, at::Tensor>> kept;
  for (auto& [name, info] : src->tensors())
    if (name.rfind("distilbert.", 0) == 0) kept.emplace_back(name.substr(11), src->get(name));
  io::write_safetensors(dir + "/model.safetensors", kept);
  mstest::run_shell("cp " + mstest::fixture("distilbert_sst/model/config.json") + " " + dir + "/");
  auto bare = models::load_model(dir);
  EXPECT_FALSE(bare->has_classifier());
  EXPECT_TRUE(bare->config().labels.empty());
  EXPECT_EQ(bare->parameter_count(), m->parameter_count() - (32 * 32 + 32 + 2 * 32 + 2));
  at::NoGradGuard ng;
  models::RunContext ctx = context();
  at::Tensor r = bare->embed(ref->get("input_ids"), ctx);
  for (int l = 0; l < 2; ++l) r = bare->block(l, r, ctx);
  EXPECT_TRUE(mstest::close(bare->final_norm(r, ctx), ref->get("hidden_states.2")));
  try {
    bare->classify(r, ctx);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no sequence-classification head"), std::string::npos) << e.what();
  }
}

}  // namespace
