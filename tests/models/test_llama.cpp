// The Llama family (llama, qwen2, mistral) against Hugging Face transformers (float64 references in
// tests/fixtures/{llama,qwen2,llama_patch}), rotary variants and the llama3 rope scaling formula.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "fixture_checks.h"
#include "io/checkpoint.h"
#include "models/rotary.h"

using namespace mechscope;

namespace {

struct LlamaFamily : ::testing::TestWithParam<std::string> {
  std::unique_ptr<models::HookedModel> m = models::load_model(mstest::fixture(GetParam() + "/model"));
  std::shared_ptr<io::SafetensorsFile> ref = mstest::reference(GetParam());
};

TEST_P(LlamaFamily, LogitsHiddenStatesAndPatternsMatchTransformers) { mstest::expect_matches_reference(*m, *ref); }

TEST_P(LlamaFamily, Float64MatchesTransformersTightly) { mstest::expect_float64_matches_reference(GetParam(), *ref); }

TEST_P(LlamaFamily, GreedyGenerationMatchesTransformers) { mstest::expect_greedy_generation(*m, *ref); }

TEST_P(LlamaFamily, KvCacheStepsEqualOneFullForward) {
  mstest::expect_kv_cache_steps_equal_full_forward(*m, ref->get("input_ids")[0].unsqueeze(0), 3);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, LlamaFamily, ::testing::Values("llama", "qwen2", "llama_patch"));

struct Llama : ::testing::Test {
  std::unique_ptr<models::HookedModel> m = models::load_model(mstest::fixture("llama/model"));
  std::shared_ptr<io::SafetensorsFile> ref = mstest::reference("llama");
  at::Tensor logits_of(const std::string& dir) {
    at::NoGradGuard ng;
    models::RunContext ctx;
    return models::load_model(dir)->forward(ref->get("input_ids"), ctx);
  }
};

TEST_F(Llama, ConfigIsReadAsGroupedQueryRotaryGated) {
  const auto& c = m->config();
  EXPECT_EQ(c.n_heads, 4);
  EXPECT_EQ(c.n_kv_heads, 2);
  EXPECT_EQ(c.d_head, 8);
  EXPECT_EQ(c.d_mlp, 96);
  EXPECT_TRUE(c.rotary && c.gated_mlp && c.causal);
  EXPECT_FALSE(c.tied_embeddings);
  EXPECT_DOUBLE_EQ(c.eps, 1e-6);
}

TEST_F(Llama, EveryHookNameFiresWithTheDocumentedShape) {
  auto seen = mstest::fired_hooks(*m, ref->get("input_ids"));
  using V = std::vector<int64_t>;
  EXPECT_EQ(seen["hook_embed"], (V{2, 8, 32}));
  EXPECT_FALSE(seen.count("hook_pos_embed"));
  EXPECT_EQ(seen["blocks.0.ln1.hook_scale"], (V{2, 8, 1}));
  EXPECT_EQ(seen["blocks.1.attn.hook_q"], (V{2, 8, 4, 8}));
  EXPECT_EQ(seen["blocks.1.attn.hook_k"], (V{2, 8, 2, 8}));  // n_kv_heads under GQA
  EXPECT_EQ(seen["blocks.1.attn.hook_v"], (V{2, 8, 2, 8}));
  EXPECT_EQ(seen["blocks.1.attn.hook_rot_q"], (V{2, 8, 4, 8}));
  EXPECT_EQ(seen["blocks.1.attn.hook_rot_k"], (V{2, 8, 2, 8}));
  EXPECT_EQ(seen["blocks.1.attn.hook_attn_scores"], (V{2, 4, 8, 8}));
  EXPECT_EQ(seen["blocks.1.attn.hook_z"], (V{2, 8, 4, 8}));
  EXPECT_EQ(seen["blocks.1.attn.hook_result"], (V{2, 8, 4, 32}));
  EXPECT_EQ(seen["blocks.0.mlp.hook_pre"], (V{2, 8, 96}));
  EXPECT_EQ(seen["blocks.0.mlp.hook_pre_linear"], (V{2, 8, 96}));
  EXPECT_EQ(seen["blocks.0.mlp.hook_post"], (V{2, 8, 96}));
  EXPECT_EQ(seen["ln_final.hook_normalized"], (V{2, 8, 32}));
}

TEST_F(Llama, HooksRelateAsTheBlockComputesThem) {
  at::NoGradGuard ng;
  hooks::HookSet hs;
  hooks::ActivationCache c;
  c.attach(hs, {"blocks.0.*"});
  models::RunContext ctx;
  ctx.hooks = &hs;
  models::RunContext plain;
  at::Tensor expect = m->forward(ref->get("input_ids"), plain);
  EXPECT_TRUE(mstest::close(m->forward(ref->get("input_ids"), ctx), expect, 1e-5, 1e-5));  // hooks change nothing
  auto g = [&](const std::string& n) { return c.get("blocks.0." + n); };
  EXPECT_TRUE(mstest::close(g("attn.hook_result").sum(2), g("hook_attn_out"), 1e-5, 1e-5));  // no o_proj bias
  EXPECT_TRUE(mstest::close(g("hook_resid_pre") + g("hook_attn_out"), g("hook_resid_mid"), 1e-6, 1e-6));
  EXPECT_TRUE(mstest::close(g("hook_resid_mid") + g("hook_mlp_out"), g("hook_resid_post"), 1e-6, 1e-6));
  EXPECT_TRUE(mstest::close(at::silu(g("mlp.hook_pre")) * g("mlp.hook_pre_linear"), g("mlp.hook_post"), 1e-6, 1e-6));
  at::Tensor w = m->parameters()[1].second;  // model.layers.0.input_layernorm.weight
  // TransformerLens's RMSNorm: hook_normalized before the weight; the attention reads it times w.
  EXPECT_TRUE(mstest::close(g("hook_resid_pre") / g("ln1.hook_scale"), g("ln1.hook_normalized"), 1e-5, 1e-6));
  at::Tensor q_w = m->parameters()[2].second;  // model.layers.0.self_attn.q_proj.weight
  EXPECT_TRUE(mstest::close(at::matmul(g("ln1.hook_normalized") * w, q_w.t()).view(g("attn.hook_q").sizes()),
                            g("attn.hook_q"), 1e-5, 1e-5));
  // Position 0 is not rotated.
  EXPECT_TRUE(mstest::close(g("attn.hook_rot_q").select(1, 0), g("attn.hook_q").select(1, 0), 1e-6, 1e-7));
  EXPECT_FALSE(mstest::close(g("attn.hook_rot_q").select(1, 3), g("attn.hook_q").select(1, 3), 1e-6, 1e-7));
}

TEST_F(Llama, PaddedBatchGivesEachPromptItsOwnResult) {
  mstest::expect_padded_batch_equals_single_runs(*m, {{5, 77, 301, 12, 9, 400, 2}, {33, 18}, {7, 7, 100}}, 0);
}

TEST_F(Llama, KvCacheWithLeftPaddingMatchesUnpaddedRun) {
  // Generation over a left-padded batch: positions come from the mask, cached keys are post-rotary.
  at::NoGradGuard ng;
  std::vector<int64_t> seq{33, 18, 250, 4};
  models::RunContext plain;
  at::Tensor expect = m->forward(at::tensor(seq, at::kLong).unsqueeze(0), plain)[0];
  at::Tensor ids = at::tensor(std::vector<int64_t>{0, 0, 33, 18, 250, 4}, at::kLong).unsqueeze(0);
  at::Tensor mask = at::tensor(std::vector<int64_t>{0, 0, 1, 1, 1, 1}, at::kLong).unsqueeze(0);
  models::KVCache kv;
  models::RunContext ctx;
  ctx.cache = &kv;
  ctx.attention_mask = mask.narrow(1, 0, 4);
  at::Tensor a = m->forward(ids.narrow(1, 0, 4), ctx)[0].narrow(0, 2, 2);
  ctx.attention_mask = mask;
  at::Tensor b = m->forward(ids.narrow(1, 4, 2), ctx)[0];
  EXPECT_TRUE(mstest::close(at::cat({a, b}, 0), expect, 1e-5, 1e-5));
}

TEST_F(Llama, TopLevelRopeThetaGivesTheSameLogits) {
  std::string dir = mstest::model_variant("llama", "llama-old-rope", [](nlohmann::json& c) {
    c.erase("rope_parameters");
    c["rope_theta"] = 10000.0;
    c["rope_scaling"] = nullptr;
  });
  EXPECT_TRUE(mstest::close(logits_of(dir), ref->get("logits")));
  std::string other = mstest::model_variant("llama", "llama-theta",
                                            [](nlohmann::json& c) { c["rope_parameters"]["rope_theta"] = 500000.0; });
  EXPECT_FALSE(mstest::close(logits_of(other), ref->get("logits")));  // the value is read, not assumed
}

TEST_F(Llama, TiedEmbeddingsUseTheInputEmbeddingAsUnembedding) {
  std::string dir =
      mstest::model_variant("llama", "llama-tied", [](nlohmann::json& c) { c["tie_word_embeddings"] = true; });
  auto tied = models::load_model(dir);
  EXPECT_TRUE(tied->config().tied_embeddings);
  at::Tensor x = at::randn({3, 32});
  at::Tensor embed = tied->parameters()[0].second;  // model.embed_tokens.weight
  EXPECT_TRUE(mstest::close(tied->unembed(x), at::matmul(x, embed.t()), 1e-6, 1e-6));
  EXPECT_EQ(tied->parameter_count(), m->parameter_count() - 512 * 32);
  at::Tensor cols = at::tensor(std::vector<int64_t>{3, 500, 0}, at::kLong);
  EXPECT_TRUE(mstest::close(m->unembed(x, cols), m->unembed(x).index_select(1, cols), 1e-6, 1e-6));
}

TEST_F(Llama, MistralSlidingWindowMasksDistantKeys) {
  std::string dir = mstest::model_variant("llama", "mistral", [](nlohmann::json& c) {
    c["model_type"] = "mistral";
    c["sliding_window"] = 3;
  });
  auto mi = models::load_model(dir);
  hooks::HookSet hs;
  hooks::ActivationCache cache;
  cache.attach(hs, {"blocks.1.attn.hook_pattern"});
  models::RunContext ctx;
  ctx.hooks = &hs;
  at::NoGradGuard ng;
  at::Tensor logits = mi->forward(ref->get("input_ids"), ctx);
  at::Tensor p = cache.get("blocks.1.attn.hook_pattern");  // [2, 4, 8, 8]
  for (int64_t q = 0; q < 8; ++q)
    for (int64_t k = 0; k < 8; ++k) {
      bool visible = k <= q && k > q - 3;
      double mass = p.select(2, q).select(2, k).abs().max().item<double>();
      if (visible) EXPECT_GT(mass, 0) << q << "," << k;
      else EXPECT_EQ(mass, 0) << q << "," << k;
    }
  // The first 3 positions see everything they would without the window.
  EXPECT_TRUE(mstest::close(logits.narrow(1, 0, 3), ref->get("logits").narrow(1, 0, 3)));
}

TEST_F(Llama, BFloat16CheckpointLoadsAsFloat32AndShardsLoad) {
  std::string dir = mstest::tmp_dir("llama-bf16-sharded");
  auto src = io::SafetensorsFile::open(mstest::fixture("llama/model/model.safetensors"));
  std::vector<std::pair<std::string, at::Tensor>> a, b;
  nlohmann::json index{{"metadata", nlohmann::json::object()}, {"weight_map", nlohmann::json::object()}};
  int i = 0;
  for (auto& [name, info] : src->tensors()) {
    bool first = i++ % 2 == 0;
    (first ? a : b).emplace_back(name, src->get(name).to(at::kBFloat16));
    index["weight_map"][name] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  io::write_safetensors(dir + "/model-00001-of-00002.safetensors", a);
  io::write_safetensors(dir + "/model-00002-of-00002.safetensors", b);
  std::ofstream(dir + "/model.safetensors.index.json") << index.dump();
  mstest::run_shell("cp " + mstest::fixture("llama/model/config.json") + " " + dir + "/");
  auto bf = models::load_model(dir);
  EXPECT_EQ(bf->dtype(), at::kFloat);
  for (auto& [name, t] : bf->parameters()) {
    EXPECT_EQ(t.scalar_type(), at::kFloat) << name;
    EXPECT_TRUE(at::equal(t, src->get(name).to(at::kBFloat16).to(at::kFloat))) << name;
  }
  // bf16-rounded weights give nearly the float32 model's logits; --dtype bfloat16 computes in bf16.
  at::NoGradGuard ng;
  models::RunContext c1, c2;
  at::Tensor ids = ref->get("input_ids"), expect = ref->get("logits");
  auto corr = [](const at::Tensor& a, const at::Tensor& b) {
    at::Tensor x = a.to(at::kDouble).flatten(), y = b.to(at::kDouble).flatten();
    x = x - x.mean(), y = y - y.mean();
    return ((x * y).sum() / (x.norm() * y.norm())).item<double>();
  };
  at::Tensor l32 = bf->forward(ids, c1);
  EXPECT_EQ(l32.scalar_type(), at::kFloat);
  EXPECT_GT(corr(l32, expect), 0.99);
  models::LoadOptions o;
  o.dtype = at::kBFloat16;
  auto b16 = models::load_model(dir, o);
  at::Tensor l16 = b16->forward(ids, c2);
  EXPECT_EQ(l16.scalar_type(), at::kBFloat16);
  EXPECT_GT(corr(l16, expect), 0.98);
  models::GenerateOptions g;
  g.max_new_tokens = 4;
  EXPECT_EQ(models::generate(*b16, {1, 2, 3}, g).size(), 4u);
}

TEST_F(Llama, UnsupportedRopeTypeIsAnErrorNamingIt) {
  std::string dir = mstest::model_variant("llama", "llama-yarn", [](nlohmann::json& c) {
    c["rope_parameters"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"rope_theta", 10000.0}};
  });
  try {
    models::load_model(dir);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rope_type 'yarn'"), std::string::npos) << e.what();
  }
}

// Llama 3.1's scaling, written from the published formula (Meta's apply_scaling in llama3's
// reference code) independently of src/models/rotary.cpp.
TEST(Rotary, Llama3ScalingMatchesThePublishedFormula) {
  models::ModelConfig cfg;
  cfg.model_type = "llama";
  cfg.raw = nlohmann::json::parse(R"({"rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", "factor": 8.0,
      "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}})");
  models::RopeConfig r = models::parse_rope(cfg, 128);
  EXPECT_EQ(r.type, "llama3");
  at::Tensor got = models::rope_inv_freq(r);
  ASSERT_EQ(got.size(0), 64);
  int changed = 0, smoothed = 0;
  for (int i = 0; i < 64; ++i) {
    double freq = 1.0 / std::pow(500000.0, 2.0 * i / 128.0);
    double wavelen = 2 * M_PI / freq, expect;
    if (wavelen < 8192.0 / 4.0) {
      expect = freq;
    } else if (wavelen > 8192.0 / 1.0) {
      expect = freq / 8.0;
      ++changed;
    } else {
      double smooth = (8192.0 / wavelen - 1.0) / (4.0 - 1.0);
      expect = (1 - smooth) * freq / 8.0 + smooth * freq;
      ++smoothed;
    }
    EXPECT_NEAR(got[i].item<double>(), expect, 1e-12 * std::abs(expect)) << i;
  }
  EXPECT_GT(changed, 0);
  EXPECT_GT(smoothed, 0);
  // The same settings in transformers 5's rope_parameters form.
  cfg.raw = nlohmann::json::parse(R"({"rope_parameters": {"rope_theta": 500000.0, "rope_type": "llama3", "factor": 8.0,
      "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}})");
  EXPECT_TRUE(at::equal(models::rope_inv_freq(models::parse_rope(cfg, 128)), got));
}

TEST(Rotary, PartialRotaryLeavesTheRestOfTheHead) {
  models::ModelConfig cfg;
  cfg.model_type = "gpt_neox";
  cfg.raw = nlohmann::json::parse(R"({"rotary_pct": 0.25, "rotary_emb_base": 10000})");
  models::RopeConfig r = models::parse_rope(cfg, 32);
  EXPECT_EQ(r.dim, 8);
  at::Tensor x = at::randn({1, 5, 2, 32}, at::kDouble);
  at::Tensor pos = at::arange(5, at::kLong).unsqueeze(0);
  at::Tensor y = models::apply_rope(x, models::rope_angles(models::rope_inv_freq(r), pos, at::kDouble));
  EXPECT_TRUE(at::equal(y.narrow(-1, 8, 24), x.narrow(-1, 8, 24)));
  // rotate_half pairs feature i with i + dim/2: position 1, pair (0, 4) rotates by angle 1 * inv_freq[0] = 1.
  double c = std::cos(1.0), s = std::sin(1.0);
  double x0 = x[0][1][0][0].item<double>(), x4 = x[0][1][0][4].item<double>();
  EXPECT_NEAR(y[0][1][0][0].item<double>(), x0 * c - x4 * s, 1e-12);
  EXPECT_NEAR(y[0][1][0][4].item<double>(), x4 * c + x0 * s, 1e-12);
}

}  // namespace
