// The post-LayerNorm encoder block BERT and DistilBERT share (Devlin et al. 2019; Sanh et al. 2019):
// bidirectional attention that masks padding keys, then LayerNorm(x + attn), an MLP, and
// LayerNorm(. + mlp), with TransformerLens's HookedEncoder hook names; and what else the two share.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "models/common.h"

namespace mechscope::models {

struct EncoderBlockWeights {
  at::Tensor q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b, ln1_w, ln1_b;
  at::Tensor fc_w, fc_b, proj_w, proj_b, ln2_w, ln2_b;
};

// embed.ln.hook_scale / embed.ln.hook_normalized.
const NormHookNames& embed_ln_names();

// An encoder's names in forward order: embed.* (embed.hook_token_type_embed with token types), each
// block's with blocks.L.hook_normalized_resid_post (the block output) last, mlm_head.ln.* with an MLM head.
std::vector<std::string> encoder_hook_names(int n_layers, bool token_types, bool mlm_head);

// The class count of the checkpoint's root classifier.weight [n_labels, d_model]; Error naming the
// tensor, its shape and the expected one otherwise.
int64_t classifier_labels(const io::Checkpoint& ckpt, const char* arch, int64_t d_model);

// resid: [batch, pos, d_model] -> the block output [batch, pos, d_model] (after ln2).
at::Tensor encoder_block(const EncoderBlockWeights& B, const ModelConfig& cfg, const BlockHookNames& N, int layer,
                         const at::Tensor& resid_in, RunContext& ctx);

}  // namespace mechscope::models
