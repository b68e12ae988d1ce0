#include "analysis/causal_trace/causal_trace.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/rng_numpy.h"

namespace mechscope::analysis::causal_trace {

const char* kind_name(Kind k) { return k == Kind::All ? "all" : k == Kind::Mlp ? "mlp" : "attn"; }

Kind parse_kind(const std::string& s) {
  if (s == "all" || s == "state" || s == "resid") return Kind::All;
  if (s == "mlp") return Kind::Mlp;
  if (s == "attn") return Kind::Attn;
  fail("unknown trace kind '", s, "' (expected all, mlp or attn)");
}

std::vector<Kind> parse_kinds(const std::string& list, const std::string& flag) {
  std::vector<Kind> out;
  std::string item;
  auto push = [&] {
    if (item.empty()) return;
    Kind k;
    try {
      k = parse_kind(item);
    } catch (const Error& e) {
      fail(flag, ": ", e.what());
    }
    if (std::find(out.begin(), out.end(), k) == out.end()) out.push_back(k);
    item.clear();
  };
  for (char c : list) {
    if (c == ',' || c == ' ') push();
    else item += c;
  }
  push();
  if (out.empty()) fail(flag, ": no kind given (expected a list of all, mlp, attn)");
  return out;
}

static double parse_number(const std::string& s, const std::string& flag, const std::string& whole) {
  try {
    size_t used = 0;
    double v = std::stod(s, &used);
    if (used == s.size() && std::isfinite(v)) return v;
  } catch (const std::exception&) {
  }
  fail(flag, ": expected s<k> (k × embedding std), a number, u<x> (uniform) or t<d> (Student-t), got '", whole, "'");
}

NoiseRule parse_noise(const std::string& s, const std::string& flag) {
  NoiseRule r;
  r.text = s;
  if (s.empty()) fail(flag, ": empty noise rule");
  char c = s[0];
  std::string rest = s.substr(1);
  if (c == 's') {
    r.type = NoiseRule::StdMultiple;
    r.value = rest.empty() ? 1.0 : parse_number(rest, flag, s);
  } else if (c == 'u') {
    r.type = NoiseRule::Uniform;
    r.value = parse_number(rest, flag, s);
  } else if (c == 't') {
    r.type = NoiseRule::StudentT;
    r.value = parse_number(rest, flag, s);
    if (r.value <= 2) fail(flag, ": Student-t noise needs more than 2 degrees of freedom (finite variance), got '", s, "'");
  } else {
    r.type = NoiseRule::Absolute;
    r.value = parse_number(s, flag, s);
  }
  if (r.value < 0) fail(flag, ": the noise level must be >= 0, got '", s, "'");
  return r;
}

Noise resolve_noise(const NoiseRule& rule, double embedding_std) {
  Noise n;
  switch (rule.type) {
    case NoiseRule::StdMultiple: n.scale = rule.value * embedding_std; break;
    case NoiseRule::Absolute: n.scale = rule.value; break;
    case NoiseRule::Uniform:
      n.dist = Noise::Uniform;
      n.scale = rule.value;
      break;
    case NoiseRule::StudentT:
      n.dist = Noise::StudentT;
      n.df = rule.value;
      n.scale = std::sqrt((rule.value - 2) / rule.value) * embedding_std;
      break;
  }
  return n;
}

at::Tensor draw_noise(const Noise& noise, uint32_t seed, int64_t samples, int64_t subject_len, int64_t d_model) {
  // ROME: prng = RandomState(1) per traced run; noise_fn(torch.from_numpy(prng(*x[1:, b:e].shape))).
  NumpyRandomState rs(seed);
  size_t count = (size_t)(samples * subject_len * d_model);
  std::vector<double> v = noise.dist == Noise::Gaussian  ? rs.randn(count)
                          : noise.dist == Noise::Uniform ? rs.uniform(-1.0, 1.0, count)
                                                         : rs.standard_t(noise.df, count);
  at::Tensor t = at::empty({samples, subject_len, d_model}, at::kDouble);
  std::copy(v.begin(), v.end(), t.data_ptr<double>());
  return t * noise.scale;
}

double embedding_std(const models::HookedModel& model, const std::vector<std::vector<int64_t>>& seqs) {
  // collect_embedding_std: torch.cat of each subject's embedding output, then .std() (unbiased).
  std::vector<at::Tensor> rows;
  hooks::HookSet hs;
  at::Tensor got;
  hs.add("hook_embed", [&](at::Tensor& x, const hooks::HookContext&) { got = x.detach().clone(); });
  at::NoGradGuard ng;
  for (auto& s : seqs) {
    if (s.empty()) continue;
    models::RunContext ctx;
    ctx.hooks = &hs;
    model.embed(at::tensor(s, at::kLong).unsqueeze(0), ctx);
    rows.push_back(got[0].to(at::kDouble));
  }
  if (rows.empty()) fail("no subject tokens to measure the embedding std from");
  at::Tensor all = at::cat(rows);
  if (all.numel() < 2) fail("too few subject tokens to measure the embedding std from");
  return all.std().item<double>();
}

const at::Tensor& TraceResult::of(Kind k) const {
  for (size_t i = 0; i < kinds.size(); ++i)
    if (kinds[i] == k) return scores[i];
  fail("causal trace: kind '", kind_name(k), "' was not traced");
}

std::pair<int, int> window_range(int layer, int window, int n_layers) {
  // ROME: range(max(0, layer - window // 2), min(num_layers, layer - (-window // 2)))
  int lo = std::max(0, layer - window / 2);
  int hi = std::min(n_layers, layer + (window + 1) / 2);
  return {lo, hi};
}

namespace {

// Adds (or, with replace, writes) the noise into rows [r0, r0 + samples) at the subject tokens.
// x: [batch, pos, d_model]; noise: [samples, subject_len, d_model] float64.
void corrupt(at::Tensor& x, const at::Tensor& noise, int64_t r0, int64_t b, bool replace) {
  at::Tensor y = x.clone();
  at::Tensor seg = y.narrow(0, r0, noise.size(0)).narrow(1, b, noise.size(1));
  at::Tensor nz = noise.to(x.device());
  // torch: x (float) += noise (double) computes in double and rounds once.
  if (replace) seg.copy_(nz);
  else seg.copy_(seg.to(at::kDouble) + nz);
  x = y;
}

// The per-layer states of one run of the clean row + corrupted rows (ROME's low-score run).
struct BaseRun {
  std::vector<at::Tensor> resid;  // n_layers + 1: input to block l ([1 + S, n, d]); last = final output
  std::vector<at::Tensor> mlp_out, attn_out;  // per layer, clean row: [n, d]
  models::KVCache kv;                          // [1 + S, kv_heads, n, d_head] per layer
  at::Tensor last_logits;                      // [1 + S, vocab]
};

BaseRun base_run(const models::HookedModel& model, const at::Tensor& ids, const at::Tensor& noise, int64_t b,
                 bool replace) {
  const int nL = (int)model.config().n_layers;
  BaseRun r;
  r.mlp_out.resize(nL);
  r.attn_out.resize(nL);
  hooks::HookSet hs;
  hs.add("hook_embed", [&](at::Tensor& x, const hooks::HookContext&) { corrupt(x, noise, 1, b, replace); });
  hs.add("blocks.*.hook_mlp_out", [&](at::Tensor& x, const hooks::HookContext& c) { r.mlp_out[c.layer] = x[0].clone(); });
  hs.add("blocks.*.hook_attn_out", [&](at::Tensor& x, const hooks::HookContext& c) { r.attn_out[c.layer] = x[0].clone(); });
  models::RunContext ctx;
  ctx.hooks = &hs;
  ctx.cache = &r.kv;
  at::Tensor x = model.embed(ids, ctx);
  for (int l = 0; l < nL; ++l) {
    r.resid.push_back(x);
    x = model.block(l, x, ctx);
  }
  r.resid.push_back(x);
  models::RunContext plain;
  at::Tensor h = model.final_norm(x.select(1, x.size(1) - 1).unsqueeze(1), plain);
  r.last_logits = model.unembed(h).squeeze(1).to(at::kFloat);
  return r;
}

struct Cell {
  Kind kind;
  int layer;     // the heatmap column
  int start;     // first block to run; n_layers = none
  int lo, hi;    // window kinds: restored layers [lo, hi)
  double* out;
};

// Every cell of token t in one batch: rows c*S .. c*S+S-1 belong to cell c; cells sorted by start so
// the rows running at layer l are a prefix. Positions < t are the corrupted run's (cached keys and
// values), layers below a cell's start too (its resid input there).
void run_cells(const models::HookedModel& model, const BaseRun& base, std::vector<Cell>& cells, int64_t t,
               int64_t S, int64_t answer) {
  const int nL = (int)model.config().n_layers;
  const int64_t n = base.resid[0].size(1), P = n - t, C = (int64_t)cells.size();
  const int64_t d = base.resid[0].size(2);
  std::vector<at::Tensor> mlp_rows(nL), attn_rows(nL);  // rows to restore per layer
  for (int l = 0; l < nL; ++l) {
    std::vector<int64_t> m, a;
    for (int64_t c = 0; c < C; ++c) {
      const Cell& x = cells[c];
      if (x.kind == Kind::All || l < x.lo || l >= x.hi) continue;
      for (int64_t s = 0; s < S; ++s) (x.kind == Kind::Mlp ? m : a).push_back(c * S + s);
    }
    if (!m.empty()) mlp_rows[l] = at::tensor(m, at::kLong);
    if (!a.empty()) attn_rows[l] = at::tensor(a, at::kLong);
  }
  auto restore = [&](const std::vector<at::Tensor>& rows, const std::vector<at::Tensor>& clean) {
    return [&rows, &clean, t](at::Tensor& x, const hooks::HookContext& c) {
      const at::Tensor& r = rows[c.layer];
      if (!r.defined()) return;
      at::Tensor y = x.contiguous();
      y.select(1, 0).index_copy_(0, r.to(y.device()), clean[c.layer][t].unsqueeze(0).expand({r.size(0), y.size(2)}).to(y.scalar_type()));
      x = y;
    };
  };
  hooks::HookSet hs;
  hs.add("blocks.*.hook_mlp_out", restore(mlp_rows, base.mlp_out));
  hs.add("blocks.*.hook_attn_out", restore(attn_rows, base.attn_out));

  at::Tensor resid = at::empty({C * S, P, d}, base.resid[0].options());
  int64_t active = 0;
  for (int l = cells.front().start; l <= nL; ++l) {
    while (active < C && cells[active].start == l) {
      const Cell& c = cells[active];
      at::Tensor rows = resid.narrow(0, active * S, S);
      rows.copy_(base.resid[l].narrow(0, 1, S).narrow(1, t, P));
      if (c.kind == Kind::All) rows.select(1, 0).copy_(base.resid[l][0][t].unsqueeze(0).expand({S, d}));
      ++active;
    }
    if (l == nL || active == 0) continue;
    models::KVCache kv;
    models::RunContext ctx;
    ctx.hooks = &hs;
    if (t > 0) {
      kv.k.resize(nL);
      kv.v.resize(nL);
      kv.k[l] = base.kv.k[l].narrow(0, 1, S).narrow(2, 0, t).repeat({active, 1, 1, 1});
      kv.v[l] = base.kv.v[l].narrow(0, 1, S).narrow(2, 0, t).repeat({active, 1, 1, 1});
      ctx.cache = &kv;
    }
    at::Tensor out = model.block(l, resid.narrow(0, 0, active * S), ctx);
    resid.narrow(0, 0, active * S).copy_(out);
  }
  models::RunContext plain;
  at::Tensor h = model.final_norm(resid.select(1, P - 1).unsqueeze(1), plain);
  at::Tensor p = at::softmax(model.unembed(h).squeeze(1).to(at::kFloat), -1).select(1, answer).view({C, S}).mean(1);
  at::Tensor pc = p.to(at::kDouble).cpu().contiguous();
  for (int64_t c = 0; c < C; ++c) *cells[c].out = pc.data_ptr<double>()[c];
}

// ROME's trace_with_patch for one cell: a full forward of the clean row + S corrupted rows.
double naive_cell(const models::HookedModel& model, const at::Tensor& ids, const at::Tensor& noise, int64_t b,
                  bool replace, Kind kind, int layer, int64_t t, int window, int64_t answer) {
  const int nL = (int)model.config().n_layers;
  hooks::HookSet hs;
  hs.add("hook_embed", [&](at::Tensor& x, const hooks::HookContext&) { corrupt(x, noise, 1, b, replace); });
  auto restore = [t](at::Tensor& h, const hooks::HookContext&) {
    at::Tensor y = h.contiguous();
    y.narrow(0, 1, y.size(0) - 1).select(1, t).copy_(y[0][t].clone().unsqueeze(0).expand({y.size(0) - 1, y.size(2)}));
    h = y;
  };
  if (kind == Kind::All) {
    hs.add(cat("blocks.", layer, ".hook_resid_post"), restore);
  } else {
    auto [lo, hi] = window_range(layer, window, nL);
    for (int l = lo; l < hi; ++l)
      hs.add(cat("blocks.", l, kind == Kind::Mlp ? ".hook_mlp_out" : ".hook_attn_out"), restore);
  }
  models::RunContext ctx;
  ctx.hooks = &hs;
  at::Tensor logits = model.forward(ids, ctx);  // [1 + S, n, vocab], as HF computes it
  at::Tensor probs = at::softmax(logits.select(1, logits.size(1) - 1).narrow(0, 1, ids.size(0) - 1).to(at::kFloat), -1);
  return probs.select(1, answer).mean().item<double>();
}

}  // namespace

TraceResult trace(const models::HookedModel& model, const TraceInput& in, const TraceOptions& opt) {
  const auto& cfg = model.config();
  const int nL = (int)cfg.n_layers;
  const int64_t n = (int64_t)in.ids.size(), S = opt.samples;
  if (n == 0) fail("causal trace: the prompt has no tokens");
  if (S < 1) fail("--samples must be >= 1, got ", S);
  if (opt.window < 1) fail("--window must be >= 1, got ", opt.window);
  if (in.subject_begin < 0 || in.subject_end > n || in.subject_begin >= in.subject_end)
    fail("subject token range [", in.subject_begin, ", ", in.subject_end, ") is not a non-empty range inside the prompt's ",
         n, " tokens");
  for (int64_t id : in.ids)
    if (id < 0 || id >= cfg.d_vocab) fail("token id ", id, " is outside the vocabulary (0 .. ", cfg.d_vocab - 1, ")");
  if (in.answer && (*in.answer < 0 || *in.answer >= cfg.d_vocab))
    fail("answer token id ", *in.answer, " is outside the vocabulary (0 .. ", cfg.d_vocab - 1, ")");

  at::NoGradGuard ng;
  const int64_t b = in.subject_begin, e = in.subject_end;
  at::Tensor ids = at::tensor(in.ids, at::kLong).unsqueeze(0).expand({S + 1, n}).contiguous();
  at::Tensor noise = draw_noise(opt.noise, opt.seed, S, e - b, cfg.d_model);

  BaseRun base = base_run(model, ids, noise, b, opt.noise.replace);
  TraceResult r;
  r.clean_probs = at::softmax(base.last_logits[0], -1).to(at::kDouble);
  r.answer_id = in.answer ? *in.answer : r.clean_probs.argmax().item<int64_t>();
  r.high_score = r.clean_probs[r.answer_id].item<double>();
  r.low_score = at::softmax(base.last_logits.narrow(0, 1, S), -1).select(1, r.answer_id).mean().item<double>();
  r.kinds = opt.kinds;
  for (size_t k = 0; k < opt.kinds.size(); ++k) r.scores.push_back(at::zeros({n, nL}, at::kDouble));

  // The fast path needs causal attention: with it, nothing before token t sees the restored state.
  bool naive = opt.naive || !cfg.causal;
  if (naive) {
    for (size_t k = 0; k < opt.kinds.size(); ++k) {
      double* out = r.scores[k].data_ptr<double>();
      for (int64_t t = 0; t < n; ++t)
        for (int l = 0; l < nL; ++l)
          out[t * nL + l] = naive_cell(model, ids, noise, b, opt.noise.replace, opt.kinds[k], l, t, opt.window, r.answer_id);
    }
    return r;
  }

  for (int64_t t = 0; t < n; ++t) {
    std::vector<Cell> cells;
    for (size_t k = 0; k < opt.kinds.size(); ++k) {
      double* out = r.scores[k].data_ptr<double>() + t * nL;
      for (int l = 0; l < nL; ++l) {
        Cell c{opt.kinds[k], l, 0, 0, 0, out + l};
        if (c.kind == Kind::All) c.start = l + 1;
        else std::tie(c.lo, c.hi) = window_range(l, opt.window, nL), c.start = c.lo;
        cells.push_back(c);
      }
    }
    if (t < b) {
      // Before the subject every row equals the clean one, so restoring changes nothing.
      for (auto& c : cells) *c.out = r.low_score;
      continue;
    }
    std::stable_sort(cells.begin(), cells.end(), [](const Cell& x, const Cell& y) { return x.start < y.start; });
    int64_t per = std::max<int64_t>(1, opt.max_batch_tokens / (S * (n - t)));
    for (size_t i = 0; i < cells.size(); i += per) {
      std::vector<Cell> chunk(cells.begin() + i, cells.begin() + std::min(cells.size(), i + (size_t)per));
      run_cells(model, base, chunk, t, S, r.answer_id);
    }
  }
  return r;
}

// ---- average indirect effect (ROME's average_causal_effects notebook) ----

const char* const kCategoryNames[6] = {"First subject token",    "Middle subject tokens", "Last subject token",
                                       "First subsequent token", "Further tokens",        "Last token"};

CategoryRows categories(int64_t n, int64_t b, int64_t e) {
  // first_e, first_a = subject_range; last_e = first_a - 1; last_a = len(scores) - 1.
  CategoryRows c;
  int64_t last_e = e - 1, first_a = e, last_a = n - 1;
  c.rows[0] = {b};
  for (int64_t i = b + 1; i < last_e; ++i) c.rows[1].push_back(i);
  c.rows[2] = {last_e};
  if (first_a < n) c.rows[3] = {first_a};  // a subject ending the prompt has no subsequent token
  for (int64_t i = first_a + 1; i < last_a; ++i) c.rows[4].push_back(i);
  c.rows[5] = {last_a};
  return c;
}

void AieAccumulator::add(const at::Tensor& scores, int64_t b, int64_t e, double lo, double hi) {
  at::Tensor s = scores.to(at::kDouble).cpu();
  CategoryRows c = categories(s.size(0), b, e);
  for (int k = 0; k < 6; ++k)
    for (int64_t row : c.rows[k]) {
      data[k].push_back(s[row].clone());
      data_low[k].push_back(lo);
    }
  low.push_back(lo);
  high.push_back(hi);
}

static at::Tensor per_category(const AieAccumulator& a, bool want_std, bool effects) {
  int64_t L = 0;
  for (int k = 0; k < 6 && !L; ++k)
    if (!a.data[k].empty()) L = a.data[k][0].size(0);
  at::Tensor out = at::full({6, L}, std::numeric_limits<double>::quiet_NaN(), at::kDouble);
  for (int k = 0; k < 6; ++k) {
    if (a.data[k].empty()) continue;
    at::Tensor m = at::stack(a.data[k]);
    if (effects) m = m - at::tensor(a.data_low[k], at::kDouble).unsqueeze(1);
    out[k] = want_std ? m.std(0, /*unbiased=*/false) : m.mean(0);
  }
  return out;
}

at::Tensor AieAccumulator::mean() const { return per_category(*this, false, false); }
at::Tensor AieAccumulator::std() const { return per_category(*this, true, false); }
at::Tensor AieAccumulator::effect_std() const { return per_category(*this, true, true); }
at::Tensor AieAccumulator::aie() const { return mean() - mean_low(); }

double AieAccumulator::mean_low() const {
  double s = 0;
  for (double x : low) s += x;
  return low.empty() ? std::numeric_limits<double>::quiet_NaN() : s / low.size();
}

double AieAccumulator::mean_high() const {
  double s = 0;
  for (double x : high) s += x;
  return high.empty() ? std::numeric_limits<double>::quiet_NaN() : s / high.size();
}

}  // namespace mechscope::analysis::causal_trace
