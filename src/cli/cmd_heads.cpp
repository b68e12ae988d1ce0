// mechscope heads: attention-head analysis of emotion over prompt profiles (issue 14, seed 001).
// Subcommands: screen (a score per layer × head × emotion), ablate (generations with heads ablated,
// scored against the unablated ones), patch (generations from neutral prompts with heads patched in).
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>

#include "analysis/heads/generate_batch.h"
#include "analysis/heads/interventions.h"
#include "analysis/heads/patch_generate.h"
#include "analysis/heads/profile.h"
#include "analysis/heads/screen.h"
#include "analysis/heads/stats.h"
#include "analysis/sentiment/vader.h"
#include "cli/common.h"
#include "cli/registry.h"
#include "core/error.h"
#include "core/fs.h"
#include "io/safetensors.h"
#include "report/run.h"
#include "core/source_dir.h"  // MECHSCOPE_SOURCE_DIR, MECHSCOPE_BINARY

namespace mechscope::cli {
namespace {

namespace H = analysis::heads;

// A profile folder, or the name of a shipped one (examples/emotion/profiles/NAME).
std::string resolve_profile(const std::string& p) {
  if (dir_exists(p)) return p;
  std::string shipped = std::string(MECHSCOPE_SOURCE_DIR) + "/examples/emotion/profiles/" + p;
  if (p.find('/') == std::string::npos && dir_exists(shipped)) return shipped;
  fail("--profile '", p, "' is neither a directory nor a shipped profile (baseline, extended)");
}

struct Tokenized {
  std::vector<H::AlignedPair> pairs;
  int64_t mismatched = 0;  // pairs whose prompts tokenize to different lengths (aligned on last tokens)
};

Tokenized tokenize_pairs(const Loaded& m, const H::Profile& prof, const std::string& emotion) {
  const auto& tok = need_tokenizer(m, "heads");
  Tokenized t;
  for (auto& p : prof.of(emotion)) {
    std::string where = cat(join_path(prof.dir, emotion + ".jsonl"), ":", p.line);
    auto e = tok.encode(p.emotion), n = tok.encode(p.neutral);
    check_ids(e, m.model->config(), where + " (emotion prompt)");
    check_ids(n, m.model->config(), where + " (neutral prompt)");
    t.pairs.push_back(H::align_pair(std::move(e), std::move(n)));
    if (t.pairs.back().emotion_phrase_end >= (int64_t)t.pairs.back().emotion_ids.size())
      fail(where, ": the emotional phrase ends the prompt, so no position reads it; add the words that follow it");
    t.mismatched += t.pairs.back().offset != 0;
  }
  return t;
}

// The first token of " keyword" for each keyword (the next-token form after a space), deduplicated.
std::vector<int64_t> keyword_tokens(const Loaded& m, const std::vector<std::string>& words) {
  const auto& tok = need_tokenizer(m, "heads screen --score causal");
  std::vector<int64_t> ids;
  for (auto& w : words) {
    auto enc = tok.encode(" " + w);
    if (!enc.empty()) ids.push_back(enc[0]);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

int run_screen(int argc, char** argv) {
  Args a("heads screen", "--model M --profile P --out DIR [--score S] [--emotion E|all] [--top-n N]",
         "Scores every attention head for each emotion of a prompt profile (a folder of <emotion>.jsonl\n"
         "pairs and keywords.json, or a shipped profile: baseline, extended), averaged over its pairs:\n"
         "  keyword-attention  attention mass the positions after the emotional phrase pay to it, minus\n"
         "                     the same on the neutral prompt\n"
         "  output-norm        mean |head output| after the phrase, emotion minus neutral\n"
         "  causal             change of log P(next token is one of the emotion's keywords) when the head's\n"
         "                     z is patched from the emotion prompt into the neutral one (all heads in one\n"
         "                     sweep of the patching engine)\n"
         "Writes head_scores.json (every layer x head x emotion score, the top heads) and\n"
         "head_scores.safetensors ([layers, heads] per emotion), index.html and manifest.json.");
  add_model_flags(a);
  a.opt("profile", "P", "profile folder or shipped profile name", "baseline");
  a.opt("emotion", "E", "one emotion of the profile, or all", "all");
  a.opt("score", "S", "keyword-attention, output-norm or causal", "keyword-attention");
  a.opt("top-n", "N", "heads listed as the top ones (by |score|)", "20");
  a.opt("out", "DIR", "output folder");
  if (!a.parse(argc, argv)) return 0;
  if (!a.has("out")) fail("--out DIR is required");
  auto score = H::parse_screen_score(a.str("score"), "--score");
  int64_t top_n = a.integer("top-n", 1, 1 << 30);
  H::Profile prof = H::load_profile(resolve_profile(a.str("profile")));
  auto emotions = prof.select(a.str("emotion"));
  Loaded m = load_from_flags(a);
  const auto& cfg = m.model->config();
  if (!cfg.causal) fail("heads screen needs a causal language model; '", m.dir, "' is ", cfg.model_type);

  // Everything is computed before the output folder exists, so bad input leaves nothing behind.
  auto t0 = std::chrono::steady_clock::now();
  std::map<std::string, Tokenized> tok;
  std::map<std::string, std::vector<int64_t>> kw_ids;
  for (auto& e : emotions) {
    tok[e] = tokenize_pairs(m, prof, e);
    if (score == H::ScreenScore::Causal) kw_ids[e] = keyword_tokens(m, prof.keywords.at(e));
  }
  std::map<std::string, at::Tensor> scores;
  nlohmann::json timings;
  for (auto& e : emotions) {
    auto s0 = std::chrono::steady_clock::now();
    const auto& pairs = tok[e].pairs;
    if (score == H::ScreenScore::KeywordAttention) scores[e] = H::keyword_attention_scores(*m.model, pairs);
    else if (score == H::ScreenScore::OutputNorm) scores[e] = H::output_norm_scores(*m.model, pairs);
    else scores[e] = H::causal_scores(*m.model, pairs, kw_ids[e]);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
    timings[e + "_s"] = s;
    std::fprintf(stderr, "%s: %zu pairs, %lld heads in %.2fs\n", e.c_str(), pairs.size(),
                 (long long)(cfg.n_layers * cfg.n_heads), s);
  }
  double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  timings["total_s"] = total;

  struct Row {
    int64_t layer, head;
    std::string emotion;
    double score;
  };
  std::vector<Row> rows;
  for (auto& e : emotions)
    for (int64_t l = 0; l < cfg.n_layers; ++l)
      for (int64_t h = 0; h < cfg.n_heads; ++h) rows.push_back({l, h, e, scores[e][l][h].item<double>()});
  std::vector<Row> top = rows;
  std::stable_sort(top.begin(), top.end(), [](const Row& x, const Row& y) { return std::fabs(x.score) > std::fabs(y.score); });
  if ((int64_t)top.size() > top_n) top.resize(top_n);
  auto row_json = [](const Row& r) {
    return nlohmann::json{{"layer", r.layer}, {"head", r.head}, {"emotion", r.emotion}, {"score", r.score}};
  };

  nlohmann::json j;
  j["model"] = m.dir;
  j["profile"] = prof.dir;
  j["score"] = H::screen_score_name(score);
  j["emotions"] = emotions;
  j["n_layers"] = cfg.n_layers;
  j["n_heads"] = cfg.n_heads;
  for (auto& e : emotions) {
    j["pairs"][e] = tok[e].pairs.size();
    j["length_mismatched_pairs"][e] = tok[e].mismatched;
    if (score == H::ScreenScore::Causal) j["keyword_token_ids"][e] = kw_ids[e];
  }
  for (auto& r : rows) j["scores"].push_back(row_json(r));
  for (auto& r : top) j["top"].push_back(row_json(r));
  j["timings"] = timings;

  report::RunOutput out(a.str("out"), argc, argv, "heads screen", "Head screening: " + m.dir,
                        H::screen_score_name(score) + " score, profile " + prof.dir);
  out.manifest.model = m.dir;
  out.manifest.versions["libtorch"] = TORCH_VERSION;
  out.manifest.extra = {{"score", H::screen_score_name(score)}, {"profile", prof.dir}, {"emotions", emotions}};
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (auto& e : emotions) tensors.emplace_back(e, scores[e].to(at::kFloat));
  io::write_safetensors(join_path(out.dir(), "head_scores.safetensors"), tensors,
                        {{"model", m.dir}, {"score", H::screen_score_name(score)}, {"axes", "layer,head"}});
  out.add_file("head_scores.safetensors");
  write_file_atomic(join_path(out.dir(), "head_scores.json"), j.dump(1));
  out.add_file("head_scores.json");
  out.html.add_number("heads", (double)(cfg.n_layers * cfg.n_heads));
  for (auto& e : emotions) out.html.add_number(e + " pairs", (double)tok[e].pairs.size());
  std::string lines;
  for (auto& r : top) lines += cat("L", r.layer, "H", r.head, " ", r.emotion, " ", r.score, "\n");
  out.html.add_paragraph("Top heads by |score|:\n" + lines);
  out.finish();

  std::printf("%zu scores (%lld layers x %lld heads x %zu emotions) in %.2fs -> %s\n", rows.size(),
              (long long)cfg.n_layers, (long long)cfg.n_heads, emotions.size(), total, out.dir().c_str());
  for (size_t i = 0; i < top.size() && i < 10; ++i)
    std::printf("  %2zu. layer %lld head %lld  %-10s %+.6f\n", i + 1, (long long)top[i].layer, (long long)top[i].head,
                top[i].emotion.c_str(), top[i].score);
  return 0;
}

// What each generation is scored by: VADER compound of the continuation, and keyword counts per emotion.
struct Scores {
  std::vector<double> sentiment;
  std::map<std::string, std::vector<double>> keywords;
};

Scores score_texts(const std::vector<std::string>& texts, const H::Profile& prof) {
  Scores s;
  for (auto& t : texts) {
    s.sentiment.push_back(analysis::sentiment::vader(t).compound);
    for (auto& [e, words] : prof.keywords) s.keywords[e].push_back((double)H::count_keywords(t, words));
  }
  return s;
}

nlohmann::json comparison_json(const H::PairedComparison& c) {
  return {{"n", c.n}, {"baseline_mean", c.mean_a}, {"intervened_mean", c.mean_b}, {"mean_diff", c.mean_diff},
          {"ci95", {c.ci_low, c.ci_high}}, {"p_value", c.p_value}, {"exact_permutation", c.exact_permutation},
          {"resamples", c.resamples}, {"seed", c.seed}};
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

std::string base_name(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  auto slash = p.find_last_of('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

// Scores the baseline and intervened continuations of one emotion's prompts, compares them prompt by
// prompt, and fills j (every prompt, both runs, the comparisons) and the per-prompt score tensors.
void compare_runs(nlohmann::json& j, std::vector<std::pair<std::string, at::Tensor>>& tensors, const std::string& e,
                  const std::string& side, const std::vector<std::string>& prompt_texts,
                  const std::vector<std::vector<int64_t>>& prompt_ids, const std::vector<std::vector<int64_t>>& base_ids,
                  const std::vector<std::vector<int64_t>>& other_ids, const tokenizers::Tokenizer& tok,
                  const H::Profile& prof, int64_t resamples, uint64_t seed) {
  std::vector<std::string> base_text, other_text;
  for (auto& ids : base_ids) base_text.push_back(decode_known(tok, ids));
  for (auto& ids : other_ids) other_text.push_back(decode_known(tok, ids));
  Scores bs = score_texts(base_text, prof), os = score_texts(other_text, prof);
  j["sentiment"] = "VADER compound of the continuation";
  for (size_t i = 0; i < prompt_texts.size(); ++i) {
    nlohmann::json p{{"index", i}, {"prompt", prompt_texts[i]}, {"prompt_ids", prompt_ids[i]}};
    auto one = [&](const std::vector<int64_t>& ids, const std::string& text, const Scores& s) {
      nlohmann::json k;
      for (auto& [ke, v] : s.keywords) k[ke] = v[i];
      return nlohmann::json{{"ids", ids}, {"text", text}, {"sentiment", s.sentiment[i]}, {"keywords", k}};
    };
    p["baseline"] = one(base_ids[i], base_text[i], bs);
    p[side] = one(other_ids[i], other_text[i], os);
    j["prompts"].push_back(p);
  }
  j["comparison"]["sentiment"] = comparison_json(H::compare_paired(bs.sentiment, os.sentiment, resamples, seed));
  for (auto& [ke, v] : bs.keywords) {
    j["comparison"]["keywords"][ke] = comparison_json(H::compare_paired(v, os.keywords[ke], resamples, seed));
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
  for (auto& [ke, v] : bs.keywords) {
    add(e + ".baseline.keywords." + ke, v);
    add(e + "." + side + ".keywords." + ke, os.keywords[ke]);
  }
}

void print_table(const std::map<std::string, nlohmann::json>& files, const std::string& side) {
  std::printf("%-10s %-18s %9s %9s %9s  %-21s %8s\n", "emotion", "metric", "baseline", side.c_str(), "change", "95% CI", "p");
  for (auto& [name, j] : files) {
    std::string e = j["emotion"];
    auto row = [&](const std::string& metric, const nlohmann::json& c) {
      std::printf("%-10s %-18s %9.4f %9.4f %+9.4f  [%+.4f, %+.4f] %8.4f\n", e.c_str(), metric.c_str(),
                  c["baseline_mean"].get<double>(), c["intervened_mean"].get<double>(), c["mean_diff"].get<double>(),
                  c["ci95"][0].get<double>(), c["ci95"][1].get<double>(), c["p_value"].get<double>());
    };
    row("sentiment", j["comparison"]["sentiment"]);
    for (auto& [ke, c] : j["comparison"]["keywords"].items()) row(ke + " keywords", c);
  }
}

// The flags heads ablate and heads patch share, and what they resolve to.
struct Experiment {
  H::Profile prof;
  std::vector<std::string> emotions;
  int64_t max_tokens = 15, batch = 32, resamples = 10000;
  uint64_t seed = 0;
  std::optional<int64_t> eos;
};

void add_experiment_flags(Args& a, const std::string& what) {
  add_model_flags(a);
  a.opt("profile", "P", "profile folder or shipped profile name", "baseline");
  a.opt("head-spec", "L:H,...", "heads to " + what + ": '0:0,3:5', 'L:*' for a whole layer");
  a.opt("emotion", "E", "one emotion of the profile, or all", "all");
  a.opt("prompts-file", "FILE", "a pairs file whose prompts replace the profile's (one --emotion)");
  a.opt("max-tokens", "N", "tokens to generate per prompt", "15");
  a.opt("batch-size", "N", "prompts generated together", "32");
  a.opt("resamples", "N", "bootstrap and permutation resamples", "10000");
  a.opt("seed", "N", "seed of the bootstrap and permutation draws", "0");
  a.flag("no-eos-stop", "keep generating after the end-of-sequence token");
  a.opt("out", "DIR", "output folder");
}

Experiment experiment_from_flags(const Args& a) {
  if (!a.has("out")) fail("--out DIR is required");
  if (!a.has("head-spec")) fail("--head-spec L:H,... is required (e.g. --head-spec 0:0,3:5)");
  Experiment x;
  x.max_tokens = a.integer("max-tokens", 1, 1 << 20);
  x.batch = a.integer("batch-size", 1, 1 << 20);
  x.resamples = a.integer("resamples", 1, 100000000);
  x.seed = (uint64_t)a.integer("seed", 0, std::numeric_limits<long long>::max());
  x.prof = H::load_profile(resolve_profile(a.str("profile")));
  x.emotions = x.prof.select(a.str("emotion"));
  if (a.has("prompts-file")) {
    if (x.emotions.size() != 1) fail("--prompts-file replaces one emotion's prompts: give --emotion NAME too");
    x.prof.pairs[x.emotions[0]] = H::read_pairs(a.str("prompts-file"));
  }
  return x;
}

void write_experiment(report::RunOutput& out, const std::map<std::string, nlohmann::json>& files,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors, const std::string& st_name,
                      const std::map<std::string, std::string>& meta, const std::string& side) {
  for (auto& [name, j] : files) {
    write_file_atomic(join_path(out.dir(), name), j.dump(1));
    out.add_file(name);
  }
  io::write_safetensors(join_path(out.dir(), st_name), tensors, meta);
  out.add_file(st_name);
  for (auto& [name, j] : files) {
    auto& c = j["comparison"]["sentiment"];
    out.html.add_paragraph(cat(j["emotion"].get<std::string>(), ": sentiment ", c["baseline_mean"].get<double>(),
                               " (baseline) -> ", c["intervened_mean"].get<double>(), " (", side, "), diff ",
                               c["mean_diff"].get<double>(), ", 95% CI [", c["ci95"][0].get<double>(), ", ",
                               c["ci95"][1].get<double>(), "], p = ", c["p_value"].get<double>()));
  }
  out.finish();
}

int run_ablate(int argc, char** argv) {
  Args a("heads ablate", "--model M --profile P --head-spec L:H,... --emotion E|all --out DIR [--kind zero|mean]",
         "Generates from each emotion prompt of the profile with and without the heads ablated (their hook_z\n"
         "zeroed, or set to its mean over every prompt of the profile, at every position and every generated\n"
         "step), greedy, batched with a KV cache; scores both continuations (VADER compound, keyword counts\n"
         "per emotion) and reports per-prompt paired differences: mean, bootstrap 95% interval and a seeded\n"
         "paired permutation p-value. Writes <model>_<emotion>_<heads>.json per emotion (every prompt's ids\n"
         "and texts, both runs, each score) and head_ablation.safetensors (the per-prompt scores).");
  add_experiment_flags(a, "ablate");
  a.opt("kind", "K", "zero, or mean (over every prompt of the profile, both sides, without ablation)", "zero");
  if (!a.parse(argc, argv)) return 0;
  auto kind = H::parse_head_ablation(a.str("kind"), "--kind");
  Experiment x = experiment_from_flags(a);
  Loaded m = load_from_flags(a);
  const auto& cfg = m.model->config();
  auto heads = H::parse_head_spec(a.str("head-spec"), cfg.n_layers, cfg.n_heads, "--head-spec");
  const auto& tok = need_tokenizer(m, "heads ablate");
  if (!a.on("no-eos-stop")) x.eos = cfg.eos_token_id;

  auto t0 = std::chrono::steady_clock::now();
  std::map<std::string, std::vector<std::vector<int64_t>>> prompts;
  for (auto& e : x.emotions)
    for (auto& p : x.prof.of(e)) {
      prompts[e].push_back(tok.encode(p.emotion));
      check_ids(prompts[e].back(), cfg, cat(e, " prompt at line ", p.line), x.max_tokens);
    }
  std::map<int64_t, at::Tensor> means;
  int64_t mean_prompts = 0;
  if (kind == H::HeadAblation::Mean) {
    std::vector<std::vector<int64_t>> all;
    for (auto& [e, ps] : x.prof.pairs)
      for (auto& p : ps) {
        all.push_back(tok.encode(p.emotion));
        all.push_back(tok.encode(p.neutral));
      }
    mean_prompts = (int64_t)all.size();
    means = H::mean_z(*m.model, all, heads);
  }
  hooks::HookSet hs;
  hooks::ScopedHooks scope(hs);
  H::add_ablation(scope, heads, kind, means);

  std::string tag = spec_tag(heads);
  std::map<std::string, nlohmann::json> files;
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (auto& e : x.emotions) {
    auto s0 = std::chrono::steady_clock::now();
    auto base_ids = H::generate_greedy_batch(*m.model, prompts[e], x.max_tokens, x.eos, nullptr, x.batch);
    auto abl_ids = H::generate_greedy_batch(*m.model, prompts[e], x.max_tokens, x.eos, &hs, x.batch);
    nlohmann::json j{{"model", m.dir}, {"profile", x.prof.dir}, {"emotion", e}, {"head_spec", H::format_head_spec(heads)},
                     {"kind", H::head_ablation_name(kind)}, {"max_tokens", x.max_tokens}};
    for (auto& h : heads) j["heads"].push_back({h.layer, h.head});
    if (kind == H::HeadAblation::Mean) j["mean_over_prompts"] = mean_prompts;
    std::vector<std::string> texts;
    for (auto& p : x.prof.of(e)) texts.push_back(p.emotion);
    compare_runs(j, tensors, e, "ablated", texts, prompts[e], base_ids, abl_ids, tok, x.prof, x.resamples, x.seed);
    j["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
    files[base_name(a.str("model")) + "_" + e + "_" + tag + ".json"] = j;
    std::fprintf(stderr, "%s: %zu prompts x 2 runs x %lld tokens in %.2fs\n", e.c_str(), texts.size(),
                 (long long)x.max_tokens, j["seconds"].get<double>());
  }
  double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  report::RunOutput out(a.str("out"), argc, argv, "heads ablate", "Head ablation: " + m.dir,
                        H::head_ablation_name(kind) + " ablation of " + H::format_head_spec(heads));
  out.manifest.model = m.dir;
  out.manifest.seed = x.seed;
  out.manifest.versions["libtorch"] = TORCH_VERSION;
  out.manifest.extra = {{"head_spec", H::format_head_spec(heads)}, {"kind", H::head_ablation_name(kind)},
                        {"profile", x.prof.dir}, {"emotions", x.emotions}, {"max_tokens", x.max_tokens}, {"total_s", total}};
  write_experiment(out, files, tensors, "head_ablation.safetensors",
                   {{"model", m.dir}, {"head_spec", H::format_head_spec(heads)}, {"kind", H::head_ablation_name(kind)}},
                   "ablated");
  std::printf("%s ablation of %s, %lld new tokens -> %s\n", H::head_ablation_name(kind).c_str(),
              H::format_head_spec(heads).c_str(), (long long)x.max_tokens, out.dir().c_str());
  print_table(files, "ablated");
  return 0;
}

int run_patch(int argc, char** argv) {
  Args a("heads patch", "--model M --profile P --head-spec L:H,... --emotion E|all --out DIR [--patch-generated none|mean]",
         "Generates from each neutral prompt of the profile with and without the heads patched: their hook_z\n"
         "at the prompt positions replaced by their z on the paired emotion prompt (pairs of different token\n"
         "lengths aligned on their last tokens); generated positions are left alone, or with\n"
         "--patch-generated mean set to the emotion prompt's mean z. Greedy, batched with a KV cache; scored\n"
         "and compared as heads ablate does. Writes <model>_<emotion>_<heads>.json per emotion and\n"
         "head_patching.safetensors.");
  add_experiment_flags(a, "patch");
  a.opt("patch-generated", "G", "none, or mean (generated positions get the emotion prompt's mean z)", "none");
  if (!a.parse(argc, argv)) return 0;
  std::string pg = a.str("patch-generated");
  if (pg != "none" && pg != "mean") fail("--patch-generated: expected none or mean, got '", pg, "'");
  Experiment x = experiment_from_flags(a);
  Loaded m = load_from_flags(a);
  const auto& cfg = m.model->config();
  auto heads = H::parse_head_spec(a.str("head-spec"), cfg.n_layers, cfg.n_heads, "--head-spec");
  const auto& tok = need_tokenizer(m, "heads patch");
  if (!a.on("no-eos-stop")) x.eos = cfg.eos_token_id;

  auto t0 = std::chrono::steady_clock::now();
  std::map<std::string, std::vector<H::AlignedPair>> pairs;
  std::map<std::string, int64_t> mismatched;
  for (auto& e : x.emotions)
    for (auto& p : x.prof.of(e)) {
      auto ee = tok.encode(p.emotion), nn = tok.encode(p.neutral);
      check_ids(ee, cfg, cat(e, " emotion prompt at line ", p.line));
      check_ids(nn, cfg, cat(e, " neutral prompt at line ", p.line), x.max_tokens);
      pairs[e].push_back(H::align_pair(std::move(ee), std::move(nn)));
      mismatched[e] += pairs[e].back().offset != 0;
    }
  std::string tag = spec_tag(heads);
  std::map<std::string, nlohmann::json> files;
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (auto& e : x.emotions) {
    auto s0 = std::chrono::steady_clock::now();
    std::vector<std::vector<int64_t>> neutral;
    for (auto& p : pairs[e]) neutral.push_back(p.neutral_ids);
    auto base_ids = H::generate_greedy_batch(*m.model, neutral, x.max_tokens, x.eos, nullptr, x.batch);
    auto pat_ids = H::generate_patched(*m.model, pairs[e], heads, x.max_tokens, x.eos, pg == "mean", x.batch);
    nlohmann::json j{{"model", m.dir}, {"profile", x.prof.dir}, {"emotion", e}, {"head_spec", H::format_head_spec(heads)},
                     {"patch_generated", pg}, {"max_tokens", x.max_tokens}, {"length_mismatched_pairs", mismatched[e]}};
    for (auto& h : heads) j["heads"].push_back({h.layer, h.head});
    std::vector<std::string> texts;
    for (auto& p : x.prof.of(e)) texts.push_back(p.neutral);
    compare_runs(j, tensors, e, "patched", texts, neutral, base_ids, pat_ids, tok, x.prof, x.resamples, x.seed);
    for (size_t i = 0; i < pairs[e].size(); ++i) {
      j["prompts"][i]["source_prompt"] = x.prof.of(e)[i].emotion;
      j["prompts"][i]["source_ids"] = pairs[e][i].emotion_ids;
    }
    j["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
    files[base_name(a.str("model")) + "_" + e + "_" + tag + ".json"] = j;
    std::fprintf(stderr, "%s: %zu pairs (%lld of different lengths) x 2 runs x %lld tokens in %.2fs\n", e.c_str(),
                 texts.size(), (long long)mismatched[e], (long long)x.max_tokens, j["seconds"].get<double>());
  }
  double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  report::RunOutput out(a.str("out"), argc, argv, "heads patch", "Head patching: " + m.dir,
                        "patching " + H::format_head_spec(heads) + " from the emotion prompts");
  out.manifest.model = m.dir;
  out.manifest.seed = x.seed;
  out.manifest.versions["libtorch"] = TORCH_VERSION;
  out.manifest.extra = {{"head_spec", H::format_head_spec(heads)}, {"patch_generated", pg}, {"profile", x.prof.dir},
                        {"emotions", x.emotions}, {"max_tokens", x.max_tokens}, {"total_s", total}};
  write_experiment(out, files, tensors, "head_patching.safetensors",
                   {{"model", m.dir}, {"head_spec", H::format_head_spec(heads)}, {"patch_generated", pg}}, "patched");
  std::printf("patching %s from the emotion prompts, %lld new tokens -> %s\n", H::format_head_spec(heads).c_str(),
              (long long)x.max_tokens, out.dir().c_str());
  print_table(files, "patched");
  return 0;
}

int run_heads(int argc, char** argv) {
  set_default_model(std::string(MECHSCOPE_SOURCE_DIR) + "/examples/emotion/model");  // issue 14's embedded default
  const char* usage =
      "usage: mechscope heads SUBCOMMAND ...\n\n"
      "Attention-head analysis of emotion over prompt profiles.\n\n"
      "  screen   a score per layer x head x emotion (keyword-attention, output-norm, causal)\n"
      "  ablate   generations with heads ablated vs without, sentiment and keywords, paired statistics\n"
      "  patch    generations from neutral prompts with heads patched from the emotion prompts, compared\n\n"
      "mechscope heads SUBCOMMAND --help lists its flags.\n";
  if (argc < 1 || !std::strcmp(argv[0], "--help") || !std::strcmp(argv[0], "-h")) {
    if (argc < 1) fail("heads needs a subcommand: screen, ablate or patch (see mechscope heads --help)");
    std::printf("%s", usage);
    return 0;
  }
  if (!std::strcmp(argv[0], "screen")) return run_screen(argc - 1, argv + 1);
  if (!std::strcmp(argv[0], "ablate")) return run_ablate(argc - 1, argv + 1);
  if (!std::strcmp(argv[0], "patch")) return run_patch(argc - 1, argv + 1);
  fail("unknown heads subcommand '", argv[0], "' (known: screen, ablate, patch)");
}

const Register reg{"heads", "attention-head analysis of emotion (heads screen, ablate, patch)", 75, run_heads};

}  // namespace
}  // namespace mechscope::cli
