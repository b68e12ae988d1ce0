// --device end to end: the commands on the test device (MECHSCOPE_TEST_DEVICE, default cpu) give the
// CPU's numbers and say where they ran (manifest.json "runtime"); devices that are not usable here
// end with one message and exit 2; `info --device` and --version describe the runtime.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <map>

#include "core/fs.h"
#include "device_util.h"
#include "io/safetensors.h"
#include "models/device.h"
#include "tensor_util.h"
#include "test_util.h"

using namespace mechscope;
using json = nlohmann::json;
using mstest::contains;
using mstest::run_cli;

namespace {

const std::string kModel = mstest::fixture("gpt2/model");

std::string dev() { return models::device_name(mstest::test_device()); }

std::string out_file(const std::string& name) { return join_path(mstest::tmp_dir(name), "run.safetensors"); }

std::string ids_of(const at::Tensor& t) { return mstest::ids_arg(t); }

TEST(DeviceCli, CudaOnACpuBuildEndsWithOneMessage) {
  models::RuntimeInfo rt = models::runtime_info();
  if (rt.cuda_built) GTEST_SKIP() << "this libtorch has CUDA";
  for (auto args : std::vector<std::vector<std::string>>{
           {"run", "--model", kModel, "--ids", "1,2,3", "--out", out_file("device_cli_cuda"), "--device", "cuda"},
           {"generate", "--model", kModel, "--ids", "1,2,3", "--device", "cuda"},
           {"info", "--model", kModel, "--device", "cuda:1"}}) {
    auto r = run_cli(args);
    EXPECT_EQ(r.code, 2) << args[0] << ": " << r.err;
    std::string asked = args.back();
    EXPECT_TRUE(contains(r.err, "error: --device " + asked + ": CUDA is not available in this build (libtorch " +
                                    rt.libtorch + ", CPU only)"))
        << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
  }
}

// A random standard SAE on blocks.1.hook_resid_pre of the GPT-2 fixture (d_model 32), SAELens's format.
std::string make_sae(const std::string& dir) {
  at::manual_seed(11);
  make_dirs(dir);
  write_file_atomic(
      join_path(dir, "cfg.json"),
      json{{"d_in", 32}, {"d_sae", 24}, {"architecture", "standard"}, {"hook_name", "blocks.1.hook_resid_pre"}}.dump());
  io::write_safetensors(join_path(dir, "sae_weights.safetensors"), {{"W_enc", at::randn({32, 24})},
                                                                    {"b_enc", at::zeros({24})},
                                                                    {"W_dec", at::randn({24, 32})},
                                                                    {"b_dec", at::zeros({32})}});
  io::write_safetensors(join_path(dir, "sparsity.safetensors"), {{"sparsity", -at::rand({24}) * 8}});
  return dir;
}

std::string corpus_file(const std::string& dir) {
  std::string path = join_path(dir, "corpus.txt");
  write_file_atomic(path, "The capital of France is Paris.\nA cat sat on the mat.\nThe Eiffel Tower is in Paris.\n");
  return path;
}

const std::string kKgModel = mstest::source_dir() + "/examples/kg/model";
const std::string kKgGraph = mstest::source_dir() + "/examples/kg/graph.jsonl";

// The commands whose own tensors (training state, SAE weights, projected queries and keys) follow
// --device, each as one small run without --out. One thread: these runs are tiny, and a second thread
// on a loaded machine only waits (train: 3 s instead of 1 s).
std::vector<std::vector<std::string>> device_commands(const std::string& dir) {
  std::string sae = make_sae(join_path(dir, "sae")), corpus = corpus_file(dir), tok = mstest::gpt2_tokenizer();
  std::vector<std::vector<std::string>> cmds{
      {"train", "--kg", kKgGraph, "--layers", "1", "--d-model", "16", "--heads", "2", "--steps", "6", "--batch", "16",
       "--eval-every", "6", "--checkpoint-every", "3", "--save-dtype", "float32"},
      {"sae",
       "train",
       "--model",
       kModel,
       "--tokenizer",
       tok,
       "--hook",
       "blocks.1.hook_resid_pre",
       "--corpus",
       corpus,
       "--d-sae",
       "8",
       "--steps",
       "12",
       "--batch",
       "8",
       "--log-every",
       "4",
       "--checkpoint-every",
       "6"},
      {"sae", "eval", "--model", kModel, "--tokenizer", tok, "--sae", sae, "--corpus", corpus},
      {"sae", "stats", "--model", kModel, "--sae", sae, "--block", "7"},
      {"sae", "tsea", "--model", kModel, "--tokenizer", tok, "--sae", sae, "--top-features", "4", "--sets", "a,colors",
       "--category", "a", "--k", "1"},
      {"attnviz", "--model", kKgModel, "--text", "gi to R_20 ->", "--text", "re zo R_18 ->", "--layers", "0,1",
       "--heads", "0,1", "--png-heads", "1:1"}};
  for (auto& c : cmds) c.insert(c.end(), {"--threads", "1"});
  return cmds;
}

TEST(DeviceCli, TrainSaeAndAttnvizTakeDeviceAndRefuseCudaOnACpuBuild) {
  models::RuntimeInfo rt = models::runtime_info();
  if (rt.cuda_built) GTEST_SKIP() << "this libtorch has CUDA";
  std::string dir = mstest::tmp_dir("device_cli_cmds_cuda");
  int i = 0;
  for (auto args : device_commands(dir)) {
    std::string out = join_path(dir, "out" + std::to_string(i++));
    args.insert(args.end(), {"--out", out, "--device", "cuda"});
    auto r = run_cli(args);
    EXPECT_EQ(r.code, 2) << args[0] << " " << args[1] << ": " << r.err;
    EXPECT_TRUE(contains(
        r.err, "error: --device cuda: CUDA is not available in this build (libtorch " + rt.libtorch + ", CPU only)"))
        << args[0] << " " << args[1] << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
    EXPECT_FALSE(dir_exists(out)) << args[0] << " " << args[1] << ": refused before --out is claimed";
  }
  // kg generate runs no tensor maths: it takes no --device, and its help says so.
  auto h = run_cli({"kg", "generate", "--help"});
  EXPECT_TRUE(contains(h.out, "no --device")) << h.out;
  auto k = run_cli({"kg", "generate", "--out", join_path(dir, "kg"), "--device", "cpu"});
  EXPECT_EQ(k.code, 2) << k.err;
}

// Each safetensors file of `a` equals `b`'s (exact: bit for bit, NaN where NaN), or is close to it.
void expect_same_files(const std::string& a, const std::string& b, bool exact, double rtol, double atol) {
  ASSERT_TRUE(file_exists(a)) << a;
  ASSERT_TRUE(file_exists(b)) << b;
  auto x = io::SafetensorsFile::open(a), y = io::SafetensorsFile::open(b);
  ASSERT_EQ(x->tensors().size(), y->tensors().size()) << a;
  for (auto& [name, info] : x->tensors()) {
    ASSERT_TRUE(y->has(name)) << b << ": " << name;
    at::Tensor p = x->get(name), q = y->get(name);
    if (exact) {
      ASSERT_EQ(p.sizes(), q.sizes()) << a << ": " << name;
      bool same = p.is_floating_point() ? (p.eq(q) | (p.isnan() & q.isnan())).all().item<bool>() : at::equal(p, q);
      EXPECT_TRUE(same) << a << ": " << name << " differs from " << b;
    } else {
      EXPECT_TRUE(mstest::close(q, p, rtol, atol)) << b << ": " << name;
    }
  }
}

// The run without --device ($MECHSCOPE_DEVICE, else the CPU), with --device cpu, and on the test device:
// the explicit CPU run gives the default's numbers bit for bit when the default is the CPU, and the
// test device's (a GPU's) are close to them.
TEST(DeviceCli, TrainSaeAndAttnvizGiveTheDefaultsNumbersOnEachDevice) {
  const char* env = std::getenv("MECHSCOPE_DEVICE");
  bool default_is_cpu = !env || !*env || std::string(env) == "cpu";
  std::string dir = mstest::tmp_dir("device_cli_cmds");
  std::vector<std::string> variants{"default", "cpu"};
  if (dev() != "cpu") variants.push_back(dev());
  // command -> the files compared, and the tolerance off the CPU. Training is loose: Adam divides by
  // sqrt(v), so a gradient that is 0 on one device and 1e-12 on the other moves a weight by up to lr
  // per step (train: 6 steps at up to 6e-5 in the warm-up; sae train: 12 at 3e-4).
  std::vector<std::pair<std::vector<std::string>, std::pair<double, double>>> files{
      {{"model.safetensors", "checkpoint/optimizer.safetensors"}, {1e-3, 1e-3}},
      {{"sae_weights.safetensors", "sparsity.safetensors", "checkpoint/state.safetensors"}, {1e-3, 5e-3}},
      {{}, {1e-4, 1e-6}},
      {{"stats.safetensors"}, {1e-4, 1e-5}},
      {{"enrichment.safetensors"}, {0, 1e-3}},
      {{"attnviz.safetensors"}, {1e-3, 1e-4}}};
  auto cmds = device_commands(dir);
  for (size_t c = 0; c < cmds.size(); ++c) {
    std::string what = cmds[c][0] + (cmds[c][0] == "sae" ? " " + cmds[c][1] : "");
    std::vector<std::string> outs;
    for (auto& v : variants) {
      auto args = cmds[c];
      outs.push_back(join_path(dir, std::to_string(c) + "_" +
                                        (v == "default" ? "default"
                                         : v == "cpu"   ? "cpu"
                                                        : "dev")));
      args.insert(args.end(), {"--out", outs.back()});
      if (v != "default") args.insert(args.end(), {"--device", v});
      auto r = run_cli(args);
      ASSERT_EQ(r.code, 0) << what << " on " << v << ": " << r.err;
    }
    for (size_t v = 1; v < variants.size(); ++v) {
      bool exact = variants[v] == "cpu" && default_is_cpu;
      auto [rtol, atol] = files[c].second;
      for (auto& f : files[c].first) {
        // Counts (which features fired on which token, steps since each last fired) are discrete: a
        // GPU's rounding may flip one, so off the CPU only the trained weights are compared.
        if (!exact && (f == "sparsity.safetensors" || f == "checkpoint/state.safetensors")) continue;
        expect_same_files(join_path(outs[0], f), join_path(outs[v], f), exact, rtol, atol);
      }
      if (what == "train") {
        json a = json::parse(read_file(join_path(outs[0], "train_summary.json"))),
             b = json::parse(read_file(join_path(outs[v], "train_summary.json")));
        if (exact) EXPECT_EQ(a["final_loss"], b["final_loss"]);
        EXPECT_NEAR(a["final_loss"].get<double>(), b["final_loss"].get<double>(), 1e-3);
        EXPECT_NEAR(a["fact_accuracy"].get<double>(), b["fact_accuracy"].get<double>(), exact ? 0 : 0.05);
      }
      if (what == "sae train" && exact)
        EXPECT_EQ(read_file(join_path(outs[0], "train_log.jsonl")), read_file(join_path(outs[v], "train_log.jsonl")));
      if (what == "sae eval") {
        json a = json::parse(read_file(join_path(outs[0], "eval.json"))),
             b = json::parse(read_file(join_path(outs[v], "eval.json")));
        for (const char* k : {"tokens", "l0", "mse", "l2_per_token", "explained_variance", "ce_clean", "ce_spliced",
                              "ce_zero_ablated", "ce_loss_score"}) {
          if (exact) EXPECT_EQ(a[k], b[k]) << k;
          else
            EXPECT_NEAR(a[k].get<double>(), b[k].get<double>(), 1e-4 * std::max(1.0, std::abs(a[k].get<double>())))
                << k;
        }
      }
      if (what == "attnviz") {
        json a = json::parse(read_file(join_path(outs[0], "attnviz.json"))),
             b = json::parse(read_file(join_path(outs[v], "attnviz.json")));
        if (exact) EXPECT_EQ(a["normalization"], b["normalization"]);
        else  // the criterion is flat near its best c: a GPU's rounding may land a little off
          EXPECT_NEAR(a["normalization"][0]["c"].get<double>(), b["normalization"][0]["c"].get<double>(),
                      1e-2 * a["normalization"][0]["c"].get<double>());
      }
      // Where it ran, in the manifest.
      json man = json::parse(read_file(join_path(outs[v], "manifest.json")));
      EXPECT_EQ(man["runtime"]["device"], variants[v]) << what;
    }
  }
}

TEST(DeviceCli, BogusDeviceIsRefused) {
  auto r =
      run_cli({"run", "--model", kModel, "--ids", "1,2,3", "--out", out_file("device_cli_bogus"), "--device", "bogus"});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "--device: expected cpu, cuda, cuda:N or auto, got 'bogus'")) << r.err;
  r = run_cli(
      {"sentiment", "--text", "good", "--sentiment-model", mstest::fixture("distilbert_sst/model"), "--device", "tpu"});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "got 'tpu'")) << r.err;
}

