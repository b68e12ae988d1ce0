// BERT against Hugging Face transformers (BertForMaskedLM, float64 reference in tests/fixtures/bert:
// one text and one two-segment pair, padded, with attention mask and token types 0/1), the pair encoded
// by the tokenizer's pair template, a bare BertModel without the MLM head, and
// BertForSequenceClassification's head against the reference hidden states.
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "fixture_checks.h"
#include "tokenizers/encoding.h"

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
                              ref->get("hidden_states." + std::to_string(l + 1))))
        << l;
    EXPECT_TRUE(mstest::close(cache.get("blocks." + L + ".attn.hook_pattern"), ref->get("attentions." + L))) << l;
    EXPECT_TRUE(mstest::close(cache.get("blocks." + L + ".attn.hook_q").flatten(2), ref->get("layer" + L + ".query")))
        << l;
    EXPECT_TRUE(mstest::close(cache.get("blocks." + L + ".attn.hook_k").flatten(2), ref->get("layer" + L + ".key")))
        << l;
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
  // The pair's second segment has type 1 (the old fixture's types were all 0 and this never ran).
  ASSERT_EQ(types.max().item<int64_t>(), 1);
  EXPECT_EQ(types[0].sum().item<int64_t>(), 0);
  EXPECT_FALSE(mstest::close(a, ref->get("logits")));
  // Only the pair row changes.
  EXPECT_TRUE(mstest::close(a[0], ref->get("logits")[0]));
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
  EXPECT_EQ(seen["embed.hook_embed"], (V{2, 29, 32}));
  EXPECT_EQ(seen["embed.hook_pos_embed"], (V{2, 29, 32}));
  EXPECT_EQ(seen["embed.hook_token_type_embed"], (V{2, 29, 32}));
  EXPECT_EQ(seen["embed.ln.hook_scale"], (V{2, 29, 1}));
  EXPECT_EQ(seen["blocks.1.attn.hook_v"], (V{2, 29, 4, 8}));
  EXPECT_EQ(seen["blocks.1.attn.hook_pattern"], (V{2, 4, 29, 29}));
  EXPECT_EQ(seen["blocks.1.attn.hook_result"], (V{2, 29, 4, 32}));
  EXPECT_EQ(seen["blocks.0.mlp.hook_pre"], (V{2, 29, 128}));
  EXPECT_EQ(seen["blocks.0.hook_normalized_resid_post"], (V{2, 29, 32}));
  EXPECT_EQ(seen["mlm_head.ln.hook_normalized"], (V{2, 29, 32}));
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
  at::Tensor pad = ref->get("attention_mask").eq(0).view({2, 1, 1, 29}).expand({2, 4, 29, 29});
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

TEST_F(Bert, TokenizerGivesTheReferenceInputsTheTextAndThePairTemplate) {
  // reference.json: texts[0] alone and the pair (texts[1], texts[2]) are the two rows of the reference.
  auto refj = nlohmann::json::parse(std::ifstream(mstest::fixture("bert/reference.json")));
  auto tok = tokenizers::load_tokenizer(mstest::fixture("bert/model"));
  at::Tensor ids = ref->get("input_ids"), mask = ref->get("attention_mask"), types = ref->get("token_type_ids");
  tokenizers::EncodeOptions opt;
  auto single = tokenizers::encode_input(*tok, refj["texts"][0].get<std::string>(), opt);
  int64_t n0 = mask[0].sum().item<int64_t>();
  EXPECT_EQ(single.ids, mstest::to_vec(ids[0].narrow(0, 0, n0)));
  EXPECT_EQ(single.type_ids, std::vector<int64_t>(n0, 0));
  EXPECT_EQ(single.a_begin, 1u);  // after [CLS]
  EXPECT_EQ(single.a_end, (size_t)n0 - 1);
  auto pair =
      tokenizers::encode_input(*tok, refj["texts"][1].get<std::string>(), opt, refj["texts"][2].get<std::string>());
  EXPECT_EQ(pair.ids, mstest::to_vec(ids[1]));
  EXPECT_EQ(pair.type_ids, mstest::to_vec(types[1]));
  // [CLS] A [SEP] B [SEP]: A's tokens are bert_ids[1] without its [CLS]/[SEP].
  size_t na = refj["bert_ids"][1].size() - 2;
  EXPECT_EQ(pair.a_begin, 1u);
  EXPECT_EQ(pair.a_end, 1 + na);
  EXPECT_EQ(pair.b_begin, 2 + na);
  EXPECT_EQ(pair.b_end, pair.ids.size() - 1);
  // Without special tokens: the texts' own tokens, types 0 then 1 (HF's add_special_tokens=False).
  opt.special_tokens = false;
  auto plain =
      tokenizers::encode_input(*tok, refj["texts"][1].get<std::string>(), opt, refj["texts"][2].get<std::string>());
  EXPECT_EQ(plain.ids.size(), pair.ids.size() - 3);
  EXPECT_EQ(plain.type_ids[na - 1], 0);
  EXPECT_EQ(plain.type_ids[na], 1);
}

