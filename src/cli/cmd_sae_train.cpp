// mechscope sae train: a standard ReLU SAE on a model's activations, saved in SAELens's format.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "analysis/sae/train.h"
#include "cli/common.h"
#include "cli/distribute.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/fs_guard.h"
#include "core/utf8.h"
#include "report/manifest.h"
#include "report/output.h"
#include "sae/splice.h"

namespace mechscope::cli {

namespace S = analysis::sae;

// One text per line; .jsonl lines are objects with "text", or "prompt" (+ " " + "answer" when given:
// a fact file trains on the whole fact). Shared with sae eval.
std::vector<std::string> read_sae_corpus(const std::string& path) {
  bool jsonl = path.size() > 6 && path.compare(path.size() - 6, 6, ".jsonl") == 0;
  std::vector<std::string> out;
  // Line by line, a line longer than 16 MiB refused before it is held (issue 17).
  for_each_line(path, [&](std::string line, long long line_no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) return;
    if (!jsonl) {
      out.push_back(line);
      return;
    }
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      fail("--corpus ", path, " line ", line_no, ": not JSON (", e.what(), ")");
    }
    if (j.contains("text") && j["text"].is_string()) out.push_back(j["text"]);
    else if (j.contains("prompt") && j["prompt"].is_string())
      out.push_back(j["prompt"].get<std::string>() +
                    (j.contains("answer") && j["answer"].is_string() ? " " + j["answer"].get<std::string>() : ""));
    else fail("--corpus ", path, " line ", line_no, ": no \"text\" or \"prompt\" string");
  });
  if (out.empty()) fail("--corpus ", path, " holds no text");
  return out;
}

// --corpus as token ids, each checked against the model (BOS first with --prepend-bos).
std::vector<std::vector<int64_t>> sae_corpus_ids(const Args& a, const Loaded& m) {
  const auto& tok = need_tokenizer(m, "--corpus");
  std::vector<std::vector<int64_t>> seqs;
  auto texts = read_sae_corpus(a.str("corpus"));
  for (size_t i = 0; i < texts.size(); ++i) {
    if (!utf8::valid(texts[i])) fail("--corpus line ", i + 1, " is not valid UTF-8");
    std::vector<int64_t> ids;
    if (a.on("prepend-bos")) {
      auto bos = tok.bos_id() ? tok.bos_id() : m.model->config().bos_token_id;
      if (!bos) fail("--prepend-bos: the tokenizer and config.json name no BOS token");
      ids.push_back(*bos);
    }
    for (int64_t id : tok.encode(texts[i])) ids.push_back(id);
    check_ids(ids, m.model->config(), "--corpus line " + std::to_string(i + 1));
    seqs.push_back(ids);
  }
  return seqs;
}

