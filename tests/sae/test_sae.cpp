// SAE loading and maths against a direct computation in the test (double precision, plain loops),
// SAELens-format fixtures written here, and .npz files written by numpy itself.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "core/fs.h"
#include "io/safetensors.h"
#include "models/model.h"
#include "sae/npz.h"
#include "sae/sae.h"
#include "sae/splice.h"
#include "saelens_format.h"
#include "tensor_util.h"
#include "test_util.h"

using namespace mechscope;

namespace {

// A random SAE written in SAELens's on-disk format; cfg is merged into a pre-6 style cfg.json.
std::string write_saelens(const std::string& name, int64_t d_in, int64_t d_sae, nlohmann::json cfg,
                          bool jumprelu = false, bool sparsity = true, uint64_t seed = 1) {
  at::manual_seed(seed);
  std::string dir = mstest::tmp_dir(name);
  nlohmann::json j = {{"d_in", d_in},
                      {"d_sae", d_sae},
                      {"hook_point", "blocks.1.hook_resid_pre"},
                      {"architecture", "standard"},
                      {"model_name", "tiny-gpt2"}};
  for (auto& [k, v] : cfg.items()) j[k] = v;
  write_file_atomic(dir + "/cfg.json", j.dump());
  std::vector<std::pair<std::string, at::Tensor>> w{{"W_enc", at::randn({d_in, d_sae}) * 0.3},
                                                    {"b_enc", at::randn({d_sae}) * 0.1},
                                                    {"W_dec", at::randn({d_sae, d_in}) * 0.3},
                                                    {"b_dec", at::randn({d_in}) * 0.1}};
  if (jumprelu) w.emplace_back("threshold", at::rand({d_sae}) * 0.3);
  io::write_safetensors(dir + "/sae_weights.safetensors", w);
  if (sparsity) io::write_safetensors(dir + "/sparsity.safetensors", {{"sparsity", -at::rand({d_sae}) * 5}});
  return dir;
}

// The SAE forward for one token with loops in double: what SAELens's encode/decode compute.
std::vector<double> direct(const sae::SAE& s, const std::vector<double>& x_in,
                           std::vector<double>* acts_out = nullptr) {
  int64_t di = s.cfg.d_in, ds = s.cfg.d_sae;
  auto W_enc = s.W_enc.to(at::kDouble).contiguous(), W_dec = s.W_dec.to(at::kDouble).contiguous();
  auto b_enc = s.b_enc.to(at::kDouble).contiguous(), b_dec = s.b_dec.to(at::kDouble).contiguous();
  const double *we = W_enc.data_ptr<double>(), *wd = W_dec.data_ptr<double>(), *be = b_enc.data_ptr<double>(),
               *bd = b_dec.data_ptr<double>();
  std::vector<double> x = x_in;
  double mul = 1, out_mul = 1, shift = 0;
  if (s.cfg.normalize == sae::Normalize::ConstantNormRescale) {
    double n = 0;
    for (double v : x) n += v * v;
    mul = std::sqrt((double)di) / std::sqrt(n);
    out_mul = 1 / mul;
  } else if (s.cfg.normalize == sae::Normalize::LayerNorm) {
    for (double v : x) shift += v / di;
    double var = 0;
    for (double v : x) var += (v - shift) * (v - shift) / (di - 1);
    mul = 1 / (std::sqrt(var) + 1e-5);
    out_mul = std::sqrt(var);
  }
  for (auto& v : x) v = (v - shift) * mul;
  std::vector<double> h(ds);
  for (int64_t f = 0; f < ds; ++f) {
    double a = be[f];
    for (int64_t i = 0; i < di; ++i) a += (x[i] - (s.cfg.apply_b_dec_to_input ? bd[i] : 0)) * we[i * ds + f];
    h[f] = a;
  }
  std::vector<double> acts(ds, 0);
  if (s.cfg.architecture == sae::Architecture::TopK) {
    std::vector<int64_t> idx(ds);
    for (int64_t f = 0; f < ds; ++f) idx[f] = f;
    std::sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return h[a] > h[b]; });
    for (int64_t r = 0; r < s.cfg.k; ++r) acts[idx[r]] = std::max(0.0, h[idx[r]]);
  } else {
    for (int64_t f = 0; f < ds; ++f) {
      acts[f] = std::max(0.0, h[f]);
      if (s.cfg.architecture == sae::Architecture::JumpReLU && !(h[f] > s.threshold[f].item<double>())) acts[f] = 0;
    }
  }
  if (acts_out) *acts_out = acts;
  std::vector<double> y(di);
  for (int64_t i = 0; i < di; ++i) {
    double a = bd[i];
    for (int64_t f = 0; f < ds; ++f) a += acts[f] * wd[f * di + i];
    y[i] = a * out_mul + shift;
  }
  return y;
}

