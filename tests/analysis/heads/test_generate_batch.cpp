// Batched greedy generation (left padding, KV cache) against models::generate one prompt at a time,
// plain and with heads ablated.
#include <gtest/gtest.h>

#include "analysis/heads/generate_batch.h"
#include "analysis/heads/interventions.h"
#include "models/generate.h"
#include "test_util.h"
#include "tokenizers/tokenizer.h"

using namespace mechscope;
namespace H = mechscope::analysis::heads;

TEST(GenerateBatch, EqualsOnePromptAtATimeWithAndWithoutAblation) {
  auto model = models::load_model(mstest::fixture("gpt2/model"));
  auto tok = tokenizers::load_tokenizer(mstest::fixture("gpt2/model"));
  std::vector<std::vector<int64_t>> prompts;
  for (const char* t : {"I am so grateful for your help, and", "Hello", "We hate the new schedule. It",
                        "Honestly, I am deeply sorry about what happened at the meeting. I", "The cat"})
    prompts.push_back(tok->encode(t));
  auto heads = H::parse_head_spec("0:1,1:2", 2, 4, "--heads");
  for (bool ablate : {false, true}) {
    hooks::HookSet hs;
    hooks::ScopedHooks scope(hs);
    if (ablate) H::add_ablation(scope, heads, H::HeadAblation::Zero);
    // Batches of 2 so that padding, several batches and a batch of one are all exercised.
    auto batched = H::generate_greedy_batch(*model, prompts, 8, std::nullopt, &hs, 2);
    ASSERT_EQ(batched.size(), prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
      models::GenerateOptions g;
      g.max_new_tokens = 8;
      g.hooks = &hs;
      EXPECT_EQ(batched[i], models::generate(*model, prompts[i], g)) << "prompt " << i << " ablate " << ablate;
    }
  }
  // Stopping at a token: the continuation ends with it.
  auto plain = H::generate_greedy_batch(*model, prompts, 8, std::nullopt, nullptr, 8);
  int64_t stop = plain[0][2];
  auto stopped = H::generate_greedy_batch(*model, prompts, 8, stop, nullptr, 8);
  EXPECT_EQ(stopped[0].size(), 3u);
  EXPECT_EQ(stopped[0].back(), stop);
}
