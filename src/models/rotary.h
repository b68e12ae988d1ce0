// Rotary position embeddings (Su et al. 2021) as Hugging Face computes them: inv_freq from the config
// (default, linear and llama3 scaling; partial rotary on the first features of each head) and the
// rotate_half convention (pairs (i, i + rotated/2), not interleaved pairs).
#pragma once
#include <ATen/ATen.h>

#include <string>

#include "models/model.h"
#include "models/packed_runs.h"

namespace mechscope::models {

// What config.json says about rotary, in any of the forms checkpoints use: `rope_parameters`
// (transformers >= 5: rope_theta, rope_type, partial_rotary_factor, scaling keys), top-level
// `rope_theta` / `partial_rotary_factor` with `rope_scaling`, or GPT-NeoX's `rotary_emb_base` /
// `rotary_pct`.
struct RopeConfig {
  // int(d_head * partial_rotary_factor), as transformers computes it; may be odd. The frequencies are
  // 1 / theta^(arange(0, dim, 2) / dim), ceil(dim / 2) of them, and each rotates a pair, so
  // rotated() = 2 * ceil(dim / 2) features turn (transformers' cos.shape[-1]): one more than dim
  // when dim is odd.
  int64_t dim = 0;
  int64_t rotated() const { return 2 * ((dim + 1) / 2); }
  double theta = 10000.0;
  std::string type = "default";  // default, linear, llama3
  double factor = 1.0;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

// Reads the rotary settings of cfg.raw for heads of d_head features (`default_partial` is the rotary
// fraction when the file names none). Error naming the key for an unsupported rope_type, malformed
// values, a theta that is not a positive finite number, or rotated() > d_head (transformers cannot
// run that either).
RopeConfig parse_rope(const ModelConfig& cfg, int64_t d_head, double default_partial = 1.0);

// Inverse frequencies [rotated() / 2] (float64), scaled as the rope type says.
at::Tensor rope_inv_freq(const RopeConfig& rope);

// cos and sin for positions pos [b, n] -> [b, n, 1, rotated()] each (broadcast over heads), in dtype.
struct RopeAngles {
  at::Tensor cos, sin;
};
RopeAngles rope_angles(const at::Tensor& inv_freq, const at::Tensor& pos, at::ScalarType dtype);

// Rotates the first cos.size(-1) features of each head of x [b, n, h, d_head]; the rest pass unchanged.
at::Tensor apply_rope(const at::Tensor& x, const RopeAngles& a);

// The same for packed rows (PackedRuns): q [R, h, d_head] and k [R, kv_heads, d_head], each row at its
// own position, positions [R].
void apply_rope_rows(at::Tensor& q, at::Tensor& k, const at::Tensor& inv_freq, const at::Tensor& positions);

}  // namespace mechscope::models