void expect_matches_direct(const sae::SAE& s, const at::Tensor& x) {
  at::Tensor acts = sae::encode(s, x);
  at::Tensor rec = sae::reconstruct(s, x);
  ASSERT_EQ(acts.sizes(), (std::vector<int64_t>{x.size(0), s.cfg.d_sae}));
  for (int64_t t = 0; t < x.size(0); ++t) {
    std::vector<double> xi(s.cfg.d_in), a;
    for (int64_t i = 0; i < s.cfg.d_in; ++i) xi[i] = x[t][i].item<double>();
    std::vector<double> y = direct(s, xi, &a);
    EXPECT_TRUE(mstest::close(acts[t], at::tensor(a, at::kDouble), 1e-4, 1e-5)) << "token " << t;
    EXPECT_TRUE(mstest::close(rec[t], at::tensor(y, at::kDouble), 1e-4, 1e-5)) << "token " << t;
  }
}

TEST(LoadSae, SaelensFolderStandardWithSparsity) {
  std::string dir = write_saelens("std", 8, 24, {});
  sae::SAE s = sae::load_sae(dir);
  EXPECT_EQ(s.cfg.architecture, sae::Architecture::Standard);
  EXPECT_EQ(s.cfg.hook_name, "blocks.1.hook_resid_pre");
  EXPECT_EQ(s.cfg.hook_layer, 1);
  EXPECT_TRUE(s.cfg.apply_b_dec_to_input);  // SAELens's default when cfg.json omits it
  ASSERT_TRUE(s.log_sparsity.defined());
  EXPECT_EQ(s.log_sparsity.size(0), 24);
  at::manual_seed(5);
  expect_matches_direct(s, at::randn({6, 8}));
}

TEST(LoadSae, JumpReluTopKAndNormalisations) {
  at::manual_seed(9);
  at::Tensor x = at::randn({5, 8}) * 2 + 0.5;
  {
    sae::SAE s = sae::load_sae(
        write_saelens("jr", 8, 20, {{"architecture", "jumprelu"}, {"apply_b_dec_to_input", false}}, true));
    EXPECT_EQ(s.cfg.architecture, sae::Architecture::JumpReLU);
    expect_matches_direct(s, x);
  }
  {  // SAELens 6 style
    sae::SAE s = sae::load_sae(
        write_saelens("topk6", 8, 20,
                      {{"architecture", "topk"}, {"k", 3}, {"metadata", {{"hook_name", "blocks.0.hook_resid_post"}}}}));
    EXPECT_EQ(s.cfg.architecture, sae::Architecture::TopK);
    EXPECT_EQ(s.cfg.k, 3);
    EXPECT_EQ(s.cfg.hook_name, "blocks.0.hook_resid_post");
    expect_matches_direct(s, x);
    EXPECT_TRUE(((sae::encode(s, x) > 0).sum(-1) <= 3).all().item<bool>());
  }
  {  // pre-6 topk: standard architecture with activation_fn_str topk
    sae::SAE s = sae::load_sae(
        write_saelens("topk5", 8, 20, {{"activation_fn_str", "topk"}, {"activation_fn_kwargs", {{"k", 4}}}}));
    EXPECT_EQ(s.cfg.architecture, sae::Architecture::TopK);
    EXPECT_EQ(s.cfg.k, 4);
    expect_matches_direct(s, x);
  }
  for (std::string norm : {"constant_norm_rescale", "layer_norm"}) {
    sae::SAE s = sae::load_sae(write_saelens("norm_" + norm, 8, 20, {{"normalize_activations", norm}}));
    EXPECT_NE(s.cfg.normalize, sae::Normalize::None);
    expect_matches_direct(s, x);
  }
}

