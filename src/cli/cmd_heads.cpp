// mechscope heads: attention-head analysis of emotion over prompt profiles (issue 14, seed 001).
// Subcommands: screen (a score per layer × head × emotion), ablate (generations with heads ablated,
// scored against the unablated ones).
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

int run_ablate(int argc, char** argv) {
  Args a("heads ablate", "--model M --profile P --head-spec L:H,... --emotion E|all --out DIR [--kind zero|mean]",
         "Generates from each emotion prompt of the profile with and without the heads ablated (their hook_z\n"
         "zeroed, or set to its mean over every prompt of the profile, at every position and every generated\n"
         "step), greedy, batched with a KV cache; scores both continuations (VADER compound, keyword counts\n"
         "per emotion) and reports per-prompt paired differences: mean, bootstrap 95% interval and a seeded\n"
         "paired permutation p-value. Writes <model>_<emotion>_<heads>.json per emotion (every prompt's ids\n"
         "and texts, both runs, each score) and head_ablation.safetensors (the per-prompt scores).");
  add_model_flags(a);
  a.opt("profile", "P", "profile folder or shipped profile name", "baseline");
  a.opt("head-spec", "L:H,...", "heads to ablate: '0:0,3:5', 'L:*' for a whole layer");
  a.opt("emotion", "E", "one emotion of the profile, or all", "all");
  a.opt("prompts-file", "FILE", "a pairs file whose emotion prompts replace the profile's (one --emotion)");
  a.opt("kind", "K", "zero, or mean (over every prompt of the profile, both sides, without ablation)", "zero");
  a.opt("max-tokens", "N", "tokens to generate per prompt", "15");
  a.opt("batch-size", "N", "prompts generated together", "32");
  a.opt("resamples", "N", "bootstrap and permutation resamples", "10000");
  a.opt("seed", "N", "seed of the bootstrap and permutation draws", "0");
  a.flag("no-eos-stop", "keep generating after the end-of-sequence token");
  a.opt("out", "DIR", "output folder");
  if (!a.parse(argc, argv)) return 0;
  if (!a.has("out")) fail("--out DIR is required");
  if (!a.has("head-spec")) fail("--head-spec L:H,... is required (e.g. --head-spec 0:0,3:5)");
  auto kind = H::parse_head_ablation(a.str("kind"), "--kind");
  int64_t max_tokens = a.integer("max-tokens", 1, 1 << 20);
  int64_t batch = a.integer("batch-size", 1, 1 << 20);
  int64_t resamples = a.integer("resamples", 1, 100000000);
  uint64_t seed = (uint64_t)a.integer("seed", 0, std::numeric_limits<long long>::max());
  H::Profile prof = H::load_profile(resolve_profile(a.str("profile")));
  auto emotions = prof.select(a.str("emotion"));
  if (a.has("prompts-file")) {
    if (emotions.size() != 1) fail("--prompts-file replaces one emotion's prompts: give --emotion NAME too");
    prof.pairs[emotions[0]] = H::read_pairs(a.str("prompts-file"));
  }
  Loaded m = load_from_flags(a);
  const auto& cfg = m.model->config();
  auto heads = H::parse_head_spec(a.str("head-spec"), cfg.n_layers, cfg.n_heads, "--head-spec");
  const auto& tok = need_tokenizer(m, "heads ablate");
  std::optional<int64_t> eos;
  if (!a.on("no-eos-stop")) eos = cfg.eos_token_id;

  auto t0 = std::chrono::steady_clock::now();
  std::map<std::string, std::vector<std::vector<int64_t>>> prompts;
  for (auto& e : emotions)
    for (auto& p : prof.of(e)) {
      prompts[e].push_back(tok.encode(p.emotion));
      check_ids(prompts[e].back(), cfg, cat(e, " prompt at line ", p.line), max_tokens);
    }
  std::map<int64_t, at::Tensor> means;
  int64_t mean_prompts = 0;
  if (kind == H::HeadAblation::Mean) {
    std::vector<std::vector<int64_t>> all;
    for (auto& [e, ps] : prof.pairs)
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

  std::string model_name = base_name(a.str("model")), tag = spec_tag(heads);
  std::map<std::string, nlohmann::json> files;
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  nlohmann::json summary;
  for (auto& e : emotions) {
    auto s0 = std::chrono::steady_clock::now();
    auto base_ids = H::generate_greedy_batch(*m.model, prompts[e], max_tokens, eos, nullptr, batch);
    auto abl_ids = H::generate_greedy_batch(*m.model, prompts[e], max_tokens, eos, &hs, batch);
    std::vector<std::string> base_text, abl_text;
    for (auto& ids : base_ids) base_text.push_back(decode_known(tok, ids));
    for (auto& ids : abl_ids) abl_text.push_back(decode_known(tok, ids));
    Scores bs = score_texts(base_text, prof), as = score_texts(abl_text, prof);
    nlohmann::json j;
    j["model"] = m.dir;
    j["profile"] = prof.dir;
    j["emotion"] = e;
    j["head_spec"] = H::format_head_spec(heads);
    for (auto& h : heads) j["heads"].push_back({h.layer, h.head});
    j["kind"] = H::head_ablation_name(kind);
    if (kind == H::HeadAblation::Mean) j["mean_over_prompts"] = mean_prompts;
    j["max_tokens"] = max_tokens;
    j["sentiment"] = "VADER compound of the continuation";
    const auto& pairs = prof.of(e);
    for (size_t i = 0; i < pairs.size(); ++i) {
      nlohmann::json p{{"index", i}, {"prompt", pairs[i].emotion}, {"prompt_ids", prompts[e][i]}};
      auto side = [&](const std::vector<int64_t>& ids, const std::string& text, const Scores& s) {
        nlohmann::json k;
        for (auto& [ke, v] : s.keywords) k[ke] = v[i];
        return nlohmann::json{{"ids", ids}, {"text", text}, {"sentiment", s.sentiment[i]}, {"keywords", k}};
      };
      p["baseline"] = side(base_ids[i], base_text[i], bs);
      p["ablated"] = side(abl_ids[i], abl_text[i], as);
      j["prompts"].push_back(p);
    }
    auto cmp = H::compare_paired(bs.sentiment, as.sentiment, resamples, seed);
    j["comparison"]["sentiment"] = comparison_json(cmp);
    for (auto& [ke, v] : bs.keywords) {
      j["comparison"]["keywords"][ke] = comparison_json(H::compare_paired(v, as.keywords[ke], resamples, seed));
      double tb = 0, ta = 0;
      for (size_t i = 0; i < v.size(); ++i) {
        tb += v[i];
        ta += as.keywords[ke][i];
      }
      j["keyword_totals"][ke] = {{"baseline", tb}, {"ablated", ta}};
    }
    j["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
    summary[e] = j["comparison"];
    tensors.emplace_back(e + ".baseline.sentiment", at::tensor(bs.sentiment, at::kDouble).to(at::kFloat));
    tensors.emplace_back(e + ".ablated.sentiment", at::tensor(as.sentiment, at::kDouble).to(at::kFloat));
    for (auto& [ke, v] : bs.keywords) {
      tensors.emplace_back(e + ".baseline.keywords." + ke, at::tensor(v, at::kDouble).to(at::kFloat));
      tensors.emplace_back(e + ".ablated.keywords." + ke, at::tensor(as.keywords[ke], at::kDouble).to(at::kFloat));
    }
    files[model_name + "_" + e + "_" + tag + ".json"] = j;
    std::fprintf(stderr, "%s: %zu prompts x 2 runs x %lld tokens in %.2fs\n", e.c_str(), pairs.size(),
                 (long long)max_tokens, j["seconds"].get<double>());
  }
  double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  report::RunOutput out(a.str("out"), argc, argv, "heads ablate", "Head ablation: " + m.dir,
                        H::head_ablation_name(kind) + " ablation of " + H::format_head_spec(heads));
  out.manifest.model = m.dir;
  out.manifest.seed = seed;
  out.manifest.versions["libtorch"] = TORCH_VERSION;
  out.manifest.extra = {{"head_spec", H::format_head_spec(heads)}, {"kind", H::head_ablation_name(kind)},
                        {"profile", prof.dir}, {"emotions", emotions}, {"max_tokens", max_tokens}, {"total_s", total}};
  for (auto& [name, j] : files) {
    write_file_atomic(join_path(out.dir(), name), j.dump(1));
    out.add_file(name);
  }
  io::write_safetensors(join_path(out.dir(), "head_ablation.safetensors"), tensors,
                        {{"model", m.dir}, {"head_spec", H::format_head_spec(heads)}, {"kind", H::head_ablation_name(kind)}});
  out.add_file("head_ablation.safetensors");
  for (auto& e : emotions) {
    auto& c = summary[e]["sentiment"];
    out.html.add_paragraph(cat(e, ": sentiment ", c["baseline_mean"].get<double>(), " -> ", c["intervened_mean"].get<double>(),
                               " (diff ", c["mean_diff"].get<double>(), ", p = ", c["p_value"].get<double>(), ")"));
  }
  out.finish();

  std::printf("%s ablation of %s, %lld new tokens -> %s\n", H::head_ablation_name(kind).c_str(),
              H::format_head_spec(heads).c_str(), (long long)max_tokens, out.dir().c_str());
  std::printf("%-10s %-18s %9s %9s %9s  %-21s %8s\n", "emotion", "metric", "baseline", "ablated", "change", "95% CI", "p");
  for (auto& e : emotions) {
    auto row = [&](const std::string& name, const nlohmann::json& c) {
      std::printf("%-10s %-18s %9.4f %9.4f %+9.4f  [%+.4f, %+.4f] %8.4f\n", e.c_str(), name.c_str(),
                  c["baseline_mean"].get<double>(), c["intervened_mean"].get<double>(), c["mean_diff"].get<double>(),
                  c["ci95"][0].get<double>(), c["ci95"][1].get<double>(), c["p_value"].get<double>());
    };
    row("sentiment", summary[e]["sentiment"]);
    for (auto& [ke, c] : summary[e]["keywords"].items()) row(ke + " keywords", c);
  }
  return 0;
}

int run_heads(int argc, char** argv) {
  const char* usage =
      "usage: mechscope heads SUBCOMMAND ...\n\n"
      "Attention-head analysis of emotion over prompt profiles.\n\n"
      "  screen   a score per layer x head x emotion (keyword-attention, output-norm, causal)\n"
      "  ablate   generations with heads ablated vs without, sentiment and keywords, paired statistics\n\n"
      "mechscope heads SUBCOMMAND --help lists its flags.\n";
  if (argc < 1 || !std::strcmp(argv[0], "--help") || !std::strcmp(argv[0], "-h")) {
    if (argc < 1) fail("heads needs a subcommand: screen or ablate (see mechscope heads --help)");
    std::printf("%s", usage);
    return 0;
  }
  if (!std::strcmp(argv[0], "screen")) return run_screen(argc - 1, argv + 1);
  if (!std::strcmp(argv[0], "ablate")) return run_ablate(argc - 1, argv + 1);
  fail("unknown heads subcommand '", argv[0], "' (known: screen, ablate)");
}

const Register reg{"heads", "attention-head analysis of emotion (heads screen, heads ablate)", 75, run_heads};

}  // namespace
}  // namespace mechscope::cli
