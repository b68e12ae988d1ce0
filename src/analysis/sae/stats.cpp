#include "analysis/sae/stats.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <cstdio>

#include "core/error.h"

namespace mechscope::analysis::sae {

UnembedMode parse_unembed_mode(const std::string& s) {
  if (s == "processed") return UnembedMode::Processed;
  if (s == "raw") return UnembedMode::Raw;
  fail(option("unembed"), " '", s, "' is not one of: processed (as TransformerLens's from_pretrained), raw");
}

Unembedding unembedding(const models::HookedModel& model, UnembedMode mode) {
  if (!model.has_lm_head()) fail("the model has no LM head, so there is no W_U to project the SAE features onto");
  at::NoGradGuard ng;
  const int64_t d = model.config().d_model;
  const auto dt = model.dtype();
  // Every probe is made on the model's device; W_U stays there.
  const auto on = at::TensorOptions().dtype(at::kDouble).device(model.device());
  // unembed is affine for every supported architecture; reading W_U through it keeps this file free
  // of checkpoint names. A probe catches a non-affine head (soft-capping) instead of lying.
  at::Tensor bias = model.unembed(at::zeros({1, d}, on.dtype(dt))).to(at::kDouble);  // [1, V]
  at::Tensor W = model.unembed(at::eye(d, on.dtype(dt))).to(at::kDouble) - bias;     // [d, V]
  {
    // a fixed probe (not the global generator, which would shift every later random draw)
    at::Tensor gen = (at::arange(2 * d, on).reshape({2, d}) * 0.37).sin() * 0.5;
    at::Tensor want = at::matmul(gen, W) + bias, got = model.unembed(gen.to(dt)).to(at::kDouble);
    double err = (want - got).abs().max().item<double>(), scale = want.abs().max().item<double>() + 1e-30;
    if (err > 1e-3 * scale)
      fail("the model's unembedding is not affine (relative deviation ", err / scale,
           ", e.g. final logit soft-capping), so it has no W_U matrix to project SAE features onto");
  }
  Unembedding u;
  u.final_norm = "none";
  if (mode == UnembedMode::Processed) {
    // The final norm's effective scale w (LayerNorm / RMSNorm weight, Gemma's 1 + w): for a zero-mean
    // probe v both norms give n(v) = v / s, s = ln_final.hook_scale, and out(v) - out(-v) = 2 w n(v).
    at::Tensor v = at::arange(d, on).remainder(2).mul(2).sub(1);  // +-1
    v = (v - v.mean()).view({1, 1, d});
    hooks::HookSet hs;
    at::Tensor scale;
    hs.add("ln_final.hook_scale",
           [&](at::Tensor& t, const hooks::HookContext&) { scale = t.detach().to(at::kDouble).clone(); });
    models::RunContext ctx;
    ctx.hooks = &hs;
    at::Tensor out_p = model.final_norm(v.to(dt), ctx).to(at::kDouble);
    if (scale.defined()) {
      at::Tensor out_m = model.final_norm((-v).to(dt), ctx).to(at::kDouble);
      at::Tensor w = ((out_p - out_m) / (2 * v / scale.reshape({1, 1, 1}))).reshape({d});
      // A LayerNorm ignores a constant shift of its input; an RMSNorm does not.
      at::Tensor out_s = model.final_norm((v + 1.0).to(dt), ctx).to(at::kDouble);
      u.layer_norm = (out_s - out_p).abs().max().item<double>() <= 1e-3 * (out_p.abs().max().item<double>() + 1e-30);
      u.final_norm = u.layer_norm ? "layernorm" : "rmsnorm";
      W = W * w.unsqueeze(1);
      u.folded_scale = true;
      if (u.layer_norm) W = W - W.mean({0}, true);  // fold_layer_norm(center_weights=True)
    }
    W = W - W.mean({1}, true);  // center_unembed
  }
  u.W_U = W.to(at::kFloat).contiguous();
  return u;
}

at::Tensor prepare_unembed(const at::Tensor& W_U, bool cosine_sim) {
  at::Tensor w = W_U.to(at::kFloat);
  if (cosine_sim) w = w / w.norm(2, {0}, true);
  return w.contiguous();
}

FeatureStats logit_weight_stats(const at::Tensor& W_dec, const at::Tensor& W_U_in, const StatsOptions& opt) {
  if (W_dec.dim() != 2 || W_U_in.dim() != 2 || W_dec.size(1) != W_U_in.size(0))
    fail("W_dec ", W_dec.sizes(), " and W_U ", W_U_in.sizes(),
         " do not multiply (the SAE's d_in must be the model's d_model)");
  if (opt.block < 1) fail("the feature block size must be >= 1");
  at::NoGradGuard ng;
  at::Tensor Wd = W_dec.to(at::kFloat);
  at::Tensor W_U = prepare_unembed(W_U_in.to(Wd.device()), opt.cosine_sim);
  int64_t n = Wd.size(0);
  FeatureStats s;
  if (!Wd.is_cpu() || opt.tensor_moments) {
    // On a GPU: the same moments as tensor ops in double, block by block on the device ([rows, V]
    // temporaries there), the four columns copied back once at the end.
    auto dopts = at::TensorOptions().dtype(at::kDouble).device(Wd.device());
    at::Tensor all = at::empty({4, n}, dopts);
    for (int64_t f0 = 0; f0 < n; f0 += opt.block) {
      int64_t f1 = std::min(n, f0 + opt.block);
      at::Tensor P = at::matmul(Wd.slice(0, f0, f1), W_U);  // [rows, V] float32, as SAELens projects
      if (opt.on_block) opt.on_block(f0, P);
      at::Tensor x = P.to(at::kDouble);
      at::Tensor mean = x.mean({1}, true);
      at::Tensor dv = x - mean, d2 = dv * dv;
      at::Tensor m2 = d2.mean({1}), m3 = (d2 * dv).mean({1}), m4 = (d2 * d2).mean({1});
      all[0].slice(0, f0, f1).copy_(mean.squeeze(1));
      all[1].slice(0, f0, f1).copy_(m2.sqrt());
      all[2].slice(0, f0, f1).copy_(m3 / m2.pow(1.5));
      all[3].slice(0, f0, f1).copy_(m4 / (m2 * m2));
    }
    at::Tensor host = all.to(at::kCPU);
    s.mean = host[0].contiguous(), s.std = host[1].contiguous(), s.skewness = host[2].contiguous(),
    s.kurtosis = host[3].contiguous();
    return s;
  }
  auto opts = at::TensorOptions().dtype(at::kDouble);
  s.mean = at::empty({n}, opts), s.std = at::empty({n}, opts), s.skewness = at::empty({n}, opts),
  s.kurtosis = at::empty({n}, opts);
  for (int64_t f0 = 0; f0 < n; f0 += opt.block) {
    int64_t f1 = std::min(n, f0 + opt.block);
    at::Tensor P = at::matmul(Wd.slice(0, f0, f1), W_U);  // [rows, V] float32, as SAELens projects
    if (opt.on_block) opt.on_block(f0, P);
    // Two passes per row over the float32 block with double accumulators: no [rows, V] temporaries
    // (SAELens's z-score route makes several), the same moments to rounding.
    P = P.contiguous();
    const float* pp = P.data_ptr<float>();
    const int64_t V = P.size(1);
    double *mo = s.mean.data_ptr<double>(), *so = s.std.data_ptr<double>(), *ko = s.skewness.data_ptr<double>(),
           *uo = s.kurtosis.data_ptr<double>();
    at::parallel_for(0, f1 - f0, 1, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* x = pp + r * V;
        // four independent accumulators per sum: the loop is latency-bound otherwise
        double a[4] = {0, 0, 0, 0};
        int64_t v = 0;
        for (; v + 4 <= V; v += 4)
          for (int k = 0; k < 4; ++k) a[k] += x[v + k];
        for (; v < V; ++v) a[0] += x[v];
        double mean = (a[0] + a[1] + a[2] + a[3]) / (double)V;
        double q2[4] = {0, 0, 0, 0}, q3[4] = {0, 0, 0, 0}, q4[4] = {0, 0, 0, 0};
        for (v = 0; v + 4 <= V; v += 4)
          for (int k = 0; k < 4; ++k) {
            double d = (double)x[v + k] - mean, d2 = d * d;
            q2[k] += d2;
            q3[k] += d2 * d;
            q4[k] += d2 * d2;
          }
        for (; v < V; ++v) {
          double d = (double)x[v] - mean, d2 = d * d;
          q2[0] += d2;
          q3[0] += d2 * d;
          q4[0] += d2 * d2;
        }
        double s2 = q2[0] + q2[1] + q2[2] + q2[3], s3 = q3[0] + q3[1] + q3[2] + q3[3],
               s4 = q4[0] + q4[1] + q4[2] + q4[3];
        double m2 = s2 / (double)V, m3 = s3 / (double)V, m4 = s4 / (double)V;
        int64_t f = f0 + r;
        mo[f] = mean;
        so[f] = std::sqrt(m2);
        ko[f] = m3 / std::pow(m2, 1.5);
        uo[f] = m4 / (m2 * m2);
      }
    });
  }
  return s;
}