TEST(LoadSae, SaveRoundTripsAndHfCacheLookup) {
  sae::SAE s = sae::load_sae(write_saelens("rt", 8, 16, {{"architecture", "jumprelu"}}, true));
  std::string hub = mstest::tmp_dir("hub");
  std::string snap = hub + "/models--someone--my-saes/snapshots/abc123/blocks.1.hook_resid_pre";
  sae::save_sae(s, snap);
  make_dirs(hub + "/models--someone--my-saes/refs");
  write_file_atomic(hub + "/models--someone--my-saes/refs/main", "abc123");
  setenv("HF_HUB_CACHE", hub.c_str(), 1);
  sae::SAE r = sae::load_sae("someone/my-saes/blocks.1.hook_resid_pre");
  // The seed's release name resolves to its repo and gets SAELens's Neuronpedia id.
  std::string jb = hub + "/models--jbloom--GPT2-Small-SAEs-Reformatted/snapshots/0123/blocks.1.hook_resid_pre";
  sae::SAE noid = s;
  noid.cfg.model_name.clear();
  noid.cfg.neuronpedia_id.clear();
  noid.cfg.raw = nlohmann::json::object();
  sae::save_sae(noid, jb);
  sae::SAE rel = sae::load_sae("gpt2-small-res-jb/blocks.1.hook_resid_pre");
  EXPECT_EQ(rel.cfg.neuronpedia_id, "gpt2-small/1-res-jb");
  EXPECT_EQ(rel.cfg.model_name, "gpt2-small");
  EXPECT_TRUE(mstest::close(rel.W_dec, s.W_dec, 0, 0));
  unsetenv("HF_HUB_CACHE");
  EXPECT_EQ(r.cfg.architecture, sae::Architecture::JumpReLU);
  EXPECT_TRUE(mstest::close(r.W_enc, s.W_enc, 0, 0));
  EXPECT_TRUE(mstest::close(r.threshold, s.threshold, 0, 0));
  EXPECT_TRUE(mstest::close(r.log_sparsity, s.log_sparsity, 0, 0));
  at::Tensor x = at::randn({4, 8});
  EXPECT_TRUE(mstest::close(sae::reconstruct(r, x), sae::reconstruct(s, x), 0, 0));
}

// What save_sae (and so `sae train`) writes is what SAELens's loaders read (tests/saelens_format.h has
// the rules and where in SAELens they come from), and the SAEs shipped in examples/kg/sae are such folders.
TEST(SaveSae, WritesWhatSaelensLoadersRead) {
  // As sae train fills it: a config with SAELens's training fields, no sparsity-free corner cut.
  sae::SAE s = sae::load_sae(write_saelens("train_like", 8, 16, {}));
  s.cfg.raw = {{"l1_coefficient", 0.5}, {"context_size", 64}, {"prepend_bos", false}, {"dataset_path", "facts.jsonl"}};
  std::string out = mstest::tmp_dir("saved_std");
  sae::save_sae(s, out);
  mstest::expect_saelens_folder(out);
  // A SAELens 6 cfg.json (version, nested metadata) loaded with --hook, then saved: flat, the new hook.
  std::string v6 = write_saelens("v6", 8, 16,
                                 {{"sae_lens_version", "6.5.1"},
                                  {"architecture", "jumprelu"},
                                  {"hook_point", nullptr},
                                  {"metadata",
                                   {{"hook_name", "blocks.1.hook_resid_pre"},
                                    {"context_size", 1024},
                                    {"prepend_bos", true},
                                    {"dataset_path", "pile"},
                                    {"hook_layer", 1}}}},
                                 true);
  sae::LoadOptions o;
  o.hook_name = "blocks.2.hook_resid_post";
  sae::SAE j = sae::load_sae(v6, o);
  std::string out6 = mstest::tmp_dir("saved_v6");
  sae::save_sae(j, out6);
  mstest::expect_saelens_folder(out6);
  nlohmann::json c = nlohmann::json::parse(read_file(out6 + "/cfg.json"));
  EXPECT_FALSE(c.contains("metadata"));
  EXPECT_FALSE(c.contains("hook_point"));
  EXPECT_EQ(c["hook_name"], "blocks.2.hook_resid_post");
  EXPECT_EQ(c["hook_layer"], 2);
  EXPECT_EQ(c["context_size"], 1024);
  EXPECT_EQ(c["architecture"], "jumprelu");
  sae::SAE back = sae::load_sae(out6);
  EXPECT_TRUE(mstest::close(back.threshold, j.threshold, 0, 0));
  // TopK: k where SAELens 6's handle_pre_6_0_config takes it.
  sae::SAE t = sae::load_sae(
      write_saelens("topk_save", 8, 16, {{"activation_fn_str", "topk"}, {"activation_fn_kwargs", {{"k", 3}}}}));
  std::string outk = mstest::tmp_dir("saved_topk");
  sae::save_sae(t, outk);
  mstest::expect_saelens_folder(outk);
  EXPECT_EQ(sae::load_sae(outk).cfg.k, 3);
  // The shipped SAEs.
  for (int l = 0; l < 6; ++l)
    mstest::expect_saelens_folder(mstest::source_dir() + "/examples/kg/sae/blocks." + std::to_string(l) +
                                  ".hook_resid_pre");
}

