// Causal tracing against ROME's numbers (tests/fixtures/gpt2/reference.json → "trace", computed with
// kmeng01/rome's trace_with_patch), the fast path against the naive one, and the AIE categories.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>

#include "analysis/causal_trace/causal_trace.h"
#include "core/error.h"
#include "core/fs.h"
#include "io/safetensors.h"
#include "tensor_util.h"
#include "test_util.h"

using namespace mechscope;
namespace ct = mechscope::analysis::causal_trace;

namespace {

nlohmann::json reference() { return nlohmann::json::parse(read_file(mstest::fixture("gpt2/reference.json")))["trace"]; }

// A random GPT-2 (HF layout) small enough for the naive path: `layers` blocks, d_model 16.
std::string random_gpt2(const std::string& name, int layers, int64_t vocab = 97) {
  std::string dir = mstest::tmp_dir(name);
  const int64_t d = 16, P = 32;
  at::manual_seed(layers * 7 + 1);
  std::vector<std::pair<std::string, at::Tensor>> w;
  auto normal = [](std::vector<int64_t> s, double sd) { return at::randn(s) * sd; };
  w.emplace_back("wte.weight", normal({vocab, d}, 0.5));
  w.emplace_back("wpe.weight", normal({P, d}, 0.2));
  for (int l = 0; l < layers; ++l) {
    std::string p = "h." + std::to_string(l) + ".";
    w.emplace_back(p + "ln_1.weight", 1 + normal({d}, 0.1));
    w.emplace_back(p + "ln_1.bias", normal({d}, 0.1));
    w.emplace_back(p + "attn.c_attn.weight", normal({d, 3 * d}, 0.4));
    w.emplace_back(p + "attn.c_attn.bias", normal({3 * d}, 0.1));
    w.emplace_back(p + "attn.c_proj.weight", normal({d, d}, 0.3));
    w.emplace_back(p + "attn.c_proj.bias", normal({d}, 0.1));
    w.emplace_back(p + "ln_2.weight", 1 + normal({d}, 0.1));
    w.emplace_back(p + "ln_2.bias", normal({d}, 0.1));
    w.emplace_back(p + "mlp.c_fc.weight", normal({d, 4 * d}, 0.3));
    w.emplace_back(p + "mlp.c_fc.bias", normal({4 * d}, 0.1));
    w.emplace_back(p + "mlp.c_proj.weight", normal({4 * d, d}, 0.2));
    w.emplace_back(p + "mlp.c_proj.bias", normal({d}, 0.1));
  }
  w.emplace_back("ln_f.weight", at::ones({d}));
  w.emplace_back("ln_f.bias", at::zeros({d}));
  io::write_safetensors(join_path(dir, "model.safetensors"), w, {{"format", "pt"}});
  nlohmann::json cfg{{"model_type", "gpt2"},
                     {"n_embd", d},
                     {"n_layer", layers},
                     {"n_head", 4},
                     {"n_positions", P},
                     {"vocab_size", vocab},
                     {"activation_function", "gelu_new"}};
  write_file_atomic(join_path(dir, "config.json"), cfg.dump());
  return dir;
}

void expect_fast_equals_naive(const models::HookedModel& m, const ct::TraceInput& in, ct::TraceOptions opt,
                              double tol = 1e-5) {
  opt.naive = false;
  ct::TraceResult fast = ct::trace(m, in, opt);
  EXPECT_EQ(fast.method, "fast");  // every causal architecture has block_packed
  // The packed engine's generic path (block() on full-length runs rebuilt from each run's corrupted
  // base run), which serves models without block_packed.
  opt.use_packed = false;
  ct::TraceResult generic = ct::trace(m, in, opt);
  opt.use_packed = true;
  opt.naive = true;
  ct::TraceResult naive = ct::trace(m, in, opt);
  EXPECT_EQ(naive.method, "naive");
  for (size_t k = 0; k < opt.kinds.size(); ++k)
    EXPECT_TRUE(mstest::close(generic.scores[k], naive.scores[k], 0, tol)) << "generic " << ct::kind_name(opt.kinds[k]);
  EXPECT_EQ(fast.answer_id, naive.answer_id);
  EXPECT_DOUBLE_EQ(fast.low_score, naive.low_score);
  for (size_t k = 0; k < opt.kinds.size(); ++k)
    EXPECT_TRUE(mstest::close(fast.scores[k], naive.scores[k], 0, tol)) << ct::kind_name(opt.kinds[k]);
}

}  // namespace

