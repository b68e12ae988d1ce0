// mechscope info: what a checkpoint is, as mechscope sees it.
#include <cstdio>

#include "cli/common.h"
#include "cli/registry.h"
#include "core/error.h"
#include "models/device.h"

#include <optional>

namespace mechscope::cli {
namespace {

// `info --device [DEV]` without --model: what this build and machine run on (libtorch, CUDA, GPUs),
// and, with DEV, whether DEV is usable here (exit 2 with the reason when not).
bool wants_runtime(int argc, char** argv) {
  bool device = false;
  for (int i = 0; i < argc; ++i) {
    std::string s = argv[i];
    if (s == "--model" || s.rfind("--model=", 0) == 0 || s == "--help" || s == "-h") return false;
    device |= s == "--device" || s.rfind("--device=", 0) == 0;
  }
  return device;
}

int print_runtime(int argc, char** argv) {
  std::string dev;
  bool json = false;
  for (int i = 0; i < argc; ++i) {
    std::string s = argv[i];
    if (s == "--json") json = true;
    else if (s.rfind("--device=", 0) == 0) dev = s.substr(9);
    else if (s == "--device" && i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) dev = argv[++i];
    else if (s != "--device") fail("info --device: unexpected argument '", s, "' (info --device [DEV] [--json])");
  }
  models::RuntimeInfo r = models::runtime_info();
  std::optional<at::Device> picked;
  if (!dev.empty()) picked = models::parse_device(dev);
  nlohmann::json gpus = nlohmann::json::array();
  for (auto& g : r.gpus) gpus.push_back({{"index", g.index}, {"name", g.name}, {"memory_bytes", g.memory_bytes}});
  if (json) {
    nlohmann::json j{{"libtorch", r.libtorch},
                     {"cuda_built", r.cuda_built},
                     {"cuda", r.cuda_built ? nlohmann::json(r.cuda_runtime) : nlohmann::json(nullptr)},
                     {"cuda_available", r.cuda_available},
                     {"gpus", gpus}};
    if (picked) j["device"] = models::device_name(*picked);
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("libtorch     %s\n", r.libtorch.c_str());
  std::printf("cuda         %s\n", !r.cuda_built      ? "not in this build (CPU only)"
                                   : r.cuda_available ? ("CUDA " + r.cuda_runtime).c_str()
                                                      : ("CUDA " + r.cuda_runtime + ", no GPU usable").c_str());
  std::printf("gpus         %zu\n", r.gpus.size());
  for (auto& g : r.gpus)
    std::printf("  cuda:%d     %s (%.1f GiB)\n", g.index, g.name.empty() ? "unnamed" : g.name.c_str(),
                (double)g.memory_bytes / (1024.0 * 1024.0 * 1024.0));
  if (picked) std::printf("device       %s\n", models::device_name(*picked).c_str());
  return 0;
}

int run_info(int argc, char** argv) {
  if (wants_runtime(argc, argv)) return print_runtime(argc, argv);
  Args a("info", "--model M [--json] | --device [DEV] [--json]",
         "Architecture, sizes, parameter count, dtype and every hook point of a model. With --device and no\n"
         "--model: the libtorch, CUDA and GPUs this build runs on (and whether DEV is usable).");
  add_model_flags(a);
  a.flag("json", "print one JSON object instead of text");
  if (!a.parse(argc, argv)) return 0;
  Loaded m = load_from_flags(a);
  const models::ModelConfig& c = m.model->config();
  auto hooks = m.model->hook_names();
  nlohmann::json j{{"model", m.dir},
                   {"model_type", c.model_type},
                   {"architecture", c.architecture},
                   {"n_layers", c.n_layers},
                   {"d_model", c.d_model},
                   {"n_heads", c.n_heads},
                   {"n_kv_heads", c.n_kv_heads},
                   {"d_head", c.d_head},
                   {"d_mlp", c.d_mlp},
                   {"n_ctx", c.n_ctx},
                   {"d_vocab", c.d_vocab},
                   {"act_fn", c.act_fn},
                   {"tied_embeddings", c.tied_embeddings},
                   {"parameters", m.model->parameter_count()},
                   {"dtype", std::string(at::toString(m.model->dtype()))},
                   {"device", models::device_name(m.model->device())},
                   {"tokenizer", m.tokenizer ? nlohmann::json(m.tokenizer->size()) : nlohmann::json()},
                   {"hooks", hooks}};
  if (m.model->has_classifier()) {
    j["labels"] = c.labels;
    j["head"] = "sequence classification";
  } else {
    j["head"] = m.model->has_lm_head() ? "language model" : "none";
  }
  if (c.n_token_types) j["token_types"] = c.n_token_types;
  if (a.on("json")) {
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("model        %s\n", m.dir.c_str());
  std::printf("type         %s (%s)\n", c.model_type.c_str(), c.architecture.c_str());
  std::printf("layers       %lld\nd_model      %lld\nheads        %lld (kv heads %lld, d_head %lld)\n",
              (long long)c.n_layers, (long long)c.d_model, (long long)c.n_heads, (long long)c.n_kv_heads,
              (long long)c.d_head);
  std::printf("d_mlp        %lld (%s)\ncontext      %lld\nvocabulary   %lld%s\n", (long long)c.d_mlp, c.act_fn.c_str(),
              (long long)c.n_ctx, (long long)c.d_vocab, c.tied_embeddings ? " (tied unembedding)" : "");
  std::printf("parameters   %lld\ndtype        %s\n", (long long)m.model->parameter_count(),
              at::toString(m.model->dtype()));
  std::printf("device       %s\n", models::device_name(m.model->device()).c_str());
  if (m.model->has_classifier()) {
    std::string labels;
    for (size_t i = 0; i < c.labels.size(); ++i) labels += cat(i ? ", " : "", i, " ", c.labels[i]);
    std::printf("head         sequence classification, %zu labels: %s\n", c.labels.size(), labels.c_str());
  } else if (!m.model->has_lm_head()) {
    std::printf("head         none (activations only)\n");
  }
  if (c.n_token_types) std::printf("token types  %lld\n", (long long)c.n_token_types);
  if (m.tokenizer) std::printf("tokenizer    %lld tokens\n", (long long)m.tokenizer->size());
  else std::printf("tokenizer    none (use --ids, or --tokenizer PATH)\n");
  std::printf("hook points  %zu\n", hooks.size());
  for (auto& h : hooks) std::printf("  %s\n", h.c_str());
  return 0;
}

const Register reg{"info", "architecture, sizes, parameter count and hook names of a model", 10, run_info};

}  // namespace
}  // namespace mechscope::cli
