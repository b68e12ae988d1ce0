// GPT-2 against Hugging Face transformers (float64 reference in tests/fixtures/gpt2), both key layouts.
#include <gtest/gtest.h>

#include "core/error.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "models/generate.h"
#include "models/model.h"
#include "tensor_util.h"
#include "test_util.h"

using namespace mechscope;

namespace {

struct Gpt2Fixture : ::testing::TestWithParam<std::string> {
  static std::shared_ptr<io::SafetensorsFile> ref() {
    static auto f = io::SafetensorsFile::open(mstest::fixture("gpt2/reference.safetensors"));
    return f;
  }
  std::unique_ptr<models::HookedModel> model() { return models::load_model(mstest::fixture("gpt2/" + GetParam())); }
};

TEST_P(Gpt2Fixture, LogitsHiddenStatesAndPatternsMatchTransformers) {
  auto m = model();
  at::Tensor ids = ref()->get("input_ids");
  hooks::HookSet hs;
  hooks::ActivationCache cache;
  cache.attach(hs, {"blocks.*.hook_resid_pre", "ln_final.hook_normalized", "blocks.*.attn.hook_pattern"});
  models::RunContext ctx;
  ctx.hooks = &hs;
  at::Tensor logits = m->forward(ids, ctx);
  EXPECT_TRUE(mstest::close(logits, ref()->get("logits")));
  // HF hidden_states[i] is the input of block i; the last one has the final norm applied.
  EXPECT_TRUE(mstest::close(cache.get("blocks.0.hook_resid_pre"), ref()->get("hidden_states.0")));
  EXPECT_TRUE(mstest::close(cache.get("blocks.1.hook_resid_pre"), ref()->get("hidden_states.1")));
  EXPECT_TRUE(mstest::close(cache.get("ln_final.hook_normalized"), ref()->get("hidden_states.2")));
  EXPECT_TRUE(mstest::close(cache.get("blocks.0.attn.hook_pattern"), ref()->get("attentions.0")));
  EXPECT_TRUE(mstest::close(cache.get("blocks.1.attn.hook_pattern"), ref()->get("attentions.1")));
}

TEST_P(Gpt2Fixture, GreedyGenerationMatchesTransformers) {
  auto m = model();
  auto expected = mstest::to_vec(ref()->get("generate_greedy"));
  std::vector<int64_t> prompt = mstest::to_vec(ref()->get("input_ids")[0]);
  models::GenerateOptions g;
  g.max_new_tokens = (int64_t)(expected.size() - prompt.size());
  auto out = models::generate(*m, prompt, g);
  prompt.insert(prompt.end(), out.begin(), out.end());
  EXPECT_EQ(prompt, expected);
}

INSTANTIATE_TEST_SUITE_P(Layouts, Gpt2Fixture, ::testing::Values("model", "model-hub-layout"));

struct Gpt2 : ::testing::Test {
  std::unique_ptr<models::HookedModel> m = models::load_model(mstest::fixture("gpt2/model"));
  std::shared_ptr<io::SafetensorsFile> ref = io::SafetensorsFile::open(mstest::fixture("gpt2/reference.safetensors"));
};

TEST_F(Gpt2, HeadAblationDuringGenerationMatchesTransformers) {
  // Zeroing one head's z at every position, generated ones included (the KV cache path).
  std::vector<int64_t> prompt = mstest::to_vec(ref->get("heads.prompt_ids"));
  for (auto [l, h] : std::vector<std::pair<int, int>>{{0, 1}, {1, 3}}) {
    hooks::HookSet hs;
    hs.add("blocks." + std::to_string(l) + ".attn.hook_z", hooks::zero({{}, {h}}));
    models::GenerateOptions g;
    g.max_new_tokens = 10;
    g.hooks = &hs;
    auto out = models::generate(*m, prompt, g);
    std::vector<int64_t> all = prompt;
    all.insert(all.end(), out.begin(), out.end());
    EXPECT_EQ(all, mstest::to_vec(ref->get("heads.generate_ablate_L" + std::to_string(l) + "H" + std::to_string(h))));
  }
  models::GenerateOptions g;
  g.max_new_tokens = 10;
  auto base = models::generate(*m, prompt, g);
  prompt.insert(prompt.end(), base.begin(), base.end());
  EXPECT_EQ(prompt, mstest::to_vec(ref->get("heads.generate_base")));
}

TEST_F(Gpt2, HeadPatchingMatchesTransformers) {
  at::NoGradGuard ng;
  at::Tensor prompt = ref->get("heads.prompt_ids"), source = ref->get("heads.source_ids");
  for (auto [l, h] : std::vector<std::pair<int, int>>{{0, 1}, {1, 3}}) {
    std::string name = "blocks." + std::to_string(l) + ".attn.hook_z";
    hooks::HookSet src_hooks;
    hooks::ActivationCache src;
    src.attach(src_hooks, {name});
    models::RunContext c1;
    c1.hooks = &src_hooks;
    m->forward(source, c1);
    hooks::HookSet hs;
    hs.add(name, hooks::replace_with(src.get(name), {{}, {h}}));
    models::RunContext c2;
    c2.hooks = &hs;
    at::Tensor logits = m->forward(prompt, c2).select(1, -1).squeeze(0);
    EXPECT_TRUE(mstest::close(logits, ref->get("heads.patch_logits_L" + std::to_string(l) + "H" + std::to_string(h))));
  }
}

TEST_F(Gpt2, PaddedBatchGivesEachPromptItsOwnResult) {
  at::NoGradGuard ng;
  std::vector<std::vector<int64_t>> seqs{{464, 36, 733, 417, 8765, 318, 5140, 287}, {15496, 995}, {40, 1101, 1654}};
  at::Tensor ids, mask;
  models::pad_batch(seqs, 50256, ids, mask);
  models::RunContext ctx;
  ctx.attention_mask = mask;
  at::Tensor batched = m->forward(ids, ctx);
  for (size_t i = 0; i < seqs.size(); ++i) {
    models::RunContext one;
    at::Tensor alone = m->forward(at::tensor(seqs[i], at::kLong).unsqueeze(0), one)[0];
    EXPECT_TRUE(mstest::close(batched[i].narrow(0, 0, seqs[i].size()), alone, 1e-5, 1e-5)) << "prompt " << i;
  }
  // Left padding with position ids from the mask gives the same real-token results.
  at::Tensor left = at::full({1, 8}, 50256, at::kLong), lmask = at::zeros({1, 8}, at::kLong);
  left[0].narrow(0, 6, 2).copy_(at::tensor(seqs[1], at::kLong));
  lmask[0].narrow(0, 6, 2).fill_(1);
  models::RunContext lctx;
  lctx.attention_mask = lmask;
  at::Tensor lout = m->forward(left, lctx)[0].narrow(0, 6, 2);
  EXPECT_TRUE(mstest::close(lout, batched[1].narrow(0, 0, 2), 1e-5, 1e-5));
}

TEST_F(Gpt2, KvCacheStepsEqualOneFullForward) {
  at::NoGradGuard ng;
  at::Tensor ids = ref->get("input_ids")[0].unsqueeze(0);
  models::RunContext full;
  at::Tensor expect = m->forward(ids, full);
  models::KVCache kv;
  models::RunContext step;
  step.cache = &kv;
  at::Tensor first = m->forward(ids.narrow(1, 0, 5), step);
  at::Tensor rest = m->forward(ids.narrow(1, 5, 3), step);
  EXPECT_EQ(kv.length(), 8);
  EXPECT_TRUE(mstest::close(at::cat({first, rest}, 1), expect, 1e-5, 1e-5));
}

TEST_F(Gpt2, HookResultSumsToAttnOutAndLayerNormHooksMatchFastPath) {
  at::NoGradGuard ng;
  at::Tensor ids = ref->get("input_ids");
  models::RunContext plain;
  at::Tensor expect = m->forward(ids, plain);
  hooks::HookSet hs;
  hooks::ActivationCache cache;
  cache.attach(hs,
               {"blocks.0.attn.hook_result", "blocks.0.hook_attn_out", "blocks.*.ln1.hook_*", "ln_final.hook_scale"});
  models::RunContext ctx;
  ctx.hooks = &hs;
  at::Tensor got = m->forward(ids, ctx);
  EXPECT_TRUE(mstest::close(got, expect, 1e-5, 1e-5));
  auto& B = cache.get("blocks.0.attn.hook_result");
  EXPECT_EQ(B.sizes(), (at::IntArrayRef{2, 8, 4, 32}));
  at::Tensor bias = m->parameters()[7].second;  // transformer.h.0.attn.c_proj.bias
  EXPECT_TRUE(mstest::close(B.sum(2) + bias, cache.get("blocks.0.hook_attn_out"), 1e-5, 1e-5));
  EXPECT_EQ(cache.get("blocks.1.ln1.hook_scale").sizes(), (at::IntArrayRef{2, 8, 1}));
  EXPECT_EQ(cache.get("ln_final.hook_scale").sizes(), (at::IntArrayRef{2, 8, 1}));
  // Only what was asked for is kept.
  EXPECT_FALSE(cache.has("blocks.0.hook_resid_pre"));
  EXPECT_FALSE(cache.has("blocks.0.ln2.hook_scale"));
}

TEST_F(Gpt2, EveryHookNameFiresWithTheDocumentedShape) {
  at::NoGradGuard ng;
  at::Tensor ids = ref->get("input_ids");
  hooks::HookSet hs;
  std::map<std::string, std::vector<int64_t>> seen;
  hs.add("*", [&](at::Tensor& t, const hooks::HookContext& c) { seen[c.name] = t.sizes().vec(); });
  models::RunContext ctx;
  ctx.hooks = &hs;
  m->forward(ids, ctx);
  auto names = m->hook_names();
  EXPECT_EQ(seen.size(), names.size());
  for (auto& n : names) EXPECT_TRUE(seen.count(n)) << n;
  using V = std::vector<int64_t>;
  EXPECT_EQ(seen["hook_embed"], (V{2, 8, 32}));
  EXPECT_EQ(seen["blocks.1.attn.hook_q"], (V{2, 8, 4, 8}));
  EXPECT_EQ(seen["blocks.1.attn.hook_z"], (V{2, 8, 4, 8}));
  EXPECT_EQ(seen["blocks.1.attn.hook_attn_scores"], (V{2, 4, 8, 8}));
  EXPECT_EQ(seen["blocks.0.mlp.hook_post"], (V{2, 8, 128}));
  EXPECT_EQ(seen["blocks.1.hook_resid_post"], (V{2, 8, 32}));
}

TEST_F(Gpt2, UnembedColumnsEqualFullLogitColumns) {
  at::NoGradGuard ng;
  at::Tensor x = at::randn({3, 32});
  at::Tensor cols = at::tensor(std::vector<int64_t>{10714, 45261, 0}, at::kLong);
  EXPECT_TRUE(mstest::close(m->unembed(x, cols), m->unembed(x).index_select(1, cols), 1e-6, 1e-6));
}

TEST(ModelLoading, UnknownModelTypeListsSupportedOnes) {
  std::string dir = mstest::tmp_dir("unknown-type");
  std::system(("cp " + mstest::fixture("gpt2/model/model.safetensors") + " " + dir + "/").c_str());
  FILE* f = std::fopen((dir + "/config.json").c_str(), "w");
  std::fputs("{\"model_type\": \"mamba\", \"hidden_size\": 8}", f);
  std::fclose(f);
  try {
    models::load_model(dir);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unsupported model_type 'mamba'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("gpt2"), std::string::npos) << e.what();
  }
}

