#include "analysis/train/train.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include <unistd.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "models/generate.h"
#include "models/model.h"
#include "tokenizers/hf_tokenizer.h"
#include "tokenizers/tokenizer.h"

namespace mechscope::analysis {

namespace {

using Clock = std::chrono::steady_clock;

struct Example {
  std::vector<int64_t> ids;  // a fact's prompt…, answer; or a text's tokens…, <|endoftext|>
};

// What one training run learns, whichever front end (facts, texts) made it.
struct TrainData {
  std::vector<Example> examples;
  double last_weight = 1;      // loss weight of each example's last target (a fact's answer)
  bool last_only = false;      // accuracy of the last target only (facts) or of every target (texts)
  size_t eval_limit = 0;       // examples evaluated for accuracy (0: all)
  std::string unit;            // "facts" or "texts", in train_summary.json
  std::string tokenizer_json;  // saved as the model's tokenizer.json
  int64_t vocab = 0, bos = 0, pad = 0;
  std::string pad_token;  // tokenizer_config.json's pad_token ("" = none)
};

// No BOS: the model sees prompts exactly as `mechscope locate` feeds them (as ROME traces GPT-2,
// whose tokenizer adds none).
std::vector<Example> encode_facts(const KnowledgeGraph& kg, const tokenizers::Tokenizer& tok) {
  std::vector<Example> out;
  for (auto& f : kg.facts) {
    Example e;
    auto p = tok.encode(kg.prompt(f));
    auto a = tok.encode(kg.entity_ids[f.object]);
    if (a.size() != 1) fail("answer '", kg.entity_ids[f.object], "' is not one token of the tokenizer");
    e.ids.insert(e.ids.end(), p.begin(), p.end());
    e.ids.push_back(a[0]);
    out.push_back(std::move(e));
  }
  return out;
}

// GPT-2 initialisation (Radford et al.): N(0, 0.02), residual projections scaled by 1/sqrt(2 n_layers).
void write_initial_model(const std::string& dir, const TrainOptions& o, int64_t vocab) {
  make_dirs(dir);
  at::manual_seed(o.seed);
  int64_t d = o.d_model;
  double proj_std = 0.02 / std::sqrt(2.0 * o.n_layers);
  std::vector<std::pair<std::string, at::Tensor>> w{{"transformer.wte.weight", at::randn({vocab, d}) * 0.02},
                                                    {"transformer.wpe.weight", at::randn({o.n_ctx, d}) * 0.01}};
  for (int l = 0; l < o.n_layers; ++l) {
    std::string p = "transformer.h." + std::to_string(l) + ".";
    w.emplace_back(p + "ln_1.weight", at::ones({d}));
    w.emplace_back(p + "ln_1.bias", at::zeros({d}));
    w.emplace_back(p + "attn.c_attn.weight", at::randn({d, 3 * d}) * 0.02);
    w.emplace_back(p + "attn.c_attn.bias", at::zeros({3 * d}));
    w.emplace_back(p + "attn.c_proj.weight", at::randn({d, d}) * proj_std);
    w.emplace_back(p + "attn.c_proj.bias", at::zeros({d}));
    w.emplace_back(p + "ln_2.weight", at::ones({d}));
    w.emplace_back(p + "ln_2.bias", at::zeros({d}));
    w.emplace_back(p + "mlp.c_fc.weight", at::randn({d, 4 * d}) * 0.02);
    w.emplace_back(p + "mlp.c_fc.bias", at::zeros({4 * d}));
    w.emplace_back(p + "mlp.c_proj.weight", at::randn({4 * d, d}) * proj_std);
    w.emplace_back(p + "mlp.c_proj.bias", at::zeros({d}));
  }
  w.emplace_back("transformer.ln_f.weight", at::ones({d}));
  w.emplace_back("transformer.ln_f.bias", at::zeros({d}));
  io::write_safetensors(join_path(dir, "model.safetensors"), w, {{"format", "pt"}});
}

nlohmann::json gpt2_config(const TrainOptions& o, int64_t vocab, int64_t bos, const std::string& dtype) {
  return {{"model_type", "gpt2"},       {"architectures", {"GPT2LMHeadModel"}},
          {"n_embd", o.d_model},        {"n_layer", o.n_layers},
          {"n_head", o.n_heads},        {"n_inner", nullptr},
          {"n_positions", o.n_ctx},     {"n_ctx", o.n_ctx},
          {"vocab_size", vocab},        {"activation_function", "gelu_new"},
          {"layer_norm_epsilon", 1e-5}, {"resid_pdrop", 0.0},
          {"embd_pdrop", 0.0},          {"attn_pdrop", 0.0},
          {"scale_attn_weights", true}, {"tie_word_embeddings", true},
          {"bos_token_id", bos},        {"eos_token_id", bos},
          {"torch_dtype", dtype},       {"use_cache", true}};
}

// AdamW exactly as torch.optim.AdamW: decoupled decay p *= 1 - lr * wd, bias-corrected moments.
struct AdamW {
  double b1 = 0.9, b2 = 0.999, eps = 1e-8;
  std::vector<at::Tensor> m, v;
  void init(const std::vector<at::Tensor>& params) {
    for (auto& p : params) {
      m.push_back(at::zeros_like(p));
      v.push_back(at::zeros_like(p));
    }
  }
  void step(std::vector<at::Tensor>& params, const std::vector<bool>& decay, int t, double lr, double wd) {
    at::NoGradGuard ng;
    double c1 = 1 - std::pow(b1, t), c2 = 1 - std::pow(b2, t);
    for (size_t i = 0; i < params.size(); ++i) {
      at::Tensor g = params[i].grad();
      if (!g.defined()) continue;
      if (decay[i]) params[i].mul_(1 - lr * wd);
      m[i].mul_(b1).add_(g, 1 - b1);
      v[i].mul_(b2).addcmul_(g, g, 1 - b2);
      at::Tensor denom = (v[i] / c2).sqrt_().add_(eps);
      params[i].addcdiv_(m[i], denom, -lr / c1);
    }
  }
};

double lr_at(const TrainOptions& o, int step) {
  if (step < o.warmup) return o.lr * (step + 1) / o.warmup;
  double t = double(step - o.warmup) / std::max(1, o.steps - o.warmup);
  double min_lr = o.lr * o.min_lr_ratio;
  return min_lr + 0.5 * (o.lr - min_lr) * (1 + std::cos(M_PI * std::min(1.0, t)));
}

// Batch `step` is a function of (seed, step) alone, so a resumed run sees the same batches.
std::vector<size_t> batch_indices(const TrainOptions& o, int step, size_t n) {
  std::mt19937_64 rng(o.seed * 1000003ULL + step);
  std::vector<size_t> idx(std::min<size_t>(o.batch, n));
  for (auto& i : idx) i = rng() % n;
  return idx;
}

// ids/targets [b, len] right-padded; weights [b, len]: 0 on padding, answer_weight on the answer.
void make_batch(const std::vector<Example>& ex, const std::vector<size_t>& idx, double answer_weight, int64_t pad,
                at::Tensor& ids, at::Tensor& mask, at::Tensor& targets, at::Tensor& weights) {
  size_t len = 0;
  for (size_t i : idx) len = std::max(len, ex[i].ids.size() - 1);
  int64_t b = idx.size();
  ids = at::full({b, (int64_t)len}, pad, at::kLong);
  mask = at::zeros({b, (int64_t)len}, at::kLong);
  targets = at::zeros({b, (int64_t)len}, at::kLong);
  weights = at::zeros({b, (int64_t)len}, at::kFloat);
  for (int64_t r = 0; r < b; ++r) {
    const auto& s = ex[idx[r]].ids;
    int64_t n = s.size() - 1;
    ids[r].narrow(0, 0, n).copy_(at::tensor(std::vector<int64_t>(s.begin(), s.end() - 1), at::kLong));
    targets[r].narrow(0, 0, n).copy_(at::tensor(std::vector<int64_t>(s.begin() + 1, s.end()), at::kLong));
    mask[r].narrow(0, 0, n).fill_(1);
    weights[r].narrow(0, 0, n).fill_(1.0);
    weights[r][n - 1] = answer_weight;
  }
}

// The batch made on the host (its rows are written one by one), then sent to `device` in one copy
// per tensor.
void make_batch_on(const at::Device& device, const std::vector<Example>& ex, const std::vector<size_t>& idx,
                   double answer_weight, int64_t pad, at::Tensor& ids, at::Tensor& mask, at::Tensor& targets,
                   at::Tensor& weights) {
  make_batch(ex, idx, answer_weight, pad, ids, mask, targets, weights);
  if (device.is_cpu()) return;
  ids = ids.to(device), mask = mask.to(device), targets = targets.to(device), weights = weights.to(device);
}

// Top-1 accuracy of the last target of each example (last_only), or of every target.
double accuracy_of(const models::HookedModel& model, const std::vector<Example>& ex, bool last_only, size_t limit = 0) {
  at::NoGradGuard ng;
  size_t n = limit ? std::min(limit, ex.size()) : ex.size();
  double correct = 0, total = 0;
  for (size_t start = 0; start < n; start += 256) {
    std::vector<size_t> idx;
    for (size_t i = start; i < std::min(n, start + 256); ++i) idx.push_back(i);
    at::Tensor ids, mask, targets, weights;
    make_batch_on(model.device(), ex, idx, 1.0, 0, ids, mask, targets, weights);
    models::RunContext ctx;
    ctx.attention_mask = mask;
    at::Tensor pred = model.forward(ids, ctx).argmax(-1);  // [b, len]
    if (last_only) {
      // Each row's prediction at its answer position, gathered where the model ran: one copy back.
      std::vector<int64_t> last, answer;
      for (size_t r = 0; r < idx.size(); ++r) {
        last.push_back((int64_t)ex[idx[r]].ids.size() - 2);
        answer.push_back(ex[idx[r]].ids.back());
      }
      at::Tensor at_last = pred.gather(1, at::tensor(last, at::kLong).to(pred.device()).unsqueeze(1)).squeeze(1);
      correct += at_last.eq(at::tensor(answer, at::kLong).to(pred.device())).sum().item<double>();
      total += idx.size();
    } else {
      correct += (pred.eq(targets) * mask).sum().item<double>();
      total += mask.sum().item<double>();
    }
  }
  return correct / total;
}

// FNV-1a over every example's ids and the tokenizer: a resumed run must see the data it started on.
std::string data_fingerprint(const TrainData& d) {
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&](uint64_t x) {
    for (int i = 0; i < 8; ++i) h = (h ^ ((x >> (8 * i)) & 0xff)) * 1099511628211ULL;
  };
  for (auto& e : d.examples) {
    mix(e.ids.size());
    for (int64_t id : e.ids) mix((uint64_t)id);
  }
  for (unsigned char c : d.tokenizer_json) mix(c);
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)h);
  return buf;
}

