// Head interventions on hook_z: generation with the KV cache and ablated heads equals a naive loop that
// re-runs the whole sequence every step (ablating every position), for zero and mean ablation; the
// mean is the plain average of the captured z; a patch with the run's own z changes nothing.
#include <gtest/gtest.h>

#include "analysis/heads/interventions.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "models/generate.h"
#include "tensor_util.h"
#include "test_util.h"

using namespace mechscope;
namespace H = mechscope::analysis::heads;

namespace {

const models::HookedModel& model() {
  static auto m = models::load_model(mstest::fixture("gpt2/model"));
  return *m;
}
std::vector<int64_t> prompt() {
  static auto f = io::SafetensorsFile::open(mstest::fixture("gpt2/reference.safetensors"));
  return mstest::to_vec(f->get("heads.prompt_ids"));
}

// Greedy continuation without a KV cache: every step runs the whole sequence with the hooks.
std::vector<int64_t> naive_greedy(const hooks::HookSet& hs, std::vector<int64_t> seq, int steps) {
  at::NoGradGuard no_grad;
  std::vector<int64_t> out;
  for (int s = 0; s < steps; ++s) {
    models::RunContext ctx;
    ctx.hooks = &hs;
    at::Tensor logits = model().forward(at::tensor(seq, at::kLong).unsqueeze(0), ctx);
    int64_t next = logits[0][-1].argmax().item<int64_t>();
    out.push_back(next);
    seq.push_back(next);
  }
  return out;
}

TEST(HeadInterventions, CachedGenerationEqualsNaiveLoopForZeroAndMean) {
  auto heads = H::parse_head_spec("0:1,1:*", 2, 4, "--heads");
  for (auto kind : {H::HeadAblation::Zero, H::HeadAblation::Mean}) {
    std::map<int64_t, at::Tensor> means;
    if (kind == H::HeadAblation::Mean) means = H::mean_z(model(), {prompt()}, heads);
    hooks::HookSet hs;
    hooks::ScopedHooks scope(hs);
    H::add_ablation(scope, heads, kind, means);
    models::GenerateOptions g;
    g.max_new_tokens = 12;
    g.hooks = &hs;
    auto cached = models::generate(model(), prompt(), g);
    EXPECT_EQ(cached, naive_greedy(hs, prompt(), 12)) << H::head_ablation_name(kind);
    models::GenerateOptions plain = g;
    plain.hooks = nullptr;
    // Ablating a whole layer of this model changes what it generates (else the test proves nothing).
    EXPECT_NE(cached, models::generate(model(), prompt(), plain)) << H::head_ablation_name(kind);
  }
}

TEST(HeadInterventions, MeanIsTheAverageOverAllPositionsOfAllSequences) {
  std::vector<std::vector<int64_t>> seqs{prompt(), {464, 3290, 318}};
  auto heads = H::parse_head_spec("1:3,1:0", 2, 4, "--heads");
  auto means = H::mean_z(model(), seqs, heads);
  at::Tensor a = H::capture_z(model(), at::tensor(seqs[0], at::kLong).unsqueeze(0), {1})[1];
  at::Tensor b = H::capture_z(model(), at::tensor(seqs[1], at::kLong).unsqueeze(0), {1})[1];
  at::Tensor all = at::cat({a, b}, 1).index_select(2, at::tensor(std::vector<int64_t>{0, 3}, at::kLong));
  EXPECT_TRUE(mstest::close(means.at(1), all.mean(at::IntArrayRef{0, 1}), 1e-5, 1e-6));
  hooks::HookSet hs;
  hooks::ScopedHooks scope(hs);
  EXPECT_THROW(H::add_ablation(scope, H::parse_head_spec("0:0", 2, 4, "--heads"), H::HeadAblation::Mean, means), Error);
}

TEST(HeadInterventions, PatchFromOwnRunIsIdentityAndFromAnotherChangesLogits) {
  at::NoGradGuard no_grad;
  at::Tensor ids = at::tensor(prompt(), at::kLong).unsqueeze(0);
  at::Tensor other = (ids + 17) % 50000;
  auto heads = H::parse_head_spec("0:1,1:3", 2, 4, "--heads");
  models::RunContext plain;
  at::Tensor base = model().forward(ids, plain);
  for (bool self : {true, false}) {
    hooks::HookSet hs;
    hooks::ScopedHooks scope(hs);
    H::add_patch(scope, heads, H::capture_z(model(), self ? ids : other, {0, 1}));
    models::RunContext ctx;
    ctx.hooks = &hs;
    at::Tensor patched = model().forward(ids, ctx);
    if (self) EXPECT_TRUE(mstest::close(patched, base, 1e-5, 1e-5));
    else EXPECT_GT((patched - base).abs().max().item<double>(), 1e-3);
  }
}

}  // namespace
