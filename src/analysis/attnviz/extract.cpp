// Queries and keys as the attention uses them, read at the model's hook points, and the check that
// they reproduce the model's own pattern.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "analysis/attnviz/attnviz.h"
#include "core/error.h"
#include "models/registry.h"

namespace mechscope::analysis::attnviz {

namespace {

// Window of `layer` from `layer_types` (transformers >= 4.54) when the config has it; -1 when absent.
int64_t window_from_layer_types(const models::ModelConfig& cfg, int layer) {
  auto t = cfg.raw.find("layer_types");
  if (t == cfg.raw.end() || !t->is_array() || (int64_t)t->size() != cfg.n_layers) return -1;
  return (*t)[layer] == "sliding_attention" ? models::cfg_int(cfg, "sliding_window", 0) : 0;
}

// A number from config.json; `def` when absent or null (attn_logit_softcapping: null = no capping).
double number_or(const models::ModelConfig& cfg, const char* key, double def) {
  auto it = cfg.raw.find(key);
  return it != cfg.raw.end() && it->is_number() ? it->get<double>() : def;
}

}  // namespace

AttentionRule attention_rule(const models::ModelConfig& cfg, int layer) {
  AttentionRule r;
  r.causal = cfg.causal;
  r.scale = 1.0 / std::sqrt((double)cfg.d_head);
  const std::string& t = cfg.model_type;
  if (t == "gpt2") {
    if (!models::cfg_bool(cfg, "scale_attn_weights", true)) r.scale = 1;
    if (models::cfg_bool(cfg, "scale_attn_by_inverse_layer_idx", false)) r.scale /= (layer + 1);
  } else if (t == "gpt_neo") {
    // GPT-Neo does not divide its scores by sqrt(d_head) (transformers' GPTNeoSelfAttention).
    r.scale = 1;
    auto layers = cfg.raw.find("attention_layers");
    std::string kind;
    if (layers != cfg.raw.end() && layers->is_array() && (int64_t)layers->size() == cfg.n_layers) {
      kind = (*layers)[layer].get<std::string>();
    } else if (auto types = cfg.raw.find("attention_types"); types != cfg.raw.end() && types->is_array()) {
      std::vector<std::string> all;
      for (auto& item : *types)
        for (int64_t n = 0; n < item[1].get<int64_t>(); ++n)
          for (auto& s : item[0]) all.push_back(s.get<std::string>());
      if ((int64_t)all.size() > layer) kind = all[layer];
    }
    if (kind == "local") r.window = models::cfg_int(cfg, "window_size", 256);
  } else if (t == "llama" || t == "mistral" || t == "qwen2") {
    int64_t w = window_from_layer_types(cfg, layer);
    if (w >= 0) r.window = w;
    else if (t == "mistral") r.window = models::cfg_int(cfg, "sliding_window", 0);
    else if (t == "qwen2" && models::cfg_bool(cfg, "use_sliding_window", false) &&
             layer >= models::cfg_int(cfg, "max_window_layers", 0))
      r.window = models::cfg_int(cfg, "sliding_window", 0);
  } else if (t == "gemma2") {
    // Gemma-2 scales by query_pre_attn_scalar^-1/2 (not d_head), soft-caps the scores and alternates
    // sliding-window (even layers) and global layers.
    r.scale = 1.0 / std::sqrt(number_or(cfg, "query_pre_attn_scalar", 256.0));
    r.softcap = number_or(cfg, "attn_logit_softcapping", 0.0);
    int64_t w = window_from_layer_types(cfg, layer);
    r.window = w >= 0 ? w : (layer % 2 == 0 ? models::cfg_int(cfg, "sliding_window", 0) : 0);
  }
  return r;
}

at::Tensor Extracted::allowed(size_t li) const {
  const AttentionRule& r = rules.at(li);
  auto on = at::TensorOptions().dtype(at::kLong).device(device);
  auto lens = at::tensor(lengths, at::kLong).to(device).view({n_texts, 1, 1});
  auto qpos = at::arange(n_pos, on).view({1, n_pos, 1});
  auto kpos = at::arange(n_pos, on).view({1, 1, n_pos});
  at::Tensor ok = (kpos < lens).logical_and(qpos < lens);
  if (r.causal) ok = ok.logical_and(kpos <= qpos);
  if (r.window > 0) ok = ok.logical_and(kpos > qpos - r.window);
  return ok;  // [text, pos, pos]
}

void Extracted::to_host() {
  if (device.is_cpu()) return;
  for (auto* v : {&q, &k, &pattern})
    for (auto& t : *v) t = t.to(at::kCPU);
  device = at::kCPU;
}

// q, k: [text, pos, heads, d], allowed [text, pos, pos] -> [text, heads, pos, pos].
at::Tensor recompute_pattern(const at::Tensor& q, const at::Tensor& k, const at::Tensor& allowed,
                             const AttentionRule& rule) {
  at::Tensor s = at::einsum("tihd,tjhd->thij", {q, k}) * rule.scale;
  if (rule.softcap > 0) s = at::tanh(s / rule.softcap) * rule.softcap;
  at::Tensor ok = allowed.unsqueeze(1);
  s = s.masked_fill(ok.logical_not(), -std::numeric_limits<double>::infinity());
  at::Tensor p = at::softmax(s, -1);
  // Rows with no allowed key (padding queries) are NaN after the softmax: zero, as stored.
  return at::where(ok, p, at::zeros({}, p.options()));
}

Extracted extract(const models::HookedModel& model, const std::vector<Input>& texts, const std::vector<int>& layers,
                  double tolerance) {
  const auto& cfg = model.config();
  if (texts.empty()) fail("attnviz: no texts");
  if (layers.empty()) fail("attnviz: no layers");
  Extracted ex;
  ex.n_texts = (int64_t)texts.size();
  ex.n_heads = cfg.n_heads;
  ex.d_head = cfg.d_head;
  ex.layers = layers;
  for (auto& t : texts) {
    if (t.ids.empty()) fail("attnviz: text #", ex.lengths.size() + 1, " has no tokens");
    ex.lengths.push_back((int64_t)t.ids.size());
  }
  ex.n_pos = *std::max_element(ex.lengths.begin(), ex.lengths.end());
  int max_layer = 0;
  for (int l : layers) {
    if (l < 0 || l >= cfg.n_layers)
      fail("attnviz: layer ", l, " is out of range (the model has ", cfg.n_layers, " layers)");
    max_layer = std::max(max_layer, l);
  }

  // Right-padded batch; padding ids are 0 and masked as keys (their rows are dropped below).
  int64_t T = ex.n_texts, P = ex.n_pos;
  at::Tensor ids = at::zeros({T, P}, at::kLong), types = at::zeros({T, P}, at::kLong),
             mask = at::zeros({T, P}, at::kLong);
  for (int64_t t = 0; t < T; ++t) {
    for (size_t i = 0; i < texts[t].ids.size(); ++i) ids[t][i] = texts[t].ids[i], mask[t][i] = 1;
    for (size_t i = 0; i < texts[t].token_types.size() && i < texts[t].ids.size(); ++i)
      types[t][i] = texts[t].token_types[i];
  }

  size_t n = layers.size();
  std::vector<at::Tensor> q(n), k(n), pat(n);
  hooks::HookSet hs;
  // What the hooks read stays on the model's device: the check, the normalisation and PCA run there,
  // and Extracted::to_host() brings it back once for the figures and files.
  ex.device = model.device();
  std::string qname = cfg.rotary ? "hook_rot_q" : "hook_q", kname = cfg.rotary ? "hook_rot_k" : "hook_k";
  for (size_t i = 0; i < n; ++i) {
    std::string b = "blocks." + std::to_string(layers[i]) + ".attn.";
    hs.add(b + qname, [&q, i](at::Tensor& t, const hooks::HookContext&) { q[i] = t.detach().to(at::kDouble); });
    hs.add(b + kname, [&k, i](at::Tensor& t, const hooks::HookContext&) { k[i] = t.detach().to(at::kDouble); });
    hs.add(b + "hook_pattern",
           [&pat, i](at::Tensor& t, const hooks::HookContext&) { pat[i] = t.detach().to(at::kDouble); });
  }
  models::RunContext ctx;
  ctx.hooks = &hs;
  ctx.attention_mask = mask;
  ctx.token_type_ids = types;
  {
    at::NoGradGuard no_grad;
    at::Tensor x = model.embed(ids, ctx);
    for (int l = 0; l <= max_layer; ++l) x = model.block(l, x, ctx);
  }

  at::Tensor mask_d = mask.to(ex.device, at::kDouble);
  at::Tensor real = mask_d.view({T, P, 1, 1});
  std::vector<at::Tensor> diffs;
  for (size_t i = 0; i < n; ++i) {
    int l = layers[i];
    if (!q[i].defined() || !k[i].defined() || !pat[i].defined())
      fail("attnviz: ", cfg.model_type, " did not fire blocks.", l, ".attn.", qname, " / ", kname, " / hook_pattern");
    at::Tensor kk = k[i];
    if (kk.size(2) != cfg.n_heads) kk = kk.repeat_interleave(cfg.n_heads / kk.size(2), 2);  // GQA, as the attention
    ex.q.push_back(q[i] * real);
    ex.k.push_back(kk * real);
    ex.rules.push_back(attention_rule(cfg, l));
    at::Tensor ok = ex.allowed(i);
    at::Tensor mine = recompute_pattern(ex.q[i], ex.k[i], ok, ex.rules[i]);
    at::Tensor theirs = pat[i] * mask_d.view({T, 1, P, 1});
    ex.pattern.push_back(theirs);
    diffs.push_back((mine - theirs).abs().max());
  }
  // Every layer's difference back in one copy.
  at::Tensor host_diffs = at::stack(diffs).to(at::kCPU).contiguous();
  for (size_t i = 0; i < n; ++i) {
    int l = layers[i];
    double d = host_diffs.data_ptr<double>()[i];
    ex.max_diff.push_back(d);
    if (!(d <= tolerance))
      fail("attnviz: softmax(q·k) recomputed from blocks.", l, ".attn.", qname, "/", kname,
           " differs from hook_pattern by ", d, " (tolerance ", tolerance, ") for model_type '", cfg.model_type,
           "': its attention rule (scale, soft-capping, masks) is not the one attnviz reproduces");
  }
  return ex;
}

Extracted join_texts(const std::vector<Extracted>& parts) {
  if (parts.empty()) fail("attnviz: no texts");
  Extracted ex;
  const Extracted& first = parts[0];
  ex.n_heads = first.n_heads;
  ex.d_head = first.d_head;
  ex.layers = first.layers;
  ex.rules = first.rules;
  ex.device = first.device;
  ex.max_diff.assign(first.layers.size(), 0.0);
  for (const auto& p : parts) {
    if (p.layers != first.layers || p.device != first.device)
      fail("internal: attnviz extractions of other layers or devices joined");
    ex.n_texts += p.n_texts;
    ex.n_pos = std::max(ex.n_pos, p.n_pos);
    ex.lengths.insert(ex.lengths.end(), p.lengths.begin(), p.lengths.end());
    for (size_t li = 0; li < p.max_diff.size(); ++li) ex.max_diff[li] = std::max(ex.max_diff[li], p.max_diff[li]);
  }
  auto on = at::TensorOptions().dtype(at::kDouble).device(ex.device);
  const int64_t T = ex.n_texts, P = ex.n_pos, H = ex.n_heads;
  for (size_t li = 0; li < ex.layers.size(); ++li) {
    // q, k: [text, pos, heads, d]; pattern: [text, heads, pos, pos]
    at::Tensor q = at::zeros({T, P, H, first.q[li].size(3)}, on), k = at::zeros({T, P, H, first.k[li].size(3)}, on),
               pat = at::zeros({T, H, P, P}, on);
    int64_t t0 = 0;
    for (const auto& p : parts) {
      int64_t n = p.n_texts, pp = p.n_pos;
      q.narrow(0, t0, n).narrow(1, 0, pp).copy_(p.q[li]);
      k.narrow(0, t0, n).narrow(1, 0, pp).copy_(p.k[li]);
      pat.narrow(0, t0, n).narrow(2, 0, pp).narrow(3, 0, pp).copy_(p.pattern[li]);
      t0 += n;
    }
    ex.q.push_back(q);
    ex.k.push_back(k);
    ex.pattern.push_back(pat);
  }
  return ex;
}

}  // namespace mechscope::analysis::attnviz
