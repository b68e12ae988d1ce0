// Logit-weight statistics against brute force in the test: W_U processed by hand from the checkpoint's
// own tensors as TransformerLens's fold_ln + center_unembed do, moments by plain loops in double, the
// Neuronpedia link and percentiles against Python's urllib / numpy.
#include <gtest/gtest.h>

#include <cmath>
#include <tuple>

#include "analysis/sae/stats.h"
#include "analysis/sae/stats_figures.h"
#include "analysis/sae/table.h"
#include "core/error.h"
#include "core/fs.h"
#include "device_util.h"
#include "io/safetensors.h"
#include "models/model.h"
#include "report/render.h"
#include "tensor_util.h"
#include "test_util.h"

using namespace mechscope;
namespace S = mechscope::analysis::sae;

namespace {

TEST(Unembedding, ProcessedAsTransformerLensForLayerNormAndRmsNorm) {
  {  // GPT-2: LayerNorm. fold_ln: W_U * w[:, None], then centre each column over d_model; center_unembed.
    auto m = models::load_model(mstest::fixture("gpt2/model"));
    auto f = io::SafetensorsFile::open(mstest::fixture("gpt2/model/model.safetensors"));
    at::Tensor W = f->get("transformer.wte.weight").to(at::kDouble).t();  // tied: W_U = wte^T [d, V]
    at::Tensor w = f->get("transformer.ln_f.weight").to(at::kDouble);
    at::Tensor P = W * w.unsqueeze(1);
    P = P - P.mean({0}, true);
    P = P - P.mean({1}, true);
    S::Unembedding u = S::unembedding(*m, S::UnembedMode::Processed);
    EXPECT_EQ(u.final_norm, "layernorm");
    EXPECT_TRUE(u.layer_norm);
    EXPECT_TRUE(mstest::close(u.W_U, P, 1e-4, 1e-6));
    // means over the vocabulary ~ 0, as the seed's 1e-10 means
    EXPECT_LT(u.W_U.to(at::kDouble).mean({1}).abs().max().item<double>(), 1e-7);
    S::Unembedding raw = S::unembedding(*m, S::UnembedMode::Raw);
    EXPECT_TRUE(mstest::close(raw.W_U, W, 1e-5, 1e-6));
  }
  {  // Llama: RMSNorm, untied: fold the weight only (center_weights=False), then center_unembed.
    auto m = models::load_model(mstest::fixture("llama/model"));
    auto f = io::SafetensorsFile::open(mstest::fixture("llama/model/model.safetensors"));
    at::Tensor W = f->get("lm_head.weight").to(at::kDouble).t();
    at::Tensor P = W * f->get("model.norm.weight").to(at::kDouble).unsqueeze(1);
    P = P - P.mean({1}, true);
    S::Unembedding u = S::unembedding(*m, S::UnembedMode::Processed);
    EXPECT_EQ(u.final_norm, "rmsnorm");
    EXPECT_TRUE(mstest::close(u.W_U, P, 1e-4, 1e-6));
  }
}

// Moments of one row by loops in double (SAELens's get_stats_df formulas).
void brute(const at::Tensor& row, double& mean, double& sd, double& skew, double& kurt) {
  at::Tensor r = row.to(at::kDouble).contiguous();
  const double* p = r.data_ptr<double>();
  int64_t n = r.numel();
  mean = 0;
  for (int64_t i = 0; i < n; ++i) mean += p[i];
  mean /= n;
  double var = 0;
  for (int64_t i = 0; i < n; ++i) var += (p[i] - mean) * (p[i] - mean);
  sd = std::sqrt(var / n);
  skew = kurt = 0;
  for (int64_t i = 0; i < n; ++i) {
    double z = (p[i] - mean) / sd;
    skew += z * z * z;
    kurt += z * z * z * z;
  }
  skew /= n;
  kurt /= n;
}

TEST(LogitWeightStats, MatchBruteForceAcrossBlocksWithAndWithoutCosineSim) {
  at::manual_seed(3);
  at::Tensor W_dec = at::randn({37, 16});
  at::Tensor W_U = at::randn({16, 301}) + at::rand({1, 301});  // uneven column norms
  W_U.select(1, 5).mul_(8);                                    // a heavy token: skew
  for (bool cos : {false, true}) {
    for (int64_t block : {1, 7, 256}) {
      S::StatsOptions o;
      o.cosine_sim = cos;
      o.block = block;
      std::vector<int64_t> seen;
      o.on_block = [&](int64_t f0, const at::Tensor& p) {
        seen.push_back(f0);
        EXPECT_LE(p.size(0), block);
      };
      S::FeatureStats s = S::logit_weight_stats(W_dec, W_U, o);
      EXPECT_EQ((int64_t)seen.size(), (37 + block - 1) / block);
      at::Tensor U = W_U.to(at::kDouble);
      if (cos) U = U / U.pow(2).sum(0, true).sqrt();
      at::Tensor proj = at::matmul(W_dec.to(at::kDouble), U);
      for (int64_t f = 0; f < 37; ++f) {
        double mean, sd, skew, kurt;
        brute(proj[f], mean, sd, skew, kurt);
        EXPECT_NEAR(s.mean[f].item<double>(), mean, 1e-5 * sd);
        EXPECT_NEAR(s.std[f].item<double>(), sd, 1e-5 * sd);
        EXPECT_NEAR(s.skewness[f].item<double>(), skew, 1e-4);
        EXPECT_NEAR(s.kurtosis[f].item<double>(), kurt, 1e-4 * kurt);
      }
    }
  }
  EXPECT_THROW(S::logit_weight_stats(at::randn({3, 5}), W_U), Error);
}

// The moments as tensor ops (what a GPU runs) give the CPU loop's numbers to rounding, on the CPU and
// on MECHSCOPE_TEST_DEVICE; the results are on the host either way.
TEST(LogitWeightStats, TheTensorRouteEqualsTheLoop) {
  at::manual_seed(6);
  at::Tensor W_dec = at::randn({29, 12}), W_U = at::randn({12, 211}) + at::rand({1, 211});
  W_U.select(1, 3).mul_(6);
  for (bool cos : {false, true}) {
    S::StatsOptions loop, tensor;
    loop.cosine_sim = tensor.cosine_sim = cos;
    loop.block = tensor.block = 8;
    tensor.tensor_moments = true;
    S::FeatureStats a = S::logit_weight_stats(W_dec, W_U, loop), b = S::logit_weight_stats(W_dec, W_U, tensor);
    S::FeatureStats c = S::logit_weight_stats(W_dec.to(mstest::test_device()), W_U, loop);
    for (auto [x, y, z, name] : {std::tuple{a.mean, b.mean, c.mean, "mean"}, std::tuple{a.std, b.std, c.std, "std"},
                                 std::tuple{a.skewness, b.skewness, c.skewness, "skewness"},
                                 std::tuple{a.kurtosis, b.kurtosis, c.kurtosis, "kurtosis"}}) {
      EXPECT_TRUE(y.is_cpu() && z.is_cpu()) << name;
      EXPECT_TRUE(mstest::close(y, x, 1e-12, 1e-12)) << name << (cos ? " cosine" : "");
      EXPECT_TRUE(mstest::close(z, x, 1e-4, 1e-5)) << name << (cos ? " cosine" : "");  // a GPU's sgemm
    }
  }
}

TEST(StatsLayer, AsGetAllStatsDfs) {
  EXPECT_EQ(S::stats_layer("blocks.8.hook_resid_pre"), 8);
  EXPECT_EQ(S::stats_layer("blocks.8.hook_resid_post"), 9);
  EXPECT_EQ(S::stats_layer("blocks.11.hook_mlp_out"), 11);
  EXPECT_EQ(S::stats_layer("hook_embed"), -1);
}

TEST(Neuronpedia, QuickListUrlAsPythonBuildsIt) {
  std::string dir = mstest::tmp_dir("np");
  write_file_atomic(
      dir + "/u.py",
      "import json, urllib.parse\n"
      "name = urllib.parse.quote('my list/1')\n"
      "feats = [{'modelId': 'gpt2-small', 'layer': '8-res-jb', 'index': str(f)} for f in [12, 7, 24575]]\n"
      "print('https://neuronpedia.org/quick-list/' + '?name=' + name + '&features=' + "
      "urllib.parse.quote(json.dumps(feats)), end='')\n");
  auto r = mstest::run_shell("/usr/bin/python3 " + dir + "/u.py");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(S::neuronpedia_quick_list("gpt2-small", "8-res-jb", {12, 7, 24575}, "my list/1"), r.out);
}

TEST(Quantile, AsNumpyLinear) {
  std::vector<double> v{3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5};
  auto r = mstest::run_shell(
      "/usr/bin/python3 -c \"import numpy as np; v=[3,1,4,1,5,9,2,6,5,3,5]; "
      "print(' '.join(repr(float(np.percentile(v, p))) for p in [1,5,10,25,50,75,90,95,99]))\"");
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream in(r.out);
  for (double p : {0.01, 0.05, 0.10, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99}) {
    double want;
    in >> want;
    EXPECT_NEAR(S::quantile(v, p), want, 1e-12) << p;
  }
}

S::StatsTable small_table() {
  S::StatsTable t;
  t.feature = {0, 1, 2, 3, 4};
  t.layer = {8, 8, 8, 9, 9};
  t.sae = {0, 0, 0, 1, 1};
  t.mean = {0, 0, 0, 0, 0};
  t.std = {0.1, 0.2, 0.3, 0.4, 0.5};
  t.skewness = {5, -1, 3.5, 3.5, 10};
  t.kurtosis = {40, 3, 20, 30, 200};
  t.log_feature_sparsity = {-3, -10, std::nan(""), -4, -5};
  t.sae_names = {"blocks.8.hook_resid_pre", "blocks.9.hook_resid_pre"};
  return t;
}

TEST(Query, WhereSortTopAsPandas) {
  S::StatsTable t = small_table();
  S::Query q;
  q.where = {S::parse_condition("skewness > 3")};
  q.sort = "skewness";
  q.top = 3;
  EXPECT_EQ(S::run_query(t, q), (std::vector<size_t>{4, 0, 2}));  // ties keep row order
  q.where.push_back(S::parse_condition("layer==9"));
  q.top = -1;
  EXPECT_EQ(S::run_query(t, q), (std::vector<size_t>{4, 3}));
  S::Query s;
  s.sort = "log_feature_sparsity";
  s.ascending = true;
  EXPECT_EQ(S::run_query(t, s), (std::vector<size_t>{1, 4, 3, 0, 2}));  // NaN last
  EXPECT_THROW(S::parse_condition("skew>3"), Error);
  EXPECT_THROW(S::parse_condition("skewness>>3"), Error);
  EXPECT_THROW(S::parse_condition("skewness"), Error);
  std::string csv = S::to_csv(t, true, {4});
  EXPECT_EQ(csv, "feature,mean,std,skewness,kurtosis,log_feature_sparsity,layer\n4,0,0.5,10,200,-5,9\n");
}

TEST(StatsFigures, RenderAndValidate) {
  S::StatsTable t = small_table();
  std::string dir = mstest::tmp_dir("figs");
  for (const report::Figure& f :
       {S::skewness_histogram(t, {}, "a", "a"), S::log_kurtosis_histogram(t, {}, "b", "b"),
        S::skew_kurtosis_scatter(t, {}, "c", "c"), S::percentiles_by_layer(t, "skewness", false, "d", "d"),
        S::box_by_layer(t, "kurtosis", true, "e", "e"), S::scatter_by_layer(t, -9, "f", "f")}) {
    report::validate(f);
    report::render(f, report::Format::Png, dir + "/" + f.id + ".png");
    EXPECT_TRUE(file_exists(dir + "/" + f.id + ".png"));
  }
  // The animation filters at log sparsity >= -9: feature 1 (-10) is out, feature 2 (no sparsity) stays.
  report::Figure anim = S::scatter_by_layer(t, -9, "f", "f");
  ASSERT_EQ(anim.frames.size(), 2u);
  EXPECT_EQ(std::get<report::Scatter>(anim.frames[0].series[0]).x.size(), 2u);
}

}  // namespace
