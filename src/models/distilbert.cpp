// DistilBERT (Sanh et al. 2019) as Hugging Face's DistilBertModel / DistilBertForSequenceClassification
// compute it: word + position embeddings (no token types) and a LayerNorm, BERT's post-LayerNorm
// blocks (sa_layer_norm, output_layer_norm; eps fixed at 1e-12 in transformers), and the
// classification head: pre_classifier + ReLU + classifier on the [CLS] row (no tanh pooler, unlike
// BERT). Hook names as BERT's (TransformerLens's HookedEncoder), without embed.hook_token_type_embed.
#include "core/error.h"
#include "models/decoder.h"
#include "models/encoder_block.h"
#include "models/registry.h"

namespace mechscope::models {

std::any parse_distilbert(ModelConfig& cfg) {
  set_mha_heads(cfg, "dim", "n_heads");
  cfg.n_layers = cfg_int(cfg, "n_layers");
  cfg.d_mlp = cfg_int(cfg, "hidden_dim", 4 * cfg.d_model);
  cfg.n_ctx = cfg_int(cfg, "max_position_embeddings", 512);
  cfg.d_vocab = cfg_int(cfg, "vocab_size");
  cfg.act_fn = cfg_string(cfg, "activation", "gelu");
  cfg.eps = 1e-12;  // hard-coded in transformers' DistilBERT, not a config key
  cfg.tied_embeddings = cfg_bool(cfg, "tie_word_embeddings", true);
  cfg.causal = false;
  cfg.n_token_types = 0;
  check_activation(cfg.act_fn);
  return {};
}

namespace {

struct DistilBertWeights {
  at::Tensor word, pos, emb_ln_w, emb_ln_b;
  at::Tensor pre_w, pre_b, cls_w, cls_b;  // DistilBertForSequenceClassification
};

// Feature bits: which of the table\'s optional tensors a checkpoint has (TensorSpec::needs).
constexpr unsigned kClassifier = 1;

using T = TensorTable<DistilBertWeights, EncoderBlockWeights>;
using B = EncoderBlockWeights;
using namespace dims;
// DistilBertFor* save "distilbert.embeddings…"; a bare DistilBertModel "embeddings…". Learned or
// sinusoidal (sinusoidal_pos_embds), the position table is in the checkpoint either way.
const T kTable{"DistilBERT",
               {"distilbert.", ""},
               {T::model(&DistilBertWeights::word, "{P}embeddings.word_embeddings.weight", {V, D}),
                T::model(&DistilBertWeights::pos, "{P}embeddings.position_embeddings.weight", {C, D}),
                T::model(&DistilBertWeights::emb_ln_w, "{P}embeddings.LayerNorm.weight", {D}),
                T::model(&DistilBertWeights::emb_ln_b, "{P}embeddings.LayerNorm.bias", {D}),
                T::block(&B::q_w, "{P}transformer.layer.{L}.attention.q_lin.weight", {D, D}),
                T::block(&B::q_b, "{P}transformer.layer.{L}.attention.q_lin.bias", {D}),
                T::block(&B::k_w, "{P}transformer.layer.{L}.attention.k_lin.weight", {D, D}),
                T::block(&B::k_b, "{P}transformer.layer.{L}.attention.k_lin.bias", {D}),
                T::block(&B::v_w, "{P}transformer.layer.{L}.attention.v_lin.weight", {D, D}),
                T::block(&B::v_b, "{P}transformer.layer.{L}.attention.v_lin.bias", {D}),
                T::block(&B::o_w, "{P}transformer.layer.{L}.attention.out_lin.weight", {D, D}),
                T::block(&B::o_b, "{P}transformer.layer.{L}.attention.out_lin.bias", {D}),
                T::block(&B::ln1_w, "{P}transformer.layer.{L}.sa_layer_norm.weight", {D}),
                T::block(&B::ln1_b, "{P}transformer.layer.{L}.sa_layer_norm.bias", {D}),
                T::block(&B::fc_w, "{P}transformer.layer.{L}.ffn.lin1.weight", {M, D}),
                T::block(&B::fc_b, "{P}transformer.layer.{L}.ffn.lin1.bias", {M}),
                T::block(&B::proj_w, "{P}transformer.layer.{L}.ffn.lin2.weight", {D, M}),
                T::block(&B::proj_b, "{P}transformer.layer.{L}.ffn.lin2.bias", {D}),
                T::block(&B::ln2_w, "{P}transformer.layer.{L}.output_layer_norm.weight", {D}),
                T::block(&B::ln2_b, "{P}transformer.layer.{L}.output_layer_norm.bias", {D}),
                T::model(&DistilBertWeights::pre_w, "pre_classifier.weight", {D, D}, kClassifier),
                T::model(&DistilBertWeights::pre_b, "pre_classifier.bias", {D}, kClassifier),
                T::model(&DistilBertWeights::cls_w, "classifier.weight", {N, D}, kClassifier),
                T::model(&DistilBertWeights::cls_b, "classifier.bias", {N}, kClassifier)}};

bool has_classifier_head(const io::Checkpoint& ckpt) {
  return ckpt.has("classifier.weight") && ckpt.has("pre_classifier.weight");
}

class DistilBert final : public TableModel<DistilBertWeights, EncoderBlockWeights> {
 public:
  DistilBert(const ModelConfig& cfg, const io::Checkpoint& ckpt, const LoadOptions& opts)
      : TableModel(cfg, ckpt, opts, kTable, has_classifier_head(ckpt) ? kClassifier : 0,
                   has_classifier_head(ckpt) ? classifier_labels(ckpt, "DistilBERT", cfg.d_model) : 0) {
    classifier_ = features_ & kClassifier;
    if (classifier_) cfg_.labels = read_labels(cfg_, w_.cls_w.size(0));
  }

