// BERT (Devlin et al. 2019) as Hugging Face's BertModel / BertForMaskedLM / BertForSequenceClassification
// compute it: word + position + token-type embeddings and a LayerNorm, post-LayerNorm blocks,
// bidirectional attention that masks padding keys, and either the MLM head (dense + activation +
// LayerNorm, then a decoder tied to the word embeddings) or the classification head (pooler: dense +
// tanh on the [CLS] row, then a linear classifier). Hook names are TransformerLens's HookedEncoder
// ones: embed.hook_embed, ..., blocks.L.hook_normalized_resid_post (the block output), mlm_head.ln.*.
#include <cmath>

#include "core/error.h"
#include "models/common.h"
#include "models/encoder_block.h"
#include "models/registry.h"

namespace mechscope::models {

void parse_bert(ModelConfig& cfg) {
  set_mha_heads(cfg, "hidden_size", "num_attention_heads");
  cfg.n_layers = cfg_int(cfg, "num_hidden_layers");
  cfg.d_mlp = cfg_int(cfg, "intermediate_size", 4 * cfg.d_model);
  cfg.n_ctx = cfg_int(cfg, "max_position_embeddings", 512);
  cfg.d_vocab = cfg_int(cfg, "vocab_size");
  cfg.act_fn = cfg_string(cfg, "hidden_act", "gelu");
  cfg.eps = cfg_double(cfg, "layer_norm_eps", 1e-12);
  cfg.tied_embeddings = cfg_bool(cfg, "tie_word_embeddings", true);
  cfg.causal = false;
  cfg.n_token_types = cfg_int(cfg, "type_vocab_size", 2);
  if (cfg.n_token_types <= 0) fail("config.json (bert): type_vocab_size must be positive, got ", cfg.n_token_types);
  check_activation(cfg.act_fn);
  std::string pos = cfg_string(cfg, "position_embedding_type", "absolute");
  if (pos != "absolute")
    fail("config.json (bert): position_embedding_type '", pos, "' is not supported (only \"absolute\")");
  if (cfg_bool(cfg, "is_decoder", false))
    fail("config.json (bert): is_decoder BERT models (causal BERT) are not supported");
}

namespace {

using BertBlock = EncoderBlockWeights;

class Bert final : public HookedModel {
 public:
  Bert(const ModelConfig& cfg, const io::Checkpoint& ckpt, const LoadOptions& opts) {
    cfg_ = cfg;
    dtype_ = opts.dtype;
    // BertForMaskedLM saves "bert.embeddings…" and "cls.predictions…"; a bare BertModel "embeddings…".
    std::string prefix = detect_prefix(ckpt, {"bert.", ""}, "embeddings.word_embeddings.weight", "BERT");
    WeightLoader w(ckpt, prefix, dtype_);
    int64_t d = cfg.d_model, m = cfg.d_mlp;
    word_ = w.get("embeddings.word_embeddings.weight", {cfg.d_vocab, d});
    pos_ = w.get("embeddings.position_embeddings.weight", {cfg.n_ctx, d});
    type_ = w.get("embeddings.token_type_embeddings.weight", {cfg.n_token_types, d});
    emb_ln_w_ = w.get("embeddings.LayerNorm.weight", {d});
    emb_ln_b_ = w.get("embeddings.LayerNorm.bias", {d});
    for (int l = 0; l < cfg.n_layers; ++l) {
      std::string p = "encoder.layer." + std::to_string(l) + ".", a = p + "attention.";
      blocks_.push_back({w.get(a + "self.query.weight", {d, d}), w.get(a + "self.query.bias", {d}),
                         w.get(a + "self.key.weight", {d, d}), w.get(a + "self.key.bias", {d}),
                         w.get(a + "self.value.weight", {d, d}), w.get(a + "self.value.bias", {d}),
                         w.get(a + "output.dense.weight", {d, d}), w.get(a + "output.dense.bias", {d}),
                         w.get(a + "output.LayerNorm.weight", {d}), w.get(a + "output.LayerNorm.bias", {d}),
                         w.get(p + "intermediate.dense.weight", {m, d}), w.get(p + "intermediate.dense.bias", {m}),
                         w.get(p + "output.dense.weight", {d, m}), w.get(p + "output.dense.bias", {d}),
                         w.get(p + "output.LayerNorm.weight", {d}), w.get(p + "output.LayerNorm.bias", {d})});
      names_.emplace_back(l);
      normalized_resid_post_.push_back("blocks." + std::to_string(l) + ".hook_normalized_resid_post");
    }
    WeightLoader root(ckpt, "", dtype_);
    mlm_ = root.has("cls.predictions.transform.dense.weight");
    if (mlm_) {
      std::string c = "cls.predictions.";
      mlm_w_ = root.get(c + "transform.dense.weight", {d, d});
      mlm_b_ = root.get(c + "transform.dense.bias", {d});
      mlm_ln_w_ = root.get(c + "transform.LayerNorm.weight", {d});
      mlm_ln_b_ = root.get(c + "transform.LayerNorm.bias", {d});
      decoder_ = cfg.tied_embeddings ? word_ : root.get(c + "decoder.weight", {cfg.d_vocab, d});
      decoder_b_ = root.get(root.has(c + "bias") ? c + "bias" : c + "decoder.bias", {cfg.d_vocab});
    }
    // BertForSequenceClassification: the pooler under the model prefix, the classifier at the root.
    classifier_ = !mlm_ && root.has("classifier.weight");
    if (classifier_) {
      std::vector<int64_t> n = ckpt.info("classifier.weight").shape;
      if (n.size() != 2 || n[1] != d) fail("BERT: classifier.weight has shape ", at::IntArrayRef(n), ", expected [n_labels, ", d, "]");
      pool_w_ = w.get("pooler.dense.weight", {d, d});
      pool_b_ = w.get("pooler.dense.bias", {d});
      cls_w_ = root.get("classifier.weight", {n[0], d});
      cls_b_ = root.get("classifier.bias", {n[0]});
      cfg_.labels = read_labels(cfg_, n[0]);
    }
  }

