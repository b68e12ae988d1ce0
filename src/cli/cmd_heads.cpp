// mechscope heads: attention-head analysis of emotion over prompt profiles (issue 14, seed 001).
// Subcommands: screen (a score per layer × head × emotion), ablate (generations with heads ablated,
// scored against the unablated ones), patch (generations from neutral prompts with heads patched in),
// plot (the seed's four figures and the generations side by side), all (the whole Phase 7).
// This file: the dispatcher, what every subcommand shares, and screen.
#include "cli/cmd_heads.h"

#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "cli/batch.h"
#include "cli/distribute.h"
#include "cli/registry.h"
#include "cli/wire.h"
#include "core/error.h"
#include "core/fs.h"
#include "io/safetensors.h"
#include "report/output.h"
#include "core/source_dir.h"  // MECHSCOPE_SOURCE_DIR, MECHSCOPE_BINARY

namespace mechscope::cli::heads {

std::string resolve_profile(const std::string& p) {
  if (dir_exists(p)) return p;
  std::string shipped = std::string(MECHSCOPE_SOURCE_DIR) + "/examples/emotion/profiles/" + p;
  if (p.find('/') == std::string::npos && dir_exists(shipped)) return shipped;
  fail("--profile '", p, "' is neither a directory nor a shipped profile (baseline, extended)");
}

std::vector<int64_t> encode_prompt(const Args& a, const Loaded& m, const std::string& text, const std::string& what,
                                   int64_t extra) {
  return encode_text(a, m, text, what, std::nullopt, extra).ids;
}

Tokenized tokenize_pairs(const Args& a, const Loaded& m, const H::Profile& prof, const std::string& emotion,
                         bool need_after_phrase, int64_t extra) {
  Tokenized t;
  for (auto& p : prof.of(emotion)) {
    std::string where = p.where();
    auto e = encode_prompt(a, m, p.emotion, where + " (emotion prompt)");
    auto n = encode_prompt(a, m, p.neutral, where + " (neutral prompt)", extra);
    t.pairs.push_back(H::align_pair(std::move(e), std::move(n)));
    if (need_after_phrase && t.pairs.back().emotion_phrase_end >= (int64_t)t.pairs.back().emotion_ids.size())
      fail(where, ": the emotional phrase ends the prompt, so no position reads it; add the words that follow it");
    t.mismatched += t.pairs.back().offset != 0;
  }
  return t;
}

namespace {

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

}  // namespace

void add_screen_flags(Args& a) { a.opt("score", "S", "keyword-attention, output-norm or causal", "keyword-attention"); }

ScreenResult compute_screen(const Args& a, const Loaded& m, const H::Profile& prof,
                            const std::vector<std::string>& emotions, H::ScreenScore score, int64_t top_n,
                            const batch::Job& job) {
  const auto& cfg = m.model->config();
  if (!cfg.causal) fail("heads screen needs a causal language model; '", m.dir, "' is ", cfg.model_type);
  need_lm_head(m, "heads screen");
  auto t0 = std::chrono::steady_clock::now();
  std::map<std::string, Tokenized> tok;
  std::map<std::string, std::vector<int64_t>> kw_ids;
  for (auto& e : emotions) {
    tok[e] = tokenize_pairs(a, m, prof, e, true);
    if (score == H::ScreenScore::Causal) kw_ids[e] = keyword_tokens(m, prof.keywords.at(e));
  }
  ScreenResult r;
  nlohmann::json timings;
  auto scores_of = [&](const std::string& e, const std::vector<H::AlignedPair>& pairs) {
    if (score == H::ScreenScore::KeywordAttention) return H::keyword_attention_scores(*m.model, pairs);
    if (score == H::ScreenScore::OutputNorm) return H::output_norm_scores(*m.model, pairs);
    return H::causal_scores(*m.model, pairs, kw_ids[e]);
  };
  auto said = [&](const std::string& e, double s) {
    timings[e + "_s"] = s;
    std::fprintf(stderr, "%s: %zu pairs, %lld heads in %.2fs\n", e.c_str(), tok[e].pairs.size(),
                 (long long)(cfg.n_layers * cfg.n_heads), s);
  };
  if (!job.spread()) {
    for (auto& e : emotions) {
      auto s0 = std::chrono::steady_clock::now();
      r.scores[e] = scores_of(e, tok[e].pairs);
      said(e, std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count());
    }
  } else {
    // Over ranks or shards (issue 18) every (emotion, pair) is an item. Each score is a sum over pairs
    // (from zeros, in pair order) divided by their number, and a pair's score alone is its term (0 +
    // term, divided by 1): rank 0 (or merge) adds the terms in pair order from zeros and divides, the
    // operations of one process, so the scores are the same bits whichever process computed each pair.
    std::vector<std::pair<std::string, size_t>> items;
    wire::Writer inputs;
    for (auto& e : emotions) {
      inputs.str(e), inputs.ints(kw_ids[e]);
      for (size_t i = 0; i < tok[e].pairs.size(); ++i) {
        items.emplace_back(e, i);
        const auto& p = tok[e].pairs[i];
        inputs.ints(p.emotion_ids), inputs.ints(p.neutral_ids), inputs.pod(p.offset), inputs.pod(p.emotion_phrase_end);
      }
    }
    auto each = batch::run(job, "heads screen pairs", (long long)items.size(), inputs.take(), [&](long long k) {
      auto& [e, i] = items[(size_t)k];
      auto s0 = std::chrono::steady_clock::now();
      at::Tensor term = scores_of(e, {tok[e].pairs[i]}).cpu();
      wire::Writer w;
      w.tensor(term);
      w.pod(std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count());
      return w.take();
    });
    if (!each) return r;  // the caller's job.lead() test ends these processes
    size_t k = 0;
    for (auto& e : emotions) {
      at::Tensor sum = at::zeros({cfg.n_layers, cfg.n_heads}, at::kDouble);
      double secs = 0;
      for (size_t i = 0; i < tok[e].pairs.size(); ++i, ++k) {
        wire::Reader rd(each->at((long long)k));
        sum += rd.tensor();
        secs += rd.pod<double>();
      }
      r.scores[e] = sum / (double)std::max<size_t>(tok[e].pairs.size(), 1);
      said(e, secs);
    }
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  timings["total_s"] = r.seconds;

  std::vector<ScreenRow> rows;
  for (auto& e : emotions)
    for (int64_t l = 0; l < cfg.n_layers; ++l)
      for (int64_t h = 0; h < cfg.n_heads; ++h) rows.push_back({l, h, e, r.scores[e][l][h].item<double>()});
  r.top = rows;
  std::stable_sort(r.top.begin(), r.top.end(),
                   [](const ScreenRow& x, const ScreenRow& y) { return std::fabs(x.score) > std::fabs(y.score); });
  if ((int64_t)r.top.size() > top_n) r.top.resize(top_n);
  auto row_json = [](const ScreenRow& w) {
    return nlohmann::json{{"layer", w.layer}, {"head", w.head}, {"emotion", w.emotion}, {"score", w.score}};
  };
  nlohmann::json& j = r.json;
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
  for (auto& w : rows) j["scores"].push_back(row_json(w));
  for (auto& w : r.top) j["top"].push_back(row_json(w));
  j["timings"] = timings;
  return r;
}

std::vector<std::string> write_screen(const std::string& dir, const ScreenResult& r, const std::string& model) {
  make_dirs(dir);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (auto& [e, s] : r.scores) tensors.emplace_back(e, s.to(at::kFloat));
  std::string score = r.json["score"];
  io::write_safetensors(join_path(dir, "head_scores.safetensors"), tensors,
                        {{"model", model}, {"score", score}, {"axes", "layer,head"}});
  write_file_atomic(join_path(dir, "head_scores.json"), r.json.dump(1));
  return {"head_scores.safetensors", "head_scores.json"};
}

std::vector<H::HeadRef> top_heads_of(const ScreenResult& r, const std::string& e, int64_t n) {
  at::Tensor s = r.scores.at(e);
  std::vector<ScreenRow> rows;
  for (int64_t l = 0; l < s.size(0); ++l)
    for (int64_t h = 0; h < s.size(1); ++h) rows.push_back({l, h, e, s[l][h].item<double>()});
  std::stable_sort(rows.begin(), rows.end(),
                   [](const ScreenRow& x, const ScreenRow& y) { return std::fabs(x.score) > std::fabs(y.score); });
  std::vector<H::HeadRef> out;
  for (size_t i = 0; i < rows.size() && (int64_t)i < n; ++i) out.push_back({rows[i].layer, rows[i].head});
  std::sort(out.begin(), out.end());
  return out;
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
         "Prompts are encoded as every command encodes text (--prepend-bos, --no-special-tokens).\n"
         "Writes head_scores.json (every layer x head x emotion score, the top heads) and\n"
         "head_scores.safetensors ([layers, heads] per emotion), index.html and manifest.json.");
  add_model_flags(a);
  add_encoding_flags(a);
  a.opt("profile", "P", "profile folder or shipped profile name", "baseline");
  a.opt("emotion", "E", "one emotion of the profile, or all", "all");
  add_screen_flags(a);
  a.opt("top-n", "N", "heads listed as the top ones (by |score|)", "20");
  a.opt("out", "DIR", "output folder");
  batch::add_shard_flag(a);
  if (!a.parse(argc, argv)) return 0;
  if (!a.has("out")) fail("--out DIR is required");
  auto score = H::parse_screen_score(a.str("score"), "--score");
  int64_t top_n = a.integer("top-n", 1, 1 << 30);
  H::Profile prof = H::load_profile(resolve_profile(a.str("profile")));
  auto emotions = prof.select(a.str("emotion"));
  Loaded m = load_from_flags(a);
  const auto& cfg = m.model->config();

  // Issue 17: --out is claimed (lock, no foreign folder) before the work, so a second run or a folder
  // that is not mechscope's is refused at once; the results are still staged and moved in at the end.
  // Over ranks or shards the pairs are shared out (compute_screen); rank 0 (or merge) alone writes the
  // folder.
  batch::Job job = batch::start(a);
  if (job.lead()) report::claim_output_dir(a.str("out"), "heads screen");
  ScreenResult r = compute_screen(a, m, prof, emotions, score, top_n, job);
  if (!job.lead()) return 0;

  report::RunOutput out(a.str("out"), argc, argv, "heads screen", "Head screening: " + m.dir,
                        H::screen_score_name(score) + " score, profile " + prof.dir);
  out.manifest.model = m.dir;
  out.manifest.versions["libtorch"] = TORCH_VERSION;
  out.manifest.extra = {{"score", H::screen_score_name(score)}, {"profile", prof.dir}, {"emotions", emotions}};
  for (auto& f : write_screen(out.dir(), r, m.dir)) out.add_file(f);
  out.html.add_number("heads", (double)(cfg.n_layers * cfg.n_heads));
  for (auto& e : emotions) out.html.add_number(e + " pairs", r.json["pairs"][e].get<double>());
  std::string lines;
  for (auto& w : r.top) lines += cat("L", w.layer, "H", w.head, " ", w.emotion, " ", w.score, "\n");
  out.html.add_paragraph("Top heads by |score|:\n" + lines);
  out.finish();

  std::printf("%zu scores (%lld layers x %lld heads x %zu emotions) in %.2fs -> %s\n", r.json["scores"].size(),
              (long long)cfg.n_layers, (long long)cfg.n_heads, emotions.size(), r.seconds, out.dir().c_str());
  for (size_t i = 0; i < r.top.size() && i < 10; ++i)
    std::printf("  %2zu. layer %lld head %lld  %-10s %+.6f\n", i + 1, (long long)r.top[i].layer,
                (long long)r.top[i].head, r.top[i].emotion.c_str(), r.top[i].score);
  return 0;
}

namespace {

int run_heads(int argc, char** argv) {
  set_default_model(std::string(MECHSCOPE_SOURCE_DIR) + "/examples/emotion/model");  // issue 14's embedded default
  const char* usage =
      "usage: mechscope heads SUBCOMMAND ...\n\n"
      "Attention-head analysis of emotion over prompt profiles.\n\n"
      "  screen   a score per layer x head x emotion (keyword-attention, output-norm, causal)\n"
      "  ablate   generations with heads ablated vs without, sentiment and keywords, paired statistics\n"
      "  patch    generations from neutral prompts with heads patched from the emotion prompts, compared\n"
      "  plot     the seed's four figures and the generations side by side, from screen/ablate/patch outputs\n"
      "  all      screen, then ablate and patch each emotion's top heads, then plot (the seed's Phase 7)\n\n"
      "mechscope heads SUBCOMMAND --help lists its flags.\n";
  if (argc < 1 || !std::strcmp(argv[0], "--help") || !std::strcmp(argv[0], "-h")) {
    if (argc < 1) fail("heads needs a subcommand: screen, ablate, patch, plot or all (see mechscope heads --help)");
    std::printf("%s", usage);
    return 0;
  }
  if (!std::strcmp(argv[0], "screen")) return run_screen(argc - 1, argv + 1);
  if (!std::strcmp(argv[0], "ablate")) return run_ablate(argc - 1, argv + 1);
  if (!std::strcmp(argv[0], "patch")) return run_patch(argc - 1, argv + 1);
  if (!std::strcmp(argv[0], "all")) return run_all(argc - 1, argv + 1);
  // plot reads finished folders and draws: nothing to share out, and every rank would write the folder.
  if (dist::size() > 1 && !std::strcmp(argv[0], "plot"))
    fail("heads plot does not run over MPI ranks (heads screen, ablate, patch and all do); run it without mpirun");
  if (!std::strcmp(argv[0], "plot")) return run_plot(argc - 1, argv + 1);
  fail("unknown heads subcommand '", argv[0], "' (known: screen, ablate, patch, plot, all)");
}

const Register reg{"heads", "attention-head analysis of emotion (heads screen, ablate, patch, plot, all)", 75,
                   run_heads};

}  // namespace
}  // namespace mechscope::cli::heads
