// mechscope sae end to end: outputs and their agreement with a brute-force computation from the
// written SAE and the checkpoint's own tensors, feature queries, and the user errors (exit 2, one line).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/fs.h"
#include "io/safetensors.h"
#include "models/model.h"
#include "sae/splice.h"
#include "saelens_format.h"
#include "tokenizers/tokenizer.h"
#include "tensor_util.h"
#include "test_util.h"

using namespace mechscope;
using mstest::contains;
using mstest::run_cli;

namespace {

const std::string kModel = mstest::fixture("gpt2/model");

// A random standard SAE on blocks.L.hook_resid_pre of the GPT-2 fixture (d_model 32) in SAELens's format.
std::string make_sae(const std::string& dir, int layer, int64_t d_sae = 40, int64_t d_in = 32, uint64_t seed = 0,
                     const std::string& arch = "standard") {
  at::manual_seed(seed + layer);
  make_dirs(dir);
  nlohmann::json cfg{{"d_in", d_in},
                     {"d_sae", d_sae},
                     {"architecture", arch},
                     {"hook_name", "blocks." + std::to_string(layer) + ".hook_resid_pre"},
                     {"model_name", "tiny-gpt2"},
                     {"neuronpedia_id", "tiny-gpt2/" + std::to_string(layer) + "-res-test"}};
  write_file_atomic(dir + "/cfg.json", cfg.dump());
  at::Tensor W_dec = at::randn({d_sae, d_in});
  W_dec.select(0, 3).mul_(0).select(0, 7).fill_(1);  // feature 3 writes one direction only: skewed logits
  io::write_safetensors(dir + "/sae_weights.safetensors", {{"W_enc", at::randn({d_in, d_sae})},
                                                           {"b_enc", at::zeros({d_sae})},
                                                           {"W_dec", W_dec},
                                                           {"b_dec", at::zeros({d_in})}});
  io::write_safetensors(dir + "/sparsity.safetensors", {{"sparsity", -at::rand({d_sae}) * 8}});
  return dir;
}

std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::ifstream f(path);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(f, line)) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string c;
    while (std::getline(ss, c, ',')) cells.push_back(c);
    rows.push_back(cells);
  }
  return rows;
}