TEST(CausalTrace, MatchesRomeOnTheGpt2Fixture) {
  auto ref = reference();
  auto st = io::SafetensorsFile::open(mstest::fixture("gpt2/reference.safetensors"));
  auto m = models::load_model(mstest::fixture("gpt2/model"));
  ct::TraceInput in;
  in.ids = mstest::to_vec(st->get("trace.input_ids"));
  in.subject_begin = ref["subject_range"][0];
  in.subject_end = ref["subject_range"][1];
  ct::TraceOptions opt;
  opt.samples = ref["samples"];
  opt.window = ref["window"];
  opt.noise.scale = ref["noise_level"];
  for (bool naive : {false, true}) {
    opt.naive = naive;
    ct::TraceResult r = ct::trace(*m, in, opt);
    EXPECT_EQ(r.answer_id, ref["answer_id"].get<int64_t>());
    EXPECT_NEAR(r.high_score, ref["high_score"].get<double>(), 1e-7);
    EXPECT_NEAR(r.low_score, ref["low_score"].get<double>(), 1e-7);
    for (ct::Kind k : {ct::Kind::All, ct::Kind::Mlp, ct::Kind::Attn})
      EXPECT_TRUE(mstest::close(r.of(k), st->get(std::string("trace.scores.") + ct::kind_name(k)), 1e-4, 1e-8))
          << ct::kind_name(k) << (naive ? " naive" : " fast");
  }
}

TEST(CausalTrace, FastEqualsNaiveOnRandomGpt2) {
  auto m = models::load_model(random_gpt2("ct_gpt2_6", 6));
  ct::TraceInput in;
  in.ids = {5, 17, 42, 8, 3, 77, 21, 60, 11};
  in.subject_begin = 2;
  in.subject_end = 5;
  ct::TraceOptions opt;
  opt.samples = 4;
  opt.window = 3;
  opt.noise.scale = 1.5;
  expect_fast_equals_naive(*m, in, opt);
  // Windows that share their first layers (clipped at 0) in different ways: odd, all-covering, one.
  for (int w : {5, 12, 1}) {
    opt.window = w;
    SCOPED_TRACE(w);
    expect_fast_equals_naive(*m, in, opt);
  }
  // Small batches (chunking), an even window, replace, uniform and Student-t noise, a given answer,
  // a subject at the start and one at the end.
  opt.max_batch_tokens = 40;
  opt.window = 4;
  opt.noise.replace = true;
  expect_fast_equals_naive(*m, in, opt);
  opt.noise = ct::resolve_noise(ct::parse_noise("u0.8"), 0);
  in.answer = 33;
  in.subject_begin = 0;
  in.subject_end = 2;
  expect_fast_equals_naive(*m, in, opt);
  opt.noise = ct::resolve_noise(ct::parse_noise("t3"), 0.7);
  in.subject_begin = 7;
  in.subject_end = 9;
  expect_fast_equals_naive(*m, in, opt);
}

TEST(CausalTrace, RejectedAnswerTracesNoCell) {
  auto m = models::load_model(random_gpt2("ct_gpt2_6", 6));
  ct::TraceInput in;
  in.ids = {5, 17, 42, 8, 3, 77};
  in.subject_begin = 1;
  in.subject_end = 3;
  ct::TraceOptions opt;
  opt.samples = 2;
  opt.noise.scale = 1.0;
  int64_t cells = 0, seen = -1;
  opt.on_cells = [&](int64_t k) { cells += k; };
  opt.accept = [&](int64_t id) {
    seen = id;
    return false;
  };
  ct::TraceResult r = ct::trace(*m, in, opt);
  EXPECT_TRUE(r.rejected);
  EXPECT_TRUE(r.scores.empty());
  EXPECT_EQ(cells, 0);
  EXPECT_EQ(seen, r.answer_id);  // the clean run's top token, as ROME's expect checks
  opt.accept = [](int64_t) { return true; };
  r = ct::trace(*m, in, opt);
  EXPECT_FALSE(r.rejected);
  EXPECT_EQ(cells, 3 * 6 * 6);  // every cell reported done
  ASSERT_EQ(r.scores.size(), 3u);
}

