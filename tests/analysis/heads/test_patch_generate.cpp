// Patched generation from neutral prompts, batched, against one prompt at a time with the patch written
// out by hand (replace the heads' z at the prompt positions; optionally fill the generated ones).
#include <gtest/gtest.h>

#include "analysis/heads/interventions.h"
#include "analysis/heads/patch_generate.h"
#include "analysis/heads/screen.h"
#include "models/generate.h"
#include "test_util.h"
#include "tokenizers/tokenizer.h"

using namespace mechscope;
namespace H = mechscope::analysis::heads;

TEST(PatchGenerate, BatchedEqualsOnePromptAtATime) {
  auto model = models::load_model(mstest::fixture("gpt2/model"));
  auto tok = tokenizers::load_tokenizer(mstest::fixture("gpt2/model"));
  std::vector<H::AlignedPair> pairs;
  for (auto [e, n] :
       {std::pair<const char*, const char*>{"I am so grateful for your help, and", "I am writing about your help, and"},
        {"We hate the new schedule. It", "We saw the new schedule. It"},
        {"Today I really really appreciate the gift, and", "Today I saw the gift, and"}})
    pairs.push_back(H::align_pair(tok->encode(e), tok->encode(n)));
  auto heads = H::parse_head_spec("0:*,1:2", 2, 4, "--h");
  for (bool gen_mean : {false, true}) {
    auto batched = H::generate_patched(*model, pairs, heads, 6, std::nullopt, gen_mean, 2);
    std::vector<std::vector<int64_t>> plain;
    for (size_t i = 0; i < pairs.size(); ++i) {
      auto& p = pairs[i];
      int64_t n = (int64_t)p.neutral_ids.size();
      hooks::HookSet hs;
      std::vector<int64_t> gen_pos;
      for (int64_t q = n; q < n + 6; ++q) gen_pos.push_back(q);
      for (auto& [l, hl] : H::heads_by_layer(heads)) {
        at::Tensor ez = H::capture_z(*model, at::tensor(p.emotion_ids, at::kLong).unsqueeze(0), {l})[l];
        at::Tensor nz = H::capture_z(*model, at::tensor(p.neutral_ids, at::kLong).unsqueeze(0), {l})[l];
        auto patch = hooks::replace_with(H::aligned_source(ez, nz), {{}, hl});
        hs.add(H::z_hook(l), [patch, n](at::Tensor& t, const hooks::HookContext& c) {
          if (c.pos0 < n) patch(t, c);
        });
        if (gen_mean)
          hs.add(H::z_hook(l), hooks::fill(ez[0].index_select(1, at::tensor(hl, at::kLong)).mean(0), {gen_pos, hl}));
      }
      models::GenerateOptions g;
      g.max_new_tokens = 6;
      g.hooks = &hs;
      auto one = models::generate(*model, p.neutral_ids, g);
      EXPECT_EQ(batched[i], one) << "pair " << i << " generated mean " << gen_mean;
      g.hooks = nullptr;
      plain.push_back(models::generate(*model, p.neutral_ids, g));
    }
    EXPECT_NE(batched, plain);  // the patch changes what is generated here
  }
}