int run_sae_train(int argc, char** argv) {
  Args a(
      "sae train", "--model M --hook NAME [--hook NAME ...] --corpus FILE --d-sae N [--l1 X] [--steps N] --out DIR",
      "Harvests the model's activations at each --hook over the corpus (every position of every text) and trains a\n"
      "standard ReLU SAE per hook as SAELens's standard training does: b_dec = the activations' mean, unit-norm\n"
      "decoder rows with W_enc = W_dec^T at the start, loss = ||x_hat - x||^2 + l1 * sum_f a_f ||W_dec[f]||, Adam,\n"
      "the gradient parallel to each decoder row removed and the rows renormalised after each step, dead features\n"
      "(not fired for --dead-window steps) counted. Batches depend on (--seed, step) only, so --resume (from\n"
      "DIR/checkpoint) gives the same SAE as an uninterrupted run, and continues a finished one when --steps grows.\n"
      "Writes cfg.json, sae_weights.safetensors and sparsity.safetensors (SAELens's format; with several hooks one\n"
      "subfolder per hook), train_log.jsonl and manifest.json. Under mpirun the ranks share the harvest's\n"
      "forwards and each takes every N-th row of each batch, the gradients summed over the ranks: the SAE of one\n"
      "process with the same --batch, to float reduction order.");
  add_model_flags(a);
  a.multi("hook", "NAME", "hook point to train on, e.g. blocks.3.hook_resid_pre (repeatable)");
  a.opt("corpus", "FILE", "texts, one per line, or .jsonl with \"text\" or \"prompt\" (+ \"answer\") per line");
  a.flag("prepend-bos", "put the BOS token before each text");
  a.opt("d-sae", "N", "number of features");
  a.opt("l1", "X", "L1 coefficient", "1e-3");
  a.opt("lr", "X", "Adam learning rate", "3e-4");
  a.opt("steps", "N", "training steps", "2000");
  a.opt("batch", "N", "activations per step (drawn with replacement)", "512");
  a.opt("harvest-tokens", "N", "padded tokens per forward while harvesting (memory bound; a longer text runs alone)",
        "8192");
  a.opt("dead-window", "N", "steps without firing after which a feature counts as dead", "500");
  a.opt("checkpoint-every", "N", "checkpoint every N steps (and at the end)", "500");
  a.opt("log-every", "N", "log the losses every N steps", "100");
  a.opt("seed", "S", "random seed (initialisation and batches)", "0");
  a.flag("resume", "continue from DIR/checkpoint when there is one");
  a.opt("model-name", "NAME", "model_name written to cfg.json (default: the model folder's name)");
  a.opt("out", "DIR", "output folder");
  if (!a.parse(argc, argv)) return 0;
  if (!a.has("out")) fail("--out DIR is required");
  if (!a.has("model")) fail("--model is required");
  if (!a.has("hook")) fail("--hook NAME is required");
  if (!a.has("corpus")) fail("--corpus FILE is required");
  if (!a.has("d-sae")) fail("--d-sae N is required");
  S::SaeTrainOptions o;
  o.d_sae = a.integer("d-sae");
  o.l1 = a.number("l1");
  o.lr = a.number("lr");
  o.steps = a.integer("steps");
  o.batch = a.integer("batch");
  o.dead_window = a.integer("dead-window");
  o.checkpoint_every = a.integer("checkpoint-every");
  o.log_every = a.integer("log-every");
  if (o.log_every < 1) fail("--log-every must be >= 1");
  o.seed = (uint64_t)a.integer("seed");
  o.resume = a.on("resume");
  auto hooks = a.all("hook");
  S::HarvestOptions ho;
  ho.max_tokens = a.integer("harvest-tokens");
  if (ho.max_tokens < 1) fail("--harvest-tokens must be >= 1");
  ho.max_seqs = ho.max_tokens;

  if (o.d_sae < 1) fail("--d-sae must be >= 1");
  if (o.steps < 1 || o.batch < 1) fail("--steps and --batch must be >= 1");
  // Under mpirun (issue 18): data-parallel, each rank a part of every batch, gradients summed over ranks.
  o.parallel.rank = dist::rank();
  o.parallel.size = dist::size();
  o.parallel.sum_doubles = [](double* p, size_t n) { dist::allreduce_sum(p, n); };
  o.parallel.sum_floats = [](float* p, size_t n) { dist::allreduce_sum(p, n); };
  o.parallel.barrier = [] { dist::barrier(); };
  ho.parallel = o.parallel;  // the harvest's forwards divided over the ranks too
  if (o.parallel.size > 1 && o.batch < o.parallel.size)
    fail("--batch ", o.batch, " is smaller than the ", o.parallel.size, " ranks that share each batch");
  const bool lead = dist::rank() == 0;  // rank 0 alone writes the folder

  Loaded m = load_from_flags(a);  // the harvest, and the training, run on --device
  {
    auto names = m.model->hook_names();
    for (auto& h : hooks)
      if (std::find(names.begin(), names.end(), h) == names.end())
        fail("--hook '", h, "' is not a hook point of the model (see `mechscope info`)");
  }
  std::vector<std::vector<int64_t>> seqs = sae_corpus_ids(a, m);
  // Issue 17: the folder is claimed (lock, no foreign folder, "status": "running") once the inputs
  // are checked and before the harvest and the training, so a second run or a folder that is not
  // mechscope's is refused at once, not after the work; the SAEs and checkpoints are then written in
  // place (a long run that --resume continues), manifest.json with "complete" last.
  std::string out = a.str("out");
  if (lead) report::claim_output_dir(out, "sae train", report::OutputMode::InPlace);
  auto t0 = std::chrono::steady_clock::now();
  std::vector<at::Tensor> acts = S::harvest_activations(*m.model, seqs, hooks, ho);
  double t_harvest = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string model_name = a.has("model-name") ? a.str("model-name") : m.dir;
  while (model_name.size() > 1 && model_name.back() == '/') model_name.pop_back();
  if (!a.has("model-name") && model_name.find('/') != std::string::npos)
    model_name = model_name.substr(model_name.rfind('/') + 1);

  report::Manifest man;
  man.start();
  man.argv.assign(argv, argv + argc);
  man.command = "sae train";
  man.model = m.dir;
  man.seed = o.seed;
  man.versions["libtorch"] = TORCH_VERSION;
  nlohmann::json settings{{"d_sae", o.d_sae},
                          {"l1", o.l1},
                          {"lr", o.lr},
                          {"steps", o.steps},
                          {"batch", o.batch},
                          {"dead_window", o.dead_window},
                          {"corpus", a.str("corpus")},
                          {"texts", seqs.size()},
                          {"harvest_seconds", t_harvest},
                          {"harvest_tokens", ho.max_tokens},
                          {"threads", at::get_num_threads()},
                          {"ranks", dist::size()}};
  std::string log_lines;
  for (size_t k = 0; k < hooks.size(); ++k) {
    std::string dir = hooks.size() == 1 ? out : join_path(out, hooks[k]);
    o.checkpoint_dir = join_path(out, hooks.size() == 1 ? "checkpoint" : "checkpoint/" + hooks[k]);
    mechscope::sae::SAEConfig base;
    base.hook_name = hooks[k];
    base.hook_layer = -1;
    {
      auto p = hooks[k].find('.');
      if (hooks[k].rfind("blocks.", 0) == 0) base.hook_layer = std::stoi(hooks[k].substr(p + 1));
    }
    base.reshape_hook_z = hooks[k].size() > 2 && hooks[k].compare(hooks[k].size() - 2, 2, "_z") == 0;
    base.model_name = model_name;
    base.raw = {{"context_size", m.model->config().n_ctx},
                {"prepend_bos", a.on("prepend-bos")},
                {"dataset_path", a.str("corpus")},
                {"l1_coefficient", o.l1},
                {"lr", o.lr},
                {"training_steps", o.steps},
                {"train_batch_size_tokens", o.batch},
                {"seed", o.seed},
                {"trained_by", "mechscope sae train"}};
    auto t1 = std::chrono::steady_clock::now();
    S::SaeTrainResult r = S::train_sae(acts[k], base, o, [&](const S::SaeTrainStatus& s) {
      if (!lead) return;
      std::fprintf(stderr, "%s step %lld: loss %.5g (mse %.5g, l1 %.5g), L0 %.2f, explained variance %.4f, dead %lld\n",
                   hooks[k].c_str(), (long long)s.step, s.loss, s.mse, s.l1_loss, s.l0, s.explained_variance,
                   (long long)s.dead);
    });
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    if (!lead) continue;
    mechscope::sae::save_sae(r.sae, dir);
    for (auto& s : r.log)
      log_lines += nlohmann::json{{"hook", hooks[k]},
                                  {"step", s.step},
                                  {"loss", s.loss},
                                  {"mse", s.mse},
                                  {"l1_loss", s.l1_loss},
                                  {"l0", s.l0},
                                  {"explained_variance", s.explained_variance},
                                  {"dead", s.dead}}
                       .dump() +
                   "\n";
    std::string rel = hooks.size() == 1 ? "" : hooks[k] + "/";
    for (const char* f : {"cfg.json", "sae_weights.safetensors", "sparsity.safetensors"}) man.files.push_back(rel + f);
    const auto& last = r.log.back();
    settings["saes"].push_back({{"hook", hooks[k]},
                                {"tokens", acts[k].size(0)},
                                {"seconds", secs},
                                {"resumed_from", r.resumed_from},
                                {"loss", last.loss},
                                {"l0", last.l0},
                                {"explained_variance", last.explained_variance},
                                {"dead", last.dead}});
    std::printf(
        "%s: %lld tokens, %lld steps in %.1fs: loss %.5g, L0 %.2f, explained variance %.4f, %lld dead of %lld -> %s\n",
        hooks[k].c_str(), (long long)acts[k].size(0), (long long)o.steps, secs, last.loss, last.l0,
        last.explained_variance, (long long)last.dead, (long long)o.d_sae, dir.c_str());
  }
  if (!lead) return 0;
  write_file_atomic(join_path(out, "train_log.jsonl"), log_lines);
  man.files.push_back("train_log.jsonl");
  man.extra = settings;
  man.finish(out);
  report::commit_output_dir(out);  // its own manifest says "complete"
  return 0;
}

}  // namespace mechscope::cli