TEST(LoadSae, BadInputGivesOneClearError) {
  auto msg = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  std::string gated = write_saelens("gated", 8, 16, {{"architecture", "gated"}});
  std::string m = msg([&] { sae::load_sae(gated); });
  EXPECT_TRUE(mstest::contains(m, "unknown architecture 'gated'")) << m;
  EXPECT_TRUE(mstest::contains(m, "cfg.json")) << m;
  std::string badk = write_saelens("badk", 8, 16, {{"architecture", "topk"}});
  EXPECT_TRUE(mstest::contains(msg([&] { sae::load_sae(badk); }), "'k'"));
  std::string norm = write_saelens("badnorm", 8, 16, {{"normalize_activations", "whiten"}});
  EXPECT_TRUE(mstest::contains(msg([&] { sae::load_sae(norm); }), "unknown normalize_activations 'whiten'"));
  // W_enc whose shape disagrees with d_in
  std::string shape = write_saelens("shape", 8, 16, {});
  write_file_atomic(shape + "/cfg.json",
                    nlohmann::json({{"d_in", 9}, {"d_sae", 16}, {"hook_name", "blocks.0.hook_resid_pre"}}).dump());
  m = msg([&] { sae::load_sae(shape); });
  EXPECT_TRUE(mstest::contains(m, "'W_enc' has shape")) << m;
  EXPECT_TRUE(mstest::contains(msg([] { sae::load_sae("/nonexistent/sae"); }), "does not exist"));
  EXPECT_TRUE(
      mstest::contains(msg([] { sae::load_sae("nobody/none/blocks.0.hook_resid_pre"); }), "Hugging Face cache"));
}

struct Splice : ::testing::Test {
  std::unique_ptr<models::HookedModel> m = models::load_model(mstest::fixture("gpt2/model"));
  at::Tensor ids = at::tensor(std::vector<int64_t>{464, 3139, 286, 4881, 318, 6342, 13, 383}, at::kLong).unsqueeze(0);
  // logits with `replace` applied to resid_pre of block 1, block by block through the interface.
  at::Tensor manual(const std::function<at::Tensor(const at::Tensor&)>& replace) {
    models::RunContext ctx;
    at::Tensor r = m->block(0, m->embed(ids, ctx), ctx);
    r = replace(r);
    r = m->block(1, r, ctx);
    return m->unembed(m->final_norm(r, ctx));
  }
};

TEST_F(Splice, ReconstructionReplacesTheActivationAndErrorTermRestoresIt) {
  sae::SAE s = sae::load_sae(write_saelens("splice", 32, 64, {}));
  sae::check_compatible(s, *m);
  hooks::HookSet hs;
  models::RunContext ctx;
  ctx.hooks = &hs;
  at::Tensor clean = m->forward(ids, ctx);
  {
    hooks::ScopedHooks scope(hs);
    scope.add(s.cfg.hook_name, sae::splice(s));
    EXPECT_TRUE(
        mstest::close(m->forward(ids, ctx), manual([&](const at::Tensor& x) { return sae::reconstruct(s, x); })));
  }
  {
    sae::SpliceOptions o;
    o.use_error_term = true;
    hooks::ScopedHooks scope(hs);
    scope.add(s.cfg.hook_name, sae::splice(s, o));
    EXPECT_TRUE(mstest::close(m->forward(ids, ctx), clean));
  }
  {  // zero feature 3 with the error term: x + W_dec[3] * (0 - a_3)
    sae::SpliceOptions o;
    o.use_error_term = true;
    o.edit_features = [](at::Tensor& a) { a.select(-1, 3).zero_(); };
    hooks::ScopedHooks scope(hs);
    scope.add(s.cfg.hook_name, sae::splice(s, o));
    at::Tensor want = manual([&](const at::Tensor& x) {
      at::Tensor a3 = sae::encode(s, x).select(-1, 3).unsqueeze(-1);
      return x - a3 * s.W_dec[3];
    });
    EXPECT_TRUE(mstest::close(m->forward(ids, ctx), want));
  }
}