TEST(ModelLoading, ShapeMismatchNamesTensorAndBothShapes) {
  std::string dir = mstest::tmp_dir("bad-shape");
  std::system(("cp " + mstest::fixture("gpt2/model/model.safetensors") + " " + dir + "/").c_str());
  auto cfg = io::read_json_file(mstest::fixture("gpt2/model/config.json"));
  cfg["n_inner"] = 64;  // the file has 128
  FILE* f = std::fopen((dir + "/config.json").c_str(), "w");
  std::fputs(cfg.dump().c_str(), f);
  std::fclose(f);
  try {
    models::load_model(dir);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("transformer.h.0.mlp.c_fc.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[32, 128]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[32, 64]"), std::string::npos) << msg;
  }
}

}  // namespace

namespace {

// config.json edits that parsing must refuse, with the message naming the keys.
void expect_config_refused(const std::string& key, const nlohmann::json& value, const std::string& message) {
  std::string dir = mstest::tmp_dir("bad-config");
  auto cfg = io::read_json_file(mstest::fixture("gpt2/model/config.json"));
  cfg[key] = value;
  FILE* f = std::fopen((dir + "/config.json").c_str(), "w");
  std::fputs(cfg.dump().c_str(), f);
  std::fclose(f);
  try {
    models::read_config(dir);
    FAIL() << "expected an error for " << key;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
  }
}

TEST(ModelLoading, HeadsThatDoNotDivideTheWidthAndUnknownActivationsAreRefused) {
  expect_config_refused("n_head", 5, "n_embd 32 is not divisible by n_head 5");
  expect_config_refused("n_head", 0, "n_embd 32 is not divisible by n_head 0");
  expect_config_refused("activation_function", "swiglu_xl", "unsupported activation function 'swiglu_xl'");
}

}  // namespace