TEST(CausalTrace, FastEqualsNaiveOnOtherArchitectures) {
  for (std::string fx : {"gpt_neo/model", "gpt_neox/model", "llama/model", "qwen2/model", "gemma2/model"}) {
    auto m = models::load_model(mstest::fixture(fx));
    ct::TraceInput in;
    int64_t V = m->config().d_vocab;
    in.ids = {1 % V, 7 % V, 19 % V, 23 % V, 5 % V, 11 % V, 2 % V};
    in.subject_begin = 1;
    in.subject_end = 4;
    ct::TraceOptions opt;
    opt.samples = 3;
    opt.window = 2;
    opt.noise.scale = 0.5;
    SCOPED_TRACE(fx);
    expect_fast_equals_naive(*m, in, opt);
  }
}

TEST(CausalTrace, RejectsBadRanges) {
  auto m = models::load_model(mstest::fixture("gpt2/model"));
  ct::TraceInput in;
  in.ids = {1, 2, 3};
  ct::TraceOptions opt;
  in.subject_begin = 2, in.subject_end = 5;
  EXPECT_THROW(ct::trace(*m, in, opt), Error);
  in.subject_begin = 2, in.subject_end = 2;
  EXPECT_THROW(ct::trace(*m, in, opt), Error);
  in.subject_begin = 0, in.subject_end = 1;
  in.answer = 1 << 20;
  EXPECT_THROW(ct::trace(*m, in, opt), Error);
}

TEST(CausalTrace, WindowRangeIsRomes) {
  // range(max(0, layer - window // 2), min(num_layers, layer - (-window // 2)))
  EXPECT_EQ(ct::window_range(0, 10, 48), std::make_pair(0, 5));
  EXPECT_EQ(ct::window_range(20, 10, 48), std::make_pair(15, 25));
  EXPECT_EQ(ct::window_range(47, 10, 48), std::make_pair(42, 48));
  EXPECT_EQ(ct::window_range(5, 3, 12), std::make_pair(4, 7));
  EXPECT_EQ(ct::window_range(1, 10, 2), std::make_pair(0, 2));
}

TEST(CausalTrace, NoiseRules) {
  auto s3 = ct::parse_noise("s3");
  EXPECT_EQ(s3.type, ct::NoiseRule::StdMultiple);
  EXPECT_DOUBLE_EQ(ct::resolve_noise(s3, 0.5).scale, 1.5);
  EXPECT_DOUBLE_EQ(ct::resolve_noise(ct::parse_noise("0.1"), 9).scale, 0.1);
  auto u = ct::resolve_noise(ct::parse_noise("u0.5"), 9);
  EXPECT_EQ(u.dist, ct::Noise::Uniform);
  EXPECT_DOUBLE_EQ(u.scale, 0.5);
  auto t = ct::resolve_noise(ct::parse_noise("t4"), 2.0);
  EXPECT_EQ(t.dist, ct::Noise::StudentT);
  EXPECT_DOUBLE_EQ(t.scale, std::sqrt(0.5) * 2.0);
  for (std::string bad : {"", "x3", "s", "u", "t2", "-1", "s3x", "nan"})
    if (bad != "s") EXPECT_THROW(ct::parse_noise(bad), Error) << bad;
  EXPECT_DOUBLE_EQ(ct::parse_noise("s").value, 1.0);
  // ROME's draw: noise * RandomState(1).randn(samples, subject_len, d_model).
  ct::Noise n;
  n.scale = 2.0;
  at::Tensor d = ct::draw_noise(n, 1, 1, 1, 5);
  std::vector<double> want{1.62434536, -0.61175641, -0.52817175, -1.07296862, 0.86540763};
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(d[0][0][i].item<double>(), 2 * want[i], 1e-7);
}

