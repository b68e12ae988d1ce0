// The tensor-name tables (models/tensor_table.h): loading and parameters() come from one table, so
// every fixture's parameters() must be exactly the checkpoint's tensors (by name, shape and value),
// and a missing or mis-shaped tensor must be an Error naming the tensor and the file.
#include <gtest/gtest.h>

#include <cstdio>
#include <set>

#include "core/error.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "models/tensor_table.h"
#include "tensor_util.h"
#include "test_util.h"

using namespace mechscope;

namespace {

struct TableFixture : ::testing::TestWithParam<std::string> {};

// save_pretrained writes every parameter once (a tied unembedding not at all), so the checkpoint's
// names are parameters()'s, and each holds the same values.
TEST_P(TableFixture, ParametersAreExactlyTheCheckpointsTensors) {
  std::string dir = mstest::fixture(GetParam() + "/model");
  models::LoadOptions o;
  o.dtype = at::kDouble;
  auto m = models::load_model(dir, o);
  io::Checkpoint ckpt = io::Checkpoint::open(dir);
  std::set<std::string> names;
  for (auto& [name, t] : m->parameters()) {
    EXPECT_TRUE(names.insert(name).second) << "listed twice: " << name;
    ASSERT_TRUE(ckpt.has(name)) << GetParam() << ": parameter '" << name << "' is not in the checkpoint";
    EXPECT_TRUE(at::equal(t, ckpt.get(name, at::kDouble))) << name;
  }
  for (auto& name : ckpt.names())
    EXPECT_TRUE(names.count(name)) << GetParam() << ": '" << name << "' is not a parameter";
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TableFixture,
                         ::testing::Values("gpt2", "gpt_neo", "gpt_neox", "llama", "qwen2", "gemma2", "bert",
                                           "distilbert_sst"));

TEST(TensorTable, KeysPutThePrefixAndTheLayerWhereThePatternSays) {
  EXPECT_EQ(models::tensor_key("{P}h.{L}.attn.c_attn.weight", "transformer.", 11),
            "transformer.h.11.attn.c_attn.weight");
  EXPECT_EQ(models::tensor_key("{P}wte.weight", "", -1), "wte.weight");
  EXPECT_EQ(models::tensor_key("lm_head.weight", "model.", -1), "lm_head.weight");
}

// A checkpoint without one block tensor: the error names the key the table expects and the file.
TEST(TensorTable, AMissingTensorIsAnErrorNamingItAndTheFile) {
  std::string dir = mstest::tmp_dir("table-missing");
  std::system(("cp " + mstest::fixture("llama/model/config.json") + " " + dir + "/").c_str());
  io::Checkpoint full = io::Checkpoint::open(mstest::fixture("llama/model"));
  std::vector<std::pair<std::string, at::Tensor>> kept;
  for (auto& name : full.names())
    if (name != "model.layers.1.mlp.up_proj.weight") kept.emplace_back(name, full.get(name));
  io::write_safetensors(dir + "/model.safetensors", kept);
  try {
    models::load_model(dir);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_TRUE(mstest::contains(e.what(), "no tensor 'model.layers.1.mlp.up_proj.weight'")) << e.what();
    EXPECT_TRUE(mstest::contains(e.what(), dir + "/model.safetensors")) << e.what();
  }
}

}  // namespace
