// mechscope heads: attention-head analysis of emotion over prompt profiles (issue 14, seed 001).
// Subcommands: screen (a score per layer × head × emotion).
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "analysis/heads/profile.h"
#include "analysis/heads/screen.h"
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

int run_heads(int argc, char** argv) {
  const char* usage =
      "usage: mechscope heads SUBCOMMAND ...\n\n"
      "Attention-head analysis of emotion over prompt profiles.\n\n"
      "  screen   a score per layer x head x emotion (keyword-attention, output-norm, causal)\n\n"
      "mechscope heads SUBCOMMAND --help lists its flags.\n";
  if (argc < 1 || !std::strcmp(argv[0], "--help") || !std::strcmp(argv[0], "-h")) {
    if (argc < 1) fail("heads needs a subcommand: screen (see mechscope heads --help)");
    std::printf("%s", usage);
    return 0;
  }
  if (!std::strcmp(argv[0], "screen")) return run_screen(argc - 1, argv + 1);
  fail("unknown heads subcommand '", argv[0], "' (known: screen)");
}

const Register reg{"heads", "attention-head analysis of emotion (heads screen)", 75, run_heads};

}  // namespace
}  // namespace mechscope::cli
