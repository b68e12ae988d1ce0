#include "analysis/causal_trace/causal_trace.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "analysis/packed/packed.h"
#include "core/error.h"
#include "core/text.h"
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
  for (const std::string& item : list_items(list, ", ")) {
    Kind k;
    try {
      k = parse_kind(item);
    } catch (const Error& e) {
      fail(flag, ": ", e.raw());
    }
    if (std::find(out.begin(), out.end(), k) == out.end()) out.push_back(k);
  }
  if (out.empty()) fail(flag, ": no kind given (expected a list of all, mlp, attn)");
  return out;
}

static double parse_number(const std::string& s, const std::string& flag, const std::string& whole) {
  try {
    size_t used = 0;
    double v = std::stod(s, &used);
    if (used == s.size() && std::isfinite(v)) return v;
  } catch (const std::exception&) {}
  fail(flag,
       ": expected s<k> (k × embedding std), a number or a=<level> (absolute), u<x> (uniform) or t<d> "
       "(Student-t), got '",
       whole, "'");
}

NoiseRule parse_noise(const std::string& s, const std::string& flag, bool bare_number_is_std) {
  NoiseRule r;
  r.text = s;
  if (s.empty()) fail(flag, ": empty noise rule");
  char c = s[0];
  std::string rest = s.substr(1);
  if (c == 'a') {
    r.type = NoiseRule::Absolute;
    r.value = parse_number(!rest.empty() && rest[0] == '=' ? rest.substr(1) : rest, flag, s);
  } else if (c == 's') {
    r.type = NoiseRule::StdMultiple;
    r.value = rest.empty() ? 1.0 : parse_number(rest, flag, s);
  } else if (c == 'u') {
    r.type = NoiseRule::Uniform;
    r.value = parse_number(rest, flag, s);
  } else if (c == 't') {
    r.type = NoiseRule::StudentT;
    r.value = parse_number(rest, flag, s);
    if (r.value <= 2)
      fail(flag, ": Student-t noise needs more than 2 degrees of freedom (finite variance), got '", s, "'");
  } else {
    r.type = bare_number_is_std ? NoiseRule::StdMultiple : NoiseRule::Absolute;
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
  // Beyond this the noisy embeddings' squares overflow float32 in the first norm (d_model x 1e30).
  if (!(n.scale <= 1e15))
    fail("noise rule '", rule.text, "' gives a noise scale of ", n.scale,
         ", too large for float32 activations (at most 1e15)");
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
    model.embed(at::tensor(s, at::kLong).unsqueeze(0).to(model.device()), ctx);
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
  std::vector<at::Tensor> resid;              // n_layers + 1: input to block l ([1 + S, n, d]); last = final output
  std::vector<at::Tensor> mlp_out, attn_out;  // per layer, clean row: [n, d]
  models::KVCache kv;                         // [1 + S, kv_heads, n, d_head] per layer
  at::Tensor last_logits;                     // [1 + S, vocab]
};

BaseRun base_run(const models::HookedModel& model, const at::Tensor& ids, const at::Tensor& noise, int64_t b,
                 bool replace) {
  const int nL = (int)model.config().n_layers;
  BaseRun r;
  r.mlp_out.resize(nL);
  r.attn_out.resize(nL);
  hooks::HookSet hs;
  hs.add("hook_embed", [&](at::Tensor& x, const hooks::HookContext&) { corrupt(x, noise, 1, b, replace); });
  hs.add("blocks.*.hook_mlp_out",
         [&](at::Tensor& x, const hooks::HookContext& c) { r.mlp_out[c.layer] = x[0].clone(); });
  hs.add("blocks.*.hook_attn_out",
         [&](at::Tensor& x, const hooks::HookContext& c) { r.attn_out[c.layer] = x[0].clone(); });
  models::RunContext ctx;
  ctx.hooks = &hs;
  ctx.cache = &r.kv;
  at::Tensor x = model.embed(ids, ctx);
  for (int l = 0; l < nL; ++l) {
    r.resid.push_back(x);
    x = model.block(l, x, ctx);
  }
  r.resid.push_back(x);
  r.last_logits = packed::logits(model, x.select(1, x.size(1) - 1)).to(at::kFloat);
  return r;
}

// One cell of the fast path: `samples` packed runs (one per noise sample) over positions t .. n-1.
// A run joins the batch at block `join` with its rows taken from the corrupted run's residual stream
// there (with token t's row set to the clean one for kind all), or, when it shares its first restored
// layers with another cell of its kind and token (window cells clipped at layer 0 all restore [0, hi)
// for different hi), from that cell's rows at the block where the two part: they are the same run up
// to it.
struct Cell {
  Kind kind;
  int64_t t;        // the restored token
  int join;         // the first block this cell runs
  int lo, hi;       // window kinds: restored layers [lo, hi), those at or after `join` are done here
  int parent = -1;  // index of the cell whose rows it starts from (-1: the corrupted run)
  double* out;
};

// Runs cells sorted by join (parents before children), of any tokens, through the packed engine: a
// cell is S runs (one per noise sample) over positions t .. n-1 attending to their corrupted run;
// writes each cell's score.
void run_cells(const models::HookedModel& model, const BaseRun& base, const std::vector<Cell>& cells, int64_t S,
               int64_t answer, bool use_packed) {
  const int nL = (int)model.config().n_layers;
  const int64_t n = base.resid[0].size(1), C = (int64_t)cells.size();
  std::vector<packed::Run> runs;
  for (const Cell& cell : cells)
    for (int64_t s = 0; s < S; ++s) {
      packed::Run r;
      r.start = cell.t;
      r.join = cell.join;
      r.base = 1 + s;
      if (cell.parent >= 0) r.parent = (int)(cell.parent * S + s);
      if (cell.kind == Kind::All) r.clean_at = cell.t;  // the restored hidden state is the clean run's
      runs.push_back(r);
    }
  // Restored rows (token t of each run) per sublayer, with the clean values at their tokens. In the
  // last block only the last position matters, so a restore at an earlier token there is left out.
  auto edits = [&](int l, size_t active, const packed::Layout& layout, hooks::HookSet& hs) {
    bool last = l == nL - 1;
    std::vector<int64_t> mlp_rows, mlp_t, attn_rows, attn_t;
    for (int64_t c = 0; c * S < (int64_t)active; ++c) {
      const Cell& cell = cells[c];
      if (cell.kind == Kind::All || l < cell.lo || l >= cell.hi || (last && cell.t < n - 1)) continue;
      for (int64_t s = 0; s < S; ++s) {
        (cell.kind == Kind::Mlp ? mlp_rows : attn_rows).push_back(layout.row(c * S + s, cell.t));
        (cell.kind == Kind::Mlp ? mlp_t : attn_t).push_back(cell.t);
      }
    }
    // Built on the host, sent to the clean values' device (the model's) once per block.
    auto L = [](const std::vector<int64_t>& v, const at::Tensor& like) {
      return at::tensor(v, at::kLong).to(like.device());
    };
    auto restore = [&L](const std::vector<int64_t>& which, const std::vector<int64_t>& tokens,
                        const at::Tensor& clean) {
      return [idx = L(which, clean), values = clean.index_select(0, L(tokens, clean))](
                 at::Tensor& h, const hooks::HookContext&) { h = h.index_copy(0, idx, values.to(h.scalar_type())); };
    };
    if (!mlp_rows.empty()) hs.add(cat("blocks.", l, ".hook_mlp_out"), restore(mlp_rows, mlp_t, base.mlp_out[l]));
    if (!attn_rows.empty()) hs.add(cat("blocks.", l, ".hook_attn_out"), restore(attn_rows, attn_t, base.attn_out[l]));
  };
  packed::Bases bases{std::vector<at::Tensor>(base.resid.begin(), base.resid.begin() + nL), base.kv};
  at::Tensor x = packed::run(model, bases, runs, edits, use_packed);  // [C * S, d] at the last position
  at::Tensor p = at::softmax(packed::logits(model, x).to(at::kFloat), -1).select(1, answer).view({C, S}).mean(1);
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

// Every cell of every token through run_cells, cells of many tokens packed together.
void trace_fast(const models::HookedModel& model, const BaseRun& base, TraceResult& r, const TraceOptions& opt,
                int64_t b, int64_t n) {
  const auto& cfg = model.config();
  const int nL = (int)cfg.n_layers;
  const int64_t S = opt.samples;
  // Units: a cell of kind all, or the window cells of one kind and token that restore from the same
  // first layer (the one restoring the most layers first; the others start from its rows where they
  // part). Restores at the last token in the last block need hooks there, so those units go apart.
  std::vector<std::vector<Cell>> units, last_token_units;
  std::vector<std::pair<double*, const double*>> same;  // cells whose window equals their unit's first
  int64_t direct = 0;                                   // cells whose score needs no run (progress)
  for (int64_t t = 0; t < n; ++t)
    for (size_t k = 0; k < opt.kinds.size(); ++k) {
      double* out = r.scores[k].data_ptr<double>() + t * nL;
      Kind kind = opt.kinds[k];
      if (t < b) {  // before the subject every row equals the clean one: restoring changes nothing
        for (int l = 0; l < nL; ++l) out[l] = r.low_score;
        direct += nL;
        continue;
      }
      auto& to = t == n - 1 ? last_token_units : units;
      if (kind == Kind::All) {
        for (int l = 0; l < nL - 1; ++l) to.push_back({Cell{kind, t, l + 1, 0, 0, -1, out + l}});
        // Restoring the last block's output: the last position is the clean one or the corrupted one.
        out[nL - 1] = t == n - 1 ? r.high_score : r.low_score;
        ++direct;
        continue;
      }
      std::map<int, std::vector<Cell>> by_lo;
      for (int l = 0; l < nL; ++l) {
        auto [lo, hi] = window_range(l, opt.window, nL);
        by_lo[lo].push_back(Cell{kind, t, lo, lo, hi, -1, out + l});
      }
      for (auto& [lo, group] : by_lo) {
        std::stable_sort(group.begin(), group.end(), [](const Cell& x, const Cell& y) { return x.hi > y.hi; });
        std::vector<Cell> unit{group[0]};
        for (size_t i = 1; i < group.size(); ++i) {
          Cell c = group[i];
          if (c.hi == group[0].hi) {
            same.emplace_back(c.out, group[0].out);
            ++direct;
            continue;
          }
          c.join = c.hi;
          c.parent = 0;
          unit.push_back(c);
        }
        to.push_back(unit);
      }
    }
  // Batches of whole units within the shared packed budget; in a batch, cells sorted by join with
  // parents re-indexed.
  const packed::Budget budget = packed::budget(cfg, n, opt.max_batch_tokens);
  for (auto* list : {&units, &last_token_units}) {
    std::vector<int64_t> unit_rows, unit_runs;
    for (auto& unit : *list) {
      int64_t rows = 0;
      for (const Cell& c : unit) rows += S * (n - c.t);
      unit_rows.push_back(rows);
      unit_runs.push_back((int64_t)unit.size() * S);
    }
    for (auto [begin, end] : packed::chunk(unit_rows, unit_runs, budget)) {
      std::vector<Cell> chunk;
      for (size_t u = begin; u < end; ++u) {
        int64_t first = (int64_t)chunk.size();
        for (Cell c : (*list)[u]) {
          if (c.parent >= 0) c.parent += (int)first;
          chunk.push_back(c);
        }
      }
      std::vector<size_t> order(chunk.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return chunk[x].join < chunk[y].join; });
      std::vector<int> where(chunk.size());
      for (size_t i = 0; i < order.size(); ++i) where[order[i]] = (int)i;
      std::vector<Cell> sorted;
      for (size_t i : order) {
        Cell c = chunk[i];
        if (c.parent >= 0) c.parent = where[c.parent];
        sorted.push_back(c);
      }
      run_cells(model, base, sorted, S, r.answer_id, opt.use_packed);
      if (opt.on_cells) opt.on_cells((int64_t)sorted.size());
    }
  }
  for (auto& [dst, src] : same) *dst = *src;
  if (opt.on_cells) opt.on_cells(direct);
}

}  // namespace

