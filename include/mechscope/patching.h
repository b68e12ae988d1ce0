// mechscope's public C++ interface, part 3: activation patching, ablation and attribution patching.
//
//   namespace P = mechscope::analysis::patching;
//   P::PromptPair pair{clean_ids, corrupt_ids, {P::MetricKind::LogitDiff, answer_id, wrong_id}};
//   P::PatchResult r = P::patch(*model, {pair}, {"resid_pre", "z_all_pos"}, {});
//   r.normalised(0);   // [layers, positions]: (patched - corrupt) / (clean - corrupt)
//
// Contract (with model.h's): the exact method gives TransformerLens's get_act_patch_* numbers (one
// full hooked forward per cell, Method::Naive, is the reference it is tested against to float32
// rounding) while re-running only what a patch can change; results are float64 on the host;
// invalid targets, metrics or prompts of unequal length throw mechscope::Error naming the option.
#pragma once

#include "analysis/patching/patching.h"
#include "mechscope/model.h"