int stats_layer(const std::string& hook) {
  if (hook.rfind("blocks.", 0) != 0) return -1;
  size_t e = hook.find('.', 7);
  std::string num = hook.substr(7, e == std::string::npos ? std::string::npos : e - 7);
  if (num.empty() || num.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoi(num) + (hook.find("post") != std::string::npos ? 1 : 0);
}

std::string url_quote(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '_' || c == '.' || c == '-' || c == '~' || c == '/') out += static_cast<char>(c);
    else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

std::string neuronpedia_quick_list(const std::string& model_id, const std::string& layer_id,
                                   const std::vector<int64_t>& features, const std::string& name) {
  auto js = [](const std::string& v) {
    std::string o = "\"";
    for (char c : v) {
      if (c == '"' || c == '\\') o += '\\';
      o += c;
    }
    return o + "\"";
  };
  // json.dumps's default separators (", " and ": ").
  std::string list = "[";
  for (size_t i = 0; i < features.size(); ++i)
    list += (i ? ", " : "") + std::string("{\"modelId\": ") + js(model_id) + ", \"layer\": " + js(layer_id) +
            ", \"index\": " + js(std::to_string(features[i])) + "}";
  list += "]";
  return "https://neuronpedia.org/quick-list/?name=" + url_quote(name) + "&features=" + url_quote(list);
}

}  // namespace mechscope::analysis::sae

