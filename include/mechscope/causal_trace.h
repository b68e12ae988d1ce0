// mechscope's public C++ interface, part 4: ROME causal tracing (Meng et al. 2022).
//
//   namespace ct = mechscope::analysis::causal_trace;
//   ct::TraceInput in{ids, subject_begin, subject_end};
//   ct::TraceOptions opt;                       // ROME's defaults: 10 samples, window 10, seed 1
//   opt.noise = ct::resolve_noise(ct::parse_noise("s3"), ct::embedding_std(*model, {subject_ids}));
//   ct::TraceResult r = ct::trace(*model, in, opt);   // r.scores[k]: [positions, layers]
//
// Contract (with model.h's): numbers are ROME's (numpy's legacy MT19937 noise, drawn per traced run
// from RandomState(seed), on the host whatever the device), so a trace reproduces
// kmeng01/rome's causal_trace.py to float32 rounding; the fast path and the naive one agree (tested);
// an encoder model, an empty subject or options out of range throw mechscope::Error.
#pragma once

#include "analysis/causal_trace/causal_trace.h"
#include "mechscope/model.h"
