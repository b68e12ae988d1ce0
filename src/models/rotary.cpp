#include "models/rotary.h"

#include <cmath>

#include "core/error.h"

namespace mechscope::models {

namespace {

const nlohmann::json* member(const nlohmann::json* obj, const char* key) {
  if (!obj || !obj->is_object()) return nullptr;
  auto it = obj->find(key);
  if (it == obj->end() || it->is_null()) return nullptr;
  return &*it;
}

double number(const ModelConfig& cfg, const char* where, const nlohmann::json* v) {
  if (!v->is_number()) fail("config.json (", cfg.model_type, "): '", where, "' must be a number, got ", v->dump());
  return v->get<double>();
}

// The first of the (object, key) places that has the key, as a number; def when none has it.
double first_number(const ModelConfig& cfg, std::initializer_list<std::pair<const nlohmann::json*, const char*>> places,
                    double def) {
  for (auto [obj, key] : places)
    if (const nlohmann::json* v = member(obj, key)) return number(cfg, key, v);
  return def;
}

}  // namespace

RopeConfig parse_rope(const ModelConfig& cfg, int64_t d_head, double default_partial) {
  const nlohmann::json* raw = &cfg.raw;
  const nlohmann::json* params = member(raw, "rope_parameters");
  if (params && !params->is_object())
    fail("config.json (", cfg.model_type, "): 'rope_parameters' must be an object, got ", params->dump());
  RopeConfig r;
  r.theta = first_number(cfg, {{params, "rope_theta"}, {raw, "rope_theta"}, {raw, "rotary_emb_base"}}, 10000.0);
  if (!(r.theta > 0) || !std::isfinite(r.theta))
    fail("config.json (", cfg.model_type,
         "): the rotary base (rope_theta / rotary_emb_base) must be a positive finite number, got ", r.theta);
  double partial = first_number(
      cfg, {{params, "partial_rotary_factor"}, {raw, "partial_rotary_factor"}, {raw, "rotary_pct"}}, default_partial);
  if (!(partial > 0 && partial <= 1))
    fail("config.json (", cfg.model_type,
         "): the rotary fraction of each head (partial_rotary_factor / rotary_pct) must be in (0, 1], got ", partial);
  // Truncation, as transformers does (int(head_dim * partial_rotary_factor)); an odd count rotates one
  // feature more (see RopeConfig), and a count of 0 rotates nothing, as there.
  r.dim = (int64_t)(d_head * partial);
  if (r.rotated() > d_head)
    fail("config.json (", cfg.model_type, "): rotary covers int(", d_head, " * ", partial, ") = ", r.dim,
         " features, which rotate in pairs: ", r.rotated(), " features of a ", d_head, "-feature head");

  // Scaling lives in rope_parameters (transformers >= 5) or in rope_scaling (older files).
  const nlohmann::json* scaling = params;
  if (!member(params, "rope_type") && !member(params, "type")) {
    const nlohmann::json* old = member(raw, "rope_scaling");
    if (old && !old->is_object())
      fail("config.json (", cfg.model_type, "): 'rope_scaling' must be an object or null, got ", old->dump());
    if (old) scaling = old;
  }
  const nlohmann::json* type = member(scaling, "rope_type");
  if (!type) type = member(scaling, "type");
  if (type) {
    if (!type->is_string())
      fail("config.json (", cfg.model_type, "): 'rope_type' must be a string, got ", type->dump());
    r.type = type->get<std::string>();
  }
  if (r.type == "default") return r;
  if (r.type != "linear" && r.type != "llama3")
    fail("config.json (", cfg.model_type, "): rope_type '", r.type,
         "' is not supported (supported: default, linear, llama3)");
  const nlohmann::json* f = member(scaling, "factor");
  if (!f) fail("config.json (", cfg.model_type, "): rope_type '", r.type, "' needs a 'factor'");
  r.factor = number(cfg, "factor", f);
  if (!(r.factor > 0))
    fail("config.json (", cfg.model_type, "): rope scaling 'factor' must be positive, got ", r.factor);
  if (r.type == "llama3") {
    for (auto [key, field] :
         {std::pair{"low_freq_factor", &r.low_freq_factor}, std::pair{"high_freq_factor", &r.high_freq_factor}}) {
      const nlohmann::json* v = member(scaling, key);
      if (!v) fail("config.json (", cfg.model_type, "): rope_type 'llama3' needs '", key, "'");
      *field = number(cfg, key, v);
    }
    const nlohmann::json* omp = member(scaling, "original_max_position_embeddings");
    if (!omp || !omp->is_number())
      fail("config.json (", cfg.model_type, "): rope_type 'llama3' needs 'original_max_position_embeddings'");
    r.original_max_position_embeddings = omp->get<int64_t>();
    if (r.high_freq_factor <= r.low_freq_factor)
      fail("config.json (", cfg.model_type, "): llama3 rope needs high_freq_factor > low_freq_factor");
  }
  return r;
}

// In float64 (transformers keeps these in float32; against its float64 references the float64 angles
// agree better, and the difference is below float32 resolution for positions < 2^14).
at::Tensor rope_inv_freq(const RopeConfig& rope) {
  at::Tensor inv = 1.0 / at::pow(rope.theta, at::arange(0, rope.dim, 2, at::kDouble) / (double)rope.dim);
  if (rope.type == "linear") return inv / rope.factor;
  if (rope.type != "llama3") return inv;
  // Llama 3.1 (transformers' _compute_llama3_parameters): wavelengths longer than the original
  // context / low_freq_factor are stretched by `factor`, shorter than context / high_freq_factor kept,
  // and the band between interpolated smoothly.
  double ctx = (double)rope.original_max_position_embeddings;
  double low_wavelen = ctx / rope.low_freq_factor, high_wavelen = ctx / rope.high_freq_factor;
  at::Tensor wavelen = 2 * M_PI / inv;
  at::Tensor scaled = at::where(wavelen > low_wavelen, inv / rope.factor, inv);
  at::Tensor smooth = (ctx / wavelen - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor);
  at::Tensor smoothed = (1 - smooth) * scaled / rope.factor + smooth * scaled;
  at::Tensor medium = (wavelen >= high_wavelen).logical_and(wavelen <= low_wavelen);
  return at::where(medium, smoothed, scaled);
}

RopeAngles rope_angles(const at::Tensor& inv_freq, const at::Tensor& pos, at::ScalarType dtype) {
  at::Tensor freqs = pos.to(at::kDouble).unsqueeze(-1) * inv_freq;  // [b, n, dim/2]
  at::Tensor emb = at::cat({freqs, freqs}, -1).unsqueeze(2);        // [b, n, 1, dim]
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

at::Tensor apply_rope(const at::Tensor& x, const RopeAngles& a) {
  int64_t dim = a.cos.size(-1), dh = x.size(-1);
  if (dim == 0) return x;
  at::Tensor r = dim == dh ? x : x.narrow(-1, 0, dim);
  at::Tensor rotated = at::cat({-r.narrow(-1, dim / 2, dim / 2), r.narrow(-1, 0, dim / 2)}, -1);
  at::Tensor out = r * a.cos + rotated * a.sin;
  return dim == dh ? out : at::cat({out, x.narrow(-1, dim, dh - dim)}, -1);
}

void apply_rope_rows(at::Tensor& q, at::Tensor& k, const at::Tensor& inv_freq, const at::Tensor& positions) {
  // The rows as one sequence: angles [1, R, 1, dim].
  RopeAngles rope = rope_angles(inv_freq, positions.unsqueeze(0), q.scalar_type());
  q = apply_rope(q.unsqueeze(0), rope)[0];
  k = apply_rope(k.unsqueeze(0), rope)[0];
}

}  // namespace mechscope::models
