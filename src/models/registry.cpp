#include "models/registry.h"

#include "core/error.h"
#include "core/fs.h"

#include <cstdlib>

namespace mechscope::models {

const std::vector<Architecture>& architectures() {
  static const std::vector<Architecture> table{
      gpt2_architecture(),  gpt_neo_architecture(), gpt_neox_architecture(),  llama_architecture(),
      gemma_architecture(), bert_architecture(),    distilbert_architecture()};
  return table;
}

std::vector<std::string> supported_model_types() {
  std::vector<std::string> out;
  for (auto& a : architectures())
    for (auto& t : a.model_types) out.push_back(t.model_type);
  return out;
}

std::string display_name(const std::string& model_type) {
  for (auto& a : architectures())
    for (auto& t : a.model_types)
      if (model_type == t.model_type && t.display_name) return t.display_name;
  return model_type.empty() ? "GPT" : model_type;
}

namespace {
const nlohmann::json* find_key(const ModelConfig& cfg, const char* key) {
  auto it = cfg.raw.find(key);
  if (it == cfg.raw.end() || it->is_null()) return nullptr;
  return &*it;
}
}  // namespace

int64_t cfg_int(const ModelConfig& cfg, const char* key) {
  const nlohmann::json* v = find_key(cfg, key);
  if (!v) fail("config.json (", cfg.model_type, "): missing '", key, "'");
  if (!v->is_number_integer())
    fail("config.json (", cfg.model_type, "): '", key, "' must be an integer, got ", v->dump());
  return v->get<int64_t>();
}

int64_t cfg_int(const ModelConfig& cfg, const char* key, int64_t def) {
  return find_key(cfg, key) ? cfg_int(cfg, key) : def;
}

double cfg_double(const ModelConfig& cfg, const char* key, double def) {
  const nlohmann::json* v = find_key(cfg, key);
  if (!v) return def;
  if (!v->is_number()) fail("config.json (", cfg.model_type, "): '", key, "' must be a number, got ", v->dump());
  return v->get<double>();
}

bool cfg_bool(const ModelConfig& cfg, const char* key, bool def) {
  const nlohmann::json* v = find_key(cfg, key);
  if (!v) return def;
  if (!v->is_boolean()) fail("config.json (", cfg.model_type, "): '", key, "' must be true or false, got ", v->dump());
  return v->get<bool>();
}

std::string cfg_string(const ModelConfig& cfg, const char* key, const std::string& def) {
  const nlohmann::json* v = find_key(cfg, key);
  if (!v) return def;
  if (!v->is_string()) fail("config.json (", cfg.model_type, "): '", key, "' must be a string, got ", v->dump());
  return v->get<std::string>();
}

void set_mha_heads(ModelConfig& cfg, const char* width_key, const char* heads_key) {
  cfg.d_model = cfg_int(cfg, width_key);
  cfg.n_heads = cfg_int(cfg, heads_key);
  cfg.n_kv_heads = cfg.n_heads;
  if (cfg.n_heads <= 0 || cfg.d_model % cfg.n_heads != 0)
    fail("config.json (", cfg.model_type, "): ", width_key, " ", cfg.d_model, " is not divisible by ", heads_key, " ",
         cfg.n_heads);
  cfg.d_head = cfg.d_model / cfg.n_heads;
}

void set_gqa_heads(ModelConfig& cfg, int64_t default_head_dim) {
  cfg.d_model = cfg_int(cfg, "hidden_size");
  cfg.n_heads = cfg_int(cfg, "num_attention_heads");
  cfg.n_kv_heads = cfg_int(cfg, "num_key_value_heads", cfg.n_heads);
  if (cfg.n_heads <= 0 || cfg.n_kv_heads <= 0 || cfg.n_heads % cfg.n_kv_heads != 0)
    fail("config.json (", cfg.model_type, "): num_attention_heads ", cfg.n_heads,
         " must be a positive multiple of num_key_value_heads ", cfg.n_kv_heads);
  cfg.d_head = cfg_int(cfg, "head_dim", default_head_dim > 0 ? default_head_dim : cfg.d_model / cfg.n_heads);
  if (cfg.d_head <= 0) fail("config.json (", cfg.model_type, "): 'head_dim' must be positive, got ", cfg.d_head);
}

std::vector<std::string> read_labels(const ModelConfig& cfg, int64_t n) {
  std::vector<std::string> out;
  for (int64_t i = 0; i < n; ++i) out.push_back("LABEL_" + std::to_string(i));
  const nlohmann::json* m = find_key(cfg, "id2label");
  if (!m) return out;
  if (!m->is_object()) fail("config.json (", cfg.model_type, "): 'id2label' must be an object, got ", m->dump());
  if ((int64_t)m->size() != n)
    fail("config.json (", cfg.model_type, "): 'id2label' names ", m->size(), " labels, the classifier has ", n,
         " outputs");
  for (auto& [key, value] : m->items()) {
    char* end = nullptr;
    long long i = std::strtoll(key.c_str(), &end, 10);
    if (key.empty() || *end || i < 0 || i >= n)
      fail("config.json (", cfg.model_type, "): 'id2label' key '", key, "' is not a label id in 0 .. ", n - 1);
    if (!value.is_string()) fail("config.json (", cfg.model_type, "): 'id2label' \"", key, "\" must be a string");
    out[i] = value.get<std::string>();
  }
  return out;
}

static std::optional<int64_t> token_id(const ModelConfig& cfg, const char* key) {
  const nlohmann::json* v = find_key(cfg, key);
  if (!v) return std::nullopt;
  if (v->is_array() && !v->empty() && (*v)[0].is_number_integer()) return (*v)[0].get<int64_t>();
  if (v->is_number_integer()) return v->get<int64_t>();
  return std::nullopt;
}

static const Architecture& find_architecture(const std::string& model_type, const std::string& where) {
  for (auto& a : architectures())
    for (auto& t : a.model_types)
      if (model_type == t.model_type) return a;
  std::string list;
  for (auto& t : supported_model_types()) list += (list.empty() ? "" : ", ") + t;
  fail(where, ": unsupported model_type '", model_type, "' (supported: ", list, ")");
}

namespace {

// read_config, with the family's typed config in *family when asked for.
ModelConfig parse_config(const std::string& dir, std::any* family) {
  std::string path = join_path(dir, "config.json");
  if (!file_exists(path)) fail("model directory '", dir, "' has no config.json");
  ModelConfig cfg;
  cfg.raw = io::read_json_file(path);
  if (!cfg.raw.is_object()) fail("'", path, "' is not a JSON object");
  auto mt = cfg.raw.find("model_type");
  if (mt == cfg.raw.end() || !mt->is_string()) fail("'", path, "' has no model_type");
  cfg.model_type = mt->get<std::string>();
  auto archs = cfg.raw.find("architectures");
  if (archs != cfg.raw.end() && archs->is_array() && !archs->empty() && (*archs)[0].is_string())
    cfg.architecture = (*archs)[0].get<std::string>();
  const Architecture& arch = find_architecture(cfg.model_type, path);
  std::any typed = arch.parse(cfg);
  if (family) *family = std::move(typed);
  // generation_config.json, when present, overrides the special token ids (as transformers does).
  std::string gen_path = join_path(dir, "generation_config.json");
  ModelConfig gen;
  gen.model_type = cfg.model_type;
  if (file_exists(gen_path)) gen.raw = io::read_json_file(gen_path);
  for (auto [key, field] :
       {std::pair{"bos_token_id", &ModelConfig::bos_token_id}, std::pair{"eos_token_id", &ModelConfig::eos_token_id},
        std::pair{"pad_token_id", &ModelConfig::pad_token_id}}) {
    cfg.*field = token_id(cfg, key);
    if (gen.raw.is_object() && token_id(gen, key)) cfg.*field = token_id(gen, key);
  }
  if (cfg.n_layers <= 0 || cfg.d_model <= 0 || cfg.n_heads <= 0 || cfg.d_vocab <= 0 || cfg.d_head <= 0 ||
      cfg.d_mlp <= 0 || cfg.n_ctx < 0)
    fail("'", path, "': sizes must be positive (n_layers ", cfg.n_layers, ", d_model ", cfg.d_model, ", n_heads ",
         cfg.n_heads, ", d_head ", cfg.d_head, ", d_mlp ", cfg.d_mlp, ", vocab ", cfg.d_vocab, ", context ", cfg.n_ctx,
         ")");
  if (cfg.n_kv_heads <= 0 || cfg.n_heads % cfg.n_kv_heads)
    fail("'", path, "': ", cfg.n_heads, " attention heads cannot share ", cfg.n_kv_heads,
         " key/value heads (it must divide them)");
  // A norm epsilon outside (0, 1) is a typo: 0 divides by zero on a zero row, and >= 1 swamps the variance.
  if (!(cfg.eps > 0 && cfg.eps < 1)) fail("'", path, "': the norm epsilon must be in (0, 1), got ", cfg.eps);
  return cfg;
}

}  // namespace

ModelConfig read_config(const std::string& dir) { return parse_config(dir, nullptr); }

std::unique_ptr<HookedModel> load_model(const std::string& model, const LoadOptions& opts) {
  std::string dir = io::resolve_model_dir(model);
  std::any family;
  ModelConfig cfg = parse_config(dir, &family);
  io::Checkpoint ckpt = io::Checkpoint::open(dir);
  return find_architecture(cfg.model_type, dir).build(cfg, family, ckpt, opts);
}

at::Tensor HookedModel::forward(const at::Tensor& ids, RunContext& ctx) const {
  at::Tensor resid = embed(ids, ctx);
  for (int l = 0; l < cfg_.n_layers; ++l) resid = block(l, resid, ctx);
  return unembed(final_norm(resid, ctx));
}

at::Tensor HookedModel::classify(const at::Tensor& resid, RunContext& ctx) const {
  fail(cfg_.model_type, " (", cfg_.architecture, ") has no sequence-classification head");
}

int64_t HookedModel::parameter_count() const {
  int64_t n = 0;
  for (auto& [name, t] : parameters()) n += t.numel();
  return n;
}

}  // namespace mechscope::models
