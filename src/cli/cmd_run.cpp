// mechscope run: one forward pass over a batch of prompts, writing logits (or a classifier's class
// logits) and cached activations.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstdio>

#include "cli/common.h"
#include "cli/registry.h"
#include "analysis/heads/interventions.h"
#include "core/error.h"
#include "core/fs.h"
#include "io/safetensors.h"
#include "models/generate.h"
#include "report/output.h"

namespace mechscope::cli {
namespace {

using json = nlohmann::json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// [b, n] -> nested arrays.
json rows_json(const at::Tensor& t) {
  at::Tensor c = t.to(at::Device(at::kCPU), at::kDouble).contiguous();
  json out = json::array();
  for (int64_t i = 0; i < c.size(0); ++i) {
    const double* p = c[i].data_ptr<double>();
    out.push_back(std::vector<double>(p, p + c.size(1)));
  }
  return out;
}

int run_run(int argc, char** argv) {
  Args a("run",
         "--model M (--prompt TEXT [--pair TEXT] | --ids 1,2,3 [--token-type-ids 0,0,1])... [--cache GLOB]... "
         "--out FILE.safetensors",
         "Runs the model on one or more inputs (a batch, right-padded with an attention mask) and writes\n"
         "input_ids, attention_mask, token_type_ids (models that take them), logits [batch, pos, vocab] (or, for a\n"
         "sequence classifier, class_logits [batch, labels], with each input's labels and probabilities printed)\n"
         "and every cached hook under its hook name. Prompts are encoded as transformers' tokenizer(text) does.");
  add_model_flags(a);
  add_prompt_flags(a, true, true);
  a.multi("cache", "GLOB", "hook names to save, exact or glob (e.g. 'blocks.*.hook_resid_pre')");
  a.opt("out", "FILE", "output .safetensors file");
  a.flag("no-logits", "do not write logits (large for big vocabularies)");
  a.flag("json", "print the inputs (ids, tokens, token types) and class logits/probabilities as one JSON object");
  // Head patching (issue 14): kept as its own block so the prompt handling above merges cleanly.
  a.opt("patch-heads", "L:H,...",
        "replace these heads' hook_z at every position by their z on --patch-source-ids; 'L:*' = a whole layer");
  a.multi("patch-source-ids", "1,2,3",
          "with --patch-heads: the source ids (same length as the input); once for every input, or once per input");
  if (!a.parse(argc, argv)) return 0;
  if (!a.has("out")) fail("--out FILE.safetensors is required");
  report::claim_output_file(a.str("out"));
  Loaded m = load_from_flags(a);
  Inputs in = inputs_from_flags(a, m);
  const auto& cfg = m.model->config();

  auto names = m.model->hook_names();
  for (auto& pat : a.all("cache")) {
    bool any = false;
    for (auto& n : names) any |= hooks::glob_match(pat, n);
    if (!any) fail("--cache '", pat, "' matches no hook point of this model (see mechscope info --model ...)");
  }

  std::vector<std::vector<int64_t>> seqs, types;
  for (auto& e : in.seqs) {
    seqs.push_back(e.ids);
    types.push_back(e.type_ids);
  }
  at::Tensor ids, mask, type_ids;
  models::pad_batch(seqs, cfg.pad_token_id.value_or(cfg.eos_token_id.value_or(0)), ids, mask);
  if (cfg.n_token_types > 0) {
    at::Tensor unused;
    models::pad_batch(types, 0, type_ids, unused);
  }
  hooks::HookSet hs;
  hooks::ActivationCache cache;
  hooks::ScopedHooks patch_scope(hs);
  if (a.has("patch-source-ids") && !a.has("patch-heads"))
    fail("--patch-source-ids applies to --patch-heads: give the heads too");
  if (a.has("patch-heads")) {
    namespace H = analysis::heads;
    auto heads = H::parse_head_spec(a.str("patch-heads"), cfg.n_layers, cfg.n_heads, "--patch-heads");
    auto srcs = a.all("patch-source-ids");
    if (srcs.empty()) fail("--patch-heads needs --patch-source-ids 1,2,3 (the ids whose z is patched in)");
    if (srcs.size() != 1 && srcs.size() != seqs.size())
      fail("--patch-source-ids given ", srcs.size(), " times for ", seqs.size(),
           " inputs: give it once, or once per input");
    std::vector<int64_t> layers;
    for (auto& [l, hl] : H::heads_by_layer(heads)) layers.push_back(l);
    std::map<int64_t, std::vector<at::Tensor>> parts;
    for (size_t i = 0; i < seqs.size(); ++i) {
      if (srcs.size() == 1 && i > 0) break;
      std::vector<int64_t> src;
      for (long long x : parse_int_list(srcs[i], "--patch-source-ids")) src.push_back(x);
      std::string what = "--patch-source-ids" + (srcs.size() > 1 ? " #" + std::to_string(i + 1) : std::string());
      check_ids(src, cfg, what);
      for (size_t j = (srcs.size() == 1 ? 0 : i); j < (srcs.size() == 1 ? seqs.size() : i + 1); ++j)
        if (seqs[j].size() != src.size())
          fail(what, " has ", src.size(), " tokens but input ", j + 1, " has ", seqs[j].size(),
               ": a head patch replaces z position by position, so they must be the same length");
      auto z = H::capture_z(*m.model, at::tensor(src, at::kLong).unsqueeze(0), layers);
      // Right-pad to the batch length: padded positions are never attended to by real ones.
      for (auto& [l, t] : z) parts[l].push_back(at::constant_pad_nd(t, {0, 0, 0, 0, 0, ids.size(1) - t.size(1)}));
    }
    std::map<int64_t, at::Tensor> source_z;
    for (auto& [l, v] : parts) source_z[l] = at::cat(v, 0);
    H::add_patch(patch_scope, heads, source_z);
  }
  cache.attach(hs, a.all("cache"));  // after the patch, so cached activations are the patched run's
  models::RunContext ctx;
  ctx.hooks = &hs;
  bool padded = mask.sum().item<int64_t>() != mask.numel();
  if (padded) ctx.attention_mask = mask;
  if (type_ids.defined()) ctx.token_type_ids = type_ids;
  at::NoGradGuard no_grad;
  at::Tensor logits, class_logits;
  if (m.model->has_lm_head()) {
    logits = m.model->forward(ids, ctx);
  } else {
    // A classifier reads its head from the last block; a bare encoder has activations only.
    at::Tensor resid = m.model->embed(ids, ctx);
    for (int l = 0; l < cfg.n_layers; ++l) resid = m.model->block(l, resid, ctx);
    resid = m.model->final_norm(resid, ctx);
    if (m.model->has_classifier()) class_logits = m.model->classify(resid, ctx);
    else if (!a.on("no-logits")) std::fprintf(stderr, "note: the model has no output head: no logits written\n");
  }

  std::vector<std::pair<std::string, at::Tensor>> out{{"input_ids", ids}, {"attention_mask", mask}};
  if (type_ids.defined()) out.emplace_back("token_type_ids", type_ids);
  if (!a.on("no-logits") && logits.defined()) out.emplace_back("logits", logits.to(at::kFloat));
  if (class_logits.defined()) out.emplace_back("class_logits", class_logits.to(at::kFloat));
  for (auto& [name, t] : cache.all()) out.emplace_back(name, t.to(at::kFloat));

  // What it ran on: every input's ids, tokens and token types.
  json inputs = json::array();
  for (auto& e : in.seqs) {
    json ij{{"ids", e.ids}};
    if (m.tokenizer) {
      std::vector<std::string> toks;
      for (int64_t id : e.ids) toks.push_back(id < m.tokenizer->size() ? m.tokenizer->id_to_token(id) : "");
      ij["tokens"] = toks;
    }
    if (type_ids.defined() || in.segments) ij["token_type_ids"] = e.type_ids;
    inputs.push_back(ij);
  }
  std::map<std::string, std::string> meta{{"model", m.dir}, {"format", "mechscope run"}, {"inputs", dump(inputs)}};
  json report{{"output", a.str("out")}, {"inputs", inputs}};
  at::Tensor probs;
  if (class_logits.defined()) {
    // As transformers' text-classification pipeline: softmax, sigmoid for multi-label, none for regression.
    std::string problem =
        cfg.raw.value("problem_type", json()).is_string() ? cfg.raw["problem_type"].get<std::string>() : "";
    if (problem == "multi_label_classification") probs = at::sigmoid(class_logits.to(at::kDouble));
    else if (problem != "regression" && class_logits.size(1) > 1) probs = at::softmax(class_logits.to(at::kDouble), 1);
    meta["labels"] = dump(cfg.labels);
    report["labels"] = cfg.labels;
    report["class_logits"] = rows_json(class_logits);
    if (probs.defined()) {
      report["probabilities"] = rows_json(probs);
      std::vector<std::string> pred;
      for (int64_t i = 0; i < probs.size(0); ++i) pred.push_back(cfg.labels[probs[i].argmax().item<int64_t>()]);
      report["predicted"] = pred;
    }
  }

  std::string path = a.str("out");
  io::write_safetensors(path, out, meta);
  std::fprintf(stderr, "wrote %s: %zu tensors (batch %lld, %lld positions)\n", path.c_str(), out.size(),
               (long long)ids.size(0), (long long)ids.size(1));
  if (a.on("json")) {
    std::printf("%s\n", dump(report).c_str());
  } else if (class_logits.defined()) {
    for (int64_t i = 0; i < class_logits.size(0); ++i) {
      std::string line = cat("input ", i, ":");
      if (probs.defined()) line += " " + cfg.labels[probs[i].argmax().item<int64_t>()] + " (";
      for (int64_t k = 0; k < class_logits.size(1); ++k) {
        char num[32];
        std::snprintf(num, sizeof num, "%.4f", (probs.defined() ? probs : class_logits)[i][k].item<double>());
        line += cat(k ? ", " : probs.defined() ? "" : " ", cfg.labels[k], " ", num);
      }
      std::printf("%s%s\n", line.c_str(), probs.defined() ? ")" : "");
    }
  }
  return 0;
}

const Register reg{"run", "forward pass: logits (or class logits) and cached activations to .safetensors", 30, run_run};

}  // namespace
}  // namespace mechscope::cli