  bool has_lm_head() const override { return mlm_; }
  bool has_classifier() const override { return classifier_; }

  // The pooler (dense + tanh) on the [CLS] row, then the classifier: [b, p, d] -> [b, n_labels].
  at::Tensor classify(const at::Tensor& resid, RunContext& ctx) const override {
    if (!classifier_) return HookedModel::classify(resid, ctx);
    at::Tensor pooled = at::tanh(at::linear(resid.select(1, 0), pool_w_, pool_b_));
    return at::linear(pooled, cls_w_, cls_b_);
  }

  std::vector<std::string> hook_names() const override {
    std::vector<std::string> out{"embed.hook_embed", "embed.hook_pos_embed", "embed.hook_token_type_embed",
                                 "embed.ln.hook_scale", "embed.ln.hook_normalized"};
    for (int l = 0; l < cfg_.n_layers; ++l) {
      auto names = encoder_block_hook_names(names_[l], normalized_resid_post_[l]);
      out.insert(out.end(), names.begin(), names.end());
    }
    if (mlm_) out.insert(out.end(), {"mlm_head.ln.hook_scale", "mlm_head.ln.hook_normalized"});
    return out;
  }

  at::Tensor embed(const at::Tensor& ids, RunContext& ctx) const override {
    int64_t past = ctx.cache ? ctx.cache->length() : 0, b = ids.size(0), n = ids.size(1);
    // Absolute positions 0..n-1 whatever the padding, as BertEmbeddings does (not from the mask).
    at::Tensor pos = ctx.position_ids.defined() ? ctx.position_ids
                                                : at::arange(past, past + n, at::kLong).unsqueeze(0).expand({b, n});
    at::Tensor types = ctx.token_type_ids.defined() ? ctx.token_type_ids : at::zeros({b, n}, at::kLong);
    if (types.sizes() != ids.sizes())
      fail("token_type_ids have shape ", types.sizes(), ", the input ids ", ids.sizes());
    if (types.numel() && (types.min().item<int64_t>() < 0 || types.max().item<int64_t>() >= type_.size(0)))
      fail("token_type_ids must be in 0 .. ", type_.size(0) - 1, " (type_vocab_size ", type_.size(0), "), got values ",
           types.min().item<int64_t>(), " .. ", types.max().item<int64_t>());
    at::Tensor tok = at::embedding(word_, ids);  // [b, p, d]
    fire(ctx.hooks, "embed.hook_embed", tok, -1, past);
    at::Tensor pe = at::embedding(pos_, pos);
    fire(ctx.hooks, "embed.hook_pos_embed", pe, -1, past);
    at::Tensor te = at::embedding(type_, types);
    fire(ctx.hooks, "embed.hook_token_type_embed", te, -1, past);
    return layer_norm(tok + pe + te, emb_ln_w_, emb_ln_b_, cfg_.eps, ctx.hooks, "embed.ln.hook_scale",
                      "embed.ln.hook_normalized", -1, past);
  }

