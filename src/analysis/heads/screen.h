// Head screening (issue 14, `heads screen`): a score per layer × head for one emotion's prompt pairs.
//   keyword-attention: the attention mass that the positions after the emotional phrase pay to it,
//                      minus the same mass paid to the neutral phrase in the neutral prompt;
//   output-norm:       mean ‖head output‖ (hook_result) over the positions after the phrase, emotion
//                      minus neutral;
//   causal:            the exact effect of patching the head's z from the emotion prompt into the
//                      neutral one (aligned on the last tokens) on log P(next token is a keyword),
//                      every head of a pair in one sweep of the patching engine.
// Each is averaged over the pairs. Unlike the seed's screen, every score depends on the head.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "analysis/heads/profile.h"
#include "models/model.h"

namespace mechscope::analysis::heads {

enum class ScreenScore { KeywordAttention, OutputNorm, Causal };
ScreenScore parse_screen_score(const std::string& s,
                               const std::string& flag);  // "keyword-attention" | "output-norm" | "causal"
std::string screen_score_name(ScreenScore s);

// pairs -> [n_layers, n_heads] float64. Error when a pair has no token after its phrase.
at::Tensor keyword_attention_scores(const models::HookedModel& model, const std::vector<AlignedPair>& pairs);
at::Tensor output_norm_scores(const models::HookedModel& model, const std::vector<AlignedPair>& pairs);
// keyword_ids: the token ids whose total next-token probability is the metric (at the last position;
// duplicates count once).
at::Tensor causal_scores(const models::HookedModel& model, const std::vector<AlignedPair>& pairs,
                         std::vector<int64_t> keyword_ids);

// The neutral prompt's z with its last min(len) positions taken from the emotion prompt's z:
// [1, n_neutral, heads, d_head] (the source of the causal patch).
at::Tensor aligned_source(const at::Tensor& emotion_z, const at::Tensor& neutral_z);

}  // namespace mechscope::analysis::heads
