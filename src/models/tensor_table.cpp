#include "models/tensor_table.h"

#include "core/error.h"

namespace mechscope::models {

namespace {

// The file a tensor is in, for messages: the one file, or the folder and the shard count.
std::string where(const io::Checkpoint& ckpt) {
  const auto& files = ckpt.files();
  if (files.empty()) return "the checkpoint";
  if (files.size() == 1) return "'" + files[0] + "'";
  std::string dir = files[0].substr(0, files[0].rfind('/'));
  return cat("the checkpoint in '", dir, "' (", files.size(), " shards)");
}

int64_t size_of(Size s, const TableContext& c) {
  const ModelConfig& cfg = c.cfg;
  switch (s) {
    case Size::d_model: return cfg.d_model;
    case Size::d_mlp: return cfg.d_mlp;
    case Size::q_dim: return cfg.n_heads * cfg.d_head;
    case Size::kv_dim: return cfg.n_kv_heads * cfg.d_head;
    case Size::vocab: return cfg.d_vocab;
    case Size::ctx: return cfg.n_ctx;
    case Size::token_types: return cfg.n_token_types;
    case Size::labels: return c.n_labels;
  }
  return 0;
}

}  // namespace

std::string tensor_key(const char* pattern, const std::string& prefix, int layer) {
  std::string out;
  for (const char* p = pattern; *p; ++p) {
    if (p[0] == '{' && p[1] == 'P' && p[2] == '}') {
      out += prefix;
      p += 2;
    } else if (p[0] == '{' && p[1] == 'L' && p[2] == '}') {
      out += std::to_string(layer);
      p += 2;
    } else {
      out += *p;
    }
  }
  return out;
}

std::string find_prefix(const io::Checkpoint& ckpt, const std::vector<std::string>& prefixes, const char* probe,
                        const char* arch) {
  std::string tried;
  for (auto& p : prefixes) {
    std::string key = tensor_key(probe, p, 0);
    if (ckpt.has(key)) return p;
    tried += (tried.empty() ? "'" : ", '") + key + "'";
  }
  fail("checkpoint does not look like a ", arch, " model: none of ", tried,
       " found (files: ", ckpt.files().empty() ? std::string("none") : ckpt.files()[0], ")");
}

at::Tensor fetch_tensor(const TableContext& c, const std::string& key, const std::string& alt,
                        const std::vector<Dim>& dims) {
  std::vector<int64_t> shape;
  for (const Dim& d : dims) shape.push_back(size_of(d.size, c) * d.times);
  const std::string& name = !alt.empty() && !c.ckpt.has(key) && c.ckpt.has(alt) ? alt : key;
  if (!c.ckpt.has(name)) fail(where(c.ckpt), ": no tensor '", name, "', which a ", c.cfg.model_type, " model needs");
  const io::TensorInfo& info = c.ckpt.info(name);
  if (info.shape != shape)
    fail(where(c.ckpt), ": tensor '", name, "' has shape ", at::IntArrayRef(info.shape), ", expected ",
         at::IntArrayRef(shape), " from config.json");
  at::Tensor t = c.ckpt.get(name, c.dtype);
  return c.device.is_cpu() ? t : t.to(c.device);
}

}  // namespace mechscope::models
