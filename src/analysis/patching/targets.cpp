// Metrics and patch targets: what a patched run is scored by, and which activation a cell replaces.
#include <algorithm>

#include "analysis/patching/patching.h"
#include "core/error.h"
#include "core/text.h"

namespace mechscope::analysis::patching {

MetricKind parse_metric(const std::string& s) {
  if (s == "logit-diff" || s == "logit_diff") return MetricKind::LogitDiff;
  if (s == "prob") return MetricKind::Prob;
  if (s == "logprob") return MetricKind::LogProb;
  fail(option("metric"), ": expected logit-diff, prob or logprob, got '", s, "'");
}

std::string metric_name(MetricKind k) {
  switch (k) {
    case MetricKind::LogitDiff: return "logit-diff";
    case MetricKind::Prob: return "prob";
    case MetricKind::LogProb: return "logprob";
  }
  return "?";
}

at::Tensor metric_columns(const Metric& m, const at::Device& device) {
  if (m.kind == MetricKind::LogitDiff) return at::tensor(std::vector<int64_t>{m.answer, m.wrong}, at::kLong).to(device);
  return {};  // prob/logprob normalise over the whole vocabulary
}

at::Tensor metric_from_logits(const Metric& m, const at::Tensor& logits) {
  at::Tensor x = logits.to(at::kDouble);
  if (m.kind == MetricKind::LogitDiff) return x.select(-1, 0) - x.select(-1, 1);
  at::Tensor lp;
  if (!m.answers.empty()) {
    at::Tensor cols = at::tensor(m.answers, at::kLong).to(x.device());
    lp = at::logsumexp(x.index_select(-1, cols), -1) - at::logsumexp(x, -1);
  } else {
    lp = at::log_softmax(x, -1).select(-1, m.answer);
  }
  return m.kind == MetricKind::Prob ? lp.exp() : lp;
}

int64_t metric_position(const Metric& m, int64_t n) {
  int64_t p = m.position < 0 ? n + m.position : m.position;
  if (p < 0 || p >= n) fail("metric position ", m.position, " is outside the prompt of ", n, " tokens");
  return p;
}

namespace {

const std::vector<TargetSpec>& specs() {
  static const std::vector<TargetSpec> s{
      {"resid_pre", "hook_resid_pre", true, false, false, false},
      {"resid_mid", "hook_resid_mid", true, false, false, false},
      {"resid_post", "hook_resid_post", true, false, false, false},
      {"attn_out", "hook_attn_out", true, false, false, false},
      {"mlp_out", "hook_mlp_out", true, false, false, false},
      {"z", "attn.hook_z", true, true, false, false},
      {"q", "attn.hook_q", true, true, false, false},
      {"k", "attn.hook_k", true, true, false, true},
      {"v", "attn.hook_v", true, true, false, true},
      {"z_all_pos", "attn.hook_z", false, true, false, false},
      {"q_all_pos", "attn.hook_q", false, true, false, false},
      {"k_all_pos", "attn.hook_k", false, true, false, true},
      {"v_all_pos", "attn.hook_v", false, true, false, true},
      {"pattern", "attn.hook_pattern", true, true, true, false},
      {"pattern_all_pos", "attn.hook_pattern", false, true, true, false},
  };
  return s;
}

}  // namespace

std::vector<std::string> all_target_names() {
  std::vector<std::string> out;
  for (auto& s : specs()) out.push_back(s.name);
  out.push_back("block_every");
  return out;
}

TargetSpec target_spec(const std::string& name) {
  for (auto& s : specs())
    if (s.name == name) return s;
  std::string list;
  for (auto& n : all_target_names()) list += (list.empty() ? "" : ", ") + n;
  fail("unknown patch target '", name, "' (targets: ", list, ")");
}

std::vector<std::string> parse_targets(const std::string& list) {
  std::vector<std::string> out;
  auto push = [&](const std::string& n) {
    if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
  };
  for (const std::string& name : list_items(list)) {
    if (name == "block_every") {
      for (const char* n : {"resid_pre", "attn_out", "mlp_out"}) push(n);
    } else {
      push(target_spec(name).name);
    }
  }
  if (out.empty()) fail(option("targets"), ": no target given (targets: resid_pre, attn_out, mlp_out, z_all_pos, ...)");
  return out;
}

std::vector<int64_t> target_shape(const TargetSpec& t, const models::ModelConfig& cfg, int64_t n) {
  int64_t heads = t.kv ? cfg.n_kv_heads : cfg.n_heads;
  if (t.pattern)
    return t.by_pos ? std::vector<int64_t>{cfg.n_layers, heads, n} : std::vector<int64_t>{cfg.n_layers, heads};
  if (t.by_pos && t.by_head) return {cfg.n_layers, n, heads};
  if (t.by_pos) return {cfg.n_layers, n};
  return {cfg.n_layers, heads};
}

std::vector<std::string> target_axes(const TargetSpec& t) {
  if (t.pattern)
    return t.by_pos ? std::vector<std::string>{"layer", "head", "dest_pos"} : std::vector<std::string>{"layer", "head"};
  if (t.by_pos && t.by_head) return {"layer", "pos", "head"};
  if (t.by_pos) return {"layer", "pos"};
  return {"layer", "head"};
}

std::vector<std::string> target_points(const TargetSpec& t, const models::ModelConfig& cfg) {
  std::vector<std::string> out;
  for (int l = 0; l < cfg.n_layers; ++l) out.push_back("blocks." + std::to_string(l) + "." + t.hook);
  return out;
}

std::vector<Edit> target_cells(const TargetSpec& t, const models::ModelConfig& cfg, int64_t n) {
  std::vector<Edit> out;
  int64_t heads = t.kv ? cfg.n_kv_heads : cfg.n_heads;
  auto points = target_points(t, cfg);
  for (int l = 0; l < cfg.n_layers; ++l) {
    auto cell = [&](int64_t pos, int64_t head) { out.push_back({l, points[l], pos, head, t.pattern}); };
    if (t.pattern) {
      for (int64_t h = 0; h < heads; ++h) {
        if (t.by_pos)
          for (int64_t p = 0; p < n; ++p) cell(p, h);
        else cell(-1, h);
      }
    } else if (t.by_pos && t.by_head) {
      for (int64_t p = 0; p < n; ++p)
        for (int64_t h = 0; h < heads; ++h) cell(p, h);
    } else if (t.by_pos) {
      for (int64_t p = 0; p < n; ++p) cell(p, -1);
    } else {
      for (int64_t h = 0; h < heads; ++h) cell(-1, h);
    }
  }
  return out;
}

Method parse_method(const std::string& s) {
  if (s == "exact") return Method::Exact;
  if (s == "naive") return Method::Naive;
  if (s == "attribution") return Method::Attribution;
  fail(option("method"), ": expected exact, attribution or naive, got '", s, "'");
}

std::string method_name(Method m) {
  switch (m) {
    case Method::Exact: return "exact";
    case Method::Naive: return "naive";
    case Method::Attribution: return "attribution";
  }
  return "?";
}

AblationKind parse_ablation(const std::string& s) {
  if (s == "zero") return AblationKind::Zero;
  if (s == "mean") return AblationKind::Mean;
  if (s == "resample") return AblationKind::Resample;
  fail(option("kind"), ": expected zero, mean or resample, got '", s, "'");
}

std::string ablation_name(AblationKind k) {
  switch (k) {
    case AblationKind::Zero: return "zero";
    case AblationKind::Mean: return "mean";
    case AblationKind::Resample: return "resample";
  }
  return "?";
}

}  // namespace mechscope::analysis::patching