// load_model maps weights read-only; training gives each parameter its own float32 storage in place
// (set_), so the model's tensors and the optimizer's are the same.
std::vector<std::pair<std::string, at::Tensor>> make_trainable(models::HookedModel& model) {
  auto params = model.parameters();
  for (auto& [name, t] : params) {
    at::Tensor owned = t.to(at::kFloat).clone();
    t.set_(owned);
    t.requires_grad_(true);
  }
  return params;
}

// What changes the trained numbers; a resumed run must have the same or it is not the run it claims.
nlohmann::json options_json(const TrainOptions& o) {
  return {{"steps", o.steps},   {"batch", o.batch},
          {"lr", o.lr},         {"min_lr_ratio", o.min_lr_ratio},
          {"warmup", o.warmup}, {"weight_decay", o.weight_decay},
          {"clip", o.clip},     {"answer_weight", o.answer_weight},
          {"seed", o.seed}};
}

// Refuses sizes the machine cannot hold before anything is allocated or created: weights, their copy,
// gradients and AdamW's two moments (float32), plus one batch's saved activations and logits.
void check_memory(const TrainOptions& o, int64_t vocab) {
  double d = o.d_model, L = o.n_layers, T = o.n_ctx, B = o.batch, H = o.n_heads;
  double params = vocab * d + T * d + L * (12 * d * d + 13 * d) + 2 * d;
  double act = B * T * (L * (16 * d + 2 * H * T) + 3.0 * vocab);
  double need = 4 * (5 * params + act);
  double have = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGE_SIZE);
  if (have > 0 && need > have)
    fail("a model of ", o.n_layers, " layers x d_model ", o.d_model, " (", params / 1e6, " M parameters, n_ctx ",
         o.n_ctx, ", batch ", o.batch, ") needs about ", need / 1e9, " GB to train; this machine has ", have / 1e9,
         " GB");
}