TEST_F(Bert, SequenceClassifierHeadIsThePoolerThenTheClassifierOnCls) {
  // BertForSequenceClassification = the encoder + pooler (dense + tanh on [CLS]) + classifier. No fixture
  // has one, so the head is checked against the same maths in plain torch on the reference's last
  // hidden states (transformers' numbers for the encoder).
  std::string dir = mstest::tmp_dir("bert-classifier");
  auto src = io::SafetensorsFile::open(mstest::fixture("bert/model/model.safetensors"));
  std::vector<std::pair<std::string, at::Tensor>> kept;
  for (auto& [name, info] : src->tensors())
    if (name.rfind("bert.", 0) == 0) kept.emplace_back(name, src->get(name));
  at::manual_seed(3);
  at::Tensor pw = at::randn({32, 32}) * 0.2, pb = at::randn({32}) * 0.1, cw = at::randn({3, 32}) * 0.5,
             cb = at::randn({3}) * 0.1;
  kept.insert(kept.end(), {{"bert.pooler.dense.weight", pw},
                           {"bert.pooler.dense.bias", pb},
                           {"classifier.weight", cw},
                           {"classifier.bias", cb}});
  io::write_safetensors(dir + "/model.safetensors", kept);
  auto cfg = nlohmann::json::parse(std::ifstream(mstest::fixture("bert/model/config.json")));
  cfg["architectures"] = {"BertForSequenceClassification"};
  cfg["id2label"] = {{"0", "neg"}, {"2", "pos"}, {"1", "neutral"}};
  std::ofstream(dir + "/config.json") << cfg.dump(2);
  auto c = models::load_model(dir);
  ASSERT_TRUE(c->has_classifier());
  EXPECT_FALSE(c->has_lm_head());
  EXPECT_EQ(c->config().labels, (std::vector<std::string>{"neg", "neutral", "pos"}));
  at::NoGradGuard ng;
  models::RunContext ctx = context();
  at::Tensor r = c->embed(ref->get("input_ids"), ctx);
  for (int l = 0; l < 2; ++l) r = c->block(l, r, ctx);
  at::Tensor got = c->classify(c->final_norm(r, ctx), ctx);
  at::Tensor cls = ref->get("hidden_states.2").select(1, 0);
  at::Tensor expect = at::matmul(at::tanh(at::matmul(cls, pw.t()) + pb), cw.t()) + cb;
  EXPECT_TRUE(mstest::close(got, expect));
  EXPECT_EQ(c->parameter_count(), m->parameter_count() - (32 * 32 + 32 + 2 * 32 + 3959) + (32 * 32 + 32 + 3 * 32 + 3));
  try {
    c->unembed(r);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sequence classifier"), std::string::npos) << e.what();
  }
  // id2label must name every class.
  cfg["id2label"] = {{"0", "neg"}, {"1", "pos"}};
  std::ofstream(dir + "/config.json") << cfg.dump(2);
  try {
    models::load_model(dir);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("id2label"), std::string::npos) << e.what();
  }
}

TEST_F(Bert, TokenTypeIdsOutsideTheTypeVocabularyAreRefused) {
  at::NoGradGuard ng;
  models::RunContext ctx = context();
  ctx.token_type_ids = ref->get("token_type_ids") * 2;
  try {
    m->forward(ref->get("input_ids"), ctx);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("type_vocab_size 2"), std::string::npos) << e.what();
  }
}

}  // namespace
