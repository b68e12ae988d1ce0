// info / tokenize / run / generate on every architecture family through the built binary, against the
// transformers references in tests/fixtures/<family>.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "io/safetensors.h"
#include "models/model.h"
#include "tensor_util.h"
#include "test_util.h"

using namespace mechscope;
using mstest::contains;
using mstest::ids_arg;
using mstest::run_cli;

namespace {

struct Family {
  std::string name, model_type;
  bool causal;
};
void PrintTo(const Family& f, std::ostream* os) { *os << f.name; }

struct Architectures : ::testing::TestWithParam<Family> {
  std::string dir = mstest::fixture(GetParam().name + "/model");
  std::shared_ptr<io::SafetensorsFile> ref =
      io::SafetensorsFile::open(mstest::fixture(GetParam().name + "/reference.safetensors"));
};

TEST_P(Architectures, InfoJsonListsTheModelAndEveryHook) {
  auto r = run_cli({"info", "--model", dir, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  auto m = models::load_model(dir);
  EXPECT_EQ(j["model_type"], GetParam().model_type);
  EXPECT_EQ(j["n_layers"], 2);
  EXPECT_EQ(j["d_model"], 32);
  EXPECT_EQ(j["n_kv_heads"], m->config().n_kv_heads);
  EXPECT_EQ(j["parameters"], m->parameter_count());
  EXPECT_EQ(j["hooks"], nlohmann::json(m->hook_names()));
  auto text = run_cli({"info", "--model", dir});
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_TRUE(contains(text.out, GetParam().model_type)) << text.out;
}

TEST_P(Architectures, RunWritesTheReferenceLogitsAndCachedHooks) {
  std::string out = mstest::tmp_dir("arch-run-" + GetParam().name) + "/out.safetensors";
  at::Tensor ids = ref->get("input_ids");
  std::vector<std::string> args{"run", "--model", dir, "--cache", "blocks.1.hook_resid_pre", "--out", out};
  for (int64_t b = 0; b < ids.size(0); ++b) {
    // Padding is dropped here: the CLI pads again (with the model's pad id) and masks it.
    at::Tensor row = ids[b];
    int64_t n = ref->has("attention_mask") ? ref->get("attention_mask")[b].sum().item<int64_t>() : row.size(0);
    args.insert(args.end(), {"--ids", ids_arg(row.narrow(0, 0, n))});
    // BERT's second row is a two-segment pair.
    if (ref->has("token_type_ids"))
      args.insert(args.end(), {"--token-type-ids", ids_arg(ref->get("token_type_ids")[b].narrow(0, 0, n))});
  }
  auto r = run_cli(args);
  ASSERT_EQ(r.code, 0) << r.err;
  auto f = io::SafetensorsFile::open(out);
  EXPECT_TRUE(at::equal(f->get("input_ids"), ids));
  // GPT-Neo's unscaled scores amplify float32 rounding (see tests/models/test_gpt_neo.cpp).
  double atol = GetParam().name == "gpt_neo" ? 1e-4 : 1e-5;
  EXPECT_TRUE(mstest::close(f->get("logits"), ref->get("logits"), 1e-4, atol));
  // hidden_states.1 is the input of block 1 (for BERT too: the output of layer 0).
  EXPECT_TRUE(mstest::close(f->get("blocks.1.hook_resid_pre"), ref->get("hidden_states.1")));
}

TEST_P(Architectures, GenerateGivesTheReferenceGreedyTokensOrRefusesForEncoders) {
  auto r = run_cli({"generate", "--model", dir, "--ids", ids_arg(ref->get("input_ids")[0]), "--max-new-tokens", "8",
                    "--no-eos-stop", "--json"});
  if (!GetParam().causal) {
    EXPECT_EQ(r.code, 2);
    EXPECT_TRUE(contains(r.err, "not a causal language model")) << r.err;
    return;
  }
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  std::vector<int64_t> all = j["prompt_ids"].get<std::vector<int64_t>>();
  auto added = j["new_ids"].get<std::vector<int64_t>>();
  all.insert(all.end(), added.begin(), added.end());
  EXPECT_EQ(all, mstest::to_vec(ref->get("generate_greedy")));
}

TEST_P(Architectures, TokenizeUsesTheModelsTokenizerOrSaysThereIsNone) {
  auto r = run_cli({"tokenize", "--model", dir, "--json", "The Eiffel Tower is located in the city of"});
  if (GetParam().name != "bert") {  // these fixtures ship no tokenizer files
    EXPECT_EQ(r.code, 2);
    EXPECT_TRUE(contains(r.err, "tokenizer")) << r.err;
    return;
  }
  ASSERT_EQ(r.code, 0) << r.err;
  auto refj = nlohmann::json::parse(std::ifstream(mstest::fixture("bert/reference.json")));
  EXPECT_EQ(nlohmann::json::parse(r.out)["ids"], refj["bert_ids"][1]);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Architectures,
                         ::testing::Values(Family{"gpt_neo", "gpt_neo", true}, Family{"gpt_neox", "gpt_neox", true},
                                           Family{"llama", "llama", true}, Family{"qwen2", "qwen2", true},
                                           Family{"gemma2", "gemma2", true}, Family{"bert", "bert", false}),
                         [](const auto& info) { return info.param.name; });

TEST(ArchitecturesCli, BertPromptsRunWithTheirTokenizer) {
  std::string dir = mstest::fixture("bert/model");
  std::string out = mstest::tmp_dir("arch-bert-prompt") + "/p.safetensors";
  // The reference's row 0 is texts[0] alone (row 1 is a two-segment pair).
  auto refj = nlohmann::json::parse(std::ifstream(mstest::fixture("bert/reference.json")));
  auto r = run_cli({"run", "--model", dir, "--prompt", refj["texts"][0].get<std::string>(), "--out", out});
  ASSERT_EQ(r.code, 0) << r.err;
  auto f = io::SafetensorsFile::open(out);
  auto want = refj["bert_ids"][0].get<std::vector<int64_t>>();
  EXPECT_EQ(mstest::to_vec(f->get("input_ids")), want);
  auto ref = io::SafetensorsFile::open(mstest::fixture("bert/reference.safetensors"));
  EXPECT_TRUE(mstest::close(f->get("logits")[0], ref->get("logits")[0].narrow(0, 0, (int64_t)want.size())));
}

TEST(ArchitecturesCli, BareBertModelRunsWithoutLogits) {
  std::string dir = mstest::tmp_dir("arch-bert-bare");
  auto src = io::SafetensorsFile::open(mstest::fixture("bert/model/model.safetensors"));
  std::vector<std::pair<std::string, at::Tensor>> kept;
  for (auto& [name, info] : src->tensors())
    if (name.rfind("bert.", 0) == 0) kept.emplace_back(name.substr(5), src->get(name));
  io::write_safetensors(dir + "/model.safetensors", kept);
  mstest::run_shell("cp " + mstest::fixture("bert/model/config.json") + " " + dir + "/");
  auto r = run_cli({"run", "--model", dir, "--ids", "2,5,6,3", "--cache", "blocks.*.hook_normalized_resid_post",
                    "--out", dir + "/out.safetensors"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto f = io::SafetensorsFile::open(dir + "/out.safetensors");
  EXPECT_FALSE(f->has("logits"));
  EXPECT_TRUE(f->has("blocks.1.hook_normalized_resid_post"));
  auto info = run_cli({"info", "--model", dir, "--json"});
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_FALSE(contains(info.out, "mlm_head"));
}

}  // namespace
