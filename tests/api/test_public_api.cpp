// The public headers (include/mechscope/) and the README's library example, compiled as the README
// has it (CMake copies the block into generated/readme_example.cpp) and checked against transformers.
#include <gtest/gtest.h>

#include <mechscope/mechscope.h>

#include "io/safetensors.h"
#include "tensor_util.h"
#include "test_util.h"

using namespace mechscope;

// The README's function (generated/readme_example.cpp).
at::Tensor ablated_logits(const models::HookedModel& model, const at::Tensor& ids, int layer, int head,
                          hooks::ActivationCache& cache);

namespace {

// Greedy decoding with the README's function, one full forward per token (no KV cache), equals
// transformers' greedy generation with the same head zeroed (its z, before W_O) at every position.
TEST(PublicApi, TheReadmeExampleAblatesAHeadAsTransformersDoes) {
  auto model = models::load_model(mstest::fixture("gpt2/model"));
  auto ref = io::SafetensorsFile::open(mstest::fixture("gpt2/reference.safetensors"));
  const int64_t n_layers = model->config().n_layers, d_model = model->config().d_model;
  for (auto [l, h] : std::vector<std::pair<int, int>>{{0, 1}, {1, 3}}) {
    std::vector<int64_t> ids = mstest::to_vec(ref->get("heads.prompt_ids"));
    std::vector<int64_t> want =
        mstest::to_vec(ref->get("heads.generate_ablate_L" + std::to_string(l) + "H" + std::to_string(h)));
    ASSERT_GT(want.size(), ids.size());
    hooks::ActivationCache cache;
    while (ids.size() < want.size()) {
      cache.clear();
      at::Tensor logits = ablated_logits(*model, at::tensor(ids, at::kLong).unsqueeze(0), l, h, cache);
      ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{1, (int64_t)ids.size(), model->config().d_vocab}));
      ids.push_back(logits[0][-1].argmax().item<int64_t>());
    }
    EXPECT_EQ(ids, want) << "head " << l << "." << h;
    // The cache kept exactly the named points: every block's resid_post of the last forward.
    ASSERT_EQ((int64_t)cache.all().size(), n_layers);
    for (int64_t L = 0; L < n_layers; ++L)
      EXPECT_EQ(cache.get("blocks." + std::to_string(L) + ".hook_resid_post").sizes(),
                (std::vector<int64_t>{1, (int64_t)want.size() - 1, d_model}));
  }
}

// What the contract says of errors: a bad input is a mechscope::Error naming it, not a crash.
TEST(PublicApi, BadInputIsAMechscopeErrorNamingIt) {
  try {
    models::load_model(mstest::tmp_dir("api-empty"));
    FAIL() << "an empty folder loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos) << e.what();
  }
  auto model = models::load_model(mstest::fixture("gpt2/model"));
  hooks::ActivationCache cache;
  EXPECT_THROW(cache.get("blocks.0.hook_resid_post"), Error);
}

}  // namespace
