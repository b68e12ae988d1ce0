// Generation from the neutral prompts with heads patched from the paired emotion prompts (`heads patch`):
// the heads' hook_z at the prompt positions replaced by their z on the emotion prompt (aligned on the
// last tokens, as aligned_source), generated positions left alone or, with patch_generated_mean, set to
// the mean of the emotion prompt's z over its positions.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "analysis/heads/head_spec.h"
#include "analysis/heads/profile.h"
#include "models/model.h"

namespace mechscope::analysis::heads {

// pairs -> the new ids generated from each neutral prompt (greedy, batched as generate_greedy_batch).
std::vector<std::vector<int64_t>> generate_patched(const models::HookedModel& model,
                                                   const std::vector<AlignedPair>& pairs,
                                                   const std::vector<HeadRef>& heads, int64_t max_new_tokens,
                                                   std::optional<int64_t> eos, bool patch_generated_mean,
                                                   int64_t batch_size = 32);

}  // namespace mechscope::analysis::heads
