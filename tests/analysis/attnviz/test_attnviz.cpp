// AttentionViz library: queries/keys against transformers' float64 BERT projections, the recomputed
// attention against every fixture family's hook_pattern (and a family whose rule is wrong caught),
// attention unchanged by every normalisation mode and scope, PCA against an eigendecomposition,
// t-SNE determinism and cluster structure, line rules and word matching over word pieces.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "analysis/attnviz/attnviz.h"
#include "analysis/attnviz/text.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "models/model.h"
#include "tensor_util.h"
#include "test_util.h"
#include "tokenizers/tokenizer.h"

using namespace mechscope;
namespace V = mechscope::analysis::attnviz;

namespace {

std::vector<V::Input> random_inputs(int64_t vocab, std::vector<int64_t> lengths, uint64_t seed) {
  at::manual_seed(seed);
  std::vector<V::Input> out;
  for (int64_t n : lengths) out.push_back({mstest::to_vec(at::randint(3, vocab, {n}, at::kLong)), {}});
  return out;
}

std::vector<int> all_layers(const models::HookedModel& m) {
  std::vector<int> l;
  for (int i = 0; i < m.config().n_layers; ++i) l.push_back(i);
  return l;
}

// A model that runs another one but claims a different model_type: attnviz then applies the wrong
// family's attention rule, which the check against hook_pattern must catch.
class Disguised final : public models::HookedModel {
 public:
  Disguised(const models::HookedModel& m, const std::string& type) : m_(m) {
    cfg_ = m.config();
    cfg_.model_type = type;
  }
  std::vector<std::string> hook_names() const override { return m_.hook_names(); }
  at::Tensor embed(const at::Tensor& ids, models::RunContext& ctx) const override { return m_.embed(ids, ctx); }
  at::Tensor block(int l, const at::Tensor& r, models::RunContext& ctx) const override { return m_.block(l, r, ctx); }
  at::Tensor final_norm(const at::Tensor& r, models::RunContext& ctx) const override { return m_.final_norm(r, ctx); }
  at::Tensor unembed(const at::Tensor& x, const at::Tensor& c) const override { return m_.unembed(x, c); }
  std::vector<std::pair<std::string, at::Tensor>> parameters() const override { return m_.parameters(); }