TEST_F(Splice, EvaluateMatchesDirectComputation) {
  sae::SAE s = sae::load_sae(write_saelens("eval", 32, 64, {}));
  std::vector<std::vector<int64_t>> seqs{mstest::to_vec(ids[0]), {464, 3139, 286}};
  sae::EvalResult r = sae::evaluate(*m, s, seqs);
  double l0 = 0, sq = 0, ss = 0, ce[3] = {0, 0, 0};
  int64_t n = 0, np = 0;
  at::Tensor sum = at::zeros({32}, at::kDouble);
  for (auto& q : seqs) {
    ids = at::tensor(q, at::kLong).unsqueeze(0);
    at::Tensor x;
    at::Tensor lg[3] = {manual([&](const at::Tensor& v) { return x = v; }),
                        manual([&](const at::Tensor& v) { return sae::reconstruct(s, v); }),
                        manual([&](const at::Tensor& v) { return at::zeros_like(v); })};
    at::Tensor xd = x[0].to(at::kDouble), rd = sae::reconstruct(s, x[0]).to(at::kDouble);
    for (int64_t t = 0; t < xd.size(0); ++t) {
      l0 += (sae::encode(s, x[0][t]) > 0).sum().item<double>();
      sq += (rd[t] - xd[t]).pow(2).sum().item<double>();
      ss += xd[t].pow(2).sum().item<double>();
      sum += xd[t];
      ++n;
    }
    for (int k = 0; k < 3; ++k)
      for (size_t t = 0; t + 1 < q.size(); ++t) {
        at::Tensor row = lg[k][0][t].to(at::kDouble);
        ce[k] += (row.exp().sum().log() - row[q[t + 1]]).item<double>();
      }
    np += q.size() - 1;
  }
  EXPECT_EQ(r.n_tokens, n);
  EXPECT_EQ(r.n_predictions, np);
  EXPECT_NEAR(r.l0, l0 / n, 1e-9);
  EXPECT_NEAR(r.mse, sq / n / 32, 1e-5 * sq / n / 32);
  EXPECT_NEAR(r.l2_per_token, sq / n, 1e-5 * sq / n);
  EXPECT_NEAR(r.explained_variance, 1 - sq / (ss - sum.pow(2).sum().item<double>() / n), 1e-5);
  EXPECT_NEAR(r.ce_clean, ce[0] / np, 1e-4);
  EXPECT_NEAR(r.ce_spliced, ce[1] / np, 1e-4);
  EXPECT_NEAR(r.ce_zero_ablated, ce[2] / np, 1e-4);
  EXPECT_NEAR(r.ce_loss_score, (ce[2] - ce[1]) / (ce[2] - ce[0]), 1e-3);
}

TEST_F(Splice, DInThatDoesNotMatchTheHookIsAnError) {
  sae::SAE s = sae::load_sae(write_saelens("dmis", 16, 32, {}));
  try {
    sae::check_compatible(s, *m);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    std::string w = e.what();
    EXPECT_TRUE(mstest::contains(w, "d_in 16")) << w;
    EXPECT_TRUE(mstest::contains(w, "blocks.1.hook_resid_pre")) << w;
    EXPECT_TRUE(mstest::contains(w, "size 32")) << w;
  }
  hooks::HookSet hs;
  hs.add(s.cfg.hook_name, sae::splice(s));
  models::RunContext ctx;
  ctx.hooks = &hs;
  EXPECT_THROW(m->forward(ids, ctx), Error);
  sae::SAE bad = sae::load_sae(write_saelens("nohook", 32, 32, {{"hook_point", "blocks.7.hook_resid_pre"}}));
  EXPECT_THROW(sae::check_compatible(bad, *m), Error);
}

// numpy itself writes the archives (Debian's python3-numpy, installed by scripts/install-deps.sh).
std::string numpy_savez(const std::string& dir, const std::string& body) {
  std::string py = dir + "/make.py";
  write_file_atomic(py, "import numpy as np\n" + body);
  auto r = mstest::run_shell("cd '" + dir + "' && /usr/bin/python3 make.py");
  EXPECT_EQ(r.code, 0) << r.err;
  return dir;
}