TEST(SaeStatsCli, OneSaeMatchesBruteForceAndWritesTheReport) {
  std::string base = mstest::tmp_dir("sae-stats");
  std::string sae = make_sae(base + "/sae", 1);
  std::string out = base + "/out";
  auto r = run_cli({"sae", "stats", "--model", kModel, "--sae", sae, "--out", out, "--block", "7", "--where",
                    "skewness>0", "--sort", "skewness", "--top", "3", "--save-projection"});
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* f : {"stats.csv", "stats.safetensors", "query.csv", "index.html", "manifest.json",
                        "skewness_hist.png", "kurtosis_hist.png", "skew_kurtosis.png"})
    EXPECT_TRUE(file_exists(join_path(out, f))) << f;
  // Brute force: W_U processed by hand (GPT-2: ln_f scale folded, centred over d_model, then over the vocab).
  auto ck = io::SafetensorsFile::open(kModel + "/model.safetensors");
  at::Tensor W = ck->get("transformer.wte.weight").to(at::kDouble).t() *
                 ck->get("transformer.ln_f.weight").to(at::kDouble).unsqueeze(1);
  W = W - W.mean({0}, true);
  W = W - W.mean({1}, true);
  auto sw = io::SafetensorsFile::open(sae + "/sae_weights.safetensors");
  at::Tensor proj = at::matmul(sw->get("W_dec").to(at::kDouble), W);
  at::Tensor mean = proj.mean({1}, true), d = proj - mean;
  at::Tensor sd = d.pow(2).mean({1}).sqrt();
  at::Tensor skew = (d / sd.unsqueeze(1)).pow(3).mean({1}), kurt = (d / sd.unsqueeze(1)).pow(4).mean({1});
  auto rows = read_csv(join_path(out, "stats.csv"));
  ASSERT_EQ(rows.size(), 41u);
  EXPECT_EQ(rows[0],
            (std::vector<std::string>{"feature", "mean", "std", "skewness", "kurtosis", "log_feature_sparsity"}));
  at::Tensor sp = io::SafetensorsFile::open(sae + "/sparsity.safetensors")->get("sparsity");
  for (int64_t f = 0; f < 40; ++f) {
    EXPECT_EQ(std::stoll(rows[f + 1][0]), f);
    EXPECT_NEAR(std::stod(rows[f + 1][2]), sd[f].item<double>(), 1e-4 * sd[f].item<double>());
    EXPECT_NEAR(std::stod(rows[f + 1][3]), skew[f].item<double>(), 1e-3);
    EXPECT_NEAR(std::stod(rows[f + 1][4]), kurt[f].item<double>(), 1e-3 * kurt[f].item<double>());
    EXPECT_FLOAT_EQ((float)std::stod(rows[f + 1][5]), sp[f].item<float>());
  }
  auto st = io::SafetensorsFile::open(join_path(out, "stats.safetensors"));
  EXPECT_TRUE(mstest::close(st->get("projection"), proj, 1e-4, 1e-5));
  EXPECT_TRUE(mstest::close(st->get("skewness"), skew, 1e-3, 1e-4));
  // The query: the 3 most skewed features with skewness > 0, descending; a quick-list link for them.
  auto q = read_csv(join_path(out, "query.csv"));
  ASSERT_EQ(q.size(), 4u);
  std::vector<std::pair<double, int64_t>> want;
  for (int64_t f = 0; f < 40; ++f)
    if (skew[f].item<double>() > 0) want.push_back({-skew[f].item<double>(), f});
  std::sort(want.begin(), want.end());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(std::stoll(q[i + 1][0]), want[i].second);
  EXPECT_TRUE(contains(r.out, "https://neuronpedia.org/quick-list/?name=temporary_list&features=")) << r.out;
  EXPECT_TRUE(contains(r.out, "%22layer%22%3A%20%221-res-test%22")) << r.out;
  std::ifstream mf(join_path(out, "manifest.json"));
  auto man = nlohmann::json::parse(mf);
  EXPECT_EQ(man["command"], "sae stats");
  EXPECT_EQ(man["settings"]["final_norm"], "layernorm");
  EXPECT_TRUE(contains(read_file(join_path(out, "index.html")), "neuronpedia.org/quick-list"));
}

TEST(SaeStatsCli, SaeDirGivesLayerColumnAndAllLayerFigures) {
  std::string base = mstest::tmp_dir("sae-stats-dir");
  make_sae(base + "/saes/blocks.0.hook_resid_pre", 0, 30);
  make_sae(base + "/saes/blocks.1.hook_resid_pre", 1, 20);
  std::string out = base + "/out";
  auto r = run_cli({"sae", "stats", "--model", kModel, "--sae-dir", base + "/saes", "--cosine-sim", "--out", out});
  ASSERT_EQ(r.code, 0) << r.err;
  auto rows = read_csv(join_path(out, "stats.csv"));
  ASSERT_EQ(rows.size(), 51u);
  EXPECT_EQ(rows[0].back(), "layer");
  EXPECT_EQ(rows[1].back(), "0");
  EXPECT_EQ(rows[31].back(), "1");
  for (const char* f : {"skewness_by_layer.png", "kurtosis_by_layer.png", "skewness_box.png", "kurtosis_box.png",
                        "skew_kurtosis_by_layer.png"})
    EXPECT_TRUE(file_exists(join_path(out, f))) << f;
}