#include <algorithm>
#include <filesystem>

#include "core/fs.h"

namespace mechscope::analysis::sae {

std::vector<mechscope::sae::SAE> load_sae_dir(const std::string& dir, const mechscope::sae::LoadOptions& opts) {
  if (!dir_exists(dir)) fail(option("sae_dir"), " '", dir, "' is not a directory");
  std::vector<mechscope::sae::SAE> out;
  auto is_sae = [](const std::string& d) {
    return file_exists(join_path(d, "cfg.json")) || file_exists(join_path(d, "params.npz"));
  };
  if (is_sae(dir)) {
    out.push_back(mechscope::sae::load_sae(dir, opts));
    return out;
  }
  std::vector<std::string> subs;
  for (auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_directory() && is_sae(e.path().string())) subs.push_back(e.path().string());
  if (subs.empty())
    fail(option("sae_dir"), " '", dir, "' holds no SAE folder (subfolders with cfg.json or params.npz)");
  for (auto& s : subs) out.push_back(mechscope::sae::load_sae(s, opts));
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    int la = stats_layer(a.cfg.hook_name), lb = stats_layer(b.cfg.hook_name);
    return la != lb ? la < lb : a.cfg.hook_name < b.cfg.hook_name;
  });
  return out;
}

void check_d_in(const models::HookedModel& model, const std::vector<mechscope::sae::SAE>& saes) {
  for (const auto& s : saes)
    if (s.cfg.d_in != model.config().d_model)
      fail("SAE ", s.source, " has d_in ", s.cfg.d_in, " but the model's d_model (the unembedding's input) is ",
           model.config().d_model);
}

SaeStats sae_stats(const mechscope::sae::SAE& s, const Unembedding& unembed, bool cosine_sim, bool keep_projection,
                   int64_t block) {
  SaeStats r;
  StatsOptions o;
  o.cosine_sim = cosine_sim;
  o.block = block;
  if (keep_projection) {
    r.projection = at::empty({s.cfg.d_sae, unembed.W_U.size(1)}, at::kFloat);
    // The saved projection is the output itself: each block comes to the host as it is made.
    o.on_block = [&](int64_t f0, const at::Tensor& p) { r.projection.slice(0, f0, f0 + p.size(0)).copy_(p); };
  }
  r.stats = logit_weight_stats(s.W_dec, unembed.W_U, o);
  return r;
}

void add_sae_rows(StatsRun& run, const mechscope::sae::SAE& s, int index, const SaeStats& r) {
  StatsTable& t = run.table;
  if (r.projection.defined()) run.projections.push_back(r.projection);
  t.sae_names.push_back(s.cfg.hook_name);
  int layer = stats_layer(s.cfg.hook_name);
  at::Tensor sp = s.log_sparsity.defined() ? s.log_sparsity.to(at::kCPU, at::kDouble).contiguous() : at::Tensor();
  const FeatureStats& fs = r.stats;
  const double *mean = fs.mean.data_ptr<double>(), *sd = fs.std.data_ptr<double>(),
               *skew = fs.skewness.data_ptr<double>(), *kurt = fs.kurtosis.data_ptr<double>();
  for (int64_t f = 0; f < s.cfg.d_sae; ++f) {
    t.feature.push_back(f);
    t.layer.push_back(layer);
    t.sae.push_back(index);
    t.mean.push_back(mean[f]);
    t.std.push_back(sd[f]);
    t.skewness.push_back(skew[f]);
    t.kurtosis.push_back(kurt[f]);
    t.log_feature_sparsity.push_back(sp.defined() ? sp.data_ptr<double>()[f] : std::nan(""));
  }
}

StatsRun compute_stats(const models::HookedModel& model, const std::vector<mechscope::sae::SAE>& saes, UnembedMode mode,
                       bool cosine_sim, bool keep_projection, int64_t block) {
  check_d_in(model, saes);
  StatsRun run;
  run.unembed = unembedding(model, mode);
  for (size_t k = 0; k < saes.size(); ++k)
    add_sae_rows(run, saes[k], (int)k, sae_stats(saes[k], run.unembed, cosine_sim, keep_projection, block));
  return run;
}

}  // namespace mechscope::analysis::sae
