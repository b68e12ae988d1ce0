#include "analysis/sae/train.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.h"
#include "core/fs.h"
#include "io/safetensors.h"

namespace mechscope::analysis::sae {

std::vector<at::Tensor> harvest_activations(const models::HookedModel& model,
                                            const std::vector<std::vector<int64_t>>& seqs,
                                            const std::vector<std::string>& hooks, const HarvestOptions& opt) {
  auto names = model.hook_names();
  for (auto& h : hooks)
    if (std::find(names.begin(), names.end(), h) == names.end())
      fail(option("hook"), " '", h, "' is not a hook point of the model (see `mechscope info`)");
  if (opt.max_seqs < 1 || opt.max_tokens < 1) fail("harvest batches need max_seqs and max_tokens >= 1");
  // Longest first, so each batch pads little; the rows come back in corpus order.
  std::vector<size_t> order;
  for (size_t i = 0; i < seqs.size(); ++i)
    if (!seqs[i].empty()) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return seqs[a].size() > seqs[b].size(); });
  std::vector<std::vector<at::Tensor>> rows(hooks.size(), std::vector<at::Tensor>(seqs.size()));
  at::NoGradGuard ng;
  std::vector<at::Tensor> fired(hooks.size());
  hooks::HookSet hs;
  for (size_t k = 0; k < hooks.size(); ++k)
    hs.add(hooks[k], [&fired, k](at::Tensor& t, const hooks::HookContext&) {
      fired[k] = t.dim() == 4 ? t.flatten(2) : t;  // hook_z: [b, p, heads * d_head]
    });
  const DataParallel& dp = opt.parallel;
  size_t next = 0;
  for (int64_t forward = 0; next < order.size(); ++forward) {
    // One forward over the next sequences, right-padded to the longest: padding keys are masked out and
    // real tokens keep positions 0.., so every real row equals the sequence's own run.
    int64_t len = (int64_t)seqs[order[next]].size();
    size_t end = next + 1;
    while (end < order.size() && (int64_t)(end - next) < opt.max_seqs &&
           (int64_t)(end - next + 1) * len <= opt.max_tokens)
      ++end;
    int64_t b = (int64_t)(end - next);
    if (forward % dp.size != dp.rank) {  // another process's forward: its rows arrive in the sum below
      next = end;
      continue;
    }
    // Made on the host row by row, then sent to the model's device in one copy each.
    at::Tensor ids = at::zeros({b, len}, at::kLong), mask = at::zeros({b, len}, at::kLong);
    bool padded = false;
    for (int64_t r = 0; r < b; ++r) {
      const auto& s = seqs[order[next + r]];
      ids[r].narrow(0, 0, (int64_t)s.size()).copy_(at::tensor(s, at::kLong));
      mask[r].narrow(0, 0, (int64_t)s.size()).fill_(1);
      padded = padded || (int64_t)s.size() < len;
    }
    ids = ids.to(model.device());
    models::RunContext ctx;
    ctx.hooks = &hs;
    if (padded) ctx.attention_mask = mask.to(model.device());
    for (auto& f : fired) f = at::Tensor();
    at::Tensor x = model.embed(ids, ctx);
    for (int l = 0; l < (int)model.config().n_layers; ++l) x = model.block(l, x, ctx);
    model.final_norm(x, ctx);
    for (size_t k = 0; k < hooks.size(); ++k) {
      if (!fired[k].defined()) fail("hook '", hooks[k], "' did not fire in the model's forward");
      at::Tensor f = fired[k].to(at::kFloat);
      for (int64_t r = 0; r < b; ++r) {
        size_t i = order[next + r];
        rows[k][i] = f[r].narrow(0, 0, (int64_t)seqs[i].size()).clone();
      }
      fired[k] = at::Tensor();
    }
    next = end;
  }
  if (dp.size > 1) {
    // Each hook's width, from a process that ran a forward (one with none has no row to read it from).
    std::vector<double> width(hooks.size() + 1, 0.0);
    for (size_t k = 0; k < hooks.size(); ++k)
      for (auto& t : rows[k])
        if (t.defined()) {
          width[k] = (double)t.size(1), width.back() = 1;
          break;
        }
    dp.sum_doubles(width.data(), width.size());
    for (size_t k = 0; k < hooks.size(); ++k)
      for (size_t i = 0; i < seqs.size(); ++i)
        if (!rows[k][i].defined() && !seqs[i].empty())
          rows[k][i] = at::zeros({(int64_t)seqs[i].size(), (int64_t)(width[k] / width.back())},
                                 at::TensorOptions().dtype(at::kFloat).device(model.device()));
  }
  std::vector<at::Tensor> out;
  for (auto& per_seq : rows) {
    std::vector<at::Tensor> parts;
    for (auto& t : per_seq)
      if (t.defined()) parts.push_back(t);
    if (parts.empty()) fail("the corpus gave no activations");
    out.push_back(at::cat(parts, 0));
    if (dp.size > 1) {  // every row from the one process that computed it, plus zeros: exact
      at::Tensor host = out.back().to(at::kCPU).contiguous();
      dp.sum_floats(host.data_ptr<float>(), (size_t)host.numel());
      out.back() = host.to(model.device());
    }
  }
  return out;
}