// A checkpoint continues only with the shape and settings it was made with.
void check_resume(const std::string& ckpt, const TrainOptions& o, int64_t vocab, const std::string& data) {
  nlohmann::json cfg = read_json_file(join_path(ckpt, "config.json"));
  std::pair<const char*, int64_t> shape[] = {{"n_layer", o.n_layers},
                                             {"n_embd", o.d_model},
                                             {"n_head", o.n_heads},
                                             {"n_positions", o.n_ctx},
                                             {"vocab_size", vocab}};
  for (auto& [key, want] : shape)
    if (cfg.value(key, nlohmann::json()) != nlohmann::json(want))
      fail("resume: the checkpoint in '", ckpt, "' has ", key, " ", cfg.value(key, nlohmann::json()).dump(),
           ", this run asks for ", want, "; give the checkpoint's sizes or a new output folder");
  nlohmann::json st = read_json_file(join_path(ckpt, "state.json"));
  if (st.contains("data") && st["data"] != data)
    fail("resume: the checkpoint in '", ckpt,
         "' was trained on other data (corpus, facts or tokenizer); resume with "
         "the same data or start a new output folder");
  if (!st.contains("options")) return;  // written before options were recorded: the shape is all we know
  nlohmann::json now = options_json(o);
  for (auto it = now.begin(); it != now.end(); ++it)
    if (st["options"].value(it.key(), nlohmann::json()) != it.value())
      fail("resume: the checkpoint in '", ckpt, "' was trained with ", it.key(), " ",
           st["options"].value(it.key(), nlohmann::json()).dump(), ", this run has ", it.value().dump(),
           "; resume with the same settings or start a new output folder");
}