TEST(Npz, ReadsWhatNumpySavezAndSavezCompressedWrite) {
  for (std::string fn : {"savez", "savez_compressed"}) {
    std::string dir = numpy_savez(mstest::tmp_dir("npz_" + fn),
                                  "a = (np.arange(12, dtype='<f4') * 0.5 - 2).reshape(3, 4)\n"
                                  "b = np.asfortranarray(np.arange(24, dtype=np.float64).reshape(2, 3, 4) / 7)\n"
                                  "c = np.array([1, -2, 300000], dtype='>i4')\n"
                                  "d = np.arange(100000, dtype=np.int64) * 3\n"
                                  "e = np.array(2.5, dtype=np.float16)\n"
                                  "f = np.array([True, False, True])\n"
                                  "np." +
                                      fn + "('x.npz', a=a, b=b, c=c, d=d, e=e, f=f)\n");
    auto arr = sae::read_npz(dir + "/x.npz");
    ASSERT_EQ(arr.size(), 6u) << fn;
    EXPECT_TRUE(mstest::close(arr["a"], (at::arange(12, at::kFloat) * 0.5 - 2).reshape({3, 4}), 0, 0)) << fn;
    EXPECT_EQ(arr["a"].scalar_type(), at::kFloat);
    EXPECT_TRUE(mstest::close(arr["b"], at::arange(24, at::kDouble).reshape({2, 3, 4}) / 7, 0, 0)) << fn;
    EXPECT_EQ(mstest::to_vec(arr["c"]), (std::vector<int64_t>{1, -2, 300000})) << fn;
    EXPECT_TRUE(mstest::close(arr["d"], at::arange(100000, at::kLong) * 3, 0, 0)) << fn;
    EXPECT_EQ(arr["e"].dim(), 0);
    EXPECT_EQ(arr["e"].item<double>(), 2.5);
    EXPECT_EQ(mstest::to_vec(arr["f"]), (std::vector<int64_t>{1, 0, 1}));
  }
}

TEST(Npz, GemmaScopeParamsLoadAsJumpRelu) {
  std::string dir = mstest::tmp_dir("gemma-scope-2b-pt-res/layer_1/width_16k/average_l0_5");
  numpy_savez(
      dir,
      "rng = np.random.RandomState(0)\n"
      "np.savez('params.npz', W_enc=rng.randn(8, 12).astype('f4'), W_dec=rng.randn(12, 8).astype('f4'),"
      " b_enc=rng.randn(12).astype('f4'), b_dec=rng.randn(8).astype('f4'), threshold=rng.rand(12).astype('f4'))\n");
  sae::SAE s = sae::load_sae(dir);
  EXPECT_EQ(s.cfg.architecture, sae::Architecture::JumpReLU);
  EXPECT_FALSE(s.cfg.apply_b_dec_to_input);
  EXPECT_EQ(s.cfg.hook_name, "blocks.1.hook_resid_post");
  EXPECT_EQ(s.cfg.d_sae, 12);
  at::manual_seed(2);
  expect_matches_direct(s, at::randn({4, 8}));
  // Elsewhere, the path names no hook: the caller must.
  std::string plain = mstest::tmp_dir("plain_npz");
  numpy_savez(plain,
              "np.savez('params.npz', W_enc=np.zeros((4, 6), 'f4'), W_dec=np.zeros((6, 4), 'f4'),"
              " b_enc=np.zeros(6, 'f4'), b_dec=np.zeros(4, 'f4'), threshold=np.zeros(6, 'f4'))\n");
  EXPECT_THROW(sae::load_sae(plain + "/params.npz"), Error);
  sae::LoadOptions o;
  o.hook_name = "blocks.0.hook_mlp_out";
  EXPECT_EQ(sae::load_sae(plain + "/params.npz", o).cfg.hook_layer, 0);
}

