// GPT-Neo (Black et al. 2021) as Hugging Face's GPTNeoForCausalLM computes it: GPT-2's layout with
// nn.Linear weights, separate q/k/v projections without bias, attention scores NOT scaled by 1/sqrt(d)
// (the Mesh-TensorFlow original did not), and layers alternating global and local attention, a local
// layer seeing only the last `window_size` positions.
#include <tuple>

#include "core/error.h"
#include "models/common.h"
#include "models/registry.h"

namespace mechscope::models {

namespace {

// attention_layers when given (transformers writes it), else attention_types expanded:
// [[["global", "local"], 12]] -> global, local, global, ... (24 layers).
std::vector<std::string> attention_layers(const ModelConfig& cfg) {
  std::vector<std::string> out;
  auto layers = cfg.raw.find("attention_layers");
  auto types = cfg.raw.find("attention_types");
  auto bad = [&](const nlohmann::json& j) {
    fail("config.json (gpt_neo): attention_types must look like [[[\"global\", \"local\"], N]], got ", j.dump());
  };
  if (layers != cfg.raw.end() && layers->is_array() && !layers->empty()) {
    for (auto& t : *layers) {
      if (!t.is_string()) bad(*layers);
      out.push_back(t.get<std::string>());
    }
  } else if (types != cfg.raw.end() && types->is_array()) {
    for (auto& item : *types) {
      if (!item.is_array() || item.size() != 2 || !item[0].is_array() || !item[1].is_number_integer()) bad(*types);
      for (int64_t r = 0; r < item[1].get<int64_t>(); ++r)
        for (auto& t : item[0]) {
          if (!t.is_string()) bad(*types);
          out.push_back(t.get<std::string>());
        }
    }
  } else {
    fail("config.json (gpt_neo): missing 'attention_types' (or 'attention_layers')");
  }
  if ((int64_t)out.size() != cfg.n_layers)
    fail("config.json (gpt_neo): attention_types name ", out.size(), " layers, num_layers is ", cfg.n_layers);
  for (auto& t : out)
    if (t != "global" && t != "local")
      fail("config.json (gpt_neo): attention type '", t, "' (expected \"global\" or \"local\")");
  return out;
}

}  // namespace

void parse_gpt_neo(ModelConfig& cfg) {
  set_mha_heads(cfg, "hidden_size", "num_heads");
  cfg.n_layers = cfg_int(cfg, "num_layers");
  cfg.d_mlp = cfg_int(cfg, "intermediate_size", 4 * cfg.d_model);
  cfg.n_ctx = cfg_int(cfg, "max_position_embeddings", 2048);
  cfg.d_vocab = cfg_int(cfg, "vocab_size");
  cfg.act_fn = cfg_string(cfg, "activation_function", "gelu_new");
  cfg.eps = cfg_double(cfg, "layer_norm_epsilon", 1e-5);
  cfg.tied_embeddings = cfg_bool(cfg, "tie_word_embeddings", true);
  check_activation(cfg.act_fn);
  attention_layers(cfg);
}

namespace {

struct NeoBlock {
  at::Tensor ln1_w, ln1_b, q_w, k_w, v_w, out_w, out_b;
  at::Tensor ln2_w, ln2_b, fc_w, fc_b, proj_w, proj_b;
};

class GptNeo final : public HookedModel {
 public:
  GptNeo(const ModelConfig& cfg, const io::Checkpoint& ckpt, const LoadOptions& opts) {
    cfg_ = cfg;
    dtype_ = opts.dtype;
    std::string prefix = detect_prefix(ckpt, {"transformer.", ""}, "wte.weight", "GPT-Neo");
    WeightLoader w(ckpt, prefix, dtype_);
    int64_t d = cfg.d_model, m = cfg.d_mlp;
    wte_ = w.get("wte.weight", {cfg.d_vocab, d});
    wpe_ = w.get("wpe.weight", {cfg.n_ctx, d});
    int64_t window = cfg_int(cfg, "window_size", 256);
    for (auto& t : attention_layers(cfg)) window_.push_back(t == "local" ? window : 0);
    for (int l = 0; l < cfg.n_layers; ++l) {
      std::string p = "h." + std::to_string(l) + ".", a = p + "attn.attention.";
      blocks_.push_back({w.get(p + "ln_1.weight", {d}), w.get(p + "ln_1.bias", {d}), w.get(a + "q_proj.weight", {d, d}),
                         w.get(a + "k_proj.weight", {d, d}), w.get(a + "v_proj.weight", {d, d}),
                         w.get(a + "out_proj.weight", {d, d}), w.get(a + "out_proj.bias", {d}),
                         w.get(p + "ln_2.weight", {d}), w.get(p + "ln_2.bias", {d}),
                         w.get(p + "mlp.c_fc.weight", {m, d}), w.get(p + "mlp.c_fc.bias", {m}),
                         w.get(p + "mlp.c_proj.weight", {d, m}), w.get(p + "mlp.c_proj.bias", {d})});
      names_.emplace_back(l);
    }
    lnf_w_ = w.get("ln_f.weight", {d});
    lnf_b_ = w.get("ln_f.bias", {d});
    WeightLoader root(ckpt, "", dtype_);
    lm_head_ = cfg.tied_embeddings ? wte_ : root.get("lm_head.weight", {cfg.d_vocab, d});
  }