void check_options(const TrainOptions& o) {
  if (o.steps < 1 || o.batch < 1) fail(option("steps"), " and ", option("batch"), " must be positive");
  if (o.d_model % o.n_heads)
    fail(option("d_model"), " ", o.d_model, " is not divisible by ", option("n_heads"), " ", o.n_heads);
  if (o.save_dtype != "float16" && o.save_dtype != "float32") fail(option("save_dtype"), " must be float16 or float32");
}

int64_t bos_of(const tokenizers::Tokenizer& tok, const std::string& where) {
  auto bos = tok.bos_id() ? *tok.bos_id() : tok.token_to_id("<|endoftext|>");
  if (bos < 0) fail("tokenizer '", where, "' has no <|endoftext|> token (the BOS/EOS of the saved config)");
  return bos;
}

// Everything the data can get wrong has been checked by the front end before this runs, so a bad
// corpus or graph leaves no output folder behind.
TrainResult train_model(const TrainData& data, const TrainOptions& o, const std::string& out,
                        const std::function<void(const TrainStatus&)>& on_status) {
  const auto& examples = data.examples;
  int64_t vocab = data.vocab, bos = data.bos;
  check_memory(o, vocab);
  std::string fingerprint = data_fingerprint(data);

  const DataParallel& dp = o.parallel;
  const bool lead = dp.rank == 0;  // the one process that writes files
  if (dp.size > 1 && o.batch < dp.size)
    fail(option("batch"), " ", o.batch, " is smaller than the ", dp.size, " processes that share each batch");
  std::string ckpt = join_path(out, "checkpoint");
  int start = 0;
  nlohmann::json state;
  bool resuming = o.resume && file_exists(join_path(ckpt, "state.json"));
  if (resuming) check_resume(ckpt, o, vocab, fingerprint);
  if (lead) make_dirs(out);
  if (resuming) {
    state = read_json_file(join_path(ckpt, "state.json"));
    start = state.at("step").get<int>();
  } else if (lead) {
    write_initial_model(ckpt, o, vocab);
    write_file_atomic(join_path(ckpt, "config.json"), gpt2_config(o, vocab, bos, "float32").dump(2));
  }
  if (dp.size > 1) dp.barrier();  // the other processes load the initial model rank 0 wrote
  models::LoadOptions lo;
  lo.device = o.device;  // the weights are read to the host and moved once
  auto model = models::load_model(ckpt, lo);
  auto named = make_trainable(*model);
  std::vector<at::Tensor> params;
  std::vector<bool> decay;
  for (auto& [name, t] : named) {
    params.push_back(t);
    decay.push_back(t.dim() >= 2);  // no decay on LayerNorm weights and biases
  }
  AdamW opt;
  opt.init(params);
  if (start > 0) {
    auto st = io::SafetensorsFile::open(join_path(ckpt, "optimizer.safetensors"));
    for (size_t i = 0; i < params.size(); ++i) {
      opt.m[i].copy_(st->get("m." + named[i].first, at::kFloat));
      opt.v[i].copy_(st->get("v." + named[i].first, at::kFloat));
    }
  }

  std::string log_path = join_path(out, "training_log.jsonl");
  std::string log = start > 0 && file_exists(log_path) ? read_file(log_path) : "";
  auto t0 = Clock::now();
  double prior_seconds = start > 0 ? state.value("seconds", 0.0) : 0.0;
  TrainStatus status;
  auto save_checkpoint = [&](int step) {
    at::NoGradGuard ng;
    // Host copies, once per save (no-ops on the CPU).
    std::vector<std::pair<std::string, at::Tensor>> w, s;
    for (size_t i = 0; i < params.size(); ++i) {
      w.emplace_back(named[i].first, params[i].detach().to(at::kCPU));
      s.emplace_back("m." + named[i].first, opt.m[i].to(at::kCPU));
      s.emplace_back("v." + named[i].first, opt.v[i].to(at::kCPU));
    }
    io::write_safetensors(join_path(ckpt, "model.safetensors.next"), w);
    io::write_safetensors(join_path(ckpt, "optimizer.safetensors.next"), s);
    // The state file is written last: a run killed in between resumes from the previous checkpoint.
    std::rename(join_path(ckpt, "model.safetensors.next").c_str(), join_path(ckpt, "model.safetensors").c_str());
    std::rename(join_path(ckpt, "optimizer.safetensors.next").c_str(),
                join_path(ckpt, "optimizer.safetensors").c_str());
    nlohmann::json st{{"step", step},
                      {"seconds", prior_seconds + std::chrono::duration<double>(Clock::now() - t0).count()},
                      {"options", options_json(o)},
                      {"data", fingerprint}};
    write_file_atomic(join_path(ckpt, "state.json"), st.dump());
    write_file_atomic(log_path, log);
  };

  for (int step = start; step < o.steps; ++step) {
    at::Tensor ids, mask, targets, weights;
    std::vector<size_t> idx = batch_indices(o, step, examples.size());
    if (dp.size > 1) {  // this process's part of the global batch: every size-th example
      std::vector<size_t> mine;
      for (size_t k = (size_t)dp.rank; k < idx.size(); k += (size_t)dp.size) mine.push_back(idx[k]);
      idx = std::move(mine);
    }
    make_batch_on(o.device, examples, idx, data.last_weight, data.pad, ids, mask, targets, weights);
    models::RunContext ctx;
    ctx.attention_mask = mask;
    at::Tensor logits = model->forward(ids, ctx);  // [b, len, vocab]
    at::Tensor nll =
        at::cross_entropy_loss(logits.reshape({-1, vocab}), targets.reshape({-1}), {}, at::Reduction::None);
    at::Tensor w = weights.reshape({-1});
    at::Tensor loss;
    if (dp.size == 1) {
      loss = (nll * w).sum() / w.sum();
    } else {  // this part's share of the global batch's loss: its weighted sum over all parts' weight
      double total_w = w.sum().item<double>();
      dp.sum_doubles(&total_w, 1);
      loss = (nll * w).sum() / total_w;
    }
    for (auto& p : params)
      if (p.grad().defined()) p.mutable_grad().zero_();
    loss.backward();
    double loss_value = loss.item<double>();
    if (dp.size > 1) {  // the global batch's gradient and loss: the sums of the parts'
      at::NoGradGuard ng;
      std::vector<at::Tensor> flat;
      for (auto& p : params) {
        if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
        flat.push_back(p.grad().reshape({-1}).to(at::kFloat));
      }
      at::Tensor all = at::cat(flat).to(at::kCPU).contiguous();  // MPI sums host memory: one copy each way
      dp.sum_floats(all.data_ptr<float>(), (size_t)all.numel());
      int64_t at_ = 0;
      for (auto& p : params) {
        int64_t n = p.numel();
        p.mutable_grad().copy_(all.narrow(0, at_, n).view(p.sizes()));
        at_ += n;
      }
      dp.sum_doubles(&loss_value, 1);
    }
    if (o.clip > 0) {
      at::NoGradGuard ng;
      // Each parameter's squared norm where the gradients are, all read back in one copy per step and
      // summed in double in order (as one item() per parameter did).
      std::vector<at::Tensor> sq;
      for (auto& p : params) sq.push_back(p.grad().pow(2).sum());
      at::Tensor host = at::stack(sq).to(at::kCPU, at::kDouble).contiguous();
      double total = 0;
      for (int64_t i = 0; i < host.numel(); ++i) total += host.data_ptr<double>()[i];
      total = std::sqrt(total);
      if (total > o.clip)
        for (auto& p : params) p.mutable_grad().mul_(o.clip / (total + 1e-6));
    }
    double lr = lr_at(o, step);
    opt.step(params, decay, step + 1, lr, o.weight_decay);

    status.step = step + 1;
    status.loss = loss_value;
    status.seconds = prior_seconds + std::chrono::duration<double>(Clock::now() - t0).count();
    bool eval = (status.step % o.eval_every == 0) || status.step == o.steps;
    if (eval && lead) status.accuracy = accuracy_of(*model, examples, data.last_only, data.eval_limit);
    if (eval || status.step % 50 == 0) {
      nlohmann::json line{{"step", status.step}, {"loss", status.loss}, {"lr", lr}, {"seconds", status.seconds}};
      if (eval) line["accuracy"] = status.accuracy;
      log += line.dump() + "\n";
    }
    if (on_status) on_status(status);
    if (lead && status.step % o.checkpoint_every == 0 && status.step < o.steps) save_checkpoint(status.step);
  }
  if (!lead) {  // the model is rank 0's to evaluate and save
    TrainResult r;
    r.steps = o.steps;
    r.final_loss = status.loss;
    return r;
  }

  // The final model: weights in the save dtype, HF layout and files.
  TrainResult r;
  r.steps = o.steps;
  r.final_loss = status.loss;
  r.accuracy = start >= o.steps ? accuracy_of(*model, examples, data.last_only, data.eval_limit) : status.accuracy;
  r.seconds = status.seconds;
  r.parameters = model->parameter_count();
  r.examples = examples.size();
  {
    at::NoGradGuard ng;
    const auto& first = examples[0].ids;
    models::RunContext ctx;
    at::Tensor logits =
        model->forward(at::tensor(std::vector<int64_t>(first.begin(), first.end() - 1), at::kLong).unsqueeze(0), ctx)
            .select(1, -1)
            .squeeze(0)
            .to(at::kCPU, at::kDouble)
            .contiguous();
    r.probe_logits.assign(logits.data_ptr<double>(), logits.data_ptr<double>() + logits.numel());
  }
  {
    at::NoGradGuard ng;
    std::vector<std::pair<std::string, at::Tensor>> w;
    at::ScalarType dt = o.save_dtype == "float16" ? at::kHalf : at::kFloat;
    for (size_t i = 0; i < params.size(); ++i) w.emplace_back(named[i].first, params[i].detach().to(at::kCPU, dt));
    io::write_safetensors(join_path(out, "model.safetensors"), w, {{"format", "pt"}});
  }
  write_file_atomic(join_path(out, "config.json"), gpt2_config(o, vocab, bos, o.save_dtype).dump(2) + "\n");
  write_file_atomic(join_path(out, "tokenizer.json"), data.tokenizer_json);
  nlohmann::json tc{{"tokenizer_class", "PreTrainedTokenizerFast"},
                    {"bos_token", "<|endoftext|>"},
                    {"eos_token", "<|endoftext|>"},
                    {"unk_token", "[UNK]"},
                    {"model_max_length", o.n_ctx}};
  if (!data.pad_token.empty()) tc["pad_token"] = data.pad_token;
  write_file_atomic(join_path(out, "tokenizer_config.json"), tc.dump(2) + "\n");
  write_file_atomic(log_path, log);
  nlohmann::json summary{{"steps", r.steps},
                         {"final_loss", r.final_loss},
                         {data.last_only ? "fact_accuracy" : "token_accuracy", r.accuracy},
                         {data.unit, r.examples},
                         {"parameters", r.parameters},
                         {"seconds", r.seconds},
                         {"n_layers", o.n_layers},
                         {"d_model", o.d_model},
                         {"n_heads", o.n_heads},
                         {"batch", o.batch},
                         {"lr", o.lr},
                         {"warmup", o.warmup},
                         {"weight_decay", o.weight_decay},
                         {"clip", o.clip},
                         {"seed", o.seed},
                         {"save_dtype", o.save_dtype}};
  write_file_atomic(join_path(out, "train_summary.json"), summary.dump(2) + "\n");
  return r;
}

}  // namespace

