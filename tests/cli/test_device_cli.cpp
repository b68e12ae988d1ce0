// --device end to end: the commands on the test device (MECHSCOPE_TEST_DEVICE, default cpu) give the
// CPU's numbers and say where they ran (manifest.json "runtime"); devices that are not usable here
// end with one message and exit 2; `info --device` and --version describe the runtime.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
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

TEST(DeviceCli, BogusDeviceIsRefused) {
  auto r = run_cli({"run", "--model", kModel, "--ids", "1,2,3", "--out", out_file("device_cli_bogus"), "--device", "bogus"});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "--device: expected cpu, cuda, cuda:N or auto, got 'bogus'")) << r.err;
  r = run_cli({"sentiment", "--text", "good", "--sentiment-model", mstest::fixture("distilbert_sst/model"), "--device", "tpu"});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "got 'tpu'")) << r.err;
}

TEST(DeviceCli, Float16OnlyOnAGpu) {
  auto r = run_cli({"run", "--model", kModel, "--ids", "1,2,3", "--out", out_file("device_cli_f16"), "--dtype", "float16",
                    "--device", "cpu"});
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
  auto r = run_cli({"trace", "--model", kModel, "--ids", ids_of(st->get("trace.input_ids")), "--subject-range", "1,4",
                    "--noise", "1.021656110018547", "--samples", "10", "--window", "10", "--out", out, "--device", dev()});
  ASSERT_EQ(r.code, 0) << r.err;
  auto got = io::SafetensorsFile::open(join_path(out, "trace.safetensors"));
  for (const char* k : {"all", "mlp", "attn"})
    EXPECT_TRUE(mstest::close(got->get(std::string("scores.") + k), st->get(std::string("trace.scores.") + k), 1e-4, 1e-7)) << k;
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
  std::vector<std::string> args{"patch", "--model", kModel, "--tokenizer", mstest::gpt2_tokenizer(), "--clean",
                                "After John and Mary went to the store, Mary gave a bottle of milk to", "--corrupt",
                                "After John and Mary went to the store, John gave a bottle of milk to", "--answer", " John",
                                "--wrong", " Mary", "--prepend-bos", "--targets", "resid_pre,z,pattern"};
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
             "{\"emotion\": \"Today I really appreciate the gift, and\", \"neutral\": \"Today I just noticed the gift, and\"}\n"
             "{\"emotion\": \"Honestly, I am so thankful for your help. I\", \"neutral\": \"Honestly, I saw your help. I\"}\n");
  write_file_atomic(join_path(dir, "keywords.json"), "{\"joy\": [\"thank\", \"glad\"]}");
  for (const char* score : {"keyword-attention", "causal"}) {
    std::vector<json> got;
    for (std::string d : {std::string("cpu"), dev()}) {
      std::string out = join_path(mstest::tmp_dir(std::string("device_cli_screen_") + score + "_" + (d == "cpu" ? "cpu" : "dev")), "out");
      auto r = run_cli({"heads", "screen", "--model", kModel, "--profile", dir, "--score", score, "--out", out, "--device", d});
      ASSERT_EQ(r.code, 0) << r.err;
      got.push_back(json::parse(read_file(join_path(out, "head_scores.json")))["scores"]);
    }
    // Keyed by head: rows are ranked by score, and ties may rank differently.
    std::map<std::string, double> cpu;
    for (auto& row : got[0]) cpu[row["emotion"].get<std::string>() + " " + row["layer"].dump() + "." + row["head"].dump()] = row["score"];
    ASSERT_EQ(got[1].size(), cpu.size());
    for (auto& row : got[1]) {
      std::string key = row["emotion"].get<std::string>() + " " + row["layer"].dump() + "." + row["head"].dump();
      ASSERT_TRUE(cpu.count(key)) << key;
      EXPECT_NEAR(row["score"].get<double>(), cpu[key], 1e-5) << score << " " << key;
    }
  }
}

}  // namespace
