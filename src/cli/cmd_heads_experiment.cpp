// heads ablate and heads patch: generations with heads intervened on vs not, scored (VADER, keyword
// counts, and a sentiment classifier's P(POSITIVE) with --sentiment-model) and compared prompt by prompt.
#include <torch/version.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <limits>

#include "analysis/heads/generate_batch.h"
#include "analysis/heads/patch_generate.h"
#include "analysis/heads/stats.h"
#include "analysis/sentiment/vader.h"
#include "cli/cmd_heads.h"
#include "cli/wire.h"
#include "core/error.h"
#include "core/fs.h"
#include "io/safetensors.h"
#include "report/output.h"

namespace mechscope::cli::heads {

namespace {

// What each generation is scored by: VADER compound of the continuation, keyword counts per emotion,
// and P(POSITIVE) when a classifier is given.
struct Scores {
  std::vector<double> sentiment, positive;
  std::map<std::string, std::vector<double>> keywords;
};

Scores score_texts(const std::vector<std::string>& texts, const Experiment& x) {
  Scores s;
  for (auto& t : texts) {
    s.sentiment.push_back(analysis::sentiment::vader(t).compound);
    for (auto& [e, words] : x.prof.keywords) s.keywords[e].push_back((double)H::count_keywords(t, words));
  }
  if (x.classifier) s.positive = analysis::sentiment::classify_positive(*x.classifier, texts, x.batch).positive;
  return s;
}

nlohmann::json comparison_json(const H::PairedComparison& c) {
  return {{"n", c.n},
          {"baseline_mean", c.mean_a},
          {"intervened_mean", c.mean_b},
          {"mean_diff", c.mean_diff},
          {"ci95", {c.ci_low, c.ci_high}},
          {"p_value", c.p_value},
          {"exact_permutation", c.exact_permutation},
          {"resamples", c.resamples},
          {"seed", c.seed}};
}

// "0:0,3:5" -> "00_35" as the seed names its files (L-H where a number has two digits).
std::string spec_tag(const std::vector<H::HeadRef>& heads) {
  std::string s;
  for (auto& h : heads) {
    std::string one = h.layer < 10 && h.head < 10 ? cat(h.layer, h.head) : cat(h.layer, "-", h.head);
    s += (s.empty() ? "" : "_") + one;
  }
  return s.size() > 80 ? cat(heads.size(), "heads") : s;
}

// Scores the baseline and intervened continuations of one emotion's prompts, compares them prompt by
// prompt, and fills j (every prompt, both runs, the comparisons) and the per-prompt score tensors.
void compare_runs(nlohmann::json& j, std::vector<std::pair<std::string, at::Tensor>>& tensors, const std::string& e,
                  const std::string& side, const std::vector<std::string>& prompt_texts,
                  const std::vector<std::vector<int64_t>>& prompt_ids,
                  const std::vector<std::vector<int64_t>>& base_ids, const std::vector<std::vector<int64_t>>& other_ids,
                  const tokenizers::Tokenizer& tok, const Experiment& x) {
  std::vector<std::string> base_text, other_text;
  for (auto& ids : base_ids) base_text.push_back(decode_known(tok, ids));
  for (auto& ids : other_ids) other_text.push_back(decode_known(tok, ids));
  Scores bs = score_texts(base_text, x), os = score_texts(other_text, x);
  j["sentiment"] = "VADER compound of the continuation";
  if (x.classifier) {
    j["sentiment_model"] = x.classifier->name;
    j["positive"] = "P(" + x.classifier->label + ") of the continuation by " + x.classifier->name;
  }
  for (size_t i = 0; i < prompt_texts.size(); ++i) {
    nlohmann::json p{{"index", i}, {"prompt", prompt_texts[i]}, {"prompt_ids", prompt_ids[i]}};
    auto one = [&](const std::vector<int64_t>& ids, const std::string& text, const Scores& s) {
      nlohmann::json k;
      for (auto& [ke, v] : s.keywords) k[ke] = v[i];
      nlohmann::json r{{"ids", ids}, {"text", text}, {"sentiment", s.sentiment[i]}, {"keywords", k}};
      if (!s.positive.empty()) r["positive"] = s.positive[i];
      return r;
    };
    p["baseline"] = one(base_ids[i], base_text[i], bs);
    p[side] = one(other_ids[i], other_text[i], os);
    j["prompts"].push_back(p);
  }
  j["comparison"]["sentiment"] = comparison_json(H::compare_paired(bs.sentiment, os.sentiment, x.resamples, x.seed));
  if (x.classifier)
    j["comparison"]["positive"] = comparison_json(H::compare_paired(bs.positive, os.positive, x.resamples, x.seed));
  for (auto& [ke, v] : bs.keywords) {
    j["comparison"]["keywords"][ke] = comparison_json(H::compare_paired(v, os.keywords[ke], x.resamples, x.seed));
    double tb = 0, to = 0;
    for (size_t i = 0; i < v.size(); ++i) {
      tb += v[i];
      to += os.keywords[ke][i];
    }
    j["keyword_totals"][ke] = {{"baseline", tb}, {side, to}};
  }
  auto add = [&](const std::string& name, const std::vector<double>& v) {
    tensors.emplace_back(name, at::tensor(v, at::kDouble).to(at::kFloat));
  };
  add(e + ".baseline.sentiment", bs.sentiment);
  add(e + "." + side + ".sentiment", os.sentiment);
  if (x.classifier) {
    add(e + ".baseline.positive", bs.positive);
    add(e + "." + side + ".positive", os.positive);
  }
  for (auto& [ke, v] : bs.keywords) {
    add(e + ".baseline.keywords." + ke, v);
    add(e + "." + side + ".keywords." + ke, os.keywords[ke]);
  }
}

void write_report(report::RunOutput& out, const ExperimentResult& r, const std::string& st_name,
                  const std::map<std::string, std::string>& meta, const std::string& side) {
  for (auto& f : write_experiment_files(out.dir(), r, st_name, meta)) out.add_file(f);
  for (auto& [name, j] : r.files) {
    for (const char* metric : {"sentiment", "positive"}) {
      if (!j["comparison"].contains(metric)) continue;
      auto& c = j["comparison"][metric];
      out.html.add_paragraph(
          cat(j["emotion"].get<std::string>(), ": ", metric == std::string("sentiment") ? "VADER " : "P(POSITIVE) ",
              c["baseline_mean"].get<double>(), " (baseline) -> ", c["intervened_mean"].get<double>(), " (", side,
              "), diff ", c["mean_diff"].get<double>(), ", 95% CI [", c["ci95"][0].get<double>(), ", ",
              c["ci95"][1].get<double>(), "], p = ", c["p_value"].get<double>()));
    }
  }
  out.finish();
}

// One generation run: an emotion's prompts, baseline (side 0) or intervened (side 1).
struct GenRun {
  std::string emotion;
  int side = 0;
  std::vector<std::vector<int64_t>> prompts;
};
// The continuations of prompts [start, end) of a run, in batches of x.batch.
using GenFn = std::function<std::vector<std::vector<int64_t>>(const GenRun&, size_t start, size_t end)>;
struct Generated {
  std::vector<std::vector<std::vector<int64_t>>> ids;  // per run, per prompt
  std::map<std::string, double> seconds;               // per emotion
};

// Every run's continuations. Over ranks or shards (issue 18) the items are chunks of x.batch prompts,
// the very batches one process generates (a batch's rows are padded to its own longest prompt), so
// every continuation is the one a single process makes; nullopt where this process writes no output.
std::optional<Generated> generate_runs(const batch::Job& job, const std::string& label, const std::vector<GenRun>& runs,
                                       int64_t batch_size, const std::string& extra_inputs, const GenFn& gen) {
  Generated g;
  g.ids.resize(runs.size());
  if (!job.spread()) {
    for (size_t i = 0; i < runs.size(); ++i) {
      auto s0 = std::chrono::steady_clock::now();
      g.ids[i] = gen(runs[i], 0, runs[i].prompts.size());
      g.seconds[runs[i].emotion] += std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
    }
    return g;
  }
  struct Chunk {
    size_t run, start, end;
  };
  std::vector<Chunk> chunks;
  wire::Writer inputs;
  inputs.str(extra_inputs);
  for (size_t i = 0; i < runs.size(); ++i) {
    inputs.str(runs[i].emotion), inputs.pod(runs[i].side);
    for (auto& p : runs[i].prompts) inputs.ints(p);
    for (size_t start = 0; start < runs[i].prompts.size(); start += (size_t)batch_size)
      chunks.push_back({i, start, std::min(runs[i].prompts.size(), start + (size_t)batch_size)});
  }
  auto each = batch::run(job, label, (long long)chunks.size(), inputs.take(), [&](long long k) {
    const Chunk& c = chunks[(size_t)k];
    auto s0 = std::chrono::steady_clock::now();
    auto ids = gen(runs[c.run], c.start, c.end);
    wire::Writer w;
    w.pod(std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count());
    w.pod<uint64_t>(ids.size());
    for (auto& v : ids) w.ints(v);
    return w.take();
  });
  if (!each) return std::nullopt;
  for (size_t k = 0; k < chunks.size(); ++k) {
    wire::Reader rd(each->at((long long)k));
    g.seconds[runs[chunks[k].run].emotion] += rd.pod<double>();
    uint64_t n = rd.pod<uint64_t>();
    if (n != chunks[k].end - chunks[k].start)
      fail("item ", k, " holds ", n, " continuations, not ", chunks[k].end - chunks[k].start);
    for (uint64_t i = 0; i < n; ++i) g.ids[chunks[k].run].push_back(rd.ints());
  }
  return g;
}

}  // namespace

std::string base_name(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  auto slash = p.find_last_of('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

void print_table(const std::map<std::string, nlohmann::json>& files, const std::string& side) {
  std::printf("%-10s %-18s %9s %9s %9s  %-21s %8s\n", "emotion", "metric", "baseline", side.c_str(), "change", "95% CI",
              "p");
  for (auto& [name, j] : files) {
    std::string e = j["emotion"];
    auto row = [&](const std::string& metric, const nlohmann::json& c) {
      std::printf("%-10s %-18s %9.4f %9.4f %+9.4f  [%+.4f, %+.4f] %8.4f\n", e.c_str(), metric.c_str(),
                  c["baseline_mean"].get<double>(), c["intervened_mean"].get<double>(), c["mean_diff"].get<double>(),
                  c["ci95"][0].get<double>(), c["ci95"][1].get<double>(), c["p_value"].get<double>());
    };
    row("sentiment", j["comparison"]["sentiment"]);
    if (j["comparison"].contains("positive")) row("P(POSITIVE)", j["comparison"]["positive"]);
    for (auto& [ke, c] : j["comparison"]["keywords"].items()) row(ke + " keywords", c);
  }
}

void add_experiment_flags(Args& a, const std::string& what, bool spec) {
  add_model_flags(a);
  add_encoding_flags(a);
  a.opt("profile", "P", "profile folder or shipped profile name", "baseline");
  if (spec) {
    a.opt("head-spec", "L:H,...", "heads to " + what + ": '0:0,3:5', 'L:*' for a whole layer");
    a.opt("emotion", "E", "one emotion of the profile, or all", "all");
    a.opt("prompts-file", "FILE", "a pairs file whose prompts replace the profile's (one --emotion)");
    a.opt("emotion-prompts", "FILE",
          "emotion prompts, one per line (text, JSON string or {\"text\": ...}), replacing "
          "the emotion side of the pairs (one --emotion)");
    a.opt("neutral-prompts", "FILE", "neutral prompts, one per line, replacing the neutral side (one --emotion)");
  }
  a.opt("max-tokens", "N", "tokens to generate per prompt", "15");
  a.opt("batch-size", "N", "prompts generated together", "32");
  a.opt("sentiment-model", "DIR|HUB_ID",
        "a (Distil)BertForSequenceClassification also scoring each continuation as "
        "P(POSITIVE), e.g. distilbert-base-uncased-finetuned-sst-2-english");
  a.opt("resamples", "N", "bootstrap and permutation resamples", "10000");
  a.opt("seed", "N", "seed of the bootstrap and permutation draws", "0");
  a.flag("no-eos-stop", "keep generating after the end-of-sequence token");
  a.opt("out", "DIR", "output folder");
}

Experiment experiment_from_flags(const Args& a, bool require_spec) {
  if (!a.has("out")) fail("--out DIR is required");
  if (require_spec && !a.has("head-spec")) fail("--head-spec L:H,... is required (e.g. --head-spec 0:0,3:5)");
  Experiment x;
  x.max_tokens = a.integer("max-tokens", 1, 1 << 20);
  x.batch = a.integer("batch-size", 1, 1 << 20);
  x.resamples = a.integer("resamples", 1, 100000000);
  x.seed = (uint64_t)a.integer("seed", 0, std::numeric_limits<long long>::max());
  x.prof = H::load_profile(resolve_profile(a.str("profile")));
  x.emotions = x.prof.select(require_spec ? a.str("emotion") : "all");
  if (require_spec) {
    bool over = a.has("emotion-prompts") || a.has("neutral-prompts");
    if ((a.has("prompts-file") || over) && x.emotions.size() != 1)
      fail(a.has("prompts-file")      ? "--prompts-file"
           : a.has("emotion-prompts") ? "--emotion-prompts"
                                      : "--neutral-prompts",
           " replaces one emotion's prompts: give --emotion NAME too");
    if (a.has("prompts-file")) {
      x.prof.pairs[x.emotions[0]] = H::read_pairs(a.str("prompts-file"));
    }
    if (over) H::override_prompts(x.prof, x.emotions[0], a.str("emotion-prompts"), a.str("neutral-prompts"));
  }
  if (a.has("sentiment-model"))
    x.classifier =
        std::make_shared<analysis::sentiment::SentimentClassifier>(analysis::sentiment::load_sentiment_classifier(
            a.str("sentiment-model"), "--sentiment-model", device_from_flags(a)));
  return x;
}

std::vector<std::string> write_experiment_files(const std::string& dir, const ExperimentResult& r,
                                                const std::string& st_name,
                                                const std::map<std::string, std::string>& meta) {
  make_dirs(dir);
  std::vector<std::string> names;
  for (auto& [name, j] : r.files) {
    write_file_atomic(join_path(dir, name), j.dump(1));
    names.push_back(name);
  }
  io::write_safetensors(join_path(dir, st_name), r.tensors, meta);
  names.push_back(st_name);
  return names;
}

std::optional<ExperimentResult> run_ablation(const Args& a, const Loaded& m, const Experiment& x,
                                             const std::vector<std::string>& emotions,
                                             const std::vector<H::HeadRef>& heads, H::HeadAblation kind,
                                             const batch::Job& job) {
  const auto& cfg = m.model->config();
  need_lm_head(m, "heads ablate");
  const auto& tok = need_tokenizer(m, "heads ablate");
  std::optional<int64_t> eos = a.on("no-eos-stop") ? std::nullopt : cfg.eos_token_id;
  auto t0 = std::chrono::steady_clock::now();
  std::map<std::string, std::vector<std::vector<int64_t>>> prompts;
  for (auto& e : emotions)
    for (auto& p : x.prof.of(e))
      prompts[e].push_back(encode_prompt(a, m, p.emotion, p.where() + " (emotion prompt)", x.max_tokens));
  std::map<int64_t, at::Tensor> means;
  int64_t mean_prompts = 0;
  if (kind == H::HeadAblation::Mean) {
    std::vector<std::vector<int64_t>> all;
    for (auto& [e, ps] : x.prof.pairs)
      for (auto& p : ps) {
        all.push_back(encode_prompt(a, m, p.emotion, p.where() + " (emotion prompt)"));
        all.push_back(encode_prompt(a, m, p.neutral, p.where() + " (neutral prompt)"));
      }
    mean_prompts = (int64_t)all.size();
    means = H::mean_z(*m.model, all, heads);  // every process its own, from the same prompts
  }
  hooks::HookSet hs;
  hooks::ScopedHooks scope(hs);
  H::add_ablation(scope, heads, kind, means);

  std::vector<GenRun> runs;
  for (auto& e : emotions)
    for (int side = 0; side < 2; ++side) runs.push_back({e, side, prompts[e]});
  auto gen = generate_runs(
      job, "heads ablate batches", runs, x.batch,
      cat(H::format_head_spec(heads), " ", H::head_ablation_name(kind), " ", x.max_tokens),
      [&](const GenRun& run, size_t start, size_t end) {
        std::vector<std::vector<int64_t>> part(run.prompts.begin() + (long)start, run.prompts.begin() + (long)end);
        return H::generate_greedy_batch(*m.model, part, x.max_tokens, eos, run.side ? &hs : nullptr, x.batch);
      });
  if (!gen) return std::nullopt;

  std::string tag = spec_tag(heads);
  ExperimentResult r;
  for (size_t ei = 0; ei < emotions.size(); ++ei) {
    const std::string& e = emotions[ei];
    auto s0 = std::chrono::steady_clock::now();
    const auto &base_ids = gen->ids[2 * ei], &abl_ids = gen->ids[2 * ei + 1];
    nlohmann::json j{{"model", m.dir},
                     {"profile", x.prof.dir},
                     {"emotion", e},
                     {"head_spec", H::format_head_spec(heads)},
                     {"kind", H::head_ablation_name(kind)},
                     {"max_tokens", x.max_tokens}};
    for (auto& h : heads) j["heads"].push_back({h.layer, h.head});
    if (kind == H::HeadAblation::Mean) j["mean_over_prompts"] = mean_prompts;
    std::vector<std::string> texts;
    for (auto& p : x.prof.of(e)) texts.push_back(p.emotion);
    compare_runs(j, r.tensors, e, "ablated", texts, prompts[e], base_ids, abl_ids, tok, x);
    j["seconds"] = gen->seconds[e] + std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
    r.files[base_name(a.str("model")) + "_" + e + "_" + tag + ".json"] = j;
    std::fprintf(stderr, "%s: %zu prompts x 2 runs x %lld tokens in %.2fs\n", e.c_str(), texts.size(),
                 (long long)x.max_tokens, j["seconds"].get<double>());
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

std::optional<ExperimentResult> run_patching(const Args& a, const Loaded& m, const Experiment& x,
                                             const std::vector<std::string>& emotions,
                                             const std::vector<H::HeadRef>& heads, bool patch_generated_mean,
                                             const batch::Job& job) {
  const auto& cfg = m.model->config();
  need_lm_head(m, "heads patch");
  const auto& tok = need_tokenizer(m, "heads patch");
  std::optional<int64_t> eos = a.on("no-eos-stop") ? std::nullopt : cfg.eos_token_id;
  auto t0 = std::chrono::steady_clock::now();
  std::map<std::string, Tokenized> pairs;
  for (auto& e : emotions) pairs[e] = tokenize_pairs(a, m, x.prof, e, false, x.max_tokens);
  std::string tag = spec_tag(heads), pg = patch_generated_mean ? "mean" : "none";

  std::vector<GenRun> runs;
  std::string sources;  // the emotion prompts the heads are patched from
  for (auto& e : emotions) {
    std::vector<std::vector<int64_t>> neutral;
    for (auto& p : pairs[e].pairs) {
      neutral.push_back(p.neutral_ids);
      sources += cat(p.offset, ":");
      for (int64_t id : p.emotion_ids) sources += cat(id, ",");
    }
    for (int side = 0; side < 2; ++side) runs.push_back({e, side, neutral});
  }
  auto gen = generate_runs(
      job, "heads patch batches", runs, x.batch,
      cat(H::format_head_spec(heads), " ", pg, " ", x.max_tokens, " ", sources),
      [&](const GenRun& run, size_t start, size_t end) {
        if (run.side == 0) {
          std::vector<std::vector<int64_t>> part(run.prompts.begin() + (long)start, run.prompts.begin() + (long)end);
          return H::generate_greedy_batch(*m.model, part, x.max_tokens, eos, nullptr, x.batch);
        }
        const auto& all = pairs.at(run.emotion).pairs;
        std::vector<H::AlignedPair> part(all.begin() + (long)start, all.begin() + (long)end);
        return H::generate_patched(*m.model, part, heads, x.max_tokens, eos, patch_generated_mean, x.batch);
      });
  if (!gen) return std::nullopt;

  ExperimentResult r;
  for (size_t ei = 0; ei < emotions.size(); ++ei) {
    const std::string& e = emotions[ei];
    auto s0 = std::chrono::steady_clock::now();
    const auto& neutral = runs[2 * ei].prompts;
    const auto &base_ids = gen->ids[2 * ei], &pat_ids = gen->ids[2 * ei + 1];
    nlohmann::json j{{"model", m.dir},
                     {"profile", x.prof.dir},
                     {"emotion", e},
                     {"head_spec", H::format_head_spec(heads)},
                     {"patch_generated", pg},
                     {"max_tokens", x.max_tokens},
                     {"length_mismatched_pairs", pairs[e].mismatched}};
    for (auto& h : heads) j["heads"].push_back({h.layer, h.head});
    std::vector<std::string> texts;
    for (auto& p : x.prof.of(e)) texts.push_back(p.neutral);
    compare_runs(j, r.tensors, e, "patched", texts, neutral, base_ids, pat_ids, tok, x);
    for (size_t i = 0; i < pairs[e].pairs.size(); ++i) {
      j["prompts"][i]["source_prompt"] = x.prof.of(e)[i].emotion;
      j["prompts"][i]["source_ids"] = pairs[e].pairs[i].emotion_ids;
    }
    j["seconds"] = gen->seconds[e] + std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
    r.files[base_name(a.str("model")) + "_" + e + "_" + tag + ".json"] = j;
    std::fprintf(stderr, "%s: %zu pairs (%lld of different lengths) x 2 runs x %lld tokens in %.2fs\n", e.c_str(),
                 texts.size(), (long long)pairs[e].mismatched, (long long)x.max_tokens, j["seconds"].get<double>());
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

int run_ablate(int argc, char** argv) {
  Args a("heads ablate", "--model M --profile P --head-spec L:H,... --emotion E|all --out DIR [--kind zero|mean]",
         "Generates from each emotion prompt of the profile with and without the heads ablated (their hook_z\n"
         "zeroed, or set to its mean over every prompt of the profile, at every position and every generated\n"
         "step), greedy, batched with a KV cache; scores both continuations (VADER compound, keyword counts\n"
         "per emotion, and with --sentiment-model a classifier's P(POSITIVE)) and reports per-prompt paired\n"
         "differences: mean, bootstrap 95% interval and a seeded paired permutation p-value. Writes\n"
         "<model>_<emotion>_<heads>.json per emotion (every prompt's ids and texts, both runs, each score)\n"
         "and head_ablation.safetensors (the per-prompt scores).");
  add_experiment_flags(a, "ablate");
  a.opt("kind", "K", "zero, or mean (over every prompt of the profile, both sides, without ablation)", "zero");
  batch::add_shard_flag(a);
  if (!a.parse(argc, argv)) return 0;
  auto kind = H::parse_head_ablation(a.str("kind"), "--kind");
  Experiment x = experiment_from_flags(a);
  Loaded m = load_from_flags(a);
  const auto& cfg = m.model->config();
  auto heads = H::parse_head_spec(a.str("head-spec"), cfg.n_layers, cfg.n_heads, "--head-spec");
  // Issue 17: --out is claimed (lock, no foreign folder) before the work, so a second run or a folder
  // that is not mechscope's is refused at once; the results are still staged and moved in at the end.
  // Over ranks or shards (issue 18) the generation batches are shared out; rank 0 (or merge) scores and
  // compares them and alone writes the folder.
  batch::Job job = batch::start(a);
  if (job.lead()) report::claim_output_dir(a.str("out"), "heads ablate");
  auto done = run_ablation(a, m, x, x.emotions, heads, kind, job);
  if (!done) return 0;
  ExperimentResult& r = *done;

  report::RunOutput out(a.str("out"), argc, argv, "heads ablate", "Head ablation: " + m.dir,
                        H::head_ablation_name(kind) + " ablation of " + H::format_head_spec(heads));
  out.manifest.model = m.dir;
  out.manifest.seed = x.seed;
  out.manifest.versions["libtorch"] = TORCH_VERSION;
  out.manifest.extra = {{"head_spec", H::format_head_spec(heads)},
                        {"kind", H::head_ablation_name(kind)},
                        {"profile", x.prof.dir},
                        {"emotions", x.emotions},
                        {"max_tokens", x.max_tokens},
                        {"total_s", r.seconds}};
  if (x.classifier) out.manifest.extra["sentiment_model"] = x.classifier->name;
  write_report(out, r, "head_ablation.safetensors",
               {{"model", m.dir}, {"head_spec", H::format_head_spec(heads)}, {"kind", H::head_ablation_name(kind)}},
               "ablated");
  std::printf("%s ablation of %s, %lld new tokens -> %s\n", H::head_ablation_name(kind).c_str(),
              H::format_head_spec(heads).c_str(), (long long)x.max_tokens, out.dir().c_str());
  print_table(r.files, "ablated");
  return 0;
}

int run_patch(int argc, char** argv) {
  Args a("heads patch",
         "--model M --profile P --head-spec L:H,... --emotion E|all --out DIR [--patch-generated none|mean]",
         "Generates from each neutral prompt of the profile with and without the heads patched: their hook_z\n"
         "at the prompt positions replaced by their z on the paired emotion prompt (pairs of different token\n"
         "lengths aligned on their last tokens); generated positions are left alone, or with\n"
         "--patch-generated mean set to the emotion prompt's mean z. Greedy, batched with a KV cache; scored\n"
         "and compared as heads ablate does. Writes <model>_<emotion>_<heads>.json per emotion and\n"
         "head_patching.safetensors.");
  add_experiment_flags(a, "patch");
  a.opt("patch-generated", "G", "none, or mean (generated positions get the emotion prompt's mean z)", "none");
  batch::add_shard_flag(a);
  if (!a.parse(argc, argv)) return 0;
  std::string pg = a.str("patch-generated");
  if (pg != "none" && pg != "mean") fail("--patch-generated: expected none or mean, got '", pg, "'");
  Experiment x = experiment_from_flags(a);
  Loaded m = load_from_flags(a);
  const auto& cfg = m.model->config();
  auto heads = H::parse_head_spec(a.str("head-spec"), cfg.n_layers, cfg.n_heads, "--head-spec");
  // Issue 17: --out is claimed (lock, no foreign folder) before the work, so a second run or a folder
  // that is not mechscope's is refused at once; the results are still staged and moved in at the end.
  batch::Job job = batch::start(a);
  if (job.lead()) report::claim_output_dir(a.str("out"), "heads patch");
  auto done = run_patching(a, m, x, x.emotions, heads, pg == "mean", job);
  if (!done) return 0;
  ExperimentResult& r = *done;

  report::RunOutput out(a.str("out"), argc, argv, "heads patch", "Head patching: " + m.dir,
                        "patching " + H::format_head_spec(heads) + " from the emotion prompts");
  out.manifest.model = m.dir;
  out.manifest.seed = x.seed;
  out.manifest.versions["libtorch"] = TORCH_VERSION;
  out.manifest.extra = {{"head_spec", H::format_head_spec(heads)},
                        {"patch_generated", pg},
                        {"profile", x.prof.dir},
                        {"emotions", x.emotions},
                        {"max_tokens", x.max_tokens},
                        {"total_s", r.seconds}};
  if (x.classifier) out.manifest.extra["sentiment_model"] = x.classifier->name;
  write_report(out, r, "head_patching.safetensors",
               {{"model", m.dir}, {"head_spec", H::format_head_spec(heads)}, {"patch_generated", pg}}, "patched");
  std::printf("patching %s from the emotion prompts, %lld new tokens -> %s\n", H::format_head_spec(heads).c_str(),
              (long long)x.max_tokens, out.dir().c_str());
  print_table(r.files, "patched");
  return 0;
}

}  // namespace mechscope::cli::heads