TEST(DeviceCli, Float16OnlyOnAGpu) {
  auto r = run_cli({"run", "--model", kModel, "--ids", "1,2,3", "--out", out_file("device_cli_f16"), "--dtype",
                    "float16", "--device", "cpu"});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "--dtype float16 has no CPU kernels")) << r.err;
}

TEST(DeviceCli, InfoDeviceDescribesTheRuntime) {
  models::RuntimeInfo rt = models::runtime_info();
  auto r = run_cli({"info", "--device"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "libtorch     " + rt.libtorch)) << r.out;
  EXPECT_TRUE(contains(r.out, rt.cuda_built ? "CUDA " + rt.cuda_runtime : "not in this build (CPU only)")) << r.out;
  auto j = run_cli({"info", "--device", dev(), "--json"});
  ASSERT_EQ(j.code, 0) << j.err;
  json info = json::parse(j.out);
  EXPECT_EQ(info["libtorch"], rt.libtorch);
  EXPECT_EQ(info["cuda_built"], rt.cuda_built);
  EXPECT_EQ(info["gpus"].size(), rt.gpus.size());
  EXPECT_EQ(info["device"], dev());
  auto v = run_cli({"--version"});
  EXPECT_TRUE(contains(v.out, models::runtime_summary(rt))) << v.out;
  // With a model: where it was loaded.
  auto m = run_cli({"info", "--model", kModel, "--device", dev(), "--json"});
  ASSERT_EQ(m.code, 0) << m.err;
  EXPECT_EQ(json::parse(m.out)["device"], dev());
}

