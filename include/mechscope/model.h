// mechscope's public C++ interface, part 1: loading a Hugging Face checkpoint and running it.
//
//   #include <mechscope/model.h>
//   auto model = mechscope::models::load_model("path/to/checkpoint");   // a directory or a hub id in the HF cache
//   auto tok = mechscope::tokenizers::load_tokenizer("path/to/checkpoint");
//   at::Tensor ids = at::tensor(tok->encode("The Eiffel Tower is in"), at::kLong).unsqueeze(0);
//   mechscope::models::RunContext ctx;
//   at::Tensor logits = model->forward(ids, ctx);                       // [1, pos, d_vocab]
//
// The contract every function reachable from include/mechscope/ keeps:
//  - Errors. Input a user can get wrong (a missing or malformed file, a config value out of its
//    domain, a hook name or a shape that does not fit the model) throws mechscope::Error, whose
//    message names the file, key or option field and what was expected (an options struct's field
//    reads as its name, "samples must be >= 1"; a program may name fields its own way with
//    mechscope::set_option_namer, as the CLI names them by its flags). Anything else that escapes
//    (c10::Error, std::bad_alloc) is a bug or the machine's limit. The library never prints, never
//    exits, installs no signal handler and sets no process-wide state (thread counts, BLAS kernels):
//    those are the program's (the mechscope CLI sets them from --threads).
//  - Numbers. Weights are used as the checkpoint stores them (no LayerNorm folding, no centring):
//    every activation and logit matches Hugging Face transformers to float32 rounding
//    (tests/fixtures/*/reference.json says how each reference was made).
//  - Tensors. Shapes are [batch, pos, ...] with int64 token ids; everything a caller passes in (ids,
//    masks, patches) must be on model->device() (LoadOptions::device, CPU by default) and results
//    come back there. A loaded model never changes; a RunContext, HookSet or KV cache belongs to one
//    call at a time (not synchronised).
//  - Hook points carry TransformerLens's names (blocks.{L}.hook_resid_pre, blocks.{L}.attn.hook_z,
//    ...); model->hook_names() lists those a model fires, in forward order.
#pragma once

#include "core/error.h"
#include "models/generate.h"
#include "models/model.h"
#include "tokenizers/tokenizer.h"