void expect_user_error(const std::vector<std::string>& args, const std::string& needle) {
  auto r = run_cli(args);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, needle)) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(SaeStatsCli, BadInputIsOneClearError) {
  std::string base = mstest::tmp_dir("sae-bad");
  std::string ok = make_sae(base + "/ok", 0);
  std::string out = base + "/out";
  expect_user_error({"sae", "stats", "--model", kModel, "--sae", make_sae(base + "/d16", 0, 20, 16), "--out", out},
                    "d_in 16");
  expect_user_error(
      {"sae", "stats", "--model", kModel, "--sae", make_sae(base + "/gated", 0, 20, 32, 0, "gated"), "--out", out},
      "unknown architecture 'gated'");
  expect_user_error({"sae", "stats", "--model", kModel, "--sae", ok, "--where", "skew>3", "--out", out},
                    "unknown column 'skew'");
  expect_user_error({"sae", "stats", "--model", kModel, "--sae", ok, "--unembed", "folded", "--out", out},
                    "--unembed 'folded'");
  expect_user_error({"sae", "stats", "--model", kModel, "--out", out}, "--sae");
  expect_user_error({"sae", "frobnicate"}, "unknown subcommand 'frobnicate'");
  auto npz = mstest::run_shell("cd " + base +
                               " && /usr/bin/python3 -c \"import numpy as np; np.savez('params.npz', "
                               "W_enc=np.array([None, {}], dtype=object))\"");
  ASSERT_EQ(npz.code, 0) << npz.err;
  expect_user_error({"sae", "stats", "--model", kModel, "--sae", base + "/params.npz", "--hook",
                     "blocks.0.hook_resid_pre", "--out", out},
                    "object array");
  EXPECT_FALSE(file_exists(join_path(out, "stats.csv")));
}

TEST(SaeTseaCli, ScoresEqualTheLoopAndFiguresAreWritten) {
  std::string base = mstest::tmp_dir("sae-tsea");
  std::string sae = make_sae(base + "/sae", 1, 60);
  std::string out = base + "/out";
  write_file_atomic(base + "/mine.txt", "\u0120the\n\u0120a\n");
  auto r = run_cli({"sae",
                    "tsea",
                    "--model",
                    kModel,
                    "--tokenizer",
                    mstest::gpt2_tokenizer(),
                    "--sae",
                    sae,
                    "--top-features",
                    "12",
                    "--sets",
                    "starts_with_space,all_digits,a,colors",
                    "--token-set",
                    "mine=@" + base + "/mine.txt",
                    "--token-set",
                    "caps3=^\u0120[A-Z]{3}$",
                    "--pair",
                    "a,colors",
                    "--category",
                    "all_digits",
                    "--k",
                    "2",
                    "--out",
                    out});
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* f : {"enrichment.csv", "enrichment.safetensors", "token_sets.json", "index.html", "manifest.json",
                        "manhattan_sets_1.png", "manhattan_sets_2.png", "pair_1.png"})
    EXPECT_TRUE(file_exists(join_path(out, f))) << f;
  auto rows = read_csv(join_path(out, "enrichment.csv"));
  ASSERT_EQ(rows.size(), 1u + 6 * 12);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"token_set", "feature", "score"}));
  EXPECT_EQ(rows[1][0], "starts_with_space");
  EXPECT_EQ(rows[1 + 4 * 12][0], "mine");
  // Recompute one set by hand: the projection of each listed feature, ranked, walked.
  auto st = io::SafetensorsFile::open(join_path(out, "enrichment.safetensors"));
  at::Tensor feats = st->get("features");
  std::ifstream js(join_path(out, "token_sets.json"));
  auto sets = nlohmann::json::parse(js);
  ASSERT_EQ(sets[0]["name"], "a");
  // The catalogue lists the part-of-speech sets with the lexicon they come from.
  auto pos_nn = std::find_if(sets.begin(), sets.end(), [](auto& s) { return s["name"] == "pos_NN"; });
  ASSERT_NE(pos_nn, sets.end());
  EXPECT_GT((*pos_nn)["size"].get<int>(), 5000);
  EXPECT_TRUE(contains((*pos_nn)["source"].get<std::string>(), "en-lexicon"));
  auto ck = io::SafetensorsFile::open(kModel + "/model.safetensors");
  at::Tensor W = ck->get("transformer.wte.weight").to(at::kDouble).t() *
                 ck->get("transformer.ln_f.weight").to(at::kDouble).unsqueeze(1);
  W = W - W.mean({0}, true);
  W = W - W.mean({1}, true);
  at::Tensor W_dec = io::SafetensorsFile::open(sae + "/sae_weights.safetensors")->get("W_dec").to(at::kDouble);
  for (int64_t i = 0; i < 12; ++i) {
    int64_t f = feats[i].item<int64_t>();
    EXPECT_EQ(std::stoll(rows[1 + 4 * 12 + i][1]), f);
    at::Tensor row = at::matmul(W_dec[f], W);
    at::Tensor order = std::get<1>(row.sort(true, 0, true));
    double sum = 0, best = 0;
    for (int64_t p = 0; p < order.size(0); ++p) {
      int64_t t = order[p].item<int64_t>();
      sum += (t == 262 || t == 257) ? 0.5 : -1.0 / (50257 - 2);
      best = std::max(best, std::abs(sum));
    }
    EXPECT_NEAR(std::stod(rows[1 + 4 * 12 + i][2]), best, 1e-6) << f;
  }
  EXPECT_TRUE(contains(r.out, "mine"));
}

