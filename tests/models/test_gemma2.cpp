// Gemma-2 against Hugging Face transformers (float64 reference in tests/fixtures/gemma2), and Gemma-2
// variants and Gemma (1) against a plain float64 re-implementation written here from transformers'
// modeling_gemma2.py, which itself must reproduce the fixture.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "core/error.h"
#include "fixture_checks.h"
#include "io/safetensors.h"

using namespace mechscope;

namespace {

// What the plain forward needs beyond the fixture's fixed sizes (d 32, 4 heads, 2 kv heads of 8,
// eps 1e-6, rope theta 1e4, 2 layers).
struct Plain {
  bool v2 = true;
  double scale = 1.0 / std::sqrt(8.0);       // query_pre_attn_scalar 8
  double attn_cap = 50.0, final_cap = 30.0;  // 0 = none
  std::vector<int64_t> window{4, 0};
  bool tanh_gelu = true;
};

// Gemma / Gemma-2 in float64, straight from the checkpoint file, sharing no code with src/models:
// x * sqrt(d) embeddings, x / rms * (1 + w) norms, rotate_half rotary, capped scores before the
// causal (and sliding) mask, GeGLU, Gemma-2's post-norms, tied unembedding, capped logits.
at::Tensor plain_gemma(const std::string& dir, const at::Tensor& ids, const Plain& o) {
  auto f = io::SafetensorsFile::open(dir + "/model.safetensors");
  auto W = [&](const std::string& k) { return f->get(k).to(at::kDouble); };
  const int64_t d = 32, H = 4, KV = 2, dh = 8;
  const double eps = 1e-6;
  int64_t b = ids.size(0), n = ids.size(1);
  auto norm = [&](const at::Tensor& x, const std::string& k) {
    return x / (x.pow(2).mean(-1, true) + eps).sqrt() * (1 + W(k));
  };
  auto lin = [&](const at::Tensor& x, const std::string& k) { return at::matmul(x, W(k).t()); };
  at::Tensor pos = at::arange(n, at::kDouble).unsqueeze(1);
  at::Tensor inv = at::pow(10000.0, -at::arange(0, dh, 2, at::kDouble) / (double)dh);
  at::Tensor ang = at::cat({pos * inv, pos * inv}, -1);  // [n, dh]
  auto rope = [&](const at::Tensor& x) {                 // [b, heads, n, dh]
    at::Tensor x1 = x.narrow(-1, 0, dh / 2), x2 = x.narrow(-1, dh / 2, dh / 2);
    return x * ang.cos() + at::cat({-x2, x1}, -1) * ang.sin();
  };
  // Query head h reads kv head h / (H / KV).
  at::Tensor kv_of = at::arange(H, at::kLong).div(H / KV, "floor");
  at::Tensor qi = at::arange(n, at::kLong).unsqueeze(1), kj = at::arange(n, at::kLong).unsqueeze(0);
  at::Tensor E = W("model.embed_tokens.weight");
  at::Tensor x = E.index_select(0, ids.flatten()).view({b, n, d}) * std::sqrt((double)d);
  for (int l = 0; l < 2; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    at::Tensor h = norm(x, p + "input_layernorm.weight");
    at::Tensor q = rope(lin(h, p + "self_attn.q_proj.weight").view({b, n, H, dh}).transpose(1, 2));
    at::Tensor k =
        rope(lin(h, p + "self_attn.k_proj.weight").view({b, n, KV, dh}).transpose(1, 2)).index_select(1, kv_of);
    at::Tensor v = lin(h, p + "self_attn.v_proj.weight").view({b, n, KV, dh}).transpose(1, 2).index_select(1, kv_of);
    at::Tensor s = at::matmul(q, k.transpose(-1, -2)) * o.scale;
    if (o.attn_cap > 0) s = o.attn_cap * at::tanh(s / o.attn_cap);
    at::Tensor allowed = kj <= qi;
    if (o.window[l] > 0) allowed = allowed.logical_and(kj > qi - o.window[l]);
    s = s.masked_fill(allowed.logical_not(), -INFINITY);
    at::Tensor z = at::matmul(at::softmax(s, -1), v).transpose(1, 2).reshape({b, n, H * dh});
    at::Tensor a = lin(z, p + "self_attn.o_proj.weight");
    if (o.v2) a = norm(a, p + "post_attention_layernorm.weight");
    x = x + a;
    h = norm(x, p + (o.v2 ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight"));
    at::Tensor g = at::gelu(lin(h, p + "mlp.gate_proj.weight"), o.tanh_gelu ? "tanh" : "none");
    at::Tensor m = lin(g * lin(h, p + "mlp.up_proj.weight"), p + "mlp.down_proj.weight");
    if (o.v2) m = norm(m, p + "post_feedforward_layernorm.weight");
    x = x + m;
  }
  at::Tensor logits = at::matmul(norm(x, "model.norm.weight"), E.t());
  if (o.final_cap > 0) logits = o.final_cap * at::tanh(logits / o.final_cap);
  return logits;
}

at::Tensor logits_of(const std::string& dir, const at::Tensor& ids, at::ScalarType dtype = at::kDouble) {
  at::NoGradGuard ng;
  models::LoadOptions o;
  o.dtype = dtype;
  models::RunContext ctx;
  return models::load_model(dir, o)->forward(ids, ctx);
}

// The fixture's weights read as Gemma (1): its post_attention_layernorm becomes the MLP's pre-norm and
// the Gemma-2-only tensors are left unread.
std::string gemma1_dir(const std::string& name, const std::string& act = "gelu_pytorch_tanh") {
  return mstest::model_variant("gemma2", name, [&](nlohmann::json& c) {
    c["model_type"] = "gemma";
    c["architectures"] = {"GemmaForCausalLM"};
    for (const char* k : {"query_pre_attn_scalar", "attn_logit_softcapping", "final_logit_softcapping", "layer_types",
                          "sliding_window", "hidden_activation"})
      c.erase(k);
    c["hidden_act"] = act;
  });
}

struct Gemma2 : ::testing::Test {
  std::string dir = mstest::fixture("gemma2/model");
  std::unique_ptr<models::HookedModel> m = models::load_model(dir);
  std::shared_ptr<io::SafetensorsFile> ref = mstest::reference("gemma2");
};

TEST_F(Gemma2, LogitsHiddenStatesAndPatternsMatchTransformers) { mstest::expect_matches_reference(*m, *ref); }

TEST_F(Gemma2, Float64MatchesTransformersTightly) { mstest::expect_float64_matches_reference("gemma2", *ref); }

TEST_F(Gemma2, GreedyGenerationMatchesTransformers) { mstest::expect_greedy_generation(*m, *ref); }

TEST_F(Gemma2, KvCacheStepsEqualOneFullForwardPastTheWindow) {
  // 3 tokens of prefill, then 8 single steps: the sliding layer's window of 4 moves over the cache.
  mstest::expect_kv_cache_steps_equal_full_forward(*m, ref->get("input_ids")[0].unsqueeze(0), 3);
}

TEST_F(Gemma2, PaddedBatchGivesEachPromptItsOwnResult) {
  // In float64: the masking is what is checked, and this model's logits (up to 13) make float32's
  // batch-shape rounding reach the helper's 1e-5.
  models::LoadOptions o;
  o.dtype = at::kDouble;
  mstest::expect_padded_batch_equals_single_runs(*models::load_model(dir, o),
                                                 {{5, 77, 301, 12, 9, 400, 2}, {33, 18}, {7, 7, 100}}, 1);
}

TEST_F(Gemma2, ConfigIsReadAsGroupedQueryWithHeadDimFromTheFile) {
  const auto& c = m->config();
  EXPECT_EQ(c.n_heads, 4);
  EXPECT_EQ(c.n_kv_heads, 2);
  EXPECT_EQ(c.d_head, 8);
  EXPECT_EQ(c.d_mlp, 96);
  EXPECT_EQ(c.act_fn, "gelu_pytorch_tanh");
  EXPECT_TRUE(c.rotary && c.gated_mlp && c.causal && c.tied_embeddings);
  EXPECT_DOUBLE_EQ(c.eps, 1e-6);
  // head_dim is the file's, not hidden_size / heads.
  std::string wide = mstest::model_variant("gemma2", "gemma2-head-dim", [](nlohmann::json& c) { c["head_dim"] = 16; });
  try {
    models::load_model(wide);
    FAIL() << "expected a shape error";
  } catch (const Error& e) {
    EXPECT_TRUE(mstest::contains(e.what(), "q_proj.weight")) << e.what();
  }
}

TEST_F(Gemma2, EveryHookNameFiresWithTheDocumentedShape) {
  auto seen = mstest::fired_hooks(*m, ref->get("input_ids"));
  using V = std::vector<int64_t>;
  EXPECT_EQ(seen.size(), 1 + 2 * 25 + 2u);
  EXPECT_FALSE(seen.count("hook_pos_embed"));
  EXPECT_EQ(seen["hook_embed"], (V{2, 11, 32}));
  EXPECT_EQ(seen["blocks.1.attn.hook_q"], (V{2, 11, 4, 8}));
  EXPECT_EQ(seen["blocks.1.attn.hook_k"], (V{2, 11, 2, 8}));
  EXPECT_EQ(seen["blocks.1.attn.hook_rot_k"], (V{2, 11, 2, 8}));
  EXPECT_EQ(seen["blocks.0.attn.hook_attn_scores"], (V{2, 4, 11, 11}));
  EXPECT_EQ(seen["blocks.1.attn.hook_result"], (V{2, 11, 4, 32}));
  for (const char* ln : {"ln1", "ln1_post", "ln2", "ln2_post"}) {
    EXPECT_EQ(seen[std::string("blocks.1.") + ln + ".hook_scale"], (V{2, 11, 1})) << ln;
    EXPECT_EQ(seen[std::string("blocks.1.") + ln + ".hook_normalized"], (V{2, 11, 32})) << ln;
  }
  EXPECT_EQ(seen["blocks.0.mlp.hook_pre_linear"], (V{2, 11, 96}));
  EXPECT_EQ(seen["ln_final.hook_scale"], (V{2, 11, 1}));
}

TEST_F(Gemma2, HooksRelateAsTransformerLensDefinesThem) {
  at::NoGradGuard ng;
  hooks::HookSet hs;
  hooks::ActivationCache c;
  c.attach(hs, {"hook_embed", "blocks.0.*"});
  models::RunContext ctx, plain;
  ctx.hooks = &hs;
  at::Tensor ids = ref->get("input_ids");
  // Hooks change nothing but float32 rounding (logits reach 13 here).
  EXPECT_TRUE(mstest::close(m->forward(ids, ctx), m->forward(ids, plain), 1e-5, 5e-5));
  std::map<std::string, at::Tensor> P;
  for (auto& [k, t] : m->parameters()) P[k] = t;
  auto g = [&](const std::string& n) { return c.get("blocks.0." + n); };
  // hook_embed is the scaled embedding (TransformerLens folds sqrt(d) into W_E).
  at::Tensor E = P["model.embed_tokens.weight"];
  EXPECT_TRUE(mstest::close(c.get("hook_embed"), E.index_select(0, ids.flatten()).view({2, 11, 32}) * std::sqrt(32.0),
                            1e-6, 1e-6));
  EXPECT_TRUE(at::equal(c.get("hook_embed"), g("hook_resid_pre")));
  // hook_attn_out is after ln1_post (what is added to the residual), hook_result before it.
  at::Tensor w1 = 1 + P["model.layers.0.post_attention_layernorm.weight"];
  EXPECT_TRUE(mstest::close(g("ln1_post.hook_normalized") * w1, g("hook_attn_out"), 1e-5, 1e-6));
  EXPECT_TRUE(mstest::close(g("ln1_post.hook_normalized") * g("ln1_post.hook_scale"), g("attn.hook_result").sum(2),
                            1e-5, 1e-6));
  EXPECT_TRUE(mstest::close(g("hook_resid_pre") + g("hook_attn_out"), g("hook_resid_mid"), 1e-6, 1e-6));
  EXPECT_TRUE(mstest::close(g("hook_resid_mid") + g("hook_mlp_out"), g("hook_resid_post"), 1e-6, 1e-6));
  EXPECT_TRUE(mstest::close(g("hook_resid_mid") / g("ln2.hook_scale"), g("ln2.hook_normalized"), 1e-5, 1e-6));
  EXPECT_TRUE(
      mstest::close(at::gelu(g("mlp.hook_pre"), "tanh") * g("mlp.hook_pre_linear"), g("mlp.hook_post"), 1e-6, 1e-6));
  at::Tensor w2 = 1 + P["model.layers.0.post_feedforward_layernorm.weight"];
  EXPECT_TRUE(mstest::close(g("ln2_post.hook_normalized") * w2, g("hook_mlp_out"), 1e-5, 1e-6));
}

TEST_F(Gemma2, SlidingWindowOnLayerZeroOnly) {
  at::NoGradGuard ng;
  hooks::HookSet hs;
  hooks::ActivationCache cache;
  cache.attach(hs, {"blocks.*.attn.hook_pattern"});
  models::RunContext ctx;
  ctx.hooks = &hs;
  m->forward(ref->get("input_ids"), ctx);
  for (int layer : {0, 1}) {
    at::Tensor p = cache.get("blocks." + std::to_string(layer) + ".attn.hook_pattern");  // [2, 4, 11, 11]
    for (int64_t q = 0; q < 11; ++q)
      for (int64_t k = 0; k < 11; ++k) {
        bool visible = k <= q && (layer == 1 || k > q - 4);
        double mass = p.select(2, q).select(2, k).abs().max().item<double>();
        if (visible) EXPECT_GT(mass, 0) << layer << ": " << q << "," << k;
        else EXPECT_EQ(mass, 0) << layer << ": " << q << "," << k;
      }
  }
}

// The plain forward reproduces transformers, so it can judge the variants the fixture leaves out.
TEST_F(Gemma2, PlainReimplementationMatchesTheFixture) {
  at::NoGradGuard ng;
  EXPECT_TRUE(mstest::close(plain_gemma(dir, ref->get("input_ids"), Plain{}), ref->get("logits"), 1e-4, 5e-6));
}

TEST_F(Gemma2, EveryConfigValueIsReadAsTheReimplementationReadsIt) {
  at::Tensor ids = ref->get("input_ids");
  struct Variant {
    std::string name;
    std::function<void(nlohmann::json&)> edit;
    Plain plain;
  };
  Plain tight_caps;  // caps small enough to bend every score and logit
  tight_caps.attn_cap = 0.05, tight_caps.final_cap = 0.1;
  Plain no_caps;
  no_caps.attn_cap = 0, no_caps.final_cap = 0;
  Plain scalar;
  scalar.scale = 1.0 / std::sqrt(2.0);
  Plain swapped;
  swapped.window = {0, 2};
  std::vector<Variant> variants{
      {"tight-caps", [](nlohmann::json& c) { c["attn_logit_softcapping"] = 0.05, c["final_logit_softcapping"] = 0.1; },
       tight_caps},
      {"no-caps",
       [](nlohmann::json& c) { c["attn_logit_softcapping"] = nullptr, c["final_logit_softcapping"] = nullptr; },
       no_caps},
      {"scalar", [](nlohmann::json& c) { c["query_pre_attn_scalar"] = 2; }, scalar},
      {"swapped-window",
       [](nlohmann::json& c) {
         c["layer_types"] = {"full_attention", "sliding_attention"};
         c["sliding_window"] = 2;
       },
       swapped},
      // Gemma2Config's default layer_types: sliding on even layers, as the fixture names them.
      {"default-layer-types", [](nlohmann::json& c) { c.erase("layer_types"); }, Plain{}},
  };
  for (const auto& v : variants) {
    std::string d = mstest::model_variant("gemma2", "gemma2-" + v.name, v.edit);
    at::Tensor expect = plain_gemma(d, ids, v.plain);
    EXPECT_TRUE(mstest::close(logits_of(d, ids), expect, 1e-7, 1e-9)) << v.name;
    if (v.name != "default-layer-types") EXPECT_FALSE(mstest::close(expect, ref->get("logits"), 1e-4, 5e-6)) << v.name;
    EXPECT_TRUE(mstest::close(logits_of(d, ids, at::kFloat), expect, 1e-4, 5e-5)) << v.name << " float32";
  }
}

TEST_F(Gemma2, BFloat16RunsCloseToTheReference) {
  at::Tensor got = logits_of(dir, ref->get("input_ids"), at::kBFloat16);
  EXPECT_EQ(got.scalar_type(), at::kBFloat16);
  at::Tensor x = got.to(at::kDouble).flatten(), y = ref->get("logits").to(at::kDouble).flatten();
  x = x - x.mean(), y = y - y.mean();
  EXPECT_GT(((x * y).sum() / (x.norm() * y.norm())).item<double>(), 0.99);
}

// Bad values in config.json: one Error naming the file and the key.
TEST_F(Gemma2, OutOfDomainConfigValuesAreErrorsNamingTheKey) {
  struct Bad {
    std::string key;
    std::function<void(nlohmann::json&)> edit;
  };
  std::vector<Bad> bad{
      {"attn_logit_softcapping", [](nlohmann::json& c) { c["attn_logit_softcapping"] = 0; }},
      {"final_logit_softcapping", [](nlohmann::json& c) { c["final_logit_softcapping"] = -30.0; }},
      {"final_logit_softcapping", [](nlohmann::json& c) { c["final_logit_softcapping"] = "30"; }},
      {"query_pre_attn_scalar", [](nlohmann::json& c) { c["query_pre_attn_scalar"] = 0; }},
      {"query_pre_attn_scalar", [](nlohmann::json& c) { c["query_pre_attn_scalar"] = nullptr; }},
      {"sliding_window", [](nlohmann::json& c) { c["sliding_window"] = 0; }},
      {"sliding_window", [](nlohmann::json& c) { c["sliding_window"] = nullptr; }},
      {"layer_types", [](nlohmann::json& c) { c["layer_types"] = {"sliding_attention"}; }},
      {"layer_types",
       [](nlohmann::json& c) {
         c["layer_types"] = {"local", "full_attention"};
       }},
      {"rms_norm_eps", [](nlohmann::json& c) { c["rms_norm_eps"] = -1e-6; }},
      {"head_dim", [](nlohmann::json& c) { c["head_dim"] = 0; }},
      {"rope_theta", [](nlohmann::json& c) { c["rope_parameters"]["rope_theta"] = 0.0; }},
      {"num_key_value_heads", [](nlohmann::json& c) { c["num_key_value_heads"] = 3; }},
      {"use_bidirectional_attention", [](nlohmann::json& c) { c["use_bidirectional_attention"] = true; }},
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    std::string d = mstest::model_variant("gemma2", "gemma2-bad-" + std::to_string(i), bad[i].edit);
    try {
      models::load_model(d);
      ADD_FAILURE() << "expected an error for " << bad[i].key << " (case " << i << ")";
    } catch (const Error& e) {
      EXPECT_TRUE(mstest::contains(e.what(), "config.json")) << e.what();
      EXPECT_TRUE(mstest::contains(e.what(), bad[i].key)) << e.what();
    }
  }
}

// Gemma (1): no post-norms, no capping, no window, 1/sqrt(head_dim), hidden_act.
TEST(Gemma, MatchesThePlainReimplementationWithoutTheGemma2Extras) {
  at::Tensor ids = mstest::reference("gemma2")->get("input_ids");
  Plain one;
  one.v2 = false, one.attn_cap = 0, one.final_cap = 0, one.window = {0, 0};
  std::string d = gemma1_dir("gemma1");
  at::Tensor expect = plain_gemma(d, ids, one);
  EXPECT_TRUE(mstest::close(logits_of(d, ids), expect, 1e-7, 1e-9));
  EXPECT_TRUE(mstest::close(logits_of(d, ids, at::kFloat), expect, 1e-4, 5e-5));
  one.tanh_gelu = false;
  std::string exact = gemma1_dir("gemma1-gelu", "gelu");
  EXPECT_TRUE(mstest::close(logits_of(exact, ids), plain_gemma(exact, ids, one), 1e-7, 1e-9));
  EXPECT_FALSE(mstest::close(logits_of(exact, ids), expect, 1e-7, 1e-9));  // hidden_act is read
}

TEST(Gemma, HooksAreTheStandardGatedRotaryOnes) {
  auto m = models::load_model(gemma1_dir("gemma1-hooks"));
  EXPECT_EQ(m->config().model_type, "gemma");
  auto seen = mstest::fired_hooks(*m, mstest::reference("gemma2")->get("input_ids"));
  EXPECT_FALSE(seen.count("blocks.0.ln1_post.hook_scale"));
  EXPECT_TRUE(seen.count("blocks.1.mlp.hook_pre_linear"));
  EXPECT_TRUE(seen.count("blocks.1.hook_resid_mid"));
  // Gemma-1's post_attention_layernorm is its MLP pre-norm; the Gemma-2-only tensors are not parameters.
  for (auto& [name, t] : m->parameters()) EXPECT_FALSE(mstest::contains(name, "feedforward")) << name;
  mstest::expect_kv_cache_steps_equal_full_forward(*m, mstest::reference("gemma2")->get("input_ids")[1].unsqueeze(0),
                                                   5);
}

}  // namespace
