// mechscope info: what a checkpoint is, as mechscope sees it.
#include <cstdio>

#include "cli/common.h"
#include "cli/registry.h"
#include "core/error.h"

namespace mechscope::cli {
namespace {

int run_info(int argc, char** argv) {
  Args a("info", "--model M [--json]", "Architecture, sizes, parameter count, dtype and every hook point of a model.");
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
  std::printf("parameters   %lld\ndtype        %s\n", (long long)m.model->parameter_count(), at::toString(m.model->dtype()));
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
