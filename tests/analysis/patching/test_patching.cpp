// Activation patching: the GPT-2 fixture's TransformerLens-style numbers, the fast path against the
// naive one on every architecture and target, ablations, and attribution against finite differences.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>

#include "analysis/patching/patching.h"
#include "core/error.h"
#include "core/fs.h"
#include "io/safetensors.h"
#include "tensor_util.h"
#include "test_util.h"

using namespace mechscope;
namespace P = mechscope::analysis::patching;

namespace {

std::shared_ptr<io::SafetensorsFile> ref() {
  static auto f = io::SafetensorsFile::open(mstest::fixture("gpt2/reference.safetensors"));
  return f;
}

P::Metric fixture_metric() { return {P::MetricKind::LogitDiff, 10714, 45261, -1}; }

P::PromptPair fixture_pair() {
  return {mstest::to_vec(ref()->get("patch.clean_ids")), mstest::to_vec(ref()->get("patch.corrupt_ids")),
          fixture_metric()};
}

// A random GPT-2 written at test time (untied head, biases and LayerNorm weights not trivial).
std::string random_gpt2(const std::string& name, int64_t layers, int64_t d, int64_t heads, int64_t vocab, bool tied) {
  std::string dir = mstest::tmp_dir(name);
  at::manual_seed(7);
  auto r = [](std::vector<int64_t> s, double scale) { return at::randn(s) * scale; };
  std::vector<std::pair<std::string, at::Tensor>> w{{"wte.weight", r({vocab, d}, 0.5)},
                                                    {"wpe.weight", r({32, d}, 0.3)}};
  for (int64_t l = 0; l < layers; ++l) {
    std::string p = "h." + std::to_string(l) + ".";
    w.emplace_back(p + "ln_1.weight", 1 + r({d}, 0.1));
    w.emplace_back(p + "ln_1.bias", r({d}, 0.1));
    w.emplace_back(p + "attn.c_attn.weight", r({d, 3 * d}, 0.3));
    w.emplace_back(p + "attn.c_attn.bias", r({3 * d}, 0.1));
    w.emplace_back(p + "attn.c_proj.weight", r({d, d}, 0.2));
    w.emplace_back(p + "attn.c_proj.bias", r({d}, 0.1));
    w.emplace_back(p + "ln_2.weight", 1 + r({d}, 0.1));
    w.emplace_back(p + "ln_2.bias", r({d}, 0.1));
    w.emplace_back(p + "mlp.c_fc.weight", r({d, 4 * d}, 0.2));
    w.emplace_back(p + "mlp.c_fc.bias", r({4 * d}, 0.1));
    w.emplace_back(p + "mlp.c_proj.weight", r({4 * d, d}, 0.1));
    w.emplace_back(p + "mlp.c_proj.bias", r({d}, 0.1));
  }
  w.emplace_back("ln_f.weight", 1 + r({d}, 0.1));
  w.emplace_back("ln_f.bias", r({d}, 0.1));
  if (!tied) w.emplace_back("lm_head.weight", r({vocab, d}, 0.3));
  io::write_safetensors(join_path(dir, "model.safetensors"), w, {{"format", "pt"}});
  nlohmann::json cfg{{"model_type", "gpt2"}, {"n_embd", d},         {"n_layer", layers},          {"n_head", heads},
                     {"n_positions", 32},    {"vocab_size", vocab}, {"tie_word_embeddings", tied}};
  write_file_atomic(join_path(dir, "config.json"), cfg.dump());
  return dir;
}

// Every architecture: the random GPT-2 above and each fixture model. A missing fixture is a failure
// (read_config throws), never a silently shorter list.
std::vector<std::string> model_dirs() {
  static std::vector<std::string> dirs = [] {
    std::vector<std::string> out{random_gpt2("patch-gpt2", 3, 16, 4, 37, false)};
    for (const char* f : {"gpt_neo", "gpt_neox", "llama", "qwen2", "gemma2", "bert"}) {
      std::string dir = mstest::fixture(std::string(f) + "/model");
      models::read_config(dir);
      out.push_back(dir);
    }
    return out;
  }();
  return dirs;
}

TEST(Patching, FixtureMatchesTransformerLensStyleReference) {
  auto m = models::load_model(mstest::fixture("gpt2/model"));
  for (P::Method method : {P::Method::Exact, P::Method::Naive}) {
    P::PatchOptions opt;
    opt.method = method;
    auto r = P::patch(*m, {fixture_pair()}, {"resid_pre", "attn_out", "mlp_out", "z_all_pos"}, opt);
    EXPECT_NEAR(r.clean_metric, 3.2045623529563425, 1e-4);
    EXPECT_NEAR(r.corrupt_metric, 3.9349198735722504, 1e-4);
    EXPECT_TRUE(mstest::close(r.normalised(0), ref()->get("patch.resid_pre"), 1e-4, 1e-4)) << P::method_name(method);
    EXPECT_TRUE(mstest::close(r.normalised(1), ref()->get("patch.attn_out"), 1e-4, 1e-4));
    EXPECT_TRUE(mstest::close(r.normalised(2), ref()->get("patch.mlp_out"), 1e-4, 1e-4));
    EXPECT_TRUE(mstest::close(r.normalised(3), ref()->get("patch.head_z_all_pos"), 1e-4, 1e-4));
  }
}

TEST(Patching, ZeroAblationMatchesReference) {
  auto m = models::load_model(mstest::fixture("gpt2/model"));
  auto ids = mstest::to_vec(ref()->get("patch.clean_ids"));
  for (P::Method method : {P::Method::Exact, P::Method::Naive}) {
    auto r = P::ablate(*m, ids, fixture_metric(), {"z_all_pos"}, P::AblationKind::Zero, {}, method);
    EXPECT_TRUE(mstest::close(r.targets[0].values, ref()->get("ablate.head_z_zero_clean"), 1e-4, 1e-4));
  }
}

// Fast == naive for every target on every architecture, with the packed path and the generic one.
TEST(Patching, FastEqualsNaiveOnEveryArchitectureAndTarget) {
  for (const auto& dir : model_dirs()) {
    auto m = models::load_model(dir);
    const auto& cfg = m->config();
    int64_t n = 7;
    at::manual_seed(3);
    auto clean = mstest::to_vec(at::randint(0, cfg.d_vocab, {n}, at::kLong));
    auto corrupt = clean;
    corrupt[2] = (corrupt[2] + 5) % cfg.d_vocab;
    corrupt[5] = (corrupt[5] + 1) % cfg.d_vocab;
    P::Metric metric{P::MetricKind::LogitDiff, 3, 11, -1};
    auto hook_names = m->hook_names();
    std::vector<std::string> names;  // every target the model has (parallel-residual blocks have no resid_mid)
    for (auto& t : P::all_target_names()) {
      if (t == "block_every") continue;  // = resid_pre + attn_out + mlp_out
      auto pts = P::target_points(P::target_spec(t), cfg);
      if (std::find(hook_names.begin(), hook_names.end(), pts[0]) != hook_names.end()) names.push_back(t);
    }
    EXPECT_GE(names.size(), 14u) << dir;
    std::fprintf(stderr, "fast == naive: %s (%s), %zu targets\n", cfg.model_type.c_str(), dir.c_str(), names.size());
    P::PatchOptions naive;
    naive.method = P::Method::Naive;
    auto b = P::patch(*m, {{clean, corrupt, metric}}, names, naive);
    for (bool packed : {true, false})
      for (int64_t max_rows : {9, 4096}) {  // several batches per layer / one batch every cell joins at its layer
        P::PatchOptions fast;
        fast.sweep.use_packed = packed;
        fast.sweep.max_rows = max_rows;
        auto a = P::patch(*m, {{clean, corrupt, metric}}, names, fast);
        for (size_t i = 0; i < names.size(); ++i)
          EXPECT_TRUE(mstest::close(a.targets[i].values, b.targets[i].values, 1e-5, 1e-5))
              << dir << " target " << names[i] << (packed ? " packed" : " generic") << " max_rows " << max_rows;
      }
    for (P::MetricKind kind : {P::MetricKind::Prob, P::MetricKind::LogProb}) {
      P::Metric pm{kind, 3, -1, 4};
      P::PatchOptions naive;
      naive.method = P::Method::Naive;
      auto a = P::patch(*m, {{clean, corrupt, pm}}, {"resid_pre", "v"}, {});
      auto b = P::patch(*m, {{clean, corrupt, pm}}, {"resid_pre", "v"}, naive);
      for (size_t i = 0; i < 2; ++i)
        EXPECT_TRUE(mstest::close(a.targets[i].values, b.targets[i].values, 1e-5, 1e-6)) << dir;
    }
  }
}

TEST(Patching, NoopSkippingChangesNothing) {
  auto m = models::load_model(model_dirs()[0]);
  std::vector<int64_t> clean{1, 2, 3, 4, 5, 6}, corrupt{1, 2, 3, 9, 5, 6};
  P::Metric metric{P::MetricKind::LogitDiff, 3, 11, -1};
  P::PatchOptions a, b;
  b.sweep.skip_noops = false;
  auto ra = P::patch(*m, {{clean, corrupt, metric}}, {"resid_pre", "z"}, a);
  auto rb = P::patch(*m, {{clean, corrupt, metric}}, {"resid_pre", "z"}, b);
  for (size_t i = 0; i < 2; ++i) EXPECT_TRUE(mstest::close(ra.targets[i].values, rb.targets[i].values, 1e-6, 1e-6));
  // Positions before the first difference are the same in both runs: no effect, exactly.
  EXPECT_EQ(ra.normalised(0).slice(1, 0, 3).abs().max().item<double>(), 0.0);
}

TEST(Patching, AblationKindsAgreeWithNaive) {
  auto m = models::load_model(model_dirs()[0]);
  std::vector<int64_t> ids{1, 2, 3, 4, 5, 6};
  std::vector<std::vector<int64_t>> refs{{7, 8, 9, 10, 11, 12}, {3, 1, 4, 1, 5, 9}};
  P::Metric metric{P::MetricKind::LogitDiff, 3, 11, -1};
  for (P::AblationKind kind : {P::AblationKind::Zero, P::AblationKind::Mean, P::AblationKind::Resample}) {
    auto a = P::ablate(*m, ids, metric, {"z_all_pos", "mlp_out", "pattern"}, kind, refs, P::Method::Exact);
    auto b = P::ablate(*m, ids, metric, {"z_all_pos", "mlp_out", "pattern"}, kind, refs, P::Method::Naive);
    for (size_t i = 0; i < 3; ++i)
      EXPECT_TRUE(mstest::close(a.targets[i].values, b.targets[i].values, 1e-5, 1e-5)) << P::ablation_name(kind);
  }
  // Mean over references of other lengths: one mean over positions.
  auto c = P::ablate(*m, ids, metric, {"resid_pre"}, P::AblationKind::Mean, {{1, 2, 3}, {4, 5}}, P::Method::Exact);
  EXPECT_EQ(c.targets[0].values.sizes(), (at::IntArrayRef{3, 6}));
  EXPECT_THROW(P::ablate(*m, ids, metric, {"z"}, P::AblationKind::Resample, {{1, 2}}, P::Method::Exact), Error);
  EXPECT_THROW(P::ablate(*m, ids, metric, {"z"}, P::AblationKind::Mean, {}, P::Method::Exact), Error);
}

// ablate() in its parts (issue 18): the runs computed in another order, each with a setup of its own
// (as another process would), and assembled give ablate()'s values bit for bit.
TEST(Patching, AblationPartsInAnyOrderEqualAblate) {
  auto m = models::load_model(model_dirs()[0]);
  std::vector<int64_t> ids{1, 2, 3, 4, 5, 6};
  std::vector<std::vector<int64_t>> refs{{7, 8, 9, 10, 11, 12}, {3, 1, 4, 1, 5, 9}, {2, 7, 1, 8, 2, 8}};
  P::Metric metric{P::MetricKind::LogitDiff, 3, 11, -1};
  std::vector<std::string> targets{"z_all_pos", "resid_pre"};
  for (P::AblationKind kind : {P::AblationKind::Zero, P::AblationKind::Mean, P::AblationKind::Resample}) {
    auto whole = P::ablate(*m, ids, metric, targets, kind, refs, P::Method::Exact);
    auto setup = P::ablation_setup(*m, ids, metric, targets, kind, refs, P::Method::Exact);
    ASSERT_EQ(setup.n_sources, kind == P::AblationKind::Resample ? refs.size() : 1u);
    std::vector<std::vector<at::Tensor>> values(targets.size(), std::vector<at::Tensor>(setup.n_sources));
    for (size_t k = setup.n_sources; k-- > 0;)
      for (size_t t = targets.size(); t-- > 0;) {
        auto own = P::ablation_setup(*m, ids, metric, targets, kind, refs, P::Method::Exact);
        values[t][k] = P::ablation_values(*m, own, t, P::ablation_source(*m, own, refs, k));
      }
    auto parts = P::ablation_result(*m, setup, values, std::vector<double>(targets.size(), 0.0));
    EXPECT_EQ(parts.clean_metric, whole.clean_metric);
    for (size_t t = 0; t < targets.size(); ++t)
      EXPECT_TRUE(at::equal(parts.targets[t].values, whole.targets[t].values)) << P::ablation_name(kind) << " " << t;
  }
}

TEST(Patching, DatasetOfPairsAveragesMetrics) {
  auto m = models::load_model(model_dirs()[0]);
  P::Metric m1{P::MetricKind::LogitDiff, 3, 11, -1}, m2{P::MetricKind::LogitDiff, 5, 2, -1};
  P::PromptPair a{{1, 2, 3, 4}, {1, 9, 3, 4}, m1}, b{{5, 6, 7, 8}, {5, 6, 1, 8}, m2};
  auto ra = P::patch(*m, {a}, {"resid_pre"}, {});
  auto rb = P::patch(*m, {b}, {"resid_pre"}, {});
  auto rab = P::patch(*m, {a, b}, {"resid_pre"}, {});
  EXPECT_NEAR(rab.clean_metric, (ra.clean_metric + rb.clean_metric) / 2, 1e-9);
  EXPECT_TRUE(mstest::close(rab.targets[0].values, (ra.targets[0].values + rb.targets[0].values) / 2, 1e-9, 1e-9));
  EXPECT_THROW(P::patch(*m, {a, {{1, 2, 3}, {1, 2, 4}, m1}}, {"resid_pre"}, {}), Error);
  EXPECT_THROW(P::patch(*m, {{{1, 2, 3}, {1, 2}, m1}}, {"z_all_pos"}, {}), Error);
}

// Attribution = (clean - corrupt) . grad; checked against a central finite difference of the metric
// along (clean - corrupt) in float64, cell by cell (naive hooked runs).
TEST(Patching, AttributionMatchesFiniteDifferences) {
  models::LoadOptions f64;
  f64.dtype = at::kDouble;
  auto m = models::load_model(model_dirs()[0], f64);
  std::vector<int64_t> clean{1, 2, 3, 4, 5, 6}, corrupt{1, 8, 3, 4, 2, 6};
  P::Metric metric{P::MetricKind::LogitDiff, 3, 11, -1};
  const auto& cfg = m->config();
  for (const char* name : {"resid_pre", "attn_out", "z", "v_all_pos", "pattern", "k"}) {
    auto spec = P::target_spec(name);
    auto points = P::target_points(spec, cfg);
    auto ci = at::tensor(clean, at::kLong).unsqueeze(0), ki = at::tensor(corrupt, at::kLong).unsqueeze(0);
    auto cb = P::base_run(*m, ci, metric, points);
    auto kb = P::base_run(*m, ki, metric, points);
    double corrupt_metric = 0;
    at::Tensor attr = P::attribution(*m, cb, ki, metric, {spec}, &corrupt_metric)[0].flatten();
    EXPECT_NEAR(corrupt_metric, kb.metric, 1e-9);
    auto cells = P::target_cells(spec, cfg, 6);
    const double eps = 1e-4;
    std::map<std::string, at::Tensor> plus, minus;
    for (auto& p : points) {
      plus[p] = kb.acts[p] + eps * (cb.acts[p] - kb.acts[p]);
      minus[p] = kb.acts[p] - eps * (cb.acts[p] - kb.acts[p]);
    }
    P::SweepOptions no_skip;
    no_skip.skip_noops = false;
    at::Tensor fp = P::run_cells(*m, kb, plus, cells, metric, P::Method::Naive, no_skip);
    at::Tensor fm = P::run_cells(*m, kb, minus, cells, metric, P::Method::Naive, no_skip);
    at::Tensor fd = (fp - fm) / (2 * eps);
    EXPECT_TRUE(mstest::close(attr, fd, 1e-5, 1e-7)) << name;
  }
}

TEST(Patching, TargetsParseAndErrors) {
  EXPECT_EQ(P::parse_targets("block_every, z_all_pos"),
            (std::vector<std::string>{"resid_pre", "attn_out", "mlp_out", "z_all_pos"}));
  EXPECT_THROW(P::parse_targets("resid_pree"), Error);
  EXPECT_THROW(P::parse_metric("accuracy"), Error);
  EXPECT_THROW(P::metric_position({P::MetricKind::LogitDiff, 1, 2, 10}, 5), Error);
}

}  // namespace