  std::vector<std::string> hook_names() const override {
    return standard_hook_names(cfg_.n_layers, false, false, true);
  }

  at::Tensor embed(const at::Tensor& ids, RunContext& ctx) const override {
    int64_t past = ctx.cache ? ctx.cache->length() : 0;
    at::Tensor pos = position_ids(ctx, ids.size(0), ids.size(1), past);
    at::Tensor tok = at::embedding(wte_, ids);  // [b, p, d]
    fire(ctx.hooks, "hook_embed", tok, -1, past);
    at::Tensor pe = at::embedding(wpe_, pos);
    fire(ctx.hooks, "hook_pos_embed", pe, -1, past);
    return tok + pe;
  }

  at::Tensor block(int layer, const at::Tensor& resid_in, RunContext& ctx) const override {
    int64_t b = resid_in.size(0), n = resid_in.size(1), past = cache_past(ctx, layer);
    at::Tensor resid = resid_in;
    auto [q, k, v] = attention_inputs(layer, resid, ctx.hooks, past);  // [b, n, h, dh]
    cache_kv(ctx, layer, cfg_.n_layers, k, v);
    // Unscaled scores grow large: transformers computes them (and the softmax) in float32 whatever
    // the model's dtype, float64 included, and the pattern meets v in v's dtype.
    at::Tensor bias = attention_bias(ctx, b, n, past, true, window_[layer], at::kFloat);
    at::Tensor z = attention(q.to(at::kFloat), k.to(at::kFloat), v, bias, 1.0, ctx.hooks, names_[layer], layer, past);
    return after_attention(layer, resid, z, ctx.hooks, past);
  }

  // rows: [R, d] -> [R, d] (or [K, d] with P.keep); block() on packed runs (PackedRuns).
  at::Tensor block_packed(int layer, const at::Tensor& rows_in, const PackedRuns& P) const override {
    at::Tensor resid = rows_in;
    auto [q, k, v] = attention_inputs(layer, resid, P.hooks, 0);  // [R, h, dh]
    // Scores in float32, as block() (packed_attention converts the keys to the queries' dtype).
    at::Tensor z = packed_attention(q.to(at::kFloat), k, v, P, 1.0, window_[layer], names_[layer], layer);
    if (P.keep.defined()) resid = resid.index_select(0, P.keep);
    return after_attention(layer, resid, z, P.hooks, 0);
  }

  at::Tensor final_norm(const at::Tensor& resid, RunContext& ctx) const override {
    int64_t past = ctx.cache ? ctx.cache->length() - resid.size(1) : 0;
    return layer_norm(resid, lnf_w_, lnf_b_, cfg_.eps, ctx.hooks, "ln_final.hook_scale", "ln_final.hook_normalized",
                      -1, past < 0 ? 0 : past);
  }

  at::Tensor unembed(const at::Tensor& x, const at::Tensor& columns) const override {
    at::Tensor w = columns.defined() ? lm_head_.index_select(0, columns) : lm_head_;
    return at::matmul(x, w.t());
  }

