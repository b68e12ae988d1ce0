// block_packed of every causal architecture against block() on the full-length runs it packs: the
// rows it returns, with base_index and keep, and the hooks it fires (names, order, shapes, values, a
// hook that edits values).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "fixture_checks.h"
#include "models/packed_runs.h"

using namespace mechscope;

namespace {

// Fixture families, plus variants for paths the fixtures leave out (sequential residual, sliding
// window, an odd rotary count, soft-caps that bend every score, Gemma-1).
std::string model_dir(const std::string& name) {
  if (name == "gpt_neox_sequential")
    return mstest::model_variant("gpt_neox", "packed-neox-sequential",
                                 [](nlohmann::json& c) { c["use_parallel_residual"] = false; });
  if (name == "gpt_neox_odd_rotary")
    return mstest::model_variant("gpt_neox", "packed-neox-odd-rotary",
                                 [](nlohmann::json& c) { c["rope_parameters"]["partial_rotary_factor"] = 0.375; });
  if (name == "gemma2_tight_caps")
    return mstest::model_variant("gemma2", "packed-gemma2-caps", [](nlohmann::json& c) {
      c["attn_logit_softcapping"] = 0.05;
      c["final_logit_softcapping"] = 0.1;
      c["sliding_window"] = 3;
    });
  if (name == "gemma")
    return mstest::model_variant("gemma2", "packed-gemma1", [](nlohmann::json& c) { c["model_type"] = "gemma"; });
  if (name == "mistral")
    return mstest::model_variant("llama", "packed-mistral", [](nlohmann::json& c) {
      c["model_type"] = "mistral";
      c["sliding_window"] = 3;
    });
  return mstest::fixture(name + "/model");
}

constexpr int64_t kPos = 8;

// Runs of a base batch of two prompts, each recomputing positions start[r].. with base_of[r]'s
// earlier keys/values, as a patching sweep or a causal trace packs them.
struct Packing {
  std::vector<int64_t> start, base_of;
  bool index = true;  // false: base_index undefined (every run on base row 0)
};

struct BlockPacked : ::testing::TestWithParam<std::string> {
  at::ScalarType dtype = at::kFloat;
  std::unique_ptr<models::HookedModel> m;
  models::KVCache kv;
  std::vector<at::Tensor> resid_pre;  // per layer: [2, kPos, d]

  // The base run as sweep.cpp's base_run makes it: embed and blocks with a KV cache.
  void load(at::ScalarType dt) {
    dtype = dt;
    models::LoadOptions o;
    o.dtype = dt;
    m = models::load_model(model_dir(GetParam()), o);
    at::manual_seed(5);
    at::Tensor ids = at::randint(0, m->config().d_vocab, {2, kPos}, at::kLong);
    kv = {};
    resid_pre.clear();
    models::RunContext ctx;
    ctx.cache = &kv;
    at::Tensor x = m->embed(ids, ctx);
    for (int l = 0; l < m->config().n_layers; ++l) {
      resid_pre.push_back(x);
      x = m->block(l, x, ctx);
    }
  }

  // Each run's resid_pre of `layer` [C, kPos, d]: its base run's, perturbed from its start on.
  at::Tensor full_runs(int layer, const Packing& k) {
    std::vector<at::Tensor> runs;
    for (size_t r = 0; r < k.start.size(); ++r) {
      at::Tensor x = resid_pre[layer][k.index ? k.base_of[r] : 0].clone();
      int64_t s = k.start[r];
      x.narrow(0, s, kPos - s).add_(at::randn({kPos - s, x.size(1)}, x.options()) * 0.5);
      runs.push_back(x);
    }
    return at::stack(runs);
  }

