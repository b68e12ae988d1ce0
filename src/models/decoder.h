// What every architecture file shares, so that one is its tensor table plus its block's maths:
// TableModel (the constructor prologue: config, dtype, weights loaded from the table, hook names;
// parameters() from the same table) and, for causal decoders, DecoderModel (embedding, the attention
// half of a block on full runs and on packed runs, unembedding, the hook list).
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <utility>
#include <vector>

#include "models/common.h"
#include "models/packed_runs.h"
#include "models/rotary.h"
#include "models/tensor_table.h"

namespace mechscope::models {

template <class G, class B>
class TableModel : public HookedModel {
 public:
  std::vector<std::pair<std::string, at::Tensor>> parameters() const override {
    return named_tensors(table_, features_, w_, blocks_);
  }

 protected:
  // `features`: which of the table's optional tensors this checkpoint has; `n_labels`: Size::labels.
  TableModel(const ModelConfig& cfg, const io::Checkpoint& ckpt, const LoadOptions& opts,
             const TensorTable<G, B>& table, unsigned features, int64_t n_labels = 0)
      : table_(table), features_(features) {
    cfg_ = cfg;
    dtype_ = opts.dtype;
    device_ = opts.device;
    load_tensors(table, TableContext{ckpt, cfg, dtype_, features, n_labels, device_}, w_, blocks_);
    for (int l = 0; l < cfg.n_layers; ++l) names_.emplace_back(l);
  }

  const TensorTable<G, B>& table_;  // a family's static table
  unsigned features_;
  G w_;
  std::vector<B> blocks_;
  std::vector<BlockHookNames> names_;
};

// The decoder weights DecoderModel reads; a family's model weights G derive from it. pos_embed stays
// undefined without learned positions; unembed is embed when tied.
struct DecoderWeights {
  at::Tensor embed, pos_embed, unembed;
};

// How one layer attends (from the typed config).
struct AttnSpec {
  double scale = 1.0;           // on q.k
  int64_t window = 0;           // local attention over the last `window` positions; 0 = global
  double softcap = 0.0;         // softcap * tanh(scores / softcap) when > 0
  bool float32_scores = false;  // scores and softmax in float32 whatever the dtype (GPT-Neo)
};

template <class G, class B>
class DecoderModel : public TableModel<G, B> {
 public:
  std::vector<std::string> hook_names() const override { return standard_hook_names(this->cfg_.n_layers, layout_); }

  // ids [b, p] -> tok (scaled by embed_scale_ when set) + learned positions when the model has them.
  at::Tensor embed(const at::Tensor& ids_in, RunContext& ctx) const override {
    int64_t past = ctx.cache ? ctx.cache->length() : 0;
    BlockHooks H{ctx.hooks, nullptr, -1, past};
    at::Tensor ids = ids_in.to(this->device_);  // ids made on the host by any caller (a no-op when already here)
    at::Tensor tok = at::embedding(this->w_.embed, ids);  // [b, p, d]
    if (embed_scale_.defined()) tok = tok * embed_scale_;
    H.fire("hook_embed", tok);
    if (!this->w_.pos_embed.defined()) return tok;
    at::Tensor pe = at::embedding(this->w_.pos_embed, position_ids(ctx, ids.size(0), ids.size(1), past, ids.device()));
    H.fire("hook_pos_embed", pe);
    return tok + pe;
  }

  // resid [b, n, d] -> [b, n, d]: the family's attention inputs, rotary by absolute position when the
  // model has it, the KV cache, causal attention, the family's rest of the block.
  at::Tensor block(int layer, const at::Tensor& resid_in, RunContext& ctx) const override {
    const AttnSpec& A = attn_[layer];
    int64_t b = resid_in.size(0), n = resid_in.size(1), past = cache_past(ctx, layer);
    BlockHooks H{ctx.hooks, &this->names_[layer], layer, past};
    at::Tensor resid = resid_in;
    auto [q, k, v] = attention_inputs(resid, H);  // q [b, n, h, dh], k, v [b, n, h_kv, dh]
    if (inv_freq_.defined()) {
      RopeAngles rope = rope_angles(inv_freq_, position_ids(ctx, b, n, past, q.device()), q.scalar_type());
      q = apply_rope(q, rope);
      k = apply_rope(k, rope);
      H.fire(H.names->rot_q, q);
      H.fire(H.names->rot_k, k);
    }
    cache_kv(ctx, layer, this->cfg_.n_layers, k, v);
    if (A.float32_scores) q = q.to(at::kFloat), k = k.to(at::kFloat);
    at::Tensor bias = attention_bias(ctx, b, n, past, true, A.window, q.scalar_type(), q.device());
    at::Tensor z = attention(q, k, v, bias, A.scale, H, A.softcap);  // [b, n, h, dh]
    return after_attention(resid, z, H);
  }

  // rows: [R, d] -> [R, d] (or [K, d] with P.keep); block() on packed runs (PackedRuns): every run's
  // rows in one GEMM per weight, attention batched over runs on full-length keys.
  at::Tensor block_packed(int layer, const at::Tensor& rows_in, const PackedRuns& P) const override {
    const AttnSpec& A = attn_[layer];
    BlockHooks H{P.hooks, &this->names_[layer], layer, 0};
    at::Tensor resid = rows_in;
    auto [q, k, v] = attention_inputs(resid, H);  // [R, h or h_kv, dh]
    if (inv_freq_.defined()) {
      apply_rope_rows(q, k, inv_freq_, P.positions);
      H.fire(H.names->rot_q, q);
      H.fire(H.names->rot_k, k);
    }
    // Float32 scores as block(): packed_attention converts the keys to the queries' dtype.
    at::Tensor z = packed_attention(A.float32_scores ? q.to(at::kFloat) : q, k, v, P, A.scale, A.window, H, A.softcap);
    if (P.keep.defined()) resid = resid.index_select(0, P.keep);
    return after_attention(resid, z, H);
  }

  // Soft-capping is per logit, so a subset of columns caps as the full row would.
  at::Tensor unembed(const at::Tensor& x, const at::Tensor& columns) const override {
    at::Tensor logits = unembed_rows(this->w_.unembed, x, columns);
    if (final_softcap_ > 0) logits = at::tanh(logits / final_softcap_) * final_softcap_;
    return logits;
  }

 protected:
  // `untied`: the feature bit of the table's unembedding row; without it the unembedding is embed.
  DecoderModel(const ModelConfig& cfg, const io::Checkpoint& ckpt, const LoadOptions& opts,
               const TensorTable<G, B>& table, unsigned features, unsigned untied)
      : TableModel<G, B>(cfg, ckpt, opts, table, cfg.tied_embeddings ? features & ~untied : features | untied) {
    if (cfg.tied_embeddings) this->w_.unembed = this->w_.embed;
  }

  // The block up to attention, for resid [..., d] (hook_resid_pre may replace it): q [..., h, dh] and
  // k, v [..., h_kv, dh] before rotary, their hooks fired.
  virtual QKV attention_inputs(at::Tensor& resid, const BlockHooks& H) const = 0;
  // The block after attention, for resid [..., d] and z [..., h, dh] -> resid_post [..., d].
  virtual at::Tensor after_attention(const at::Tensor& resid, const at::Tensor& z, const BlockHooks& H) const = 0;

  HookLayout layout_;
  std::vector<AttnSpec> attn_;  // per layer
  at::Tensor inv_freq_;         // rotary when defined
  at::Tensor embed_scale_;      // a scalar the token embedding is multiplied by, when defined
  double final_softcap_ = 0.0;  // on the logits, when > 0
};

}  // namespace mechscope::models