  std::vector<std::pair<std::string, at::Tensor>> parameters() const override {
    std::vector<std::pair<std::string, at::Tensor>> out{{"transformer.wte.weight", wte_}, {"transformer.wpe.weight", wpe_}};
    for (size_t l = 0; l < blocks_.size(); ++l) {
      const NeoBlock& B = blocks_[l];
      std::string p = "transformer.h." + std::to_string(l) + ".";
      for (auto& [k, t] : std::vector<std::pair<std::string, at::Tensor>>{
               {"ln_1.weight", B.ln1_w}, {"ln_1.bias", B.ln1_b}, {"attn.attention.q_proj.weight", B.q_w},
               {"attn.attention.k_proj.weight", B.k_w}, {"attn.attention.v_proj.weight", B.v_w},
               {"attn.attention.out_proj.weight", B.out_w}, {"attn.attention.out_proj.bias", B.out_b},
               {"ln_2.weight", B.ln2_w}, {"ln_2.bias", B.ln2_b}, {"mlp.c_fc.weight", B.fc_w}, {"mlp.c_fc.bias", B.fc_b},
               {"mlp.c_proj.weight", B.proj_w}, {"mlp.c_proj.bias", B.proj_b}})
        out.emplace_back(p + k, t);
    }
    out.emplace_back("transformer.ln_f.weight", lnf_w_);
    out.emplace_back("transformer.ln_f.bias", lnf_b_);
    if (!cfg_.tied_embeddings) out.emplace_back("lm_head.weight", lm_head_);
    return out;
  }

 private:
  // The block up to attention, for resid [..., d] (hook_resid_pre may replace it): ln_1 and the q, k,
  // v projections -> [..., h, dh], hooks fired.
  std::tuple<at::Tensor, at::Tensor, at::Tensor> attention_inputs(int layer, at::Tensor& resid, const hooks::HookSet* H,
                                                                  int64_t pos0) const {
    const NeoBlock& B = blocks_[layer];
    const BlockHookNames& N = names_[layer];
    fire(H, N.resid_pre, resid, layer, pos0);
    at::Tensor x = layer_norm(resid, B.ln1_w, B.ln1_b, cfg_.eps, H, N.ln1_scale, N.ln1_normalized, layer, pos0);
    at::Tensor q = split_heads(at::linear(x, B.q_w), cfg_.n_heads);
    at::Tensor k = split_heads(at::linear(x, B.k_w), cfg_.n_heads);
    at::Tensor v = split_heads(at::linear(x, B.v_w), cfg_.n_heads);
    fire(H, N.q, q, layer, pos0);
    fire(H, N.k, k, layer, pos0);
    fire(H, N.v, v, layer, pos0);
    return {q, k, v};
  }

  // The block after attention, for z [..., h, dh] and resid [..., d]: out_proj, the residual add,
  // ln_2 and the MLP.
  at::Tensor after_attention(int layer, const at::Tensor& resid, const at::Tensor& z, const hooks::HookSet* H,
                             int64_t pos0) const {
    const NeoBlock& B = blocks_[layer];
    const BlockHookNames& N = names_[layer];
    at::Tensor attn_out = attention_out(z, B.out_w, B.out_b, H, N, layer, pos0);
    fire(H, N.attn_out, attn_out, layer, pos0);
    at::Tensor mid = resid + attn_out;
    fire(H, N.resid_mid, mid, layer, pos0);
    at::Tensor x = layer_norm(mid, B.ln2_w, B.ln2_b, cfg_.eps, H, N.ln2_scale, N.ln2_normalized, layer, pos0);
    at::Tensor pre = at::linear(x, B.fc_w, B.fc_b);
    fire(H, N.mlp_pre, pre, layer, pos0);
    at::Tensor post = activation(pre, cfg_.act_fn);
    fire(H, N.mlp_post, post, layer, pos0);
    at::Tensor mlp_out = at::linear(post, B.proj_w, B.proj_b);
    fire(H, N.mlp_out, mlp_out, layer, pos0);
    at::Tensor out = mid + mlp_out;
    fire(H, N.resid_post, out, layer, pos0);
    return out;
  }

  at::Tensor wte_, wpe_, lnf_w_, lnf_b_, lm_head_;
  std::vector<NeoBlock> blocks_;
  std::vector<BlockHookNames> names_;
  std::vector<int64_t> window_;
};

}  // namespace

std::unique_ptr<HookedModel> build_gpt_neo(const ModelConfig& cfg, const io::Checkpoint& ckpt, const LoadOptions& opts) {
  return std::make_unique<GptNeo>(cfg, ckpt, opts);
}

}  // namespace mechscope::models
