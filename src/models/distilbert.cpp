// DistilBERT (Sanh et al. 2019) as Hugging Face's DistilBertModel / DistilBertForSequenceClassification
// compute it: word + position embeddings (no token types) and a LayerNorm, BERT's post-LayerNorm
// blocks (sa_layer_norm, output_layer_norm; eps fixed at 1e-12 in transformers), and the
// classification head: pre_classifier + ReLU + classifier on the [CLS] row (no tanh pooler, unlike
// BERT). Hook names as BERT's (TransformerLens's HookedEncoder), without embed.hook_token_type_embed.
#include "core/error.h"
#include "models/common.h"
#include "models/encoder_block.h"
#include "models/registry.h"

namespace mechscope::models {

void parse_distilbert(ModelConfig& cfg) {
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
}

namespace {

class DistilBert final : public HookedModel {
 public:
  DistilBert(const ModelConfig& cfg, const io::Checkpoint& ckpt, const LoadOptions& opts) {
    cfg_ = cfg;
    dtype_ = opts.dtype;
    // DistilBertFor* save "distilbert.embeddings…"; a bare DistilBertModel "embeddings…".
    std::string prefix = detect_prefix(ckpt, {"distilbert.", ""}, "embeddings.word_embeddings.weight", "DistilBERT");
    WeightLoader w(ckpt, prefix, dtype_);
    int64_t d = cfg.d_model, m = cfg.d_mlp;
    word_ = w.get("embeddings.word_embeddings.weight", {cfg.d_vocab, d});
    // Learned or sinusoidal (sinusoidal_pos_embds), the table is in the checkpoint either way.
    pos_ = w.get("embeddings.position_embeddings.weight", {cfg.n_ctx, d});
    emb_ln_w_ = w.get("embeddings.LayerNorm.weight", {d});
    emb_ln_b_ = w.get("embeddings.LayerNorm.bias", {d});
    for (int l = 0; l < cfg.n_layers; ++l) {
      std::string p = "transformer.layer." + std::to_string(l) + ".", a = p + "attention.";
      blocks_.push_back({w.get(a + "q_lin.weight", {d, d}), w.get(a + "q_lin.bias", {d}),
                         w.get(a + "k_lin.weight", {d, d}), w.get(a + "k_lin.bias", {d}),
                         w.get(a + "v_lin.weight", {d, d}), w.get(a + "v_lin.bias", {d}),
                         w.get(a + "out_lin.weight", {d, d}), w.get(a + "out_lin.bias", {d}),
                         w.get(p + "sa_layer_norm.weight", {d}), w.get(p + "sa_layer_norm.bias", {d}),
                         w.get(p + "ffn.lin1.weight", {m, d}), w.get(p + "ffn.lin1.bias", {m}),
                         w.get(p + "ffn.lin2.weight", {d, m}), w.get(p + "ffn.lin2.bias", {d}),
                         w.get(p + "output_layer_norm.weight", {d}), w.get(p + "output_layer_norm.bias", {d})});
      names_.emplace_back(l);
      normalized_resid_post_.push_back("blocks." + std::to_string(l) + ".hook_normalized_resid_post");
    }
    WeightLoader root(ckpt, "", dtype_);
    classifier_ = root.has("classifier.weight") && root.has("pre_classifier.weight");
    if (classifier_) {
      std::vector<int64_t> n = ckpt.info("classifier.weight").shape;
      if (n.size() != 2) fail("DistilBERT: classifier.weight has ", n.size(), " dimensions, expected [n_labels, ", d, "]");
      pre_w_ = root.get("pre_classifier.weight", {d, d});
      pre_b_ = root.get("pre_classifier.bias", {d});
      cls_w_ = root.get("classifier.weight", {n[0], d});
      cls_b_ = root.get("classifier.bias", {n[0]});
      cfg_.labels = read_labels(cfg_, n[0]);
    }
  }

  bool has_lm_head() const override { return false; }
  bool has_classifier() const override { return classifier_; }

  std::vector<std::string> hook_names() const override {
    std::vector<std::string> out{"embed.hook_embed", "embed.hook_pos_embed", "embed.ln.hook_scale",
                                 "embed.ln.hook_normalized"};
    for (int l = 0; l < cfg_.n_layers; ++l) {
      auto names = encoder_block_hook_names(names_[l], normalized_resid_post_[l]);
      out.insert(out.end(), names.begin(), names.end());
    }
    return out;
  }