namespace {

struct Adam {
  double b1 = 0.9, b2 = 0.999, eps = 1e-8;
  std::vector<at::Tensor> m, v;
  void step(std::vector<at::Tensor>& p, int64_t t, double lr) {
    at::NoGradGuard ng;
    double c1 = 1 - std::pow(b1, (double)t), c2 = 1 - std::pow(b2, (double)t);
    for (size_t i = 0; i < p.size(); ++i) {
      at::Tensor g = p[i].grad();
      m[i].mul_(b1).add_(g, 1 - b1);
      v[i].mul_(b2).addcmul_(g, g, 1 - b2);
      p[i].addcdiv_(m[i], (v[i] / c2).sqrt_().add_(eps), -lr / c1);
    }
  }
};

// The step's rows, drawn on the host (the same on every device) and sent where the activations are:
// the one host-to-device copy of a step.
at::Tensor batch_rows(uint64_t seed, int64_t step, int64_t n, int64_t b, const at::Device& device) {
  std::mt19937_64 rng(seed * 1000003ULL + (uint64_t)step);
  std::uniform_int_distribution<int64_t> d(0, n - 1);
  std::vector<int64_t> idx(b);
  for (auto& i : idx) i = d(rng);
  return at::tensor(idx, at::kLong).to(device);
}

}  // namespace