  at::Tensor block(int layer, const at::Tensor& resid_in, RunContext& ctx) const override {
    return encoder_block(blocks_[layer], cfg_, names_[layer], normalized_resid_post_[layer], layer, resid_in, ctx);
  }

  // The MLM head's transform (dense + activation + LayerNorm); identity for a bare BertModel.
  at::Tensor final_norm(const at::Tensor& resid, RunContext& ctx) const override {
    if (!mlm_) return resid;
    int64_t past = ctx.cache ? ctx.cache->length() - resid.size(1) : 0;
    at::Tensor x = activation(at::linear(resid, mlm_w_, mlm_b_), cfg_.act_fn);
    return layer_norm(x, mlm_ln_w_, mlm_ln_b_, cfg_.eps, ctx.hooks, "mlm_head.ln.hook_scale",
                      "mlm_head.ln.hook_normalized", -1, past < 0 ? 0 : past);
  }

  at::Tensor unembed(const at::Tensor& x, const at::Tensor& columns) const override {
    if (classifier_)
      fail("this BERT checkpoint is a sequence classifier (BertForSequenceClassification): it has class logits "
           "(classify), no token logits");
    if (!mlm_)
      fail("this BERT checkpoint is a bare BertModel (no cls.predictions.* masked-LM head): it has no logits; "
           "use hook activations instead (mechscope run --no-logits --cache ...)");
    if (!columns.defined()) return at::matmul(x, decoder_.t()) + decoder_b_;
    return at::matmul(x, decoder_.index_select(0, columns).t()) + decoder_b_.index_select(0, columns);
  }

  std::vector<std::pair<std::string, at::Tensor>> parameters() const override {
    std::vector<std::pair<std::string, at::Tensor>> out{
        {"bert.embeddings.word_embeddings.weight", word_}, {"bert.embeddings.position_embeddings.weight", pos_},
        {"bert.embeddings.token_type_embeddings.weight", type_}, {"bert.embeddings.LayerNorm.weight", emb_ln_w_},
        {"bert.embeddings.LayerNorm.bias", emb_ln_b_}};
    for (size_t l = 0; l < blocks_.size(); ++l) {
      const BertBlock& B = blocks_[l];
      std::string p = "bert.encoder.layer." + std::to_string(l) + ".";
      for (auto& [k, t] : std::vector<std::pair<std::string, at::Tensor>>{
               {"attention.self.query.weight", B.q_w}, {"attention.self.query.bias", B.q_b},
               {"attention.self.key.weight", B.k_w}, {"attention.self.key.bias", B.k_b},
               {"attention.self.value.weight", B.v_w}, {"attention.self.value.bias", B.v_b},
               {"attention.output.dense.weight", B.o_w}, {"attention.output.dense.bias", B.o_b},
               {"attention.output.LayerNorm.weight", B.ln1_w}, {"attention.output.LayerNorm.bias", B.ln1_b},
               {"intermediate.dense.weight", B.fc_w}, {"intermediate.dense.bias", B.fc_b},
               {"output.dense.weight", B.proj_w}, {"output.dense.bias", B.proj_b},
               {"output.LayerNorm.weight", B.ln2_w}, {"output.LayerNorm.bias", B.ln2_b}})
        out.emplace_back(p + k, t);
    }
    if (mlm_) {
      out.emplace_back("cls.predictions.transform.dense.weight", mlm_w_);
      out.emplace_back("cls.predictions.transform.dense.bias", mlm_b_);
      out.emplace_back("cls.predictions.transform.LayerNorm.weight", mlm_ln_w_);
      out.emplace_back("cls.predictions.transform.LayerNorm.bias", mlm_ln_b_);
      out.emplace_back("cls.predictions.bias", decoder_b_);
      if (!cfg_.tied_embeddings) out.emplace_back("cls.predictions.decoder.weight", decoder_);
    }
    if (classifier_) {
      out.emplace_back("bert.pooler.dense.weight", pool_w_);
      out.emplace_back("bert.pooler.dense.bias", pool_b_);
      out.emplace_back("classifier.weight", cls_w_);
      out.emplace_back("classifier.bias", cls_b_);
    }
    return out;
  }

