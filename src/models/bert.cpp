// BERT (Devlin et al. 2019) as Hugging Face's BertModel / BertForMaskedLM / BertForSequenceClassification
// compute it: word + position + token-type embeddings and a LayerNorm, post-LayerNorm blocks,
// bidirectional attention that masks padding keys, and either the MLM head (dense + activation +
// LayerNorm, then a decoder tied to the word embeddings) or the classification head (pooler: dense +
// tanh on the [CLS] row, then a linear classifier). Hook names are TransformerLens's HookedEncoder
// ones: embed.hook_embed, ..., blocks.L.hook_normalized_resid_post (the block output), mlm_head.ln.*.
#include <cmath>

#include "core/error.h"
#include "models/decoder.h"
#include "models/encoder_block.h"
#include "models/registry.h"

namespace mechscope::models {

std::any parse_bert(ModelConfig& cfg) {
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
  return {};
}

namespace {

struct BertWeights {
  at::Tensor word, pos, type, emb_ln_w, emb_ln_b;
  at::Tensor mlm_w, mlm_b, mlm_ln_w, mlm_ln_b, decoder, decoder_b;  // BertForMaskedLM
  at::Tensor pool_w, pool_b, cls_w, cls_b;                          // BertForSequenceClassification
};

// Feature bits: which of the table\'s optional tensors a checkpoint has (TensorSpec::needs).
constexpr unsigned kMlm = 1;
constexpr unsigned kUntiedDecoder = 2;
constexpr unsigned kClassifier = 4;

using T = TensorTable<BertWeights, EncoderBlockWeights>;
using B = EncoderBlockWeights;
using namespace dims;
// BertForMaskedLM saves "bert.embeddings…" and "cls.predictions…"; a bare BertModel "embeddings…".
// BertForSequenceClassification: the pooler under the model prefix, the classifier at the root.
const T kTable{"BERT",
               {"bert.", ""},
               {T::model(&BertWeights::word, "{P}embeddings.word_embeddings.weight", {V, D}),
                T::model(&BertWeights::pos, "{P}embeddings.position_embeddings.weight", {C, D}),
                T::model(&BertWeights::type, "{P}embeddings.token_type_embeddings.weight", {TT, D}),
                T::model(&BertWeights::emb_ln_w, "{P}embeddings.LayerNorm.weight", {D}),
                T::model(&BertWeights::emb_ln_b, "{P}embeddings.LayerNorm.bias", {D}),
                T::block(&B::q_w, "{P}encoder.layer.{L}.attention.self.query.weight", {D, D}),
                T::block(&B::q_b, "{P}encoder.layer.{L}.attention.self.query.bias", {D}),
                T::block(&B::k_w, "{P}encoder.layer.{L}.attention.self.key.weight", {D, D}),
                T::block(&B::k_b, "{P}encoder.layer.{L}.attention.self.key.bias", {D}),
                T::block(&B::v_w, "{P}encoder.layer.{L}.attention.self.value.weight", {D, D}),
                T::block(&B::v_b, "{P}encoder.layer.{L}.attention.self.value.bias", {D}),
                T::block(&B::o_w, "{P}encoder.layer.{L}.attention.output.dense.weight", {D, D}),
                T::block(&B::o_b, "{P}encoder.layer.{L}.attention.output.dense.bias", {D}),
                T::block(&B::ln1_w, "{P}encoder.layer.{L}.attention.output.LayerNorm.weight", {D}),
                T::block(&B::ln1_b, "{P}encoder.layer.{L}.attention.output.LayerNorm.bias", {D}),
                T::block(&B::fc_w, "{P}encoder.layer.{L}.intermediate.dense.weight", {M, D}),
                T::block(&B::fc_b, "{P}encoder.layer.{L}.intermediate.dense.bias", {M}),
                T::block(&B::proj_w, "{P}encoder.layer.{L}.output.dense.weight", {D, M}),
                T::block(&B::proj_b, "{P}encoder.layer.{L}.output.dense.bias", {D}),
                T::block(&B::ln2_w, "{P}encoder.layer.{L}.output.LayerNorm.weight", {D}),
                T::block(&B::ln2_b, "{P}encoder.layer.{L}.output.LayerNorm.bias", {D}),
                T::model(&BertWeights::mlm_w, "cls.predictions.transform.dense.weight", {D, D}, kMlm),
                T::model(&BertWeights::mlm_b, "cls.predictions.transform.dense.bias", {D}, kMlm),
                T::model(&BertWeights::mlm_ln_w, "cls.predictions.transform.LayerNorm.weight", {D}, kMlm),
                T::model(&BertWeights::mlm_ln_b, "cls.predictions.transform.LayerNorm.bias", {D}, kMlm),
                T::model(&BertWeights::decoder_b, "cls.predictions.bias", {V}, kMlm, "cls.predictions.decoder.bias"),
                T::model(&BertWeights::decoder, "cls.predictions.decoder.weight", {V, D}, kMlm | kUntiedDecoder),
                T::model(&BertWeights::pool_w, "{P}pooler.dense.weight", {D, D}, kClassifier),
                T::model(&BertWeights::pool_b, "{P}pooler.dense.bias", {D}, kClassifier),
                T::model(&BertWeights::cls_w, "classifier.weight", {N, D}, kClassifier),
                T::model(&BertWeights::cls_b, "classifier.bias", {N}, kClassifier)}};

// Which head the checkpoint has: the MLM head, else a classifier, else none (a bare BertModel).
unsigned bert_features(const ModelConfig& cfg, const io::Checkpoint& ckpt) {
  if (ckpt.has("cls.predictions.transform.dense.weight")) return kMlm | (cfg.tied_embeddings ? 0 : kUntiedDecoder);
  return ckpt.has("classifier.weight") ? kClassifier : 0;
}

class Bert final : public TableModel<BertWeights, EncoderBlockWeights> {
 public:
  Bert(const ModelConfig& cfg, const io::Checkpoint& ckpt, const LoadOptions& opts)
      : TableModel(cfg, ckpt, opts, kTable, bert_features(cfg, ckpt),
                   bert_features(cfg, ckpt) & kClassifier ? classifier_labels(ckpt, "BERT", cfg.d_model) : 0) {
    mlm_ = features_ & kMlm;
    classifier_ = features_ & kClassifier;
    if (mlm_ && cfg.tied_embeddings) w_.decoder = w_.word;
    if (classifier_) cfg_.labels = read_labels(cfg_, w_.cls_w.size(0));
  }