TEST(SaeTseaCli, BadInputIsOneClearError) {
  std::string base = mstest::tmp_dir("sae-tsea-bad");
  std::string sae = make_sae(base + "/sae", 0);
  std::string out = base + "/out";
  std::vector<std::string> common{"sae",   "tsea", "--model",        kModel, "--tokenizer", mstest::gpt2_tokenizer(),
                                  "--sae", sae,    "--top-features", "5",    "--out",       out};
  auto with = [&](std::vector<std::string> extra) {
    auto v = common;
    v.insert(v.end(), extra.begin(), extra.end());
    return v;
  };
  expect_user_error(with({"--token-set", "broken=[a-"}), "token set 'broken': regex '[a-' does not compile");
  expect_user_error(with({"--sets", "no_such_set"}), "unknown token set 'no_such_set'");
  expect_user_error(with({"--pair", "a,b"}), "not among the scored sets");
  expect_user_error(with({"--token-set", "a=x"}), "exists already");
  EXPECT_FALSE(file_exists(join_path(out, "enrichment.csv")));
}

TEST(SaeTrainCli, TrainsSaelensFoldersThatStatsReads) {
  std::string base = mstest::tmp_dir("sae-train");
  write_file_atomic(base + "/corpus.txt",
                    "The capital of France is Paris.\nThe Eiffel Tower is in Paris.\n\nA cat sat on the mat.\n");
  std::string out = base + "/saes";
  std::vector<std::string> args{"sae",         "train",
                                "--model",     kModel,
                                "--tokenizer", mstest::gpt2_tokenizer(),
                                "--hook",      "blocks.0.hook_resid_pre",
                                "--hook",      "blocks.1.hook_resid_pre",
                                "--corpus",    base + "/corpus.txt",
                                "--d-sae",     "24",
                                "--steps",     "40",
                                "--batch",     "16",
                                "--log-every", "20",
                                "--out",       out};
  auto r = run_cli(args);
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* f : {"blocks.0.hook_resid_pre/cfg.json", "blocks.0.hook_resid_pre/sae_weights.safetensors",
                        "blocks.1.hook_resid_pre/sparsity.safetensors", "train_log.jsonl", "manifest.json"})
    EXPECT_TRUE(file_exists(join_path(out, f))) << f;
  std::ifstream cf(join_path(out, "blocks.1.hook_resid_pre/cfg.json"));
  auto cfg = nlohmann::json::parse(cf);
  EXPECT_EQ(cfg["hook_name"], "blocks.1.hook_resid_pre");
  EXPECT_EQ(cfg["d_sae"], 24);
  EXPECT_EQ(cfg["architecture"], "standard");
  for (const char* h : {"blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre"})
    mstest::expect_saelens_folder(join_path(out, h));
  auto st = run_cli({"sae", "stats", "--model", kModel, "--sae-dir", out, "--out", base + "/stats"});
  ASSERT_EQ(st.code, 0) << st.err;
  EXPECT_EQ(read_csv(join_path(base, "stats/stats.csv")).size(), 49u);
  // --resume with more steps continues from the checkpoint
  args[args.size() - 7] = "60";
  args.push_back("--resume");
  auto rr = run_cli(args);
  ASSERT_EQ(rr.code, 0) << rr.err;
  std::ifstream mf(join_path(out, "manifest.json"));
  EXPECT_EQ(nlohmann::json::parse(mf)["settings"]["saes"][0]["resumed_from"], 40);
  expect_user_error(
      {"sae", "train", "--model", kModel, "--tokenizer", mstest::gpt2_tokenizer(), "--hook", "blocks.7.hook_resid_pre",
       "--corpus", base + "/corpus.txt", "--d-sae", "8", "--out", base + "/bad"},
      "blocks.7.hook_resid_pre");
  expect_user_error({"sae", "train", "--model", kModel, "--hook", "blocks.0.hook_resid_pre", "--corpus",
                     base + "/corpus.txt", "--out", base + "/bad"},
                    "--d-sae");
}