 private:
  at::Tensor word_, pos_, type_, emb_ln_w_, emb_ln_b_;
  bool mlm_ = false;
  at::Tensor mlm_w_, mlm_b_, mlm_ln_w_, mlm_ln_b_, decoder_, decoder_b_;
  bool classifier_ = false;
  at::Tensor pool_w_, pool_b_, cls_w_, cls_b_;
  std::vector<BertBlock> blocks_;
  std::vector<BlockHookNames> names_;
  std::vector<std::string> normalized_resid_post_;
};

}  // namespace

std::vector<std::string> encoder_block_hook_names(const BlockHookNames& n, const std::string& normalized_resid_post) {
  return {n.resid_pre, n.q, n.k, n.v, n.attn_scores, n.pattern, n.z, n.result, n.attn_out,
          n.resid_mid, n.ln1_scale, n.ln1_normalized, n.mlp_pre, n.mlp_post, n.mlp_out,
          n.resid_post, n.ln2_scale, n.ln2_normalized, normalized_resid_post};
}

at::Tensor encoder_block(const EncoderBlockWeights& B, const ModelConfig& cfg, const BlockHookNames& N,
                         const std::string& normalized_resid_post, int layer, const at::Tensor& resid_in,
                         RunContext& ctx) {
  const hooks::HookSet* H = ctx.hooks;
  int64_t b = resid_in.size(0), n = resid_in.size(1), h = cfg.n_heads, dh = cfg.d_head;
  int64_t past = cache_past(ctx, layer);
  at::Tensor resid = resid_in;
  fire(H, N.resid_pre, resid, layer, past);

  // Attention over every real token (padding keys masked): [b, n, d] -> q, k, v [b, n, h, dh].
  at::Tensor q = at::linear(resid, B.q_w, B.q_b).view({b, n, h, dh});
  at::Tensor k = at::linear(resid, B.k_w, B.k_b).view({b, n, h, dh});
  at::Tensor v = at::linear(resid, B.v_w, B.v_b).view({b, n, h, dh});
  fire(H, N.q, q, layer, past);
  fire(H, N.k, k, layer, past);
  fire(H, N.v, v, layer, past);
  cache_kv(ctx, layer, cfg.n_layers, k, v);
  at::Tensor bias = attention_bias(ctx, b, n, past, false, 0, resid.scalar_type());
  at::Tensor z = attention(q, k, v, bias, 1.0 / std::sqrt((double)dh), H, N, layer, past);
  at::Tensor attn_out = attention_out(z, B.o_w, B.o_b, H, N, layer, past);
  fire(H, N.attn_out, attn_out, layer, past);
  at::Tensor mid = resid + attn_out;
  fire(H, N.resid_mid, mid, layer, past);

  // Post-LayerNorm: ln1 normalises resid_mid, the MLP reads that and ln2 normalises the sum
  // (TransformerLens's BertBlock: hook_resid_post is before ln2, the block output after).
  at::Tensor x = layer_norm(mid, B.ln1_w, B.ln1_b, cfg.eps, H, N.ln1_scale, N.ln1_normalized, layer, past);
  at::Tensor pre = at::linear(x, B.fc_w, B.fc_b);  // [b, n, d_mlp]
  fire(H, N.mlp_pre, pre, layer, past);
  at::Tensor post = activation(pre, cfg.act_fn);
  fire(H, N.mlp_post, post, layer, past);
  at::Tensor mlp_out = at::linear(post, B.proj_w, B.proj_b);
  fire(H, N.mlp_out, mlp_out, layer, past);
  at::Tensor sum = x + mlp_out;
  fire(H, N.resid_post, sum, layer, past);
  at::Tensor out = layer_norm(sum, B.ln2_w, B.ln2_b, cfg.eps, H, N.ln2_scale, N.ln2_normalized, layer, past);
  fire(H, normalized_resid_post, out, layer, past);
  return out;
}

std::unique_ptr<HookedModel> build_bert(const ModelConfig& cfg, const io::Checkpoint& ckpt, const LoadOptions& opts) {
  return std::make_unique<Bert>(cfg, ckpt, opts);
}

}  // namespace mechscope::models