  models::PackedRuns packed(int layer, const Packing& k) {
    models::PackedRuns P;
    P.n_runs = (int64_t)k.start.size();
    P.n_pos = kPos;
    std::vector<int64_t> rows, positions;
    for (int64_t r = 0; r < P.n_runs; ++r)
      for (int64_t p = k.start[r]; p < kPos; ++p) {
        rows.push_back(r * kPos + p);
        positions.push_back(p);
      }
    P.rows = at::tensor(rows, at::kLong);
    P.positions = at::tensor(positions, at::kLong);
    P.base = kv;
    if (k.index) P.base_index = at::tensor(k.base_of, at::kLong);
    return P;
  }
};

// A few start positions and base rows per layer; run 0 recomputes everything, the last only the end.
std::vector<Packing> packings() {
  return {{{0, 3, 5, 7}, {0, 1, 1, 0}, true}, {{2, 6, 1}, {1, 0, 1}, true}, {{4, 0, 6}, {}, false}};
}

// Positions >= start of each run [C * kPos] as a mask over its rows.
at::Tensor recomputed(const Packing& k) {
  at::Tensor mask = at::zeros({(int64_t)k.start.size(), kPos}, at::kBool);
  for (size_t r = 0; r < k.start.size(); ++r) mask[r].narrow(0, k.start[r], kPos - k.start[r]).fill_(true);
  return mask;
}

TEST_P(BlockPacked, RowsEqualBlockOnTheFullRuns) {
  at::NoGradGuard ng;
  for (at::ScalarType dt : {at::kFloat, at::kDouble}) {
    load(dt);
    // The same arithmetic on other GEMM shapes: float32 rounding, nothing in float64.
    double tol = dt == at::kDouble ? 1e-9 : 1e-5;
    for (int l = 0; l < m->config().n_layers; ++l)
      for (const Packing& k : packings()) {
        at::Tensor full = full_runs(l, k);
        int64_t C = full.size(0), d = full.size(2);
        models::PackedRuns P = packed(l, k);
        models::RunContext plain;
        at::Tensor expect = m->block(l, full, plain).reshape({C * kPos, d}).index_select(0, P.rows);
        at::Tensor rows = full.reshape({C * kPos, d}).index_select(0, P.rows);
        at::Tensor got = m->block_packed(l, rows, P);
        ASSERT_TRUE(got.defined()) << GetParam();
        EXPECT_EQ(got.scalar_type(), dt);
        EXPECT_TRUE(mstest::close(got, expect, tol, tol)) << GetParam() << " layer " << l << " runs " << C;
        // keep: the last row of every run (the metric's position of a sweep), and one more of the first.
        std::vector<int64_t> keep{1};
        for (int64_t r = 0, end = 0; r < C; ++r) keep.push_back((end += kPos - k.start[r]) - 1);
        P.keep = at::tensor(keep, at::kLong);
        EXPECT_TRUE(mstest::close(m->block_packed(l, rows, P), expect.index_select(0, P.keep), tol, tol))
            << GetParam() << " keep, layer " << l;
      }
  }
}

TEST_P(BlockPacked, FiresTheHooksOfBlockInOrderWithPackedLayouts) {
  at::NoGradGuard ng;
  load(at::kFloat);
  const auto& cfg = m->config();
  Packing k = packings()[0];
  at::Tensor mask = recomputed(k);
  for (int l = 0; l < cfg.n_layers; ++l) {
    std::string b = "blocks." + std::to_string(l) + ".";
    at::Tensor full = full_runs(l, k);
    int64_t C = full.size(0), d = full.size(2);
    models::PackedRuns P = packed(l, k);
    int64_t R = P.rows.size(0);
    // Both double hook_v from each run's start on (block sees whole runs, block_packed only those rows).
    std::vector<std::string> full_order, packed_order;
    std::map<std::string, at::Tensor> full_acts, packed_acts;
    hooks::HookSet hf, hp;
    hf.add(b + "attn.hook_v", [&](at::Tensor& t, const hooks::HookContext&) {
      t = t * (1 + mask.to(t.scalar_type()).view({C, kPos, 1, 1}));
    });
    hp.add(b + "attn.hook_v", [](at::Tensor& t, const hooks::HookContext&) { t = t * 2; });
    hf.add("*", [&](at::Tensor& t, const hooks::HookContext& c) {
      full_order.push_back(c.name);
      full_acts[c.name] = t.clone();
    });
    hp.add("*", [&](at::Tensor& t, const hooks::HookContext& c) {
      EXPECT_EQ(c.layer, l);
      EXPECT_EQ(c.pos0, 0);
      packed_order.push_back(c.name);
      packed_acts[c.name] = t.clone();
    });
    models::RunContext ctx;
    ctx.hooks = &hf;
    at::Tensor expect = m->block(l, full, ctx).reshape({C * kPos, d}).index_select(0, P.rows);
    P.hooks = &hp;
    at::Tensor got = m->block_packed(l, full.reshape({C * kPos, d}).index_select(0, P.rows), P);
    EXPECT_TRUE(mstest::close_at_scale(got, expect)) << GetParam() << " layer " << l;
    EXPECT_EQ(packed_order, full_order) << GetParam();
    EXPECT_EQ(packed_acts.at(b + "attn.hook_v").sizes(), at::IntArrayRef({R, cfg.n_kv_heads, cfg.d_head}));
    EXPECT_EQ(packed_acts.at(b + "attn.hook_z").sizes(), at::IntArrayRef({R, cfg.n_heads, cfg.d_head}));
    EXPECT_EQ(packed_acts.at(b + "attn.hook_pattern").sizes(), at::IntArrayRef({C, cfg.n_heads, kPos, kPos}));
    for (const auto& [name, t] : full_acts) {
      at::Tensor p = packed_acts.at(name);
      if (name.find("attn.hook_pattern") != std::string::npos ||
          name.find("attn.hook_attn_scores") != std::string::npos) {
        // Query rows before a run's start are not meaningful in the packed layout.
        at::Tensor m4 = mask.view({C, 1, kPos, 1}).expand(t.sizes());
        EXPECT_TRUE(mstest::close(p.masked_select(m4), t.masked_select(m4), 1e-5, 1e-5)) << name;
      } else {
        auto rest = t.sizes().vec();
        rest.erase(rest.begin(), rest.begin() + 2);
        rest.insert(rest.begin(), C * kPos);
        EXPECT_TRUE(mstest::close_at_scale(p, t.reshape(rest).index_select(0, P.rows))) << name;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Causal, BlockPacked,
                         ::testing::Values("gpt2", "gpt_neo", "gpt_neox", "gpt_neox_sequential", "gpt_neox_odd_rotary",
                                           "llama", "qwen2", "llama_patch", "mistral", "gemma2", "gemma2_tight_caps",
                                           "gemma"));

}  // namespace