TEST(DeviceCli, TraceOnTheTestDeviceReproducesRomeAndSaysWhereItRan) {
  auto st = io::SafetensorsFile::open(mstest::fixture("gpt2/reference.safetensors"));
  std::string out = mstest::tmp_dir("device_cli_trace");
  auto r =
      run_cli({"trace", "--model", kModel, "--ids", ids_of(st->get("trace.input_ids")), "--subject-range", "1,4",
               "--noise", "1.021656110018547", "--samples", "10", "--window", "10", "--out", out, "--device", dev()});
  ASSERT_EQ(r.code, 0) << r.err;
  auto got = io::SafetensorsFile::open(join_path(out, "trace.safetensors"));
  for (const char* k : {"all", "mlp", "attn"})
    EXPECT_TRUE(
        mstest::close(got->get(std::string("scores.") + k), st->get(std::string("trace.scores.") + k), 1e-4, 1e-7))
        << k;
  json man = json::parse(read_file(join_path(out, "manifest.json")));
  ASSERT_TRUE(man.contains("runtime")) << man.dump();
  EXPECT_EQ(man["runtime"]["device"], dev());
  EXPECT_EQ(man["runtime"]["libtorch"], models::runtime_info().libtorch);
  EXPECT_EQ(man["runtime"]["gpu"].is_null(), !mstest::test_device().is_cuda());
}