  bool has_lm_head() const override { return false; }
  bool has_classifier() const override { return classifier_; }

  std::vector<std::string> hook_names() const override { return encoder_hook_names(cfg_.n_layers, false, false); }

  at::Tensor embed(const at::Tensor& ids_in, RunContext& ctx) const override {
    at::Tensor ids = ids_in.to(device_);  // ids made on the host by any caller (a no-op when already here)
    int64_t past = ctx.cache ? ctx.cache->length() : 0, b = ids.size(0), n = ids.size(1);
    if (ctx.token_type_ids.defined() && ctx.token_type_ids.numel() && ctx.token_type_ids.max().item<int64_t>() != 0)
      fail("DistilBERT takes no token type ids (it has no token-type embeddings)");
    // Absolute positions 0..n-1 whatever the padding, as DistilBERT's Embeddings does.
    at::Tensor pos = ctx.position_ids.defined()
                         ? ctx.position_ids.to(device_)
                         : at::arange(past, past + n, at::TensorOptions().dtype(at::kLong).device(ids.device()))
                               .unsqueeze(0)
                               .expand({b, n});
    at::Tensor tok = at::embedding(w_.word, ids);  // [b, p, d]
    BlockHooks H{ctx.hooks, nullptr, -1, past};
    H.fire("embed.hook_embed", tok);
    at::Tensor pe = at::embedding(w_.pos, pos);
    H.fire("embed.hook_pos_embed", pe);
    return layer_norm(tok + pe, w_.emb_ln_w, w_.emb_ln_b, cfg_.eps, H, embed_ln_names());
  }

  at::Tensor block(int layer, const at::Tensor& resid_in, RunContext& ctx) const override {
    return encoder_block(blocks_[layer], cfg_, names_[layer], layer, resid_in, ctx);
  }

  at::Tensor final_norm(const at::Tensor& resid, RunContext& ctx) const override { return resid; }

  at::Tensor unembed(const at::Tensor& x, const at::Tensor& columns) const override {
    fail(classifier_ ? "this DistilBERT checkpoint is a sequence classifier (DistilBertForSequenceClassification): it "
                       "has class logits (classify), no token logits"
                     : cat("this DistilBERT checkpoint has no masked-LM head: it has no logits; use hook activations "
                           "instead (`run` with ",
                           option("no_logits"), " and ", option("cache"), ")"));
  }

  // pre_classifier + ReLU + classifier on the [CLS] row: [b, p, d] -> [b, n_labels].
  at::Tensor classify(const at::Tensor& resid, RunContext& ctx) const override {
    if (!classifier_) return HookedModel::classify(resid, ctx);
    at::Tensor x = at::relu(at::linear(resid.select(1, 0), w_.pre_w, w_.pre_b));
    return at::linear(x, w_.cls_w, w_.cls_b);
  }

 private:
  bool classifier_ = false;
};

std::unique_ptr<HookedModel> build_distilbert(const ModelConfig& cfg, const std::any&, const io::Checkpoint& ckpt,
                                              const LoadOptions& opts) {
  return std::make_unique<DistilBert>(cfg, ckpt, opts);
}

}  // namespace

const Architecture& distilbert_architecture() {
  static const Architecture a{{{"distilbert", nullptr}}, parse_distilbert, build_distilbert};
  return a;
}

}  // namespace mechscope::models