// SAELens's gemma_2_sae_huggingface_loader: an embedding folder of a -res repo is hook_embed, with
// W_enc / sqrt(d_in) and W_dec * sqrt(d_in) (Gemma's embedding scale), b_enc and b_dec as stored.
TEST(Npz, GemmaScopeEmbeddingSaeIsRescaledForHookEmbed) {
  std::string dir = mstest::tmp_dir("gemma-scope-2b-pt-res/embedding/width_4k/average_l0_6");
  numpy_savez(
      dir,
      "rng = np.random.RandomState(1)\n"
      "np.savez('params.npz', W_enc=rng.randn(16, 6).astype('f4'), W_dec=rng.randn(6, 16).astype('f4'),"
      " b_enc=rng.randn(6).astype('f4'), b_dec=rng.randn(16).astype('f4'), threshold=rng.rand(6).astype('f4'))\n");
  auto raw = sae::read_npz(dir + "/params.npz");
  sae::SAE s = sae::load_sae(dir);
  EXPECT_EQ(s.cfg.hook_name, "hook_embed");
  EXPECT_EQ(s.cfg.hook_layer, -1);
  EXPECT_TRUE(mstest::close(s.W_enc, raw["W_enc"].to(at::kDouble) / 4.0, 1e-7, 0));  // sqrt(16)
  EXPECT_TRUE(mstest::close(s.W_dec, raw["W_dec"].to(at::kDouble) * 4.0, 1e-7, 0));
  EXPECT_TRUE(mstest::close(s.b_enc, raw["b_enc"], 0, 0));
  EXPECT_TRUE(mstest::close(s.b_dec, raw["b_dec"], 0, 0));
  // The features an embedding x had in Gemma Scope's own (unscaled) space are those of 4x at hook_embed.
  at::manual_seed(3);
  at::Tensor x = at::randn({5, 16});
  at::Tensor h = at::matmul(x.to(at::kDouble), raw["W_enc"].to(at::kDouble)) + raw["b_enc"].to(at::kDouble);
  at::Tensor want = at::relu(h) * (h > raw["threshold"].to(at::kDouble)).to(at::kDouble);
  EXPECT_TRUE(mstest::close(sae::encode(s, x * 4.0), want, 1e-5, 1e-5));
  // The same weights in a layer folder are read as they are.
  std::string layer = mstest::tmp_dir("gemma-scope-2b-pt-res/layer_3/width_4k/average_l0_6");
  write_file_atomic(layer + "/params.npz", read_file(dir + "/params.npz"));
  sae::SAE l3 = sae::load_sae(layer);
  EXPECT_EQ(l3.cfg.hook_name, "blocks.3.hook_resid_post");
  EXPECT_TRUE(mstest::close(l3.W_enc, raw["W_enc"], 0, 0));
  // An attention SAE's folder names its layer; its hook is hook_z.
  std::string att = mstest::tmp_dir("gemma-scope-2b-pt-att/layer_2/width_16k/average_l0_9");
  write_file_atomic(att + "/params.npz", read_file(dir + "/params.npz"));
  EXPECT_EQ(sae::load_sae(att).cfg.hook_name, "blocks.2.attn.hook_z");
}

TEST(Npz, ObjectArraysAndCorruptFilesAreRefused) {
  std::string dir = numpy_savez(mstest::tmp_dir("npz_obj"),
                                "np.savez('o.npz', ok=np.zeros(3), bad=np.array([{'a': 1}, None], dtype=object))\n"
                                "np.savez('s.npz', rec=np.zeros(2, dtype=[('x', 'f4'), ('y', 'i4')]))\n");
  try {
    sae::read_npz(dir + "/o.npz");
    ADD_FAILURE() << "object array accepted";
  } catch (const Error& e) {
    EXPECT_TRUE(mstest::contains(e.what(), "bad.npy")) << e.what();
    EXPECT_TRUE(mstest::contains(e.what(), "object array")) << e.what();
  }
  EXPECT_THROW(sae::read_npz(dir + "/s.npz"), Error);
  std::string bytes = read_file(dir + "/o.npz");
  write_file_atomic(dir + "/trunc.npz", bytes.substr(0, bytes.size() / 2));
  EXPECT_THROW(sae::read_npz(dir + "/trunc.npz"), Error);
  write_file_atomic(dir + "/not.npz", "hello, this is not a zip archive at all");
  EXPECT_THROW(sae::read_npz(dir + "/not.npz"), Error);
  std::string flipped = read_file(dir + "/o.npz");
  flipped[200] ^= 0x55;  // inside the first entry's data: the CRC catches it
  write_file_atomic(dir + "/crc.npz", flipped);
  EXPECT_THROW(sae::read_npz(dir + "/crc.npz"), Error);
}

}  // namespace
