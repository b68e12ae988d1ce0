// GPT-NeoX / Pythia against Hugging Face transformers (float64 reference in tests/fixtures/gpt_neox),
// both rotary config styles, and the sequential-residual variant against a plain re-implementation.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "fixture_checks.h"
#include "models/rotary.h"
#include "models/packed_runs.h"

using namespace mechscope;

namespace {

struct GptNeox : ::testing::Test {
  std::unique_ptr<models::HookedModel> m = models::load_model(mstest::fixture("gpt_neox/model"));
  std::shared_ptr<io::SafetensorsFile> ref = mstest::reference("gpt_neox");
  at::Tensor logits_of(const models::HookedModel& model) {
    at::NoGradGuard ng;
    models::RunContext ctx;
    return model.forward(ref->get("input_ids"), ctx);
  }
};

// GPT-NeoX written out from the paper and the checkpoint layout, in float64, sharing no code with
// src/models: fused qkv per head, rotate_half rotary on the first features of each head. `n_rot` is
// transformers' int(head_size * rotary_pct) (2 of the fixture's 8 by default); its formula
// (_compute_default_rope_parameters, apply_rotary_pos_emb): inv_freq = 1 / base^(arange(0, n_rot, 2)
// / n_rot), and the rotated width is cos.shape[-1] = 2 * len(inv_freq), one more than an odd n_rot.
at::Tensor plain_neox(const models::HookedModel& m, const at::Tensor& ids, bool parallel, int64_t n_rot = 2) {
  std::map<std::string, at::Tensor> P;
  for (auto& [k, t] : m.parameters()) P[k] = t.to(at::kDouble);
  const auto& c = m.config();
  int64_t b = ids.size(0), n = ids.size(1), h = c.n_heads, dh = c.d_head;
  int64_t n_freq = 0;
  for (int64_t i = 0; i < n_rot; i += 2) ++n_freq;
  int64_t rot = 2 * n_freq;
  auto ln = [&](const at::Tensor& x, const std::string& p) {
    at::Tensor mu = x.mean(-1, true), var = (x - mu).pow(2).mean(-1, true);
    return (x - mu) / (var + c.eps).sqrt() * P[p + ".weight"] + P[p + ".bias"];
  };
  auto lin = [&](const at::Tensor& x, const std::string& p) {
    return at::matmul(x, P[p + ".weight"].t()) + P[p + ".bias"];
  };
  at::Tensor pos = at::arange(n, at::kDouble).unsqueeze(1);  // [n, 1]
  at::Tensor inv = at::empty({n_freq}, at::kDouble);         // [rot/2]
  for (int64_t i = 0; i < n_freq; ++i) inv[i] = 1.0 / std::pow(10000.0, (double)(2 * i) / (double)n_rot);
  at::Tensor ang = at::cat({pos * inv, pos * inv}, -1).view({1, n, 1, rot});
  auto rope = [&](const at::Tensor& x) {
    at::Tensor r = x.narrow(-1, 0, rot), half1 = r.narrow(-1, 0, rot / 2), half2 = r.narrow(-1, rot / 2, rot / 2);
    at::Tensor out = r * ang.cos() + at::cat({-half2, half1}, -1) * ang.sin();
    return at::cat({out, x.narrow(-1, rot, dh - rot)}, -1);
  };
  at::Tensor causal = at::ones({n, n}, at::kBool).tril();
  at::Tensor x = P["gpt_neox.embed_in.weight"].index_select(0, ids.flatten()).view({b, n, -1});
  for (int l = 0; l < c.n_layers; ++l) {
    std::string p = "gpt_neox.layers." + std::to_string(l) + ".";
    at::Tensor qkv = lin(ln(x, p + "input_layernorm"), p + "attention.query_key_value").view({b, n, h, 3, dh});
    at::Tensor q = rope(qkv.select(3, 0)).transpose(1, 2), k = rope(qkv.select(3, 1)).transpose(1, 2);
    at::Tensor v = qkv.select(3, 2).transpose(1, 2);
    at::Tensor s = at::matmul(q, k.transpose(-1, -2)) / std::sqrt((double)dh);
    s = s.masked_fill(causal.logical_not(), -1e300);
    at::Tensor z = at::matmul(at::softmax(s, -1), v).transpose(1, 2).reshape({b, n, h * dh});
    at::Tensor attn = lin(z, p + "attention.dense");
    auto mlp = [&](const at::Tensor& y) {
      return lin(at::gelu(lin(ln(y, p + "post_attention_layernorm"), p + "mlp.dense_h_to_4h")),
                 p + "mlp.dense_4h_to_h");
    };
    x = parallel ? x + attn + mlp(x) : (x + attn) + mlp(x + attn);
  }
  return at::matmul(ln(x, "gpt_neox.final_layer_norm"), P["embed_out.weight"].t());
}

TEST_F(GptNeox, LogitsHiddenStatesAndPatternsMatchTransformers) { mstest::expect_matches_reference(*m, *ref); }

TEST_F(GptNeox, Float64MatchesTransformersTightly) { mstest::expect_float64_matches_reference("gpt_neox", *ref); }

TEST_F(GptNeox, GreedyGenerationMatchesTransformers) { mstest::expect_greedy_generation(*m, *ref); }

TEST_F(GptNeox, KvCacheStepsEqualOneFullForward) {
  mstest::expect_kv_cache_steps_equal_full_forward(*m, ref->get("input_ids")[1].unsqueeze(0), 4);
}

TEST_F(GptNeox, PaddedBatchGivesEachPromptItsOwnResult) {
  mstest::expect_padded_batch_equals_single_runs(*m, {{5, 77, 301, 12, 9, 400}, {33, 18, 2}, {7}}, 1);
}

TEST_F(GptNeox, ConfigIsReadFromRopeParameters) {
  const auto& c = m->config();
  EXPECT_EQ(c.d_head, 8);
  EXPECT_EQ(c.act_fn, "gelu");
  EXPECT_TRUE(c.rotary);
  EXPECT_FALSE(c.gated_mlp);
  EXPECT_FALSE(c.tied_embeddings);
}

TEST_F(GptNeox, EveryHookNameFiresWithTheDocumentedShape) {
  auto seen = mstest::fired_hooks(*m, ref->get("input_ids"));
  using V = std::vector<int64_t>;
  EXPECT_FALSE(seen.count("blocks.0.hook_resid_mid"));  // parallel residual: no resid_mid
  EXPECT_FALSE(seen.count("hook_pos_embed"));
  EXPECT_EQ(seen["hook_embed"], (V{2, 8, 32}));
  EXPECT_EQ(seen["blocks.1.attn.hook_q"], (V{2, 8, 4, 8}));
  EXPECT_EQ(seen["blocks.1.attn.hook_rot_k"], (V{2, 8, 4, 8}));
  EXPECT_EQ(seen["blocks.1.attn.hook_pattern"], (V{2, 4, 8, 8}));
  EXPECT_EQ(seen["blocks.1.attn.hook_result"], (V{2, 8, 4, 32}));
  EXPECT_EQ(seen["blocks.0.mlp.hook_pre"], (V{2, 8, 128}));
  EXPECT_EQ(seen["blocks.0.ln2.hook_scale"], (V{2, 8, 1}));
}

TEST_F(GptNeox, ParallelResidualHooksRelateAsTheBlockComputesThem) {
  at::NoGradGuard ng;
  hooks::HookSet hs;
  hooks::ActivationCache c;
  c.attach(hs, {"blocks.1.*"});
  models::RunContext ctx;
  ctx.hooks = &hs;
  m->forward(ref->get("input_ids"), ctx);
  auto g = [&](const std::string& n) { return c.get("blocks.1." + n); };
  EXPECT_TRUE(
      mstest::close(g("hook_resid_pre") + g("hook_attn_out") + g("hook_mlp_out"), g("hook_resid_post"), 1e-6, 1e-6));
  // The MLP's LayerNorm reads the block input.
  at::Tensor x = g("hook_resid_pre");
  at::Tensor centred = x - x.mean(-1, true);
  EXPECT_TRUE(mstest::close((centred.pow(2).mean(-1, true) + 1e-5).sqrt(), g("ln2.hook_scale"), 1e-5, 1e-6));
  // Rotary covers 2 of the 8 features of each head; the rest pass through.
  EXPECT_TRUE(at::equal(g("attn.hook_rot_q").narrow(-1, 2, 6), g("attn.hook_q").narrow(-1, 2, 6)));
  EXPECT_FALSE(mstest::close(g("attn.hook_rot_q").narrow(-1, 0, 2), g("attn.hook_q").narrow(-1, 0, 2)));
}

TEST_F(GptNeox, OldPythiaRotaryKeysGiveTheSameLogits) {
  // Real Pythia checkpoints: rotary_pct / rotary_emb_base, no rope_parameters.
  std::string dir = mstest::model_variant("gpt_neox", "neox-pythia-style", [](nlohmann::json& c) {
    c.erase("rope_parameters");
    c["rotary_pct"] = 0.25;
    c["rotary_emb_base"] = 10000;
  });
  EXPECT_TRUE(mstest::close(logits_of(*models::load_model(dir)), ref->get("logits")));
  // GPTNeoXConfig's defaults (rotary_pct 0.25, base 10000) when the file has neither.
  std::string bare =
      mstest::model_variant("gpt_neox", "neox-defaults", [](nlohmann::json& c) { c.erase("rope_parameters"); });
  EXPECT_TRUE(mstest::close(logits_of(*models::load_model(bare)), ref->get("logits")));
  std::string half = mstest::model_variant(
      "gpt_neox", "neox-half", [](nlohmann::json& c) { c["rope_parameters"]["partial_rotary_factor"] = 0.5; });
  EXPECT_FALSE(mstest::close(logits_of(*models::load_model(half)), ref->get("logits")));  // the value is read
}

TEST_F(GptNeox, PlainReimplementationMatchesTheFixture) {
  at::NoGradGuard ng;
  EXPECT_TRUE(mstest::close(plain_neox(*m, ref->get("input_ids"), true), ref->get("logits")));
}

TEST_F(GptNeox, SequentialResidualMatchesThePlainReimplementation) {
  std::string dir = mstest::model_variant("gpt_neox", "neox-sequential",
                                          [](nlohmann::json& c) { c["use_parallel_residual"] = false; });
  auto seq = models::load_model(dir);
  at::NoGradGuard ng;
  at::Tensor ids = ref->get("input_ids");
  at::Tensor got = logits_of(*seq);
  EXPECT_TRUE(mstest::close(got, plain_neox(*seq, ids, false)));
  EXPECT_FALSE(mstest::close(got, ref->get("logits")));
  auto seen = mstest::fired_hooks(*seq, ids);
  EXPECT_TRUE(seen.count("blocks.0.hook_resid_mid"));
  hooks::HookSet hs;
  hooks::ActivationCache c;
  c.attach(hs, {"blocks.0.*"});
  models::RunContext ctx;
  ctx.hooks = &hs;
  seq->forward(ids, ctx);
  auto g = [&](const std::string& n) { return c.get("blocks.0." + n); };
  EXPECT_TRUE(mstest::close(g("hook_resid_pre") + g("hook_attn_out"), g("hook_resid_mid"), 1e-6, 1e-6));
  EXPECT_TRUE(mstest::close(g("hook_resid_mid") + g("hook_mlp_out"), g("hook_resid_post"), 1e-6, 1e-6));
  mstest::expect_kv_cache_steps_equal_full_forward(*seq, ids[0].unsqueeze(0), 2);
}

// rotary_pct x head size odd (3 of 8): transformers accepts it and rotates 4 features with the
// frequencies of n = 3 (1 / base^(0/3), 1 / base^(2/3)); the full forward and block_packed both.
TEST_F(GptNeox, OddRotaryCountRotatesAsTransformersDoes) {
  at::NoGradGuard ng;
  for (bool old_keys : {false, true}) {
    std::string dir = mstest::model_variant("gpt_neox", old_keys ? "neox-odd-pct" : "neox-odd", [&](nlohmann::json& c) {
      if (old_keys) {
        c.erase("rope_parameters");
        c["rotary_pct"] = 0.375;
      } else {
        c["rope_parameters"]["partial_rotary_factor"] = 0.375;
      }
    });
    models::LoadOptions o;
    o.dtype = at::kDouble;
    auto odd = models::load_model(dir, o);
    at::Tensor ids = ref->get("input_ids");
    at::Tensor expect = plain_neox(*odd, ids, true, 3);
    models::RunContext ctx;
    at::Tensor got = odd->forward(ids, ctx);
    EXPECT_TRUE(mstest::close(got, expect, 1e-9, 1e-12));
    // Neither the even counts around it: 2 (the fixture) nor 4 rotated with n = 4's frequencies.
    EXPECT_FALSE(mstest::close(expect, plain_neox(*odd, ids, true, 4), 1e-6, 1e-8));
    EXPECT_FALSE(mstest::close(expect, plain_neox(*odd, ids, true, 2), 1e-6, 1e-8));
    EXPECT_TRUE(mstest::close(logits_of(*models::load_model(dir)), expect, 1e-4, 1e-5));  // float32

    // block_packed over runs of the same prompt starting at 0, 3 and 6, each attending to the
    // prompt's own earlier keys: every recomputed row is the full forward's.
    int64_t len = ids.size(1);
    at::Tensor one = ids[0].unsqueeze(0);
    models::KVCache kv;
    models::RunContext base;
    base.cache = &kv;
    at::Tensor x = odd->embed(one, base);
    std::vector<at::Tensor> resid_pre;
    for (int l = 0; l < odd->config().n_layers; ++l) resid_pre.push_back(x), x = odd->block(l, x, base);
    std::vector<int64_t> starts{0, 3, 6}, rows, positions;
    for (int64_t r = 0; r < 3; ++r)
      for (int64_t p = starts[r]; p < len; ++p) rows.push_back(r * len + p), positions.push_back(p);
    models::PackedRuns P;
    P.n_runs = 3, P.n_pos = len, P.base = kv;
    P.rows = at::tensor(rows, at::kLong), P.positions = at::tensor(positions, at::kLong);
    at::Tensor packed = resid_pre[0][0].index_select(0, P.positions);
    for (int l = 0; l < odd->config().n_layers; ++l) packed = odd->block_packed(l, packed, P);
    models::RunContext plain;
    at::Tensor packed_logits = odd->unembed(odd->final_norm(packed.unsqueeze(0), plain))[0];
    EXPECT_TRUE(mstest::close(packed_logits, expect[0].index_select(0, P.positions), 1e-9, 1e-12));
  }
}

TEST(Rotary, OddCountsGiveCeilHalfFrequenciesAndRefuseToOverflowTheHead) {
  models::ModelConfig cfg;
  cfg.model_type = "gpt_neox";
  cfg.raw = nlohmann::json::parse(R"({"rotary_pct": 0.3125, "rotary_emb_base": 10000})");
  models::RopeConfig r = models::parse_rope(cfg, 16);  // int(16 * 0.3125) = 5
  EXPECT_EQ(r.dim, 5);
  EXPECT_EQ(r.rotated(), 6);
  at::Tensor inv = models::rope_inv_freq(r);
  ASSERT_EQ(inv.size(0), 3);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(inv[i].item<double>(), std::pow(10000.0, -2.0 * i / 5.0), 1e-15) << i;
  at::Tensor x = at::randn({1, 4, 2, 16}, at::kDouble);
  at::Tensor y = models::apply_rope(x, models::rope_angles(inv, at::arange(4, at::kLong).unsqueeze(0), at::kDouble));
  EXPECT_TRUE(at::equal(y.narrow(-1, 6, 10), x.narrow(-1, 6, 10)));
  EXPECT_FALSE(at::equal(y.select(1, 2).narrow(-1, 5, 1), x.select(1, 2).narrow(-1, 5, 1)));  // the 6th turns too
  // A full-width odd head would need one feature more than it has: transformers fails there too.
  cfg.raw = nlohmann::json::parse(R"({"rotary_pct": 1.0})");
  try {
    models::parse_rope(cfg, 7);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_TRUE(mstest::contains(e.what(), "config.json")) << e.what();
    EXPECT_TRUE(mstest::contains(e.what(), "7-feature head")) << e.what();
  }
  // int(8 * 0.1) = 0: nothing rotates, as in transformers (empty inv_freq).
  cfg.raw = nlohmann::json::parse(R"({"rotary_pct": 0.1})");
  models::RopeConfig none = models::parse_rope(cfg, 8);
  EXPECT_EQ(none.rotated(), 0);
  at::Tensor z = at::randn({1, 3, 1, 8}, at::kDouble);
  EXPECT_TRUE(at::equal(models::apply_rope(z, models::rope_angles(models::rope_inv_freq(none),
                                                                  at::arange(3, at::kLong).unsqueeze(0), at::kDouble)),
                        z));
  for (const char* bad :
       {R"({"rope_theta": 0})", R"({"rope_theta": -5.0})", R"({"rotary_pct": 0})", R"({"rotary_pct": 1.5})"}) {
    cfg.raw = nlohmann::json::parse(bad);
    EXPECT_THROW(models::parse_rope(cfg, 8), Error) << bad;
  }
}

}  // namespace