 private:
  const models::HookedModel& m_;
};

TEST(Attnviz, BertQueriesKeysMatchTransformers) {
  auto model = models::load_model(mstest::fixture("bert/model"));
  auto ref = io::SafetensorsFile::open(mstest::fixture("bert/reference.safetensors"));
  at::Tensor ids = ref->get("input_ids"), mask = ref->get("attention_mask"), types = ref->get("token_type_ids");
  std::vector<V::Input> in;
  for (int64_t b = 0; b < ids.size(0); ++b) {
    int64_t n = mask[b].sum().item<int64_t>();
    in.push_back({mstest::to_vec(ids[b].narrow(0, 0, n)), mstest::to_vec(types[b].narrow(0, 0, n))});
  }
  auto ex = V::extract(*model, in, {0, 1});
  const auto& c = model->config();
  for (size_t li = 0; li < 2; ++li) {
    for (int64_t b = 0; b < ids.size(0); ++b) {
      int64_t n = ex.lengths[b];
      std::string L = "layer" + std::to_string(li);
      at::Tensor rq = ref->get(L + ".query")[b].narrow(0, 0, n).view({n, c.n_heads, c.d_head});
      at::Tensor rk = ref->get(L + ".key")[b].narrow(0, 0, n).view({n, c.n_heads, c.d_head});
      EXPECT_TRUE(mstest::close(ex.q[li][b].narrow(0, 0, n), rq, 1e-4, 1e-5)) << L << " text " << b;
      EXPECT_TRUE(mstest::close(ex.k[li][b].narrow(0, 0, n), rk, 1e-4, 1e-5)) << L << " text " << b;
      // Padding positions are zero.
      if (n < ex.n_pos) EXPECT_EQ(ex.q[li][b].narrow(0, n, ex.n_pos - n).abs().max().item<double>(), 0.0);
      // The attention recomputed from them against transformers' own attentions (float64 reference).
      at::Tensor mine = V::recompute_pattern(ex.q[li], ex.k[li], ex.allowed(li), ex.rules[li])[b];
      at::Tensor theirs = ref->get("attentions." + std::to_string(li))[b];
      EXPECT_TRUE(
          mstest::close(mine.narrow(1, 0, n).narrow(2, 0, n), theirs.narrow(1, 0, n).narrow(2, 0, n), 1e-4, 1e-6));
    }
    EXPECT_LT(ex.max_diff[li], 1e-5);
  }
}

TEST(Attnviz, RecomputedAttentionEqualsHookPatternOnEveryFamily) {
  std::vector<std::string> families{"gpt2", "gpt_neo", "gpt_neox", "llama", "qwen2", "bert"};
  auto supported = models::supported_model_types();
  if (std::find(supported.begin(), supported.end(), "gemma2") != supported.end()) families.push_back("gemma2");
  for (auto& f : families) {
    auto model = models::load_model(mstest::fixture(f + "/model"));
    // Unequal lengths: padding, and (GPT-Neo, window 4) local windows shorter than the text.
    auto in = random_inputs(std::min<int64_t>(model->config().d_vocab, 500), {11, 6, 9}, 3);
    V::Extracted ex;
    ASSERT_NO_THROW(ex = V::extract(*model, in, all_layers(*model))) << f;
    for (size_t li = 0; li < ex.layers.size(); ++li) EXPECT_LT(ex.max_diff[li], 1e-5) << f << " layer " << li;
    EXPECT_EQ(ex.k[0].size(2), model->config().n_heads) << f << ": keys expanded to the query heads";
  }
}

TEST(Attnviz, WrongFamilyRuleIsCaught) {
  auto gpt2 = models::load_model(mstest::fixture("gpt2/model"));
  Disguised as_neo(*gpt2, "gpt_neo");  // GPT-Neo's rule: unscaled scores (and no window config: global)
  auto in = random_inputs(500, {8}, 1);
  try {
    V::extract(as_neo, in, {0});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_TRUE(mstest::contains(e.what(), "hook_pattern")) << e.what();
    EXPECT_TRUE(mstest::contains(e.what(), "gpt_neo")) << e.what();
  }
  try {
    V::extract(*gpt2, in, {2});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_TRUE(mstest::contains(e.what(), "layer 2 is out of range")) << e.what();
  }
}

TEST(Attnviz, NormalisationLeavesAttentionUnchanged) {
  for (std::string f : {"llama", "bert", "gpt_neo"}) {
    auto model = models::load_model(mstest::fixture(f + "/model"));
    auto in = random_inputs(500, {10, 7, 12}, 5);
    auto ex = V::extract(*model, in, all_layers(*model));
    std::vector<int64_t> heads;
    for (int64_t h = 0; h < ex.n_heads; ++h) heads.push_back(h);
    for (auto mode : {V::Mode::Paper, V::Mode::Search, V::Mode::None})
      for (auto scope : {V::Scope::Head, V::Scope::Layer, V::Scope::Model}) {
        V::NormalizeOptions opt;
        opt.mode = mode;
        std::vector<at::Tensor> qn, kn;
        for (auto& g : V::scope_groups(scope, ex, heads)) {
          auto n = V::normalize(ex, g, opt, qn, kn);
          EXPECT_LE(n.max_pattern_change, 1e-5) << f << " " << V::mode_name(mode) << " " << g.name;
          if (mode == V::Mode::Paper)
            EXPECT_TRUE(n.c != 1 || n.a != 0 ||
                        std::any_of(n.translation.begin(), n.translation.end(), [](double v) { return v != 0; }));
        }
        // Independently of normalize()'s own check: the model's pattern from the stored vectors.
        for (size_t li = 0; li < ex.layers.size(); ++li) {
          at::Tensor p = V::recompute_pattern(qn[li], kn[li], ex.allowed(li), ex.rules[li]);
          EXPECT_LE((p - ex.pattern[li]).abs().max().item<double>(), 1e-5) << f << " " << V::mode_name(mode);
          if (mode == V::Mode::Paper) EXPECT_GT((qn[li] - ex.q[li]).abs().max().item<double>(), 0.0);
        }
      }
  }
}

TEST(Attnviz, NormalizeAllEqualsOneGroupAtATime) {
  auto model = models::load_model(mstest::fixture("llama/model"));
  auto ex = V::extract(*model, random_inputs(500, {9, 12}, 8), all_layers(*model));
  auto groups = V::scope_groups(V::Scope::Head, ex, {0, 1, 2, 3});
  std::vector<at::Tensor> q1, k1, q2, k2;
  auto par = V::normalize_all(ex, groups, {}, q1, k1);
  for (size_t g = 0; g < groups.size(); ++g) EXPECT_EQ(par[g].c, V::normalize(ex, groups[g], {}, q2, k2).c) << g;
  for (size_t li = 0; li < ex.layers.size(); ++li) EXPECT_TRUE(at::equal(q1[li], q2[li]) && at::equal(k1[li], k2[li]));
}

TEST(Attnviz, PaperModeCentresKeysAndMaximisesTheWeightedCorrelation) {
  auto model = models::load_model(mstest::fixture("gpt2/model"));
  auto ex = V::extract(*model, random_inputs(5000, {12, 9}, 2), {1});
  V::Group g{"L1 H2", {{0, 2}}};
  std::vector<at::Tensor> qn, kn;
  auto n = V::normalize(ex, g, {}, qn, kn);
  // Translation = query centroid - key centroid over the real tokens.
  at::Tensor q = ex.q[0].select(2, 2), k = ex.k[0].select(2, 2);
  double count = double(ex.lengths[0] + ex.lengths[1]);
  at::Tensor want = (q.sum(at::IntArrayRef{0, 1}) - k.sum(at::IntArrayRef{0, 1})) / count;
  for (int64_t i = 0; i < ex.d_head; ++i) EXPECT_NEAR(n.translation[i], want[i].item<double>(), 1e-9);
  // c is a maximum of the attention-weighted correlation of q·k with -|q - k| (keys translated).
  at::Tensor kt = k + want * (q.abs().sum(-1, true) > 0).to(at::kDouble);
  at::Tensor attn = ex.pattern[0].select(1, 2), ok = ex.allowed(0);
  double f = V::weighted_corr(q, kt, attn, ok, n.c);
  EXPECT_GE(f, V::weighted_corr(q, kt, attn, ok, n.c * 1.05) - 1e-9);
  EXPECT_GE(f, V::weighted_corr(q, kt, attn, ok, n.c / 1.05) - 1e-9);
  EXPECT_NEAR(f, n.weighted_corr_after, 1e-9);
  EXPECT_GE(n.weighted_corr_after, V::weighted_corr(q, kt, attn, ok, 1.0) - 1e-9);
}

TEST(Attnviz, SearchModeCIsInertForTheCosineCriterion) {
  auto model = models::load_model(mstest::fixture("gpt2/model"));
  auto ex = V::extract(*model, random_inputs(5000, {10}, 4), {0});
  V::NormalizeOptions opt;
  opt.mode = V::Mode::Search;
  std::vector<at::Tensor> qn, kn;
  auto n = V::normalize(ex, {"L0 H0", {{0, 0}}}, opt, qn, kn);
  EXPECT_LT(n.c_effect, 1e-9);
  EXPECT_NEAR(n.c, 1.0, 1e-12);  // the grid 0.25..4 (17 log steps) holds 1
  EXPECT_GE(n.cosine_corr_after, n.cosine_corr_before - 1e-12);
  for (double t : n.translation) EXPECT_EQ(t, n.a);
}

TEST(Attnviz, PcaEqualsTheSvd) {
  at::manual_seed(0);
  at::Tensor x = at::randn({200, 6}, at::kDouble) * at::tensor({5.0, 3.0, 2.0, 1.0, 0.5, 0.1}, at::kDouble) + 3;
  std::vector<double> ratio;
  at::Tensor y = V::pca(x, 3, &ratio);
  at::Tensor xc = x - x.mean(0, true);
  auto [U, S, Vh] = at::linalg_svd(xc, false);
  double total = (S * S).sum().item<double>();
  for (int c = 0; c < 3; ++c) {
    at::Tensor v = Vh[c];
    double sign = v[v.abs().argmax()].item<double>() < 0 ? -1 : 1;  // the sign rule
    EXPECT_TRUE(mstest::close(y.select(1, c), U.select(1, c) * S[c] * sign, 1e-8, 1e-8)) << "component " << c;
    EXPECT_NEAR(ratio[c], (S[c] * S[c]).item<double>() / total, 1e-10);
  }
  EXPECT_EQ(V::pca(x.narrow(1, 0, 2), 3).select(1, 2).abs().max().item<double>(), 0.0);  // rank 2: third is zero
  // In parallel over point sets, the same numbers.
  V::PointSet a{x, {}}, b{x * 2, {}};
  auto all = V::project_all({a, b}, V::Projection::Pca, 3, {});
  EXPECT_TRUE(mstest::close(all[0], y, 1e-10, 1e-10));  // (one BLAS thread there: summation order may differ)
  EXPECT_TRUE(mstest::close(all[1], y * 2, 1e-10, 1e-10));
}

TEST(Attnviz, TsneIsSeededAndKeepsTwoBlobsApart) {
  at::manual_seed(1);
  at::Tensor a = at::randn({60, 10}, at::kDouble), b = at::randn({60, 10}, at::kDouble) + 12;
  at::Tensor x = at::cat({a, b});
  V::TsneOptions o;
  o.perplexity = 15, o.iterations = 500, o.seed = 3;
  at::Tensor y1 = V::tsne(x, o), y2 = V::tsne(x, o);
  EXPECT_TRUE(at::equal(y1, y2));
  o.seed = 4;
  EXPECT_FALSE(at::equal(y1, V::tsne(x, o)));
  // Every point's nearest embedded neighbour is in its own blob, and the blobs are far apart
  // compared with their spread.
  at::Tensor d = at::cdist(y1, y1) + at::eye(120, at::kDouble) * 1e9;
  at::Tensor nn = d.argmin(1);
  for (int64_t i = 0; i < 120; ++i) EXPECT_EQ(i < 60, nn[i].item<int64_t>() < 60) << i;
  at::Tensor ca = y1.narrow(0, 0, 60).mean(0), cb = y1.narrow(0, 60, 60).mean(0);
  double spread = std::max((y1.narrow(0, 0, 60) - ca).norm(2, 1).mean().item<double>(),
                           (y1.narrow(0, 60, 60) - cb).norm(2, 1).mean().item<double>());
  EXPECT_GT((ca - cb).norm().item<double>(), 3 * spread);
  EXPECT_THROW(V::tsne(x.narrow(0, 0, 2), o), Error);
}

TEST(Attnviz, LineRules) {
  // One text of 3 tokens, bidirectional: rows are each query's attention.
  at::Tensor attn = at::tensor({0.7, 0.2, 0.1, 0.1, 0.3, 0.6, 0.4, 0.4, 0.2}, at::kDouble).view({1, 3, 3});
  at::Tensor ok = at::ones({1, 3, 3}, at::kBool);
  auto top = V::links(attn, ok, {3}, V::parse_lines("top1"));
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].key, 0);
  EXPECT_EQ(top[1].key, 2);
  EXPECT_EQ(top[2].key, 0);  // tie: the earlier key
  EXPECT_EQ(V::links(attn, ok, {3}, V::parse_lines("topk:2")).size(), 6u);
  auto mass = V::links(attn, ok, {3}, V::parse_lines("mass:0.8"));  // 0.7+0.2 | 0.6+0.3 | 0.4+0.4
  ASSERT_EQ(mass.size(), 6u);
  EXPECT_TRUE(mass[0].top && !mass[1].top);
  EXPECT_DOUBLE_EQ(mass[1].attention, 0.2);
  EXPECT_THROW(V::parse_lines("topk:0"), Error);
  EXPECT_THROW(V::parse_lines("mass:1.5"), Error);
  EXPECT_THROW(V::parse_lines("top2"), Error);
}

TEST(Attnviz, WordsMatchEveryPiece) {
  auto tok = tokenizers::load_tokenizer(mstest::fixture("gpt2/model"));
  auto ids = tok->encode("The brown capybara is sleeping now.");
  auto tt = V::token_text(*tok, ids);
  EXPECT_EQ(tt.text, "The brown capybara is sleeping now.");
  auto cap = V::match_word(tt, "capybara");
  ASSERT_GE(cap.size(), 2u);  // GPT-2 splits it
  std::string joined;
  for (int64_t i : cap) joined += tt.text.substr(tt.spans[i].first, tt.spans[i].second - tt.spans[i].first);
  EXPECT_EQ(joined, " capybara");
  EXPECT_EQ(V::match_word(tt, "Brown").size(), 1u);
  EXPECT_TRUE(V::match_word(tt, "capy").empty());  // not a whole word
  EXPECT_TRUE(V::match_word(tt, "giraffe").empty());
}

}  // namespace