TEST(DeviceCli, GenerateOnTheTestDeviceMatchesTransformers) {
  auto st = io::SafetensorsFile::open(mstest::fixture("gpt2/reference.safetensors"));
  auto expected = mstest::to_vec(st->get("generate_greedy"));
  auto prompt = mstest::to_vec(st->get("input_ids")[0]);
  auto r = run_cli({"generate", "--model", kModel, "--ids", ids_of(st->get("input_ids")[0]), "--max-new-tokens",
                    std::to_string(expected.size() - prompt.size()), "--json", "--device", dev()});
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out);
  std::vector<int64_t> all = j["prompt_ids"].get<std::vector<int64_t>>();
  for (auto& x : j["new_ids"]) all.push_back(x.get<int64_t>());
  EXPECT_EQ(all, expected);
}

TEST(DeviceCli, PatchOnTheTestDeviceEqualsTheCpu) {
  std::string base = mstest::tmp_dir("device_cli_patch");
  std::vector<std::string> args{"patch",
                                "--model",
                                kModel,
                                "--tokenizer",
                                mstest::gpt2_tokenizer(),
                                "--clean",
                                "After John and Mary went to the store, Mary gave a bottle of milk to",
                                "--corrupt",
                                "After John and Mary went to the store, John gave a bottle of milk to",
                                "--answer",
                                " John",
                                "--wrong",
                                " Mary",
                                "--prepend-bos",
                                "--targets",
                                "resid_pre,z,pattern"};
  auto cpu = args, here = args;
  for (auto [v, name] : {std::pair{&cpu, "cpu"}, std::pair{&here, "dev"}})
    v->insert(v->end(), {"--out", join_path(base, name), "--device", name == std::string("cpu") ? "cpu" : dev()});
  auto a = run_cli(cpu), b = run_cli(here);
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  auto x = io::SafetensorsFile::open(join_path(base, "cpu/patch.safetensors"));
  auto y = io::SafetensorsFile::open(join_path(base, "dev/patch.safetensors"));
  for (auto& [name, info] : x->tensors()) EXPECT_TRUE(mstest::close(y->get(name), x->get(name), 1e-4, 1e-5)) << name;
}

