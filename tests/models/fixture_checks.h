// Checks every causal architecture shares against its tests/fixtures/<family> reference (Hugging Face
// transformers in float64): logits, hidden states, attention patterns, greedy generation, hook names,
// KV-cache steps.
#pragma once
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "models/generate.h"
#include "models/model.h"
#include "tensor_util.h"
#include "test_util.h"

namespace mstest {

inline std::shared_ptr<mechscope::io::SafetensorsFile> reference(const std::string& family) {
  return mechscope::io::SafetensorsFile::open(fixture(family + "/reference.safetensors"));
}

// HF hidden_states[i] is the input of block i; the last one has the final norm applied.
inline void expect_matches_reference(const mechscope::models::HookedModel& m, mechscope::io::SafetensorsFile& ref,
                                     double logits_atol = 1e-5) {
  using namespace mechscope;
  at::NoGradGuard ng;
  int n = (int)m.config().n_layers;
  hooks::HookSet hs;
  hooks::ActivationCache cache;
  std::string last = "blocks." + std::to_string(n - 1) + ".hook_resid_post";
  cache.attach(hs, {"blocks.*.hook_resid_pre", last, "blocks.*.attn.hook_pattern"});
  models::RunContext ctx;
  ctx.hooks = &hs;
  EXPECT_TRUE(close(m.forward(ref.get("input_ids"), ctx), ref.get("logits"), 1e-4, logits_atol)) << "logits";
  for (int l = 0; l < n; ++l) {
    std::string L = std::to_string(l);
    EXPECT_TRUE(close(cache.get("blocks." + L + ".hook_resid_pre"), ref.get("hidden_states." + L)))
        << "hidden_states." << l;
    EXPECT_TRUE(close(cache.get("blocks." + L + ".attn.hook_pattern"), ref.get("attentions." + L)))
        << "attentions." << l;
  }
  // The final norm's output (for RMSNorm models hook_normalized is taken before the weight, as
  // TransformerLens does, so compare what final_norm returns).
  models::RunContext plain;
  EXPECT_TRUE(close(m.final_norm(cache.get(last), plain), ref.get("hidden_states." + std::to_string(n))))
      << "hidden_states." << n;
}

// Computing in float64, as the reference was: what is left is the reference's float32 storage and
// the float32 steps transformers keeps even in float64 (softmax, RMSNorm, GPT-Neo's scores), a few
// 1e-6 at most; float32 runs differ by float32 rounding on top.
inline void expect_float64_matches_reference(const std::string& family, mechscope::io::SafetensorsFile& ref,
                                             mechscope::models::RunContext ctx = {}) {
  using namespace mechscope;
  at::NoGradGuard ng;
  models::LoadOptions o;
  o.dtype = at::kDouble;
  auto m = models::load_model(fixture(family + "/model"), o);
  at::Tensor logits = m->forward(ref.get("input_ids"), ctx);
  EXPECT_EQ(logits.scalar_type(), at::kDouble);
  EXPECT_TRUE(close(logits, ref.get("logits"), 1e-4, 5e-6));
}

inline void expect_greedy_generation(const mechscope::models::HookedModel& m, mechscope::io::SafetensorsFile& ref) {
  auto expected = to_vec(ref.get("generate_greedy"));
  std::vector<int64_t> prompt = to_vec(ref.get("input_ids")[0]);
  mechscope::models::GenerateOptions g;
  g.max_new_tokens = (int64_t)(expected.size() - prompt.size());
  auto out = mechscope::models::generate(m, prompt, g);
  prompt.insert(prompt.end(), out.begin(), out.end());
  EXPECT_EQ(prompt, expected);
}

// Fires '*' over a forward of ids; every name of hook_names() must fire and nothing else.
inline std::map<std::string, std::vector<int64_t>> fired_hooks(const mechscope::models::HookedModel& m,
                                                               const at::Tensor& ids,
                                                               mechscope::models::RunContext ctx = {}) {
  using namespace mechscope;
  at::NoGradGuard ng;
  hooks::HookSet hs;
  std::map<std::string, std::vector<int64_t>> seen;
  std::vector<std::string> order;
  hs.add("*", [&](at::Tensor& t, const hooks::HookContext& c) {
    if (!seen.count(c.name)) order.push_back(c.name);
    seen[c.name] = t.sizes().vec();
  });
  ctx.hooks = &hs;
  if (m.has_lm_head()) {
    m.forward(ids, ctx);
  } else {
    at::Tensor r = m.embed(ids, ctx);
    for (int l = 0; l < m.config().n_layers; ++l) r = m.block(l, r, ctx);
    m.final_norm(r, ctx);
  }
  EXPECT_EQ(order, m.hook_names()) << "hook_names() must list exactly what fires, in forward order";
  return seen;
}

// Prefill of the first `split` tokens, then the rest one step at a time, equals one full forward.
inline void expect_kv_cache_steps_equal_full_forward(const mechscope::models::HookedModel& m, const at::Tensor& ids1,
                                                     int64_t split, double atol = 1e-5) {
  using namespace mechscope;
  at::NoGradGuard ng;
  models::RunContext full;
  at::Tensor expect = m.forward(ids1, full);
  models::KVCache kv;
  models::RunContext step;
  step.cache = &kv;
  std::vector<at::Tensor> parts{m.forward(ids1.narrow(1, 0, split), step)};
  for (int64_t i = split; i < ids1.size(1); ++i) parts.push_back(m.forward(ids1.narrow(1, i, 1), step));
  EXPECT_EQ(kv.length(), ids1.size(1));
  EXPECT_TRUE(close_at_scale(at::cat(parts, 1), expect, atol));
}

// A right-padded batch gives each prompt what it gives alone; left padding with mask-derived positions too.
inline void expect_padded_batch_equals_single_runs(const mechscope::models::HookedModel& m,
                                                   const std::vector<std::vector<int64_t>>& seqs, int64_t pad) {
  using namespace mechscope;
  at::NoGradGuard ng;
  at::Tensor ids, mask;
  models::pad_batch(seqs, pad, ids, mask);
  models::RunContext ctx;
  ctx.attention_mask = mask;
  at::Tensor batched = m.forward(ids, ctx);
  for (size_t i = 0; i < seqs.size(); ++i) {
    models::RunContext one;
    at::Tensor alone = m.forward(at::tensor(seqs[i], at::kLong).unsqueeze(0), one)[0];
    EXPECT_TRUE(close(batched[i].narrow(0, 0, seqs[i].size()), alone, 1e-5, 1e-5)) << "prompt " << i;
  }
  int64_t len = ids.size(1), n = (int64_t)seqs[1].size();
  at::Tensor left = at::full({1, len}, pad, at::kLong), lmask = at::zeros({1, len}, at::kLong);
  left[0].narrow(0, len - n, n).copy_(at::tensor(seqs[1], at::kLong));
  lmask[0].narrow(0, len - n, n).fill_(1);
  models::RunContext lctx;
  lctx.attention_mask = lmask;
  at::Tensor lout = m.forward(left, lctx)[0].narrow(0, len - n, n);
  EXPECT_TRUE(close(lout, batched[1].narrow(0, 0, n), 1e-5, 1e-5)) << "left padding";
}

// A copy of the fixture's model directory with config.json edited by `edit`.
template <class F>
std::string model_variant(const std::string& family, const std::string& name, F edit) {
  std::string dir = tmp_dir(name);
  std::string src = fixture(family + "/model");
  run_shell("cp " + src + "/model.safetensors " + dir + "/");
  auto cfg = nlohmann::json::parse(std::ifstream(src + "/config.json"));
  edit(cfg);
  std::ofstream(dir + "/config.json") << cfg.dump(2);
  return dir;
}

}  // namespace mstest