  bool has_lm_head() const override { return mlm_; }
  bool has_classifier() const override { return classifier_; }

  // The pooler (dense + tanh) on the [CLS] row, then the classifier: [b, p, d] -> [b, n_labels].
  at::Tensor classify(const at::Tensor& resid, RunContext& ctx) const override {
    if (!classifier_) return HookedModel::classify(resid, ctx);
    at::Tensor pooled = at::tanh(at::linear(resid.select(1, 0), w_.pool_w, w_.pool_b));
    return at::linear(pooled, w_.cls_w, w_.cls_b);
  }

  std::vector<std::string> hook_names() const override { return encoder_hook_names(cfg_.n_layers, true, mlm_); }

  at::Tensor embed(const at::Tensor& ids_in, RunContext& ctx) const override {
    at::Tensor ids = ids_in.to(device_);  // ids made on the host by any caller (a no-op when already here)
    int64_t past = ctx.cache ? ctx.cache->length() : 0, b = ids.size(0), n = ids.size(1);
    // Absolute positions 0..n-1 whatever the padding, as BertEmbeddings does (not from the mask).
    at::Tensor pos = ctx.position_ids.defined()
                         ? ctx.position_ids.to(device_)
                         : at::arange(past, past + n, at::TensorOptions().dtype(at::kLong).device(ids.device()))
                               .unsqueeze(0)
                               .expand({b, n});
    at::Tensor types = ctx.token_type_ids.defined()
                           ? ctx.token_type_ids.to(device_)
                           : at::zeros({b, n}, at::TensorOptions().dtype(at::kLong).device(ids.device()));
    if (types.sizes() != ids.sizes())
      fail("token_type_ids have shape ", types.sizes(), ", the input ids ", ids.sizes());
    if (types.numel() && (types.min().item<int64_t>() < 0 || types.max().item<int64_t>() >= w_.type.size(0)))
      fail("token_type_ids must be in 0 .. ", w_.type.size(0) - 1, " (type_vocab_size ", w_.type.size(0),
           "), got values ", types.min().item<int64_t>(), " .. ", types.max().item<int64_t>());
    at::Tensor tok = at::embedding(w_.word, ids);  // [b, p, d]
    BlockHooks H{ctx.hooks, nullptr, -1, past};
    H.fire("embed.hook_embed", tok);
    at::Tensor pe = at::embedding(w_.pos, pos);
    H.fire("embed.hook_pos_embed", pe);
    at::Tensor te = at::embedding(w_.type, types);
    H.fire("embed.hook_token_type_embed", te);
    return layer_norm(tok + pe + te, w_.emb_ln_w, w_.emb_ln_b, cfg_.eps, H, embed_ln_names());
  }

  at::Tensor block(int layer, const at::Tensor& resid_in, RunContext& ctx) const override {
    return encoder_block(blocks_[layer], cfg_, names_[layer], layer, resid_in, ctx);
  }

  // The MLM head's transform (dense + activation + LayerNorm); identity for a bare BertModel.
  at::Tensor final_norm(const at::Tensor& resid, RunContext& ctx) const override {
    if (!mlm_) return resid;
    at::Tensor x = activation(at::linear(resid, w_.mlm_w, w_.mlm_b), cfg_.act_fn);
    static const NormHookNames mlm_ln{"mlm_head.ln.hook_scale", "mlm_head.ln.hook_normalized"};
    return layer_norm(x, w_.mlm_ln_w, w_.mlm_ln_b, cfg_.eps, final_hooks(ctx, resid), mlm_ln);
  }

  at::Tensor unembed(const at::Tensor& x, const at::Tensor& columns) const override {
    if (classifier_)
      fail(
          "this BERT checkpoint is a sequence classifier (BertForSequenceClassification): it has class logits "
          "(classify), no token logits");
    if (!mlm_)
      fail(
          "this BERT checkpoint is a bare BertModel (no cls.predictions.* masked-LM head): it has no logits; "
          "use hook activations instead (`run` with ",
          option("no_logits"), " and ", option("cache"), ")");
    return unembed_rows(w_.decoder, x, columns) +
           (columns.defined() ? w_.decoder_b.index_select(0, columns) : w_.decoder_b);
  }

 private:
  bool mlm_ = false, classifier_ = false;
};

std::unique_ptr<HookedModel> build_bert(const ModelConfig& cfg, const std::any&, const io::Checkpoint& ckpt,
                                        const LoadOptions& opts) {
  return std::make_unique<Bert>(cfg, ckpt, opts);
}

}  // namespace

const Architecture& bert_architecture() {
  static const Architecture a{{{"bert", "BERT"}}, parse_bert, build_bert};
  return a;
}

}  // namespace mechscope::models