TEST(SaeEvalCli, WritesWhatTheLibraryEvaluationGives) {
  std::string base = mstest::tmp_dir("sae-eval");
  std::string sae_dir = make_sae(base + "/sae", 1, 48);
  write_file_atomic(base + "/corpus.txt", "The capital of France is Paris.\nA cat sat on the mat.\n");
  auto r = run_cli({"sae", "eval", "--model", kModel, "--tokenizer", mstest::gpt2_tokenizer(), "--sae", sae_dir,
                    "--corpus", base + "/corpus.txt", "--out", base + "/out"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::ifstream f(join_path(base, "out/eval.json"));
  auto j = nlohmann::json::parse(f);
  auto model = models::load_model(kModel);
  auto tok = tokenizers::load_tokenizer(mstest::gpt2_tokenizer());
  sae::SAE s = sae::load_sae(sae_dir);
  sae::EvalResult want =
      sae::evaluate(*model, s, {tok->encode("The capital of France is Paris."), tok->encode("A cat sat on the mat.")});
  EXPECT_EQ(j["tokens"], want.n_tokens);
  EXPECT_DOUBLE_EQ(j["l0"].get<double>(), want.l0);
  EXPECT_NEAR(j["explained_variance"].get<double>(), want.explained_variance, 1e-9);
  EXPECT_NEAR(j["ce_spliced"].get<double>(), want.ce_spliced, 1e-9);
  EXPECT_NEAR(j["ce_loss_score"].get<double>(), want.ce_loss_score, 1e-9);
  expect_user_error({"sae", "eval", "--model", kModel, "--tokenizer", mstest::gpt2_tokenizer(), "--sae",
                     make_sae(base + "/d8", 0, 8, 8), "--corpus", base + "/corpus.txt", "--out", base + "/bad"},
                    "d_in 8");
}

TEST(SaeStatsCli, HelpListsEveryFlag) {
  auto r = run_cli({"sae", "stats", "--help"});
  ASSERT_EQ(r.code, 0);
  for (const char* f : {"--model", "--sae", "--sae-dir", "--hook", "--unembed", "--cosine-sim", "--block",
                        "--save-projection", "--where", "--sort", "--ascending", "--top", "--neuronpedia-model",
                        "--neuronpedia-sae", "--list-name", "--min-log-sparsity", "--formats", "--out"})
    EXPECT_TRUE(contains(r.out, f)) << f;
  auto t = run_cli({"sae", "tsea", "--help"});
  ASSERT_EQ(t.code, 0);
  for (const char* f :
       {"--model", "--sae", "--hook", "--unembed", "--cosine-sim", "--top-features", "--sets", "--token-set", "--group",
        "--pair", "--category", "--k", "--label-threshold", "--top-n", "--block", "--formats", "--out"})
    EXPECT_TRUE(contains(t.out, f)) << f;
  auto tr = run_cli({"sae", "train", "--help"});
  ASSERT_EQ(tr.code, 0);
  for (const char* f :
       {"--model", "--hook", "--corpus", "--prepend-bos", "--d-sae", "--l1", "--lr", "--steps", "--batch",
        "--dead-window", "--checkpoint-every", "--log-every", "--seed", "--resume", "--model-name", "--out"})
    EXPECT_TRUE(contains(tr.out, f)) << f;
  auto ev = run_cli({"sae", "eval", "--help"});
  ASSERT_EQ(ev.code, 0);
  for (const char* f : {"--model", "--sae", "--hook", "--corpus", "--prepend-bos", "--out"})
    EXPECT_TRUE(contains(ev.out, f)) << f;
  auto s = run_cli({"sae", "--help"});
  EXPECT_EQ(s.code, 0);
  EXPECT_TRUE(contains(s.out, "stats"));
  EXPECT_TRUE(contains(s.out, "tsea"));
  EXPECT_TRUE(contains(s.out, "train"));
  EXPECT_TRUE(contains(s.out, "eval"));
}

}  // namespace