  at::Tensor embed(const at::Tensor& ids, RunContext& ctx) const override {
    int64_t past = ctx.cache ? ctx.cache->length() : 0, b = ids.size(0), n = ids.size(1);
    if (ctx.token_type_ids.defined() && ctx.token_type_ids.numel() && ctx.token_type_ids.max().item<int64_t>() != 0)
      fail("DistilBERT takes no token type ids (it has no token-type embeddings)");
    // Absolute positions 0..n-1 whatever the padding, as DistilBERT's Embeddings does.
    at::Tensor pos = ctx.position_ids.defined() ? ctx.position_ids
                                                : at::arange(past, past + n, at::kLong).unsqueeze(0).expand({b, n});
    at::Tensor tok = at::embedding(word_, ids);  // [b, p, d]
    fire(ctx.hooks, "embed.hook_embed", tok, -1, past);
    at::Tensor pe = at::embedding(pos_, pos);
    fire(ctx.hooks, "embed.hook_pos_embed", pe, -1, past);
    return layer_norm(tok + pe, emb_ln_w_, emb_ln_b_, cfg_.eps, ctx.hooks, "embed.ln.hook_scale",
                      "embed.ln.hook_normalized", -1, past);
  }

  at::Tensor block(int layer, const at::Tensor& resid_in, RunContext& ctx) const override {
    return encoder_block(blocks_[layer], cfg_, names_[layer], normalized_resid_post_[layer], layer, resid_in, ctx);
  }

  at::Tensor final_norm(const at::Tensor& resid, RunContext& ctx) const override { return resid; }

  at::Tensor unembed(const at::Tensor& x, const at::Tensor& columns) const override {
    fail(classifier_ ? "this DistilBERT checkpoint is a sequence classifier (DistilBertForSequenceClassification): it "
                       "has class logits (classify), no token logits"
                     : "this DistilBERT checkpoint has no masked-LM head: it has no logits; use hook activations "
                       "instead (mechscope run --no-logits --cache ...)");
  }

  // pre_classifier + ReLU + classifier on the [CLS] row: [b, p, d] -> [b, n_labels].
  at::Tensor classify(const at::Tensor& resid, RunContext& ctx) const override {
    if (!classifier_) return HookedModel::classify(resid, ctx);
    at::Tensor x = at::relu(at::linear(resid.select(1, 0), pre_w_, pre_b_));
    return at::linear(x, cls_w_, cls_b_);
  }

  std::vector<std::pair<std::string, at::Tensor>> parameters() const override {
    std::vector<std::pair<std::string, at::Tensor>> out{
        {"distilbert.embeddings.word_embeddings.weight", word_},
        {"distilbert.embeddings.position_embeddings.weight", pos_},
        {"distilbert.embeddings.LayerNorm.weight", emb_ln_w_},
        {"distilbert.embeddings.LayerNorm.bias", emb_ln_b_}};
    for (size_t l = 0; l < blocks_.size(); ++l) {
      const EncoderBlockWeights& B = blocks_[l];
      std::string p = "distilbert.transformer.layer." + std::to_string(l) + ".";
      for (auto& [k, t] : std::vector<std::pair<std::string, at::Tensor>>{
               {"attention.q_lin.weight", B.q_w}, {"attention.q_lin.bias", B.q_b},
               {"attention.k_lin.weight", B.k_w}, {"attention.k_lin.bias", B.k_b},
               {"attention.v_lin.weight", B.v_w}, {"attention.v_lin.bias", B.v_b},
               {"attention.out_lin.weight", B.o_w}, {"attention.out_lin.bias", B.o_b},
               {"sa_layer_norm.weight", B.ln1_w}, {"sa_layer_norm.bias", B.ln1_b},
               {"ffn.lin1.weight", B.fc_w}, {"ffn.lin1.bias", B.fc_b},
               {"ffn.lin2.weight", B.proj_w}, {"ffn.lin2.bias", B.proj_b},
               {"output_layer_norm.weight", B.ln2_w}, {"output_layer_norm.bias", B.ln2_b}})
        out.emplace_back(p + k, t);
    }
    if (classifier_) {
      out.emplace_back("pre_classifier.weight", pre_w_);
      out.emplace_back("pre_classifier.bias", pre_b_);
      out.emplace_back("classifier.weight", cls_w_);
      out.emplace_back("classifier.bias", cls_b_);
    }
    return out;
  }

 private:
  at::Tensor word_, pos_, emb_ln_w_, emb_ln_b_;
  bool classifier_ = false;
  at::Tensor pre_w_, pre_b_, cls_w_, cls_b_;
  std::vector<EncoderBlockWeights> blocks_;
  std::vector<BlockHookNames> names_;
  std::vector<std::string> normalized_resid_post_;
};

}  // namespace

std::unique_ptr<HookedModel> build_distilbert(const ModelConfig& cfg, const io::Checkpoint& ckpt,
                                              const LoadOptions& opts) {
  return std::make_unique<DistilBert>(cfg, ckpt, opts);
}

}  // namespace mechscope::models
