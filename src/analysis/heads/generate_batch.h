// Greedy generation for many prompts at once: left-padded batches with an attention mask and one KV
// cache per batch, hooks fired on every step (so head interventions reach the generated positions).
// Each prompt's continuation equals models::generate on it alone (greedy), up to float rounding.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "models/model.h"

namespace mechscope::analysis::heads {

// prompts -> the new ids of each (without the prompt; stops after eos when given).
std::vector<std::vector<int64_t>> generate_greedy_batch(const models::HookedModel& model,
                                                        const std::vector<std::vector<int64_t>>& prompts,
                                                        int64_t max_new_tokens, std::optional<int64_t> eos,
                                                        const hooks::HookSet* hooks, int64_t batch_size = 32);

}  // namespace mechscope::analysis::heads