SaeTrainResult train_sae(const at::Tensor& acts_in, const mechscope::sae::SAEConfig& base, const SaeTrainOptions& o,
                         const std::function<void(const SaeTrainStatus&)>& on_log) {
  if (acts_in.dim() != 2 || acts_in.size(0) < 1) fail("SAE training needs activations [n, d_in]");
  if (o.d_sae < 1) fail(option("d_sae"), " must be >= 1");
  if (o.steps < 1 || o.batch < 1) fail(option("steps"), " and ", option("batch"), " must be >= 1");
  if (!(o.l1 >= 0)) fail(option("l1"), " must be >= 0");
  if (!(o.lr > 0)) fail(option("lr"), " must be > 0");
  // Training runs where the activations are (the model's device): the SAE, Adam's moments and every
  // batch live there; checkpoints are written from host copies.
  at::Tensor acts = acts_in.to(at::kFloat).contiguous();
  const at::Device dev = acts.device();
  const int64_t n = acts.size(0), d = acts.size(1), ds = o.d_sae;

  // Initialisation (SAELens: kaiming-uniform W_dec, rows normalised, W_enc = W_dec^T, b_enc = 0,
  // b_dec = the activations' mean, its b_dec_init_method "mean"). Drawn on the host's generator, so
  // every device starts from the same SAE, and sent once.
  at::manual_seed(o.seed);
  at::Tensor W_dec = at::empty({ds, d}).uniform_(-1, 1) * std::sqrt(6.0 / (double)d) / std::sqrt(2.0);
  W_dec = (W_dec / W_dec.norm(2, {1}, true)).to(dev);
  at::Tensor W_enc = W_dec.t().contiguous(), b_enc = at::zeros({ds}, acts.options()), b_dec = acts.mean({0});
  std::vector<at::Tensor> params{W_enc, b_enc, W_dec, b_dec};
  Adam adam;
  for (auto& p : params) adam.m.push_back(at::zeros_like(p)), adam.v.push_back(at::zeros_like(p));
  at::Tensor since_fired = at::zeros({ds}, at::TensorOptions().dtype(at::kLong).device(dev));
  int64_t start = 0;
  const DataParallel& dp = o.parallel;
  const bool lead = dp.rank == 0;  // the one process that writes checkpoints
  if (dp.size > 1 && o.batch < dp.size)
    fail(option("batch"), " ", o.batch, " is smaller than the ", dp.size, " processes that share each batch");
  SaeTrainResult res;

  std::string state_json = o.checkpoint_dir.empty() ? "" : join_path(o.checkpoint_dir, "state.json");
  if (o.resume && !state_json.empty() && file_exists(state_json)) {
    nlohmann::json js = nlohmann::json::parse(read_file(state_json));
    if (js.value("d_sae", (int64_t)-1) != ds || js.value("d_in", (int64_t)-1) != d)
      fail(option("resume"), ": the checkpoint in ", o.checkpoint_dir, " is for d_in ", js.value("d_in", 0), ", d_sae ",
           js.value("d_sae", 0), ", not ", d, ", ", ds);
    auto f = io::SafetensorsFile::open(join_path(o.checkpoint_dir, "state.safetensors"));
    const char* names[] = {"W_enc", "b_enc", "W_dec", "b_dec"};
    for (int i = 0; i < 4; ++i) {
      params[i] = f->get(names[i]).clone().to(dev);
      adam.m[i] = f->get(std::string("adam_m.") + names[i]).clone().to(dev);
      adam.v[i] = f->get(std::string("adam_v.") + names[i]).clone().to(dev);
    }
    since_fired = f->get("steps_since_fired").clone().to(dev);
    start = js["step"].get<int64_t>();
    res.resumed_from = start;
    for (auto& l : js["log"]) {
      SaeTrainStatus s;
      s.step = l["step"], s.loss = l["loss"], s.mse = l["mse"], s.l1_loss = l["l1_loss"], s.l0 = l["l0"];
      s.explained_variance = l["explained_variance"], s.dead = l["dead"];
      res.log.push_back(s);
    }
  }
  if (dp.size > 1) {
    // Rank 0's state on every rank, summed with zeros (exact): the ranks then take the same steps, and a
    // rank that sees no checkpoint (no shared filesystem) resumes from rank 0's.
    at::NoGradGuard ng;
    std::vector<at::Tensor*> state;
    for (int i = 0; i < 4; ++i) state.insert(state.end(), {&params[i], &adam.m[i], &adam.v[i]});
    std::vector<at::Tensor> flat;
    for (auto* t : state) flat.push_back(t->reshape({-1}).to(at::kCPU));
    at::Tensor all = at::cat(flat).contiguous();
    if (!lead) all.zero_();
    dp.sum_floats(all.data_ptr<float>(), (size_t)all.numel());
    int64_t at_ = 0;
    for (auto* t : state) {
      *t = all.narrow(0, at_, t->numel()).view(t->sizes()).clone().to(dev);
      at_ += t->numel();
    }
    at::Tensor counts = since_fired.to(at::kCPU, at::kDouble).contiguous();
    if (!lead) counts.zero_();
    dp.sum_doubles(counts.data_ptr<double>(), (size_t)counts.numel());
    since_fired = counts.to(at::kLong).to(dev);
    double first = lead ? (double)start : 0;
    dp.sum_doubles(&first, 1);
    start = res.resumed_from = (int64_t)first;
  }
  for (auto& p : params) p.requires_grad_(true);
  auto log_json = [&]() {
    nlohmann::json a = nlohmann::json::array();
    for (auto& s : res.log)
      a.push_back({{"step", s.step},
                   {"loss", s.loss},
                   {"mse", s.mse},
                   {"l1_loss", s.l1_loss},
                   {"l0", s.l0},
                   {"explained_variance", s.explained_variance},
                   {"dead", s.dead}});
    return a;
  };
  auto save_checkpoint = [&](int64_t step) {
    make_dirs(o.checkpoint_dir);
    const char* names[] = {"W_enc", "b_enc", "W_dec", "b_dec"};
    std::vector<std::pair<std::string, at::Tensor>> t;
    // Host copies, once per checkpoint (no-ops on the CPU).
    for (int i = 0; i < 4; ++i) {
      t.emplace_back(names[i], params[i].detach().to(at::kCPU));
      t.emplace_back(std::string("adam_m.") + names[i], adam.m[i].to(at::kCPU));
      t.emplace_back(std::string("adam_v.") + names[i], adam.v[i].to(at::kCPU));
    }
    t.emplace_back("steps_since_fired", since_fired.to(at::kCPU));
    io::write_safetensors(join_path(o.checkpoint_dir, "state.safetensors"), t);
    // state.json last: a run killed in between resumes from the previous checkpoint
    write_file_atomic(state_json,
                      nlohmann::json{{"step", step}, {"d_in", d}, {"d_sae", ds}, {"log", log_json()}}.dump());
  };

  // A sum over all ranks, in place, of host tensors of one dtype (float or double).
  auto sum_over_ranks = [&](at::Tensor& t) {
    at::Tensor h = t.to(at::kCPU).contiguous();
    if (h.scalar_type() == at::kDouble) dp.sum_doubles(h.data_ptr<double>(), (size_t)h.numel());
    else dp.sum_floats(h.data_ptr<float>(), (size_t)h.numel());
    t = h.to(dev);
  };
  for (int64_t step = start; step < o.steps; ++step) {
    at::Tensor rows = batch_rows(o.seed, step, n, o.batch, dev);
    if (dp.size > 1) rows = rows.slice(0, dp.rank, o.batch, dp.size);  // this rank's part: every size-th row
    at::Tensor x = acts.index_select(0, rows);
    at::Tensor& We = params[0];
    at::Tensor& be = params[1];
    at::Tensor& Wd = params[2];
    at::Tensor& bd = params[3];
    at::Tensor a = at::relu(at::matmul(x - bd, We) + be);
    at::Tensor xh = at::matmul(a, Wd) + bd;
    // One process: means over the batch; a rank: its rows' share of the global batch's mean.
    auto over_batch = [&](const at::Tensor& per_row) {
      return dp.size == 1 ? per_row.mean() : per_row.sum() / (double)o.batch;
    };
    at::Tensor mse = over_batch((xh - x).pow(2).sum(-1));
    at::Tensor l1 = over_batch((a * Wd.norm(2, {1})).abs().sum(-1));
    at::Tensor loss = mse + o.l1 * l1;
    for (auto& p : params)
      if (p.grad().defined()) p.mutable_grad().zero_();
    loss.backward();
    if (dp.size > 1) {  // the global batch's gradient: the sum of the parts'
      at::NoGradGuard ng;
      std::vector<at::Tensor> flat;
      for (auto& p : params) flat.push_back(p.grad().reshape({-1}));
      at::Tensor all = at::cat(flat);
      sum_over_ranks(all);  // one copy each way
      int64_t at_ = 0;
      for (auto& p : params) {
        p.mutable_grad().copy_(all.narrow(0, at_, p.numel()).view(p.sizes()));
        at_ += p.numel();
      }
    }
    {
      at::NoGradGuard ng;
      // remove_gradient_parallel_to_decoder_directions: keeps the unit-norm constraint first-order.
      at::Tensor g = Wd.grad();
      g.sub_((g * Wd).sum(-1, true) * Wd);
    }
    adam.step(params, step + 1, o.lr);
    at::NoGradGuard ng;
    Wd.div_(Wd.norm(2, {1}, true));
    at::Tensor fired = (a > 0).any(0);
    if (dp.size > 1) {  // fired on any rank's rows
      at::Tensor f = fired.to(at::kFloat);
      sum_over_ranks(f);
      fired = f > 0;
    }
    since_fired.add_(1).masked_fill_(fired, 0);
    bool last = step + 1 == o.steps;
    if ((step + 1) % o.log_every == 0 || last) {
      SaeTrainStatus s;
      s.step = step + 1;
      // One copy back per log line: the losses, L0, the batch's variance and the dead count together.
      at::Tensor vals;
      if (dp.size == 1) {
        vals = at::stack({loss.detach().to(at::kDouble), mse.detach().to(at::kDouble), l1.detach().to(at::kDouble),
                          (a > 0).sum(-1).to(at::kDouble).mean(),
                          (x - x.mean({0}, true)).pow(2).sum(-1).mean().to(at::kDouble),
                          (since_fired > o.dead_window).sum().to(at::kDouble)})
                   .to(at::kCPU)
                   .contiguous();
      } else {  // the parts' sums over all ranks, the variance about the global batch's mean
        at::Tensor mean = x.to(at::kDouble).sum(0) / (double)o.batch;
        sum_over_ranks(mean);
        vals = at::stack({loss.detach().to(at::kDouble), mse.detach().to(at::kDouble), l1.detach().to(at::kDouble),
                          (a > 0).sum().to(at::kDouble) / (double)o.batch,
                          (x.to(at::kDouble) - mean).pow(2).sum() / (double)o.batch,
                          at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(dev))});
        sum_over_ranks(vals);
        vals = vals.to(at::kCPU).contiguous();
        vals[5].fill_((double)(since_fired > o.dead_window).sum().item<int64_t>());  // the same on every rank
      }
      const double* v = vals.data_ptr<double>();
      s.loss = v[0];
      s.mse = v[1];
      s.l1_loss = v[2];
      s.l0 = v[3];
      s.explained_variance = 1 - s.mse / v[4];
      s.dead = (int64_t)v[5];
      res.log.push_back(s);
      if (on_log) on_log(s);
    }
    // The last step is checkpointed too, so --resume with more --steps continues a finished run.
    if (lead && !o.checkpoint_dir.empty() && ((o.checkpoint_every > 0 && (step + 1) % o.checkpoint_every == 0) || last))
      save_checkpoint(step + 1);
  }

  if (!lead) return res;  // the SAE is rank 0's to describe and save
  mechscope::sae::SAE& s = res.sae;
  s.cfg = base;
  s.cfg.architecture = mechscope::sae::Architecture::Standard;
  s.cfg.d_in = d;
  s.cfg.d_sae = ds;
  s.cfg.apply_b_dec_to_input = true;
  s.cfg.normalize = mechscope::sae::Normalize::None;
  at::NoGradGuard ng;
  s.W_enc = params[0].detach().clone();
  s.b_enc = params[1].detach().clone();
  s.W_dec = params[2].detach().clone();
  s.b_dec = params[3].detach().clone();
  // SAELens's log_feature_sparsity: log10 of the fraction of tokens on which a feature fires (+1e-10).
  at::Tensor frac = at::zeros({ds}, at::TensorOptions().dtype(at::kDouble).device(dev));
  for (int64_t i = 0; i < n; i += 4096) {
    at::Tensor a = mechscope::sae::encode(s, acts.slice(0, i, std::min(n, i + 4096)));
    frac += (a > 0).sum(0).to(at::kDouble);
  }
  s.log_sparsity = (frac / (double)n + 1e-10).log10().to(at::kFloat);
  return res;
}

}  // namespace mechscope::analysis::sae
