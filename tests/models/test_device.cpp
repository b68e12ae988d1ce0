// --device: parse_device's cases and messages, the runtime description, and the fixture models run on
// the test device (MECHSCOPE_TEST_DEVICE, default cpu) through the same code, against the references.
#include <gtest/gtest.h>

#include "core/error.h"
#include "device_util.h"
#include "fixture_checks.h"
#include "models/device.h"

using namespace mechscope;

namespace {

std::string error_of(const std::string& text) {
  try {
    models::parse_device(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ParseDevice, CpuAndAuto) {
  EXPECT_TRUE(models::parse_device("cpu").is_cpu());
  at::Device a = models::parse_device("auto");
  EXPECT_EQ(a.is_cuda(), models::runtime_info().cuda_available);
  if (a.is_cuda()) EXPECT_EQ(a.index(), 0);
}

TEST(ParseDevice, RejectsWhatIsNoDevice) {
  for (std::string bad : {"bogus", "", "gpu", "cuda:", "cuda:x", "cuda0", "CPU", "cuda:-1", "cuda:1x"}) {
    std::string e = error_of(bad);
    EXPECT_TRUE(mstest::contains(e, "device: expected cpu, cuda, cuda:N or auto, got '" + bad + "'"))
        << bad << ": " << e;
  }
}

TEST(ParseDevice, CudaOnABuildWithoutItSaysSo) {
  models::RuntimeInfo r = models::runtime_info();
  if (r.cuda_built) GTEST_SKIP() << "this libtorch has CUDA";
  for (std::string dev : {"cuda", "cuda:0", "cuda:3"}) {
    std::string e = error_of(dev);
    EXPECT_EQ(e, "device " + dev + ": CUDA is not available in this build (libtorch " + r.libtorch + ", CPU only)");
  }
}

TEST(ParseDevice, CudaIndexPastTheGpusIsNamed) {
  models::RuntimeInfo r = models::runtime_info();
  if (!r.cuda_available) GTEST_SKIP() << "no GPU here";
  int n = (int)r.gpus.size();
  EXPECT_EQ(models::parse_device("cuda").index(), 0);
  EXPECT_EQ(models::parse_device("cuda:" + std::to_string(n - 1)).index(), n - 1);
  EXPECT_TRUE(mstest::contains(error_of("cuda:" + std::to_string(n)),
                               "cuda:" + std::to_string(n) + " does not exist (" + std::to_string(n)));
}

TEST(ParseDevice, FlagIsNamedInMessages) {
  try {
    models::parse_device("nope", "MECHSCOPE_TEST_DEVICE");
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(mstest::contains(e.what(), "MECHSCOPE_TEST_DEVICE: expected")) << e.what();
  }
}

TEST(RuntimeInfo, NamesLibtorchAndCuda) {
  models::RuntimeInfo r = models::runtime_info();
  EXPECT_FALSE(r.libtorch.empty());
  EXPECT_NE(r.libtorch, "unknown");
  std::string s = models::runtime_summary(r);
  EXPECT_TRUE(mstest::contains(s, "libtorch " + r.libtorch)) << s;
  if (!r.cuda_built) EXPECT_TRUE(mstest::contains(s, "CPU only")) << s;
  else EXPECT_TRUE(mstest::contains(s, "CUDA " + r.cuda_runtime)) << s;
  nlohmann::json j = models::runtime_json(r, at::Device(at::kCPU));
  EXPECT_EQ(j["device"], "cpu");
  EXPECT_EQ(j["libtorch"], r.libtorch);
  EXPECT_TRUE(j["gpu"].is_null());
  EXPECT_EQ(j["cuda"].is_null(), !r.cuda_built);
}

TEST(DeviceName, AsTheFlagTakesIt) {
  EXPECT_EQ(models::device_name(at::Device(at::kCPU)), "cpu");
  EXPECT_EQ(models::device_name(at::Device(at::kCUDA, 1)), "cuda:1");
  EXPECT_EQ(models::device_name(at::Device(at::kCUDA)), "cuda:0");
}

TEST(CheckDtypeOn, Float16NeedsAGpu) {
  EXPECT_THROW(models::check_dtype_on(at::kHalf, at::Device(at::kCPU)), Error);
  EXPECT_NO_THROW(models::check_dtype_on(at::kHalf, at::Device(at::kCUDA, 0)));
  EXPECT_NO_THROW(models::check_dtype_on(at::kBFloat16, at::Device(at::kCPU)));
}

// Every causal family on the test device: weights there, logits/hidden states/patterns and greedy
// generation as the reference, KV-cache steps and padded batches (masks made on the host) as well.
struct DeviceFixture : ::testing::TestWithParam<std::string> {
  std::unique_ptr<models::HookedModel> m =
      models::load_model(mstest::fixture(GetParam() + "/model"), mstest::test_load_options());
  std::shared_ptr<io::SafetensorsFile> ref = mstest::reference(GetParam());
};

TEST_P(DeviceFixture, WeightsAreOnTheDevice) {
  EXPECT_EQ(m->device(), mstest::test_device());
  for (auto& [name, t] : m->parameters()) EXPECT_EQ(t.device(), mstest::test_device()) << name;
}

TEST_P(DeviceFixture, MatchesTheReference) {
  // GPT-Neo's unscaled scores amplify float32 rounding (see test_gpt_neo.cpp).
  mstest::expect_matches_reference(*m, *ref, GetParam() == "gpt_neo" ? 1e-4 : 1e-5);
}

TEST_P(DeviceFixture, GreedyGenerationMatchesTheReference) { mstest::expect_greedy_generation(*m, *ref); }

TEST_P(DeviceFixture, KvCacheStepsEqualOneFullForward) {
  mstest::expect_kv_cache_steps_equal_full_forward(*m, ref->get("input_ids")[0].unsqueeze(0), 3,
                                                   GetParam() == "gpt_neo" ? 1e-4 : 1e-5);
}

TEST_P(DeviceFixture, OutputsStayOnTheDevice) {
  models::RunContext ctx;
  at::Tensor logits = m->forward(ref->get("input_ids"), ctx);  // ids from the host
  EXPECT_EQ(logits.device(), mstest::test_device());
}

INSTANTIATE_TEST_SUITE_P(Families, DeviceFixture,
                         ::testing::Values("gpt2", "gpt_neo", "gpt_neox", "llama", "qwen2", "gemma2"));

TEST(DeviceEncoders, BertMatchesItsReference) {
  at::NoGradGuard ng;
  auto bert = models::load_model(mstest::fixture("bert/model"), mstest::test_load_options());
  auto ref = mstest::reference("bert");
  EXPECT_EQ(bert->device(), mstest::test_device());
  models::RunContext ctx;  // mask and token types from the host
  ctx.attention_mask = ref->get("attention_mask");
  ctx.token_type_ids = ref->get("token_type_ids");
  EXPECT_TRUE(mstest::close(bert->forward(ref->get("input_ids"), ctx), ref->get("logits")));
}

}  // namespace
