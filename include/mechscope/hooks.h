// mechscope's public C++ interface, part 2: hook points, caching and interventions.
//
//   mechscope::hooks::HookSet hs;
//   mechscope::hooks::ActivationCache cache;
//   cache.attach(hs, {"blocks.*.hook_resid_post"});                    // keeps only what is named
//   hs.add("blocks.5.attn.hook_z", mechscope::hooks::zero({{}, {3}})); // head 5.3, every position
//   ctx.hooks = &hs;                                                   // then model->forward(ids, ctx)
//
// Contract (with model.h's): a hook is called with the activation and may read it, assign a tensor
// of the same shape to replace it, or edit it in place; hooks run in registration order; a name or
// glob that matches no hook point of the model simply never fires (check model->hook_names()).
// The interventions' Select indexes absolute positions and head axes as hooks/hooks.h says; a
// selection outside the activation throws mechscope::Error when the hook fires.
#pragma once

#include "hooks/hooks.h"
#include "mechscope/model.h"
