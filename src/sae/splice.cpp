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

// Next-token cross-entropy summed over positions, as a 0-d float64 tensor where the logits are (read
// back once, at the end of the evaluation). logits: [1, n, vocab], ids: [1, n] on the logits' device.
at::Tensor ce_sum(const at::Tensor& logits, const at::Tensor& ids) {
  int64_t n = ids.size(1);
  at::Tensor lp = at::log_softmax(logits.index({0, at::indexing::Slice(0, n - 1)}).to(at::kDouble), -1);
  at::Tensor tgt = ids.index({0, at::indexing::Slice(1, n)});
  return -lp.gather(1, tgt.unsqueeze(1)).sum();
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
    if (opts.use_error_term)
      out = out + (x.to(out.scalar_type()) - (opts.edit_features ? decode(sae, acts, &st) : out));
    t = out.to(t.device(), t.scalar_type()).reshape(t.sizes());  // no copy when the SAE is on the model's device
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
    fail("SAE ", sae.source, " has d_in ", sae.cfg.d_in, " but hook '", hook,
         "' of the model gives activations of size ", want);
}

EvalResult evaluate(const models::HookedModel& model, const SAE& sae_in,
                    const std::vector<std::vector<int64_t>>& sequences) {
  check_compatible(sae_in, model);
  // The SAE where the model runs: sae eval moved it there once already; a caller who did not gets a
  // copy moved here, once.
  SAE moved;
  if (device_of(sae_in) != model.device()) moved = sae_in, to_device(moved, model.device());
  const SAE& sae = device_of(sae_in) != model.device() ? moved : sae_in;
  EvalResult r;
  const std::string& hook = sae.cfg.hook_name;
  // The sums stay where the model and the SAE run (0-d float64 tensors there) and come back to the host
  // once, after the last sequence: no device-to-host copy per sequence.
  const at::Device dev = model.device();
  auto zero = [&] { return at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(dev)); };
  at::Tensor active = zero(), sq_err = zero(), sum_sq = zero();
  at::Tensor sum_x;
  at::Tensor ce[3] = {zero(), zero(), zero()};
  at::NoGradGuard ng;
  for (const auto& seq : sequences) {
    if (seq.empty()) continue;
    at::Tensor ids = at::tensor(seq, at::kLong).unsqueeze(0).to(dev);  // the one copy of the input
    hooks::HookSet hs;
    models::RunContext ctx;
    ctx.hooks = &hs;
    at::Tensor clean = model.forward(ids, ctx);
    {
      hooks::ScopedHooks scope(hs);
      scope.add(hook, [&](at::Tensor& t, const hooks::HookContext& hc) {
        at::Tensor x = sae.cfg.reshape_hook_z && t.dim() >= 2 ? t.flatten(-2) : t;
        if (x.size(-1) != sae.cfg.d_in)
          fail("SAE ", sae.source, " has d_in ", sae.cfg.d_in, " but hook '", hc.name, "' gives activations of size ",
               x.size(-1));
        NormState st;
        at::Tensor acts = encode(sae, x, &st);
        at::Tensor xh = decode(sae, acts, &st);
        at::Tensor xd = x.to(at::kDouble).reshape({-1, sae.cfg.d_in});
        at::Tensor err = (xh.to(at::kDouble).reshape({-1, sae.cfg.d_in}) - xd);
        active += (acts > 0).sum();
        sq_err += err.pow(2).sum();
        sum_sq += xd.pow(2).sum();
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
  // Every sum back to the host in one copy.
  at::Tensor sums =
      at::stack({active, sq_err, sum_sq, sum_x.pow(2).sum(), ce[0], ce[1], ce[2]}).to(at::kCPU).contiguous();
  const double* v = sums.data_ptr<double>();
  double n = static_cast<double>(r.n_tokens);
  double sq = v[1];
  r.l0 = v[0] / n;
  r.l2_per_token = sq / n;
  r.mse = sq / (n * sae.cfg.d_in);
  double total_var = v[2] - v[3] / n;
  r.explained_variance = 1.0 - sq / total_var;
  if (r.n_predictions) {
    double p = static_cast<double>(r.n_predictions);
    r.ce_clean = v[4] / p;
    r.ce_spliced = v[5] / p;
    r.ce_zero_ablated = v[6] / p;
    r.ce_loss_score = (r.ce_zero_ablated - r.ce_spliced) / (r.ce_zero_ablated - r.ce_clean);
  }
  return r;
}

}  // namespace mechscope::sae