TEST(DeviceCli, HeadsScreenOnTheTestDeviceEqualsTheCpu) {
  std::string dir = mstest::tmp_dir("device_cli_prof");
  write_file_atomic(join_path(dir, "joy.jsonl"),
                    "{\"emotion\": \"Today I really appreciate the gift, and\", \"neutral\": \"Today I just noticed "
                    "the gift, and\"}\n"
                    "{\"emotion\": \"Honestly, I am so thankful for your help. I\", \"neutral\": \"Honestly, I saw "
                    "your help. I\"}\n");
  write_file_atomic(join_path(dir, "keywords.json"), "{\"joy\": [\"thank\", \"glad\"]}");
  for (const char* score : {"keyword-attention", "causal"}) {
    std::vector<json> got;
    for (std::string d : {std::string("cpu"), dev()}) {
      std::string out = join_path(
          mstest::tmp_dir(std::string("device_cli_screen_") + score + "_" + (d == "cpu" ? "cpu" : "dev")), "out");
      auto r = run_cli(
          {"heads", "screen", "--model", kModel, "--profile", dir, "--score", score, "--out", out, "--device", d});
      ASSERT_EQ(r.code, 0) << r.err;
      got.push_back(json::parse(read_file(join_path(out, "head_scores.json")))["scores"]);
    }
    // Keyed by head: rows are ranked by score, and ties may rank differently.
    std::map<std::string, double> cpu;
    for (auto& row : got[0])
      cpu[row["emotion"].get<std::string>() + " " + row["layer"].dump() + "." + row["head"].dump()] = row["score"];
    ASSERT_EQ(got[1].size(), cpu.size());
    for (auto& row : got[1]) {
      std::string key = row["emotion"].get<std::string>() + " " + row["layer"].dump() + "." + row["head"].dump();
      ASSERT_TRUE(cpu.count(key)) << key;
      EXPECT_NEAR(row["score"].get<double>(), cpu[key], 1e-5) << score << " " << key;
    }
  }
}

}  // namespace
