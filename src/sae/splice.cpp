#include "sae/splice.h"

#include <algorithm>

#include "core/error.h"

namespace mechscope::sae {

namespace {

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

// The activation size at a hook point from the model config, 0 when not known from the name alone.
int64_t hook_size(const std::string& hook, const models::ModelConfig& c) {
  for (const char* s : {"hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out",
                        "hook_embed", "hook_pos_embed"})
    if (ends_with(hook, s)) return c.d_model;
  if (ends_with(hook, "mlp.hook_pre") || ends_with(hook, "mlp.hook_post") || ends_with(hook, "mlp.hook_pre_linear"))
    return c.d_mlp;
  if (ends_with(hook, "attn.hook_z") || ends_with(hook, "attn.hook_q")) return c.n_heads * c.d_head;
  return 0;
}

// Next-token cross-entropy summed over positions. logits: [1, n, vocab], ids: [1, n].
double ce_sum(const at::Tensor& logits, const at::Tensor& ids) {
  int64_t n = ids.size(1);
  at::Tensor lp = at::log_softmax(logits.index({0, at::indexing::Slice(0, n - 1)}).to(at::kDouble), -1);
  at::Tensor tgt = ids.index({0, at::indexing::Slice(1, n)});
  return -lp.gather(1, tgt.unsqueeze(1)).sum().item<double>();
}

}  // namespace

hooks::HookFn splice(const SAE& sae, SpliceOptions opts) {
  return [&sae, opts](at::Tensor& t, const hooks::HookContext& ctx) {
    at::Tensor x = t;
    if (sae.cfg.reshape_hook_z && x.dim() >= 2) x = x.flatten(-2);
    if (x.size(-1) != sae.cfg.d_in)
      fail("SAE ", sae.source, " has d_in ", sae.cfg.d_in, " but hook '", ctx.name, "' gives activations of size ",
           x.size(-1));
    NormState st;
    at::Tensor acts = encode(sae, x, &st);
    at::Tensor out;
    if (opts.edit_features) {
      at::Tensor edited = acts.clone();
      opts.edit_features(edited);
      out = decode(sae, edited, &st);
    } else {
      out = decode(sae, acts, &st);
    }
    if (opts.use_error_term) out = out + (x.to(out.scalar_type()) - (opts.edit_features ? decode(sae, acts, &st) : out));
    t = out.to(t.scalar_type()).reshape(t.sizes());
  };
}

void check_compatible(const SAE& sae, const models::HookedModel& model) {
  const std::string& hook = sae.cfg.hook_name;
  auto names = model.hook_names();
  if (std::find(names.begin(), names.end(), hook) == names.end())
    fail("SAE ", sae.source, " reads hook '", hook, "', which model '", model.config().model_type, "' with ",
         model.config().n_layers, " layers does not have (see `mechscope info`)");
  int64_t want = hook_size(hook, model.config());
  if (want && want != sae.cfg.d_in)
    fail("SAE ", sae.source, " has d_in ", sae.cfg.d_in, " but hook '", hook, "' of the model gives activations of size ",
         want);
}

EvalResult evaluate(const models::HookedModel& model, const SAE& sae, const std::vector<std::vector<int64_t>>& sequences) {
  check_compatible(sae, model);
  EvalResult r;
  const std::string& hook = sae.cfg.hook_name;
  double active = 0, sq_err = 0, sum_sq = 0;
  at::Tensor sum_x;
  double ce[3] = {0, 0, 0};
  at::NoGradGuard ng;
  for (const auto& seq : sequences) {
    if (seq.empty()) continue;
    at::Tensor ids = at::tensor(seq, at::kLong).unsqueeze(0);
    hooks::HookSet hs;
    models::RunContext ctx;
    ctx.hooks = &hs;
    at::Tensor clean = model.forward(ids, ctx);
    {
      hooks::ScopedHooks scope(hs);
      scope.add(hook, [&](at::Tensor& t, const hooks::HookContext& hc) {
        at::Tensor x = sae.cfg.reshape_hook_z && t.dim() >= 2 ? t.flatten(-2) : t;
        if (x.size(-1) != sae.cfg.d_in)
          fail("SAE ", sae.source, " has d_in ", sae.cfg.d_in, " but hook '", hc.name, "' gives activations of size ", x.size(-1));
        NormState st;
        at::Tensor acts = encode(sae, x, &st);
        at::Tensor xh = decode(sae, acts, &st);
        at::Tensor xd = x.to(at::kDouble).reshape({-1, sae.cfg.d_in});
        at::Tensor err = (xh.to(at::kDouble).reshape({-1, sae.cfg.d_in}) - xd);
        active += (acts > 0).sum().item<double>();
        sq_err += err.pow(2).sum().item<double>();
        sum_sq += xd.pow(2).sum().item<double>();
        at::Tensor s = xd.sum(0);
        sum_x = sum_x.defined() ? sum_x + s : s;
        r.n_tokens += xd.size(0);
        t = xh.to(t.scalar_type()).reshape(t.sizes());
      });
      at::Tensor spliced = model.forward(ids, ctx);
      if (ids.size(1) >= 2) ce[1] += ce_sum(spliced, ids);
    }
    if (ids.size(1) >= 2) {
      hooks::ScopedHooks scope(hs);
      scope.add(hook, hooks::zero());
      at::Tensor zeroed = model.forward(ids, ctx);
      ce[0] += ce_sum(clean, ids);
      ce[2] += ce_sum(zeroed, ids);
      r.n_predictions += ids.size(1) - 1;
    }
  }
  if (r.n_tokens == 0) fail("SAE evaluation needs at least one token");
  double n = static_cast<double>(r.n_tokens);
  r.l0 = active / n;
  r.l2_per_token = sq_err / n;
  r.mse = sq_err / (n * sae.cfg.d_in);
  double total_var = sum_sq - sum_x.pow(2).sum().item<double>() / n;
  r.explained_variance = 1.0 - sq_err / total_var;
  if (r.n_predictions) {
    double p = static_cast<double>(r.n_predictions);
    r.ce_clean = ce[0] / p;
    r.ce_spliced = ce[1] / p;
    r.ce_zero_ablated = ce[2] / p;
    r.ce_loss_score = (r.ce_zero_ablated - r.ce_spliced) / (r.ce_zero_ablated - r.ce_clean);
  }
  return r;
}

}  // namespace mechscope::sae