TEST(CausalTrace, EmbeddingStdIsRomes) {
  auto m = models::load_model(mstest::fixture("gpt2/model"));
  auto st = io::SafetensorsFile::open(mstest::fixture("gpt2/reference.safetensors"));
  auto ids = mstest::to_vec(st->get("trace.input_ids"));
  std::vector<int64_t> subject(ids.begin() + 1, ids.begin() + 4);
  // reference.json: noise_level = 3 × std of the token-embedding rows of the subject tokens.
  EXPECT_NEAR(3 * ct::embedding_std(*m, {subject}), reference()["noise_level"].get<double>(), 1e-6);
}

TEST(CausalTrace, AieCategories) {
  // 8 tokens, subject [2, 5): first 2, middle 3, last 4, first after 5, further 6, last 7.
  ct::CategoryRows c = ct::categories(8, 2, 5);
  EXPECT_EQ(c.rows[0], std::vector<int64_t>{2});
  EXPECT_EQ(c.rows[1], std::vector<int64_t>{3});
  EXPECT_EQ(c.rows[2], std::vector<int64_t>{4});
  EXPECT_EQ(c.rows[3], std::vector<int64_t>{5});
  EXPECT_EQ(c.rows[4], std::vector<int64_t>{6});
  EXPECT_EQ(c.rows[5], std::vector<int64_t>{7});
  // One-token subject right before the last token: first = last subject token, no middle, no further.
  c = ct::categories(4, 2, 3);
  EXPECT_EQ(c.rows[0], std::vector<int64_t>{2});
  EXPECT_TRUE(c.rows[1].empty());
  EXPECT_EQ(c.rows[2], std::vector<int64_t>{2});
  EXPECT_EQ(c.rows[3], std::vector<int64_t>{3});
  EXPECT_TRUE(c.rows[4].empty());
  EXPECT_EQ(c.rows[5], std::vector<int64_t>{3});

  // Two facts, 2 layers; scores[t][l] = 10 t + l (+ 100 for the second fact).
  ct::AieAccumulator acc;
  at::Tensor f1 = at::arange(8, at::kDouble).unsqueeze(1) * 10 + at::arange(2, at::kDouble);
  at::Tensor f2 = at::arange(9, at::kDouble).unsqueeze(1) * 10 + at::arange(2, at::kDouble) + 100;
  acc.add(f1, 2, 5, 1.0, 50.0);  // middle {3}, further {6}
  acc.add(f2, 1, 5, 3.0, 70.0);  // middle {2, 3}, further {6, 7}
  at::Tensor mean = acc.mean();
  EXPECT_DOUBLE_EQ(mean[0][0].item<double>(), (20 + 110) / 2.0);
  EXPECT_DOUBLE_EQ(mean[1][1].item<double>(), (31 + 121 + 131) / 3.0);  // pooled rows
  EXPECT_DOUBLE_EQ(mean[4][0].item<double>(), (60 + 160 + 170) / 3.0);
  EXPECT_DOUBLE_EQ(mean[5][0].item<double>(), (70 + 180) / 2.0);
  EXPECT_DOUBLE_EQ(acc.mean_low(), 2.0);
  EXPECT_DOUBLE_EQ(acc.mean_high(), 60.0);
  EXPECT_DOUBLE_EQ(acc.aie()[0][0].item<double>(), 65 - 2.0);
  EXPECT_DOUBLE_EQ(acc.std()[0][0].item<double>(), 45.0);         // population std of {20, 110}
  EXPECT_DOUBLE_EQ(acc.effect_std()[0][0].item<double>(), 44.0);  // of {20 - 1, 110 - 3}
  EXPECT_EQ(acc.facts(), 2);
}
