// Loading and the forward maths, following SAELens (sae_lens/saes/{sae,standard_sae,jumprelu_sae,
// topk_sae}.py and loading/pretrained_sae_loaders.py for the config defaults of older versions).
#include "sae/sae.h"

#include <cmath>
#include <regex>

#include "core/error.h"
#include "core/fs.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "sae/npz.h"

namespace mechscope::sae {

namespace {

const nlohmann::json* field(const nlohmann::json& j, const std::string& key) {
  if (j.contains(key) && !j[key].is_null()) return &j[key];
  // SAELens 6 moved the provenance fields into "metadata" (written) / "meta" (in memory).
  for (const char* sub : {"metadata", "meta"})
    if (j.contains(sub) && j[sub].is_object() && j[sub].contains(key) && !j[sub][key].is_null()) return &j[sub][key];
  return nullptr;
}

int64_t int_field(const nlohmann::json& j, const std::string& key, const std::string& what) {
  const nlohmann::json* v = field(j, key);
  if (!v) fail(what, ": missing '", key, "'");
  if (!v->is_number_integer() || v->get<int64_t>() <= 0)
    fail(what, ": '", key, "' must be a positive integer, got ", v->dump());
  return v->get<int64_t>();
}

std::string str_field(const nlohmann::json& j, const std::string& key) {
  const nlohmann::json* v = field(j, key);
  return v && v->is_string() ? v->get<std::string>() : "";
}

int layer_of(const std::string& hook) {
  std::smatch m;
  static const std::regex re("^blocks\\.(\\d+)\\.");
  return std::regex_search(hook, m, re) ? std::stoi(m[1]) : -1;
}

void check_shape(const at::Tensor& t, std::vector<int64_t> want, const std::string& name, const std::string& what) {
  if (t.sizes().vec() != want) {
    std::string w = "[";
    for (size_t i = 0; i < want.size(); ++i) w += (i ? ", " : "") + std::to_string(want[i]);
    fail(what, ": '", name, "' has shape ", t.sizes(), " but d_in/d_sae give ", w, "]");
  }
}

// Checks shapes, folds what SAELens applies separately into plain weights, and converts the dtype.
void finish(SAE& s, std::map<std::string, at::Tensor> w, const std::string& what, at::ScalarType dtype) {
  for (const char* need : {"W_enc", "b_enc", "W_dec", "b_dec"})
    if (!w.count(need)) fail(what, ": weight '", need, "' is missing");
  int64_t di = s.cfg.d_in, ds = s.cfg.d_sae;
  check_shape(w["W_enc"], {di, ds}, "W_enc", what);
  check_shape(w["b_enc"], {ds}, "b_enc", what);
  check_shape(w["W_dec"], {ds, di}, "W_dec", what);
  check_shape(w["b_dec"], {di}, "b_dec", what);
  s.W_enc = w["W_enc"].to(dtype).contiguous();
  s.b_enc = w["b_enc"].to(dtype).contiguous();
  s.W_dec = w["W_dec"].to(dtype).contiguous();
  s.b_dec = w["b_dec"].to(dtype).contiguous();
  if (s.cfg.architecture == Architecture::JumpReLU) {
    at::Tensor th;
    if (w.count("threshold")) th = w["threshold"];
    else if (w.count("log_threshold")) th = w["log_threshold"].to(at::kDouble).exp();
    else fail(what, ": a jumprelu SAE needs 'threshold' (or 'log_threshold')");
    check_shape(th, {ds}, "threshold", what);
    s.threshold = th.to(dtype).contiguous();
  }
  // SAELens multiplies the feature activations by finetuning_scaling_factor just before W_dec;
  // folding it into W_dec's rows gives the same reconstruction.
  for (const char* sf : {"finetuning_scaling_factor", "scaling_factor"})
    if (w.count(sf)) {
      check_shape(w[sf], {ds}, sf, what);
      s.W_dec = (s.W_dec * w[sf].to(dtype).unsqueeze(1)).contiguous();
    }
}

std::map<std::string, at::Tensor> read_safetensors_all(const std::string& path) {
  auto f = io::SafetensorsFile::open(path);
  std::map<std::string, at::Tensor> out;
  for (auto& [name, info] : f->tensors()) out[name] = f->get(name).clone();
  return out;
}

// Gemma Scope paths name the site in the repo and the layer in the folder, as SAELens's
// get_gemma_2_config_from_hf reads them: google/gemma-scope-2b-pt-res/layer_20/width_16k/...; a -res
// repo's "embedding" folder is the SAE of hook_embed. The repo is the path component naming
// gemma-scope (a plain folder or the HF cache's models--google--gemma-scope-...), the folder what follows.
struct GemmaScopePath {
  std::string hook;
  bool embedding = false;
};

GemmaScopePath gemma_scope_path(const std::string& path) {
  size_t g = path.find("gemma-scope");
  if (g == std::string::npos) return {};
  size_t repo_begin = path.rfind('/', g), repo_end = path.find('/', g);
  repo_begin = repo_begin == std::string::npos ? 0 : repo_begin + 1;
  if (repo_end == std::string::npos) return {};
  std::string repo = path.substr(repo_begin, repo_end - repo_begin), folder = path.substr(repo_end + 1);
  std::smatch m;
  static const std::regex layer_re("layer_(\\d+)");
  bool has_layer = std::regex_search(folder, m, layer_re);
  std::string L = has_layer ? std::string(m[1]) : "";
  if (repo.find("res") != std::string::npos) {
    if (folder.find("embedding") != std::string::npos) return {"hook_embed", true};
    return {has_layer ? "blocks." + L + ".hook_resid_post" : ""};
  }
  if (!has_layer) return {};
  if (repo.find("mlp") != std::string::npos) return {"blocks." + L + ".hook_mlp_out"};
  if (repo.find("att") != std::string::npos) return {"blocks." + L + ".attn.hook_z"};
  return {};
}

SAE load_npz(const std::string& file, const LoadOptions& opts) {
  auto arrays = read_npz(file);
  std::map<std::string, at::Tensor> w;
  for (auto& [k, t] : arrays) w[k.rfind("w_", 0) == 0 ? "W_" + k.substr(2) : k] = t;
  if (!w.count("W_enc") || w["W_enc"].dim() != 2)
    fail(file, ": no 2-D 'W_enc' array (a Gemma Scope params.npz has W_enc, W_dec, b_enc, b_dec, threshold)");
  SAE s;
  s.source = file;
  // Gemma Scope's config as SAELens's gemma_2 loader sets it.
  s.cfg.architecture = Architecture::JumpReLU;
  s.cfg.d_in = w["W_enc"].size(0);
  s.cfg.d_sae = w["W_enc"].size(1);
  s.cfg.apply_b_dec_to_input = false;
  GemmaScopePath gs = gemma_scope_path(file);
  s.cfg.hook_name = !opts.hook_name.empty() ? opts.hook_name : gs.hook;
  if (s.cfg.hook_name.empty())
    fail(file,
         ": a params.npz carries no hook name and its path names none (Gemma Scope's layer_N or embedding "
         "under a gemma-scope-*-res/-mlp/-att repo); give it with ",
         option("hook"));
  s.cfg.hook_layer = layer_of(s.cfg.hook_name);
  s.cfg.reshape_hook_z =
      s.cfg.hook_name.size() > 2 && s.cfg.hook_name.compare(s.cfg.hook_name.size() - 2, 2, "_z") == 0;
  finish(s, std::move(w), file, opts.dtype);
  if (gs.embedding) {
    // Gemma scales its embeddings by sqrt(d_model) (TransformerLens folds that into W_E, so hook_embed
    // sees the scaled ones) while Gemma Scope's embedding SAEs were trained on the unscaled ones;
    // SAELens's gemma_2 loader therefore divides W_enc and multiplies W_dec by sqrt(d_in), b_dec as is.
    double r = std::sqrt(static_cast<double>(s.cfg.d_in));
    s.W_enc = (s.W_enc / r).contiguous();
    s.W_dec = (s.W_dec * r).contiguous();
  }
  return s;
}

// SAELens release names (pretrained_saes.yaml) mechscope knows: release -> HF repo, with the model and
// Neuronpedia ids SAELens attaches. Only the seed's release so far; other releases work by repo id.
struct Release {
  const char* release;
  const char* repo;
  const char* model_name;
  const char* neuronpedia_suffix;  // neuronpedia_id = model_name/<layer><suffix>
};
const Release kReleases[] = {{"gpt2-small-res-jb", "jbloom/GPT2-Small-SAEs-Reformatted", "gpt2-small", "-res-jb"}};

const Release* release_of(const std::string& spec) {
  for (const Release& r : kReleases)
    if (spec.rfind(std::string(r.release) + "/", 0) == 0) return &r;
  return nullptr;
}

std::string resolve_spec(const std::string& spec_in) {
  if (dir_exists(spec_in) || file_exists(spec_in)) return spec_in;
  std::string spec = spec_in;
  if (const Release* r = release_of(spec)) spec = std::string(r->repo) + spec.substr(std::string(r->release).size());
  // ORG/REPO/SUBFOLDER...: the repo from the Hugging Face cache, then the subfolder inside its snapshot.
  size_t a = spec.find('/');
  size_t b = a == std::string::npos ? a : spec.find('/', a + 1);
  if (b == std::string::npos || spec[0] == '/' || spec[0] == '.')
    fail("SAE '", spec,
         "' does not exist (pass a folder with cfg.json + sae_weights.safetensors, a params.npz, "
         "or ORG/REPO/SUBFOLDER from the Hugging Face cache)");
  std::string repo = spec.substr(0, b), sub = spec.substr(b + 1);
  std::string dir;
  try {
    dir = io::resolve_model_dir(repo);
  } catch (const Error& e) {
    fail("SAE '", spec, "': ", e.raw());
  }
  std::string path = join_path(dir, sub);
  if (!dir_exists(path) && !file_exists(path))
    fail("SAE '", spec, "': the cached snapshot ", dir, " has no '", sub,
         "' (download it with `huggingface-cli download ", repo, " --include '", sub, "/*'`)");
  return path;
}

}  // namespace

const char* architecture_name(Architecture a) {
  switch (a) {
    case Architecture::Standard: return "standard";
    case Architecture::JumpReLU: return "jumprelu";
    case Architecture::TopK: return "topk";
  }
  return "?";
}

SAEConfig parse_config(const nlohmann::json& j, const std::string& what) {
  if (!j.is_object()) fail(what, ": expected a JSON object");
  SAEConfig c;
  c.raw = j;
  std::string arch =
      j.contains("architecture") && j["architecture"].is_string() ? j["architecture"].get<std::string>() : "standard";
  std::string act = str_field(j, "activation_fn");
  if (act.empty()) act = str_field(j, "activation_fn_str");
  if (act.empty()) act = "relu";
  if (arch == "standard") c.architecture = act == "topk" ? Architecture::TopK : Architecture::Standard;
  else if (arch == "jumprelu") c.architecture = Architecture::JumpReLU;
  else if (arch == "topk") c.architecture = Architecture::TopK;
  else fail(what, ": unknown architecture '", arch, "' (supported: standard, jumprelu, topk)");
  if (act != "relu" && act != "topk") fail(what, ": activation function '", act, "' is not supported (relu, topk)");
  c.d_in = int_field(j, "d_in", what);
  c.d_sae = int_field(j, "d_sae", what);
  if (c.architecture == Architecture::TopK) {
    const nlohmann::json* k = field(j, "k");
    if (!k && j.contains("activation_fn_kwargs") && j["activation_fn_kwargs"].is_object() &&
        j["activation_fn_kwargs"].contains("k"))
      k = &j["activation_fn_kwargs"]["k"];
    if (!k || !k->is_number() || k->get<double>() < 1 || k->get<double>() != std::floor(k->get<double>()))
      fail(what, ": a topk SAE needs a positive integer 'k' (or activation_fn_kwargs.k)");
    // Compared as a double first: a k beyond int64 would not convert.
    if (k->get<double>() > (double)c.d_sae) fail(what, ": k = ", k->dump(), " exceeds d_sae = ", c.d_sae);
    c.k = k->get<int64_t>();
    if (c.k > c.d_sae) fail(what, ": k = ", c.k, " exceeds d_sae = ", c.d_sae);
  }
  c.hook_name = str_field(j, "hook_name");
  if (c.hook_name.empty()) c.hook_name = str_field(j, "hook_point");
  c.hook_layer = layer_of(c.hook_name);
  if (const nlohmann::json* v = field(j, "apply_b_dec_to_input")) {
    if (!v->is_boolean()) fail(what, ": 'apply_b_dec_to_input' must be true or false, got ", v->dump());
    c.apply_b_dec_to_input = v->get<bool>();
  }
  if (const nlohmann::json* v = field(j, "normalize_activations")) {
    if (v->is_boolean()) c.normalize = v->get<bool>() ? Normalize::ExpectedAverageOnlyIn : Normalize::None;
    else if (!v->is_string()) fail(what, ": 'normalize_activations' must be a string, got ", v->dump());
    else {
      std::string n = v->get<std::string>();
      if (n == "none") c.normalize = Normalize::None;
      else if (n == "expected_average_only_in") c.normalize = Normalize::ExpectedAverageOnlyIn;
      else if (n == "constant_norm_rescale") c.normalize = Normalize::ConstantNormRescale;
      else if (n == "layer_norm") c.normalize = Normalize::LayerNorm;
      else
        fail(what, ": unknown normalize_activations '", n,
             "' (none, expected_average_only_in, constant_norm_rescale, layer_norm)");
    }
  }
  std::string reshape = str_field(j, "reshape_activations");
  c.reshape_hook_z = reshape == "hook_z" || (reshape.empty() && c.hook_name.size() > 2 &&
                                             c.hook_name.compare(c.hook_name.size() - 2, 2, "_z") == 0);
  c.model_name = str_field(j, "model_name");
  c.neuronpedia_id = str_field(j, "neuronpedia_id");
  return c;
}

static SAE load_resolved(const std::string& spec, const LoadOptions& opts);

SAE load_sae(const std::string& spec, const LoadOptions& opts) {
  SAE s = load_resolved(spec, opts);
  // A release name gives what SAELens's from_pretrained attaches from its directory.
  if (const Release* r = release_of(spec); r && !dir_exists(spec)) {
    if (s.cfg.model_name.empty()) s.cfg.model_name = r->model_name;
    if (s.cfg.neuronpedia_id.empty() && s.cfg.hook_layer >= 0)
      s.cfg.neuronpedia_id =
          std::string(r->model_name) + "/" + std::to_string(s.cfg.hook_layer) + r->neuronpedia_suffix;
  }
  return s;
}

static SAE load_resolved(const std::string& spec, const LoadOptions& opts) {
  std::string path = resolve_spec(spec);
  if (file_exists(path) && !dir_exists(path)) {
    if (path.size() > 4 && path.compare(path.size() - 4, 4, ".npz") == 0) return load_npz(path, opts);
    fail("SAE '", spec,
         "' is a file but not a params.npz; pass the folder holding cfg.json and sae_weights.safetensors");
  }
  std::string cfg_path = join_path(path, "cfg.json"), w_path = join_path(path, "sae_weights.safetensors");
  if (!file_exists(cfg_path)) {
    if (file_exists(join_path(path, "params.npz"))) return load_npz(join_path(path, "params.npz"), opts);
    fail("SAE folder '", path, "' has neither cfg.json (SAELens) nor params.npz (Gemma Scope)");
  }
  if (!file_exists(w_path)) fail("SAE folder '", path, "' has cfg.json but no sae_weights.safetensors");
  SAE s;
  s.source = path;
  s.cfg = parse_config(io::read_json_file(cfg_path), cfg_path);
  if (!opts.hook_name.empty()) s.cfg.hook_name = opts.hook_name, s.cfg.hook_layer = layer_of(opts.hook_name);
  if (s.cfg.hook_name.empty()) fail(cfg_path, ": no 'hook_name' (nor hook_point); give it with ", option("hook"));
  finish(s, read_safetensors_all(w_path), w_path, opts.dtype);
  std::string sp = join_path(path, "sparsity.safetensors");
  if (file_exists(sp)) {
    auto f = io::SafetensorsFile::open(sp);
    if (!f->has("sparsity")) fail(sp, ": no tensor 'sparsity'");
    at::Tensor t = f->get("sparsity", at::kFloat).clone();
    check_shape(t, {s.cfg.d_sae}, "sparsity", sp);
    s.log_sparsity = t;
  }
  return s;
}

at::Tensor encode(const SAE& sae, const at::Tensor& x_in, NormState* state) {
  const SAEConfig& c = sae.cfg;
  if (x_in.size(-1) != c.d_in)
    fail("SAE input has last dimension ", x_in.size(-1), " but the SAE's d_in is ", c.d_in,
         c.hook_name.empty() ? "" : " (hook " + c.hook_name + ")");
  at::Tensor x = x_in.to(sae.W_enc.device(), sae.W_enc.scalar_type());  // no copy when it is there already
  NormState st;
  if (c.normalize == Normalize::ConstantNormRescale) {
    st.in_mul = std::sqrt(static_cast<double>(c.d_in)) / x.norm(2, {-1}, true);
    st.out_mul = 1.0 / st.in_mul;
    x = x * st.in_mul;
  } else if (c.normalize == Normalize::LayerNorm) {
    // SAELens: (x - mu) / (std + 1e-5) in, y * std + mu out; torch's std is the unbiased one.
    st.shift = x.mean({-1}, true);
    at::Tensor xc = x - st.shift;
    at::Tensor sd = xc.std({-1}, /*unbiased=*/true, /*keepdim=*/true);
    st.in_mul = 1.0 / (sd + 1e-5);
    st.out_mul = sd;
    x = xc * st.in_mul;
  }
  if (state) *state = st;
  if (c.apply_b_dec_to_input) x = x - sae.b_dec;
  at::Tensor h = at::matmul(x, sae.W_enc) + sae.b_enc;
  switch (c.architecture) {
    case Architecture::Standard: return at::relu(h);
    case Architecture::JumpReLU: return at::relu(h) * (h > sae.threshold).to(h.scalar_type());
    case Architecture::TopK: {
      auto top = at::topk(h, c.k, -1);
      return at::zeros_like(h).scatter_(-1, std::get<1>(top), at::relu(std::get<0>(top)));
    }
  }
  return h;
}

void to_device(SAE& s, const at::Device& device) {
  for (at::Tensor* t : {&s.W_enc, &s.b_enc, &s.W_dec, &s.b_dec, &s.threshold, &s.log_sparsity})
    if (t->defined()) *t = t->to(device);
}

at::Tensor decode(const SAE& sae, const at::Tensor& acts, const NormState* state) {
  at::Tensor y = at::matmul(acts.to(sae.W_dec.device(), sae.W_dec.scalar_type()), sae.W_dec) + sae.b_dec;
  if (state && state->out_mul.defined()) y = y * state->out_mul;
  if (state && state->shift.defined()) y = y + state->shift;
  return y;
}

at::Tensor reconstruct(const SAE& sae, const at::Tensor& x) {
  NormState st;
  at::Tensor a = encode(sae, x, &st);
  return decode(sae, a, &st);
}

void save_sae(const SAE& sae, const std::string& dir) {
  make_dirs(dir);
  const SAEConfig& c = sae.cfg;
  // The fields of the loaded cfg.json are kept, flattened to the pre-6 layout: without
  // "sae_lens_version", SAELens 6 reads the flat fields through handle_pre_6_0_config, where a stale
  // pre-6 name (hook_point) or a nested "meta" would override what is written below.
  nlohmann::json j = nlohmann::json::object();
  if (c.raw.is_object())
    for (auto& [k, v] : c.raw.items()) {
      if (k == "meta" || k == "metadata") {
        if (v.is_object())
          for (auto& [mk, mv] : v.items())
            if (!c.raw.contains(mk) && mk != "sae_lens_version") j[mk] = mv;
        continue;
      }
      if (k == "sae_lens_version" || k == "hook_point" || k == "hook_point_layer" || k == "hook_point_head_index" ||
          k == "activation_fn")
        continue;
      j[k] = v;
    }
  if (c.raw.is_object() && c.raw.contains("hook_point_head_index") && !j.contains("hook_head_index"))
    j["hook_head_index"] = c.raw["hook_point_head_index"];
  // Flat pre-6 fields: SAELens 6 converts them on load (handle_pre_6_0_config), and older versions
  // need every one of them in their SAEConfig.
  j["architecture"] = c.architecture == Architecture::TopK ? "topk" : architecture_name(c.architecture);
  j["d_in"] = c.d_in;
  j["d_sae"] = c.d_sae;
  j["activation_fn_str"] = c.architecture == Architecture::TopK ? "topk" : "relu";
  if (c.architecture == Architecture::TopK) j["k"] = c.k, j["activation_fn_kwargs"] = {{"k", c.k}};
  else if (!j.contains("activation_fn_kwargs")) j["activation_fn_kwargs"] = nlohmann::json::object();
  j["apply_b_dec_to_input"] = c.apply_b_dec_to_input;
  j["finetuning_scaling_factor"] = false;
  const char* norms[] = {"none", "expected_average_only_in", "constant_norm_rescale", "layer_norm"};
  j["normalize_activations"] = norms[static_cast<int>(c.normalize)];
  j["hook_name"] = c.hook_name;
  j["hook_layer"] = c.hook_layer;
  if (!j.contains("hook_head_index")) j["hook_head_index"] = nullptr;
  j["model_name"] = c.model_name;
  for (auto [k, v] : std::vector<std::pair<const char*, nlohmann::json>>{{"context_size", 128},
                                                                         {"prepend_bos", true},
                                                                         {"dataset_path", ""},
                                                                         {"dataset_trust_remote_code", false},
                                                                         {"dtype", "float32"},
                                                                         {"device", "cpu"},
                                                                         {"sae_lens_training_version", nullptr}})
    if (!j.contains(k)) j[k] = v;
  if (c.reshape_hook_z) j["reshape_activations"] = "hook_z";
  // Host copies (no-ops for an SAE on the CPU): the writer reads host memory.
  auto host = [](const at::Tensor& t) { return t.to(at::kCPU, at::kFloat).contiguous(); };
  std::vector<std::pair<std::string, at::Tensor>> w{
      {"W_enc", host(sae.W_enc)}, {"b_enc", host(sae.b_enc)}, {"W_dec", host(sae.W_dec)}, {"b_dec", host(sae.b_dec)}};
  if (c.architecture == Architecture::JumpReLU) w.emplace_back("threshold", host(sae.threshold));
  io::write_safetensors(join_path(dir, "sae_weights.safetensors"), w);
  if (sae.log_sparsity.defined())
    io::write_safetensors(join_path(dir, "sparsity.safetensors"), {{"sparsity", host(sae.log_sparsity)}});
  write_file_atomic(join_path(dir, "cfg.json"), j.dump(2) + "\n");
}

}  // namespace mechscope::sae
