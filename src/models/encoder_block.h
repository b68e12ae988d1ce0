// The post-LayerNorm encoder block BERT and DistilBERT share (Devlin et al. 2019; Sanh et al. 2019):
// bidirectional attention that masks padding keys, then LayerNorm(x + attn), an MLP, and
// LayerNorm(. + mlp), with TransformerLens's HookedEncoder hook names.
#pragma once
#include <ATen/ATen.h>

#include <string>

#include "models/common.h"

namespace mechscope::models {

struct EncoderBlockWeights {
  at::Tensor q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b, ln1_w, ln1_b;
  at::Tensor fc_w, fc_b, proj_w, proj_b, ln2_w, ln2_b;
};

// Names of one block in forward order, blocks.L.hook_normalized_resid_post (the block output) last.
std::vector<std::string> encoder_block_hook_names(const BlockHookNames& n, const std::string& normalized_resid_post);

// resid: [batch, pos, d_model] -> the block output [batch, pos, d_model] (after ln2).
at::Tensor encoder_block(const EncoderBlockWeights& B, const ModelConfig& cfg, const BlockHookNames& N,
                         const std::string& normalized_resid_post, int layer, const at::Tensor& resid_in,
                         RunContext& ctx);

}  // namespace mechscope::models