TrainResult train_kg_model(const KnowledgeGraph& kg, const std::string& tokenizer_path, const TrainOptions& o,
                           const std::string& out, const std::function<void(const TrainStatus&)>& on_status) {
  check_options(o);
  auto tok = tokenizers::load_tokenizer(tokenizer_path);
  TrainData d;
  d.bos = bos_of(*tok, tokenizer_path);
  d.vocab = tok->size();
  d.examples = encode_facts(kg, *tok);
  for (auto& e : d.examples)
    if ((int)e.ids.size() > o.n_ctx)
      fail("a fact has ", e.ids.size(), " tokens, more than ", option("n_ctx"), " ", o.n_ctx);
  d.last_weight = o.answer_weight;
  d.last_only = true;
  d.unit = "facts";
  d.tokenizer_json = read_file(tokenizer_path);
  return train_model(d, o, out, on_status);
}

TrainResult train_text_model(const TextCorpus& corpus, const std::string& tokenizer_json, const std::string& where,
                             const TrainOptions& o, const std::string& out,
                             const std::function<void(const TrainStatus&)>& on_status) {
  check_options(o);
  tokenizers::HfTokenizer tok(parse_json(tokenizer_json, where), where);
  TrainData d;
  d.bos = bos_of(tok, where);
  d.vocab = tok.size();
  int64_t pad = tok.token_to_id("[PAD]");
  d.pad = pad >= 0 ? pad : d.bos;
  if (pad >= 0) d.pad_token = "[PAD]";
  for (size_t i = 0; i < corpus.texts.size(); ++i) {
    Example e;
    auto ids = tok.encode(corpus.texts[i]);
    if (ids.empty()) fail(corpus.path, ":", corpus.lines[i], ": the text has no tokens under '", where, "'");
    e.ids.assign(ids.begin(), ids.end());
    // Each text ends with <|endoftext|>, so generation learns where a continuation stops.
    e.ids.push_back(d.bos);
    if ((int64_t)e.ids.size() > o.n_ctx)
      fail(corpus.path, ":", corpus.lines[i], ": the text has ", e.ids.size(), " tokens with <|endoftext|>, more than ",
           option("n_ctx"), " ", o.n_ctx);
    d.examples.push_back(std::move(e));
  }
  d.eval_limit = kTextEvalLimit;
  d.unit = "texts";
  d.tokenizer_json = tokenizer_json;
  return train_model(d, o, out, on_status);
}

double fact_accuracy(const std::string& model_dir, const KnowledgeGraph& kg) {
  auto model = models::load_model(model_dir);
  auto tok = tokenizers::load_tokenizer(model_dir);
  return accuracy_of(*model, encode_facts(kg, *tok), true);
}

}  // namespace mechscope::analysis