void check_traceable(const models::HookedModel& model) {
  const auto& cfg = model.config();
  if (!cfg.causal)
    fail("causal tracing scores the next token a causal language model predicts after the prompt; '", cfg.model_type,
         "' is a bidirectional encoder, which predicts no next token (use patch or ablate for encoders)");
  if (!model.has_lm_head())
    fail("causal tracing needs the model's output head (next-token logits); this '", cfg.model_type,
         "' checkpoint has none");
}

TraceResult trace(const models::HookedModel& model, const TraceInput& in, const TraceOptions& opt) {
  check_traceable(model);
  const auto& cfg = model.config();
  const int nL = (int)cfg.n_layers;
  const int64_t n = (int64_t)in.ids.size(), S = opt.samples;
  if (n == 0) fail("causal trace: the prompt has no tokens");
  if (S < 1) fail(option("samples"), " must be >= 1, got ", S);
  if (opt.window < 1) fail(option("window"), " must be >= 1, got ", opt.window);
  if (in.subject_begin < 0 || in.subject_end > n || in.subject_begin >= in.subject_end)
    fail("subject token range [", in.subject_begin, ", ", in.subject_end,
         ") is not a non-empty range inside the prompt's ", n, " tokens");
  for (int64_t id : in.ids)
    if (id < 0 || id >= cfg.d_vocab) fail("token id ", id, " is outside the vocabulary (0 .. ", cfg.d_vocab - 1, ")");
  if (in.answer && (*in.answer < 0 || *in.answer >= cfg.d_vocab))
    fail("answer token id ", *in.answer, " is outside the vocabulary (0 .. ", cfg.d_vocab - 1, ")");

  at::NoGradGuard ng;
  const int64_t b = in.subject_begin, e = in.subject_end;
  at::Tensor ids = at::tensor(in.ids, at::kLong).unsqueeze(0).expand({S + 1, n}).contiguous().to(model.device());
  // Drawn on the host by numpy's generator (ROME's numbers exactly), sent to the model's device once.
  at::Tensor noise = draw_noise(opt.noise, opt.seed, S, e - b, cfg.d_model).to(model.device());

  BaseRun base = base_run(model, ids, noise, b, opt.noise.replace);
  TraceResult r;
  r.clean_probs = at::softmax(base.last_logits[0], -1).to(at::kDouble).cpu();
  r.answer_id = in.answer ? *in.answer : r.clean_probs.argmax().item<int64_t>();
  r.high_score = r.clean_probs[r.answer_id].item<double>();
  r.low_score = at::softmax(base.last_logits.narrow(0, 1, S), -1).select(1, r.answer_id).mean().item<double>();
  r.kinds = opt.kinds;
  if (opt.accept && !opt.accept(r.answer_id)) {  // ROME checks the prediction before tracing
    r.rejected = true;
    return r;
  }
  for (size_t k = 0; k < opt.kinds.size(); ++k) r.scores.push_back(at::zeros({n, nL}, at::kDouble));

  // The fast path needs causal attention: nothing before token t sees the restored state.
  if (!opt.naive && cfg.causal) {
    trace_fast(model, base, r, opt, b, n);
    r.method = "fast";
    return r;
  }
  r.method = "naive";
  for (size_t k = 0; k < opt.kinds.size(); ++k) {
    double* out = r.scores[k].data_ptr<double>();
    for (int64_t t = 0; t < n; ++t)
      for (int l = 0; l < nL; ++l) {
        out[t * nL + l] =
            naive_cell(model, ids, noise, b, opt.noise.replace, opt.kinds[k], l, t, opt.window, r.answer_id);
        if (opt.on_cells) opt.on_cells(1);
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
