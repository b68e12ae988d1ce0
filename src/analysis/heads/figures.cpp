#include "analysis/heads/figures.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"

namespace mechscope::analysis::heads {

namespace {

using nlohmann::json;

// Field access with an Error naming the file and key, never nlohmann's type_error.
const json& field(const json& j, const std::string& key, const std::string& where) {
  if (!j.is_object() || !j.contains(key)) fail(where, ": missing \"", key, "\"");
  return j[key];
}
double number(const json& j, const std::string& key, const std::string& where) {
  const json& v = field(j, key, where);
  if (!v.is_number()) fail(where, ": \"", key, "\" is not a number");
  return v.get<double>();
}
std::string text(const json& j, const std::string& key, const std::string& where) {
  const json& v = field(j, key, where);
  if (!v.is_string()) fail(where, ": \"", key, "\" is not a string");
  return v.get<std::string>();
}
int64_t whole(const json& j, const std::string& key, const std::string& where, int64_t lo, int64_t hi) {
  double v = number(j, key, where);
  if (v != std::floor(v) || v < (double)lo || v > (double)hi)
    fail(where, ": \"", key, "\" is ", v, ", expected a whole number in ", lo, " .. ", hi);
  return (int64_t)v;
}

Comparison comparison(const json& j, const std::string& where) {
  Comparison c;
  c.n = whole(j, "n", where, 0, 1LL << 40);
  c.baseline = number(j, "baseline_mean", where);
  c.intervened = number(j, "intervened_mean", where);
  c.diff = number(j, "mean_diff", where);
  c.p = number(j, "p_value", where);
  const json& ci = field(j, "ci95", where);
  if (!ci.is_array() || ci.size() != 2 || !ci[0].is_number() || !ci[1].is_number())
    fail(where, ": \"ci95\" is not a pair of numbers");
  c.ci_low = ci[0].get<double>(), c.ci_high = ci[1].get<double>();
  return c;
}

std::string fmt(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}
std::string signed_fmt(double v, int decimals) { return (v >= 0 ? "+" : "") + fmt(v, decimals); }

std::string p_text(double p) { return p < 0.001 ? "p<0.001" : "p=" + fmt(p, 3); }

ExperimentSummary read_experiment(const std::string& path, const json& j, const std::string& side) {
  ExperimentSummary s;
  s.path = path;
  s.side = side;
  s.emotion = text(j, "emotion", path);
  s.head_spec = text(j, "head_spec", path);
  s.model = text(j, "model", path);
  if (j.contains("sentiment_model") && j["sentiment_model"].is_string()) s.sentiment_model = j["sentiment_model"];
  const json& cmp = field(j, "comparison", path);
  s.sentiment = comparison(field(cmp, "sentiment", path + " comparison"), path + " comparison.sentiment");
  if (cmp.contains("positive")) s.positive = comparison(cmp["positive"], path + " comparison.positive");
  const json& kw = field(cmp, "keywords", path + " comparison");
  if (!kw.is_object()) fail(path, ": comparison.keywords is not an object");
  for (auto& [k, v] : kw.items()) s.keywords[k] = comparison(v, path + " comparison.keywords." + k);
  if (j.contains("keyword_totals") && j["keyword_totals"].is_object())
    for (auto& [k, v] : j["keyword_totals"].items())
      s.keyword_totals[k] = {number(v, "baseline", path + " keyword_totals." + k),
                             number(v, side, path + " keyword_totals." + k)};
  const json& prompts = field(j, "prompts", path);
  if (!prompts.is_array()) fail(path, ": \"prompts\" is not a list");
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::string w = cat(path, " prompts[", i, "]");
    const json& p = prompts[i];
    GenerationRow r;
    r.prompt = text(p, "prompt", w);
    if (p.contains("source_prompt") && p["source_prompt"].is_string()) r.source_prompt = p["source_prompt"];
    const json& b = field(p, "baseline", w);
    const json& o = field(p, side, w);
    r.baseline = text(b, "text", w + ".baseline"), r.intervened = text(o, "text", w + "." + side);
    r.baseline_sentiment = number(b, "sentiment", w + ".baseline");
    r.intervened_sentiment = number(o, "sentiment", w + "." + side);
    if (b.contains("positive")) r.baseline_positive = number(b, "positive", w + ".baseline");
    if (o.contains("positive")) r.intervened_positive = number(o, "positive", w + "." + side);
    s.rows.push_back(std::move(r));
  }
  return s;
}

// What a heads ablate / patch file is, from its content: "ablated", "patched" or "" (neither).
std::string side_of(const json& j) {
  if (!j.is_object() || !j.contains("prompts") || !j.contains("comparison") || !j["prompts"].is_array() ||
      j["prompts"].empty() || !j["prompts"][0].is_object())
    return "";
  if (j["prompts"][0].contains("ablated")) return "ablated";
  if (j["prompts"][0].contains("patched")) return "patched";
  return "";
}

std::string command_of(const std::string& side) { return side == "ablated" ? "heads ablate" : "heads patch"; }

// Largest |v| over the data (1 when all are 0 or NaN), for symmetric colour limits shared by panels.
double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v)
    if (std::isfinite(x)) m = std::max(m, std::fabs(x));
  return m > 0 ? m : 1;
}

report::Bar change_bar(const std::vector<std::string>& cats, const std::vector<Comparison>& cs, report::Rgb color) {
  report::Bar b;
  b.categories = cats;
  for (auto& c : cs) {
    b.values.push_back(c.diff);
    b.err_minus.push_back(std::max(0.0, c.diff - c.ci_low));
    b.err_plus.push_back(std::max(0.0, c.ci_high - c.diff));
  }
  b.color = color;
  b.decimals = 3;
  return b;
}

}  // namespace

HeadScoreTable read_head_scores(const std::string& path, const std::string& flag) {
  if (dir_exists(path)) {
    std::string inside = join_path(path, "head_scores.json");
    if (!file_exists(inside))
      fail(flag, " '", path, "' is a folder without head_scores.json (the output of heads screen)");
    return read_head_scores(inside, flag);
  }
  if (!file_exists(path)) fail(flag, " '", path, "' does not exist (give head_scores.json from heads screen)");
  json j = read_json_file(path);
  if (!j.is_object() || !j.contains("scores") || !j.contains("n_layers"))
    fail(flag, " '", path, "' is not a heads screen output (head_scores.json with \"scores\" and \"n_layers\")");
  HeadScoreTable t;
  t.path = path;
  t.model = j.contains("model") && j["model"].is_string() ? j["model"].get<std::string>() : "";
  t.score = j.contains("score") && j["score"].is_string() ? j["score"].get<std::string>() : "score";
  t.n_layers = whole(j, "n_layers", path, 1, 1 << 16);
  t.n_heads = whole(j, "n_heads", path, 1, 1 << 16);
  const json& rows = field(j, "scores", path);
  if (!rows.is_array() || rows.empty()) fail(path, ": \"scores\" is not a non-empty list");
  std::map<std::string, std::vector<char>> seen;
  for (size_t i = 0; i < rows.size(); ++i) {
    std::string w = cat(path, " scores[", i, "]");
    std::string e = text(rows[i], "emotion", w);
    int64_t l = whole(rows[i], "layer", w, 0, t.n_layers - 1), h = whole(rows[i], "head", w, 0, t.n_heads - 1);
    double s = number(rows[i], "score", w);
    auto& v = t.scores[e];
    if (v.empty()) {
      v.assign((size_t)(t.n_layers * t.n_heads), std::nan(""));
      seen[e].assign(v.size(), 0);
      t.emotions.push_back(e);
    }
    v[(size_t)(l * t.n_heads + h)] = s;
    seen[e][(size_t)(l * t.n_heads + h)] = 1;
  }
  for (auto& [e, s] : seen)
    for (size_t k = 0; k < s.size(); ++k)
      if (!s[k]) fail(path, ": no score for layer ", k / t.n_heads, " head ", k % t.n_heads, " of ", e);
  return t;
}

std::vector<ExperimentSummary> read_experiments(const std::string& path, const std::string& side,
                                                const std::string& flag) {
  std::vector<ExperimentSummary> out;
  std::string other = side == "ablated" ? "patched" : "ablated";
  if (dir_exists(path)) {
    std::vector<std::string> files;
    for (auto& e : std::filesystem::directory_iterator(path))
      if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    for (auto& f : files) {
      json j = read_json_file(f);
      if (side_of(j) == side) out.push_back(read_experiment(f, j, side));
    }
    if (out.empty())
      fail(flag, " '", path, "' holds no ", command_of(side), " output (<model>_<emotion>_<heads>.json)");
    return out;
  }
  if (!file_exists(path))
    fail(flag, " '", path, "' does not exist (give a ", command_of(side), " output file or folder)");
  json j = read_json_file(path);
  std::string s = side_of(j);
  if (s == other) fail(flag, " '", path, "' is a ", command_of(other), " output; expected ", command_of(side), "'s");
  if (s != side)
    fail(flag, " '", path, "' is not a ", command_of(side), " output (no prompts with \"", side, "\" runs)");
  out.push_back(read_experiment(path, j, side));
  return out;
}

report::Figure head_reaction_heatmap(const HeadScoreTable& t, const std::vector<std::string>& emotions) {
  int n = (int)emotions.size();
  double cell = std::clamp(3.6 / (double)std::max(t.n_heads, t.n_layers), 0.12, 0.45);
  double pw = std::max(2.6, cell * (double)t.n_heads + 1.2), ph = std::max(2.6, cell * (double)t.n_layers + 1.3);
  report::Figure f = report::grid("head_reaction_heatmap", "Head reaction (" + t.score + "), layer x head", 1, n,
                                  pw * n + 0.8, ph + 0.6);
  std::vector<double> all;
  for (auto& e : emotions) all.insert(all.end(), t.scores.at(e).begin(), t.scores.at(e).end());
  double lim = max_abs(all);
  for (int i = 0; i < n; ++i) {
    report::Heatmap h;
    h.rows = (size_t)t.n_layers, h.cols = (size_t)t.n_heads;
    h.z = t.scores.at(emotions[i]);
    h.cmap = "RdBu";
    h.vmin = -lim, h.vmax = lim;
    h.colorbar = i == n - 1;
    h.colorbar_title = t.score;
    h.row_name = "layer", h.col_name = "head", h.value_name = t.score;
    h.cell_text = t.n_layers * t.n_heads <= 64;
    h.cell_decimals = 3;
    auto& p = f.panels[(size_t)i];
    p.title = emotions[i];
    p.series.push_back(h);
    p.x.label = "head";
    p.y.label = "layer";
  }
  f.caption = "Score of every attention head (rows: layers, top = layer 0; columns: heads) per emotion, from " +
              t.path + ". Red: the score is negative, blue: positive; the colour limits are shared by the panels.";
  return f;
}

report::Figure top_heads_figure(const HeadScoreTable& t, const std::vector<std::string>& emotions, int64_t top_n) {
  struct Row {
    int64_t l, h;
    std::string e;
    double s;
  };
  std::vector<Row> rows;
  for (auto& e : emotions)
    for (int64_t l = 0; l < t.n_layers; ++l)
      for (int64_t h = 0; h < t.n_heads; ++h) rows.push_back({l, h, e, t.scores.at(e)[(size_t)(l * t.n_heads + h)]});
  std::stable_sort(rows.begin(), rows.end(),
                   [](const Row& a, const Row& b) { return std::fabs(a.s) > std::fabs(b.s); });
  if ((int64_t)rows.size() > top_n) rows.resize((size_t)top_n);
  report::Figure f = report::single_panel("top_heads", cat("Top ", rows.size(), " heads by |", t.score, "|"),
                                          std::max(6.4, 0.42 * (double)rows.size() + 1.5), 4.8);
  report::Bar b;
  for (auto& r : rows) {
    b.categories.push_back(cat("L", r.l, "H", r.h, emotions.size() > 1 ? " " + r.e : ""));
    b.values.push_back(r.s);
  }
  b.cmap = "RdBu";
  b.centered = true;
  b.decimals = 3;
  b.value_labels = rows.size() <= 30;
  auto& p = f.panels[0];
  p.series.push_back(b);
  p.x.label = emotions.size() > 1 ? "head (layer L, head H) and emotion" : "head (layer L, head H), " + emotions[0];
  p.y.label = t.score;
  p.refs.push_back({report::RefLine::Horizontal, 0});
  f.caption =
      "The heads with the largest |score| (signed score shown), as the seed's top-head list, from " + t.path + ".";
  return f;
}

report::Figure ablation_sentiment_figure(const std::vector<ExperimentSummary>& abl) {
  bool model = std::all_of(abl.begin(), abl.end(), [](const ExperimentSummary& s) { return s.positive.has_value(); });
  int rows = model ? 2 : 1;
  double w = std::max(9.0, 1.3 * (double)abl.size() * 2 + 3);
  report::Figure f =
      report::grid("ablation_sentiment_comparison", "Sentiment with the heads ablated vs not", rows, 2, w, 4.5 * rows);
  // Category labels are truncated when long: name an emotion alone unless it appears with several head sets,
  // and give the heads in the caption.
  std::set<std::string> distinct;
  for (auto& s : abl) distinct.insert(s.emotion);
  bool by_emotion = distinct.size() == abl.size();
  for (int r = 0; r < rows; ++r) {
    std::string metric = r == 0 ? "VADER compound" : "P(POSITIVE)";
    report::Bar means;
    std::vector<std::string> cats;
    std::vector<Comparison> cs;
    for (auto& s : abl) {
      const Comparison& c = r == 0 ? s.sentiment : *s.positive;
      std::string name = by_emotion ? s.emotion : s.emotion + " " + s.head_spec;
      means.categories.push_back(name + ": baseline");
      means.values.push_back(c.baseline);
      means.err_minus.push_back(0), means.err_plus.push_back(0);
      means.categories.push_back(name + ": ablated");
      means.values.push_back(c.intervened);
      // The paired interval of the change, placed on the baseline mean: where the ablated mean lies.
      means.err_minus.push_back(std::max(0.0, c.diff - c.ci_low));
      means.err_plus.push_back(std::max(0.0, c.ci_high - c.diff));
      cats.push_back(name + " (" + p_text(c.p) + ")");
      cs.push_back(c);
    }
    means.color = report::Rgb{0.35, 0.55, 0.75};
    means.decimals = 3;
    auto& left = f.panels[(size_t)(2 * r)];
    left.title = "mean " + metric;
    left.series.push_back(means);
    left.y.label = metric;
    auto& right = f.panels[(size_t)(2 * r + 1)];
    right.title = "change, ablated - baseline (95% bootstrap CI)";
    right.series.push_back(change_bar(cats, cs, report::Rgb{0.80, 0.40, 0.30}));
    right.y.label = "mean paired change";
    right.refs.push_back({report::RefLine::Horizontal, 0});
  }
  std::string files, heads;
  for (auto& s : abl) {
    files += (files.empty() ? "" : ", ") + s.path;
    heads += (heads.empty() ? "" : "; ") + s.emotion + ": " + s.head_spec;
  }
  f.caption =
      "Heads ablated: " + heads +
      ". "
      "Mean sentiment of the continuations of the emotion prompts with and without the heads ablated (left), and "
      "the mean per-prompt change with its bootstrap 95% interval and the paired permutation p-value (right; the "
      "same interval is drawn on the ablated mean at left). From " +
      files + ".";
  return f;
}

report::Figure patching_keyword_figure(const std::vector<ExperimentSummary>& pat) {
  int n = (int)pat.size();
  size_t n_kw = pat.empty() ? 0 : pat[0].keywords.size();
  double pw = std::max(3.6, 1.1 * (double)n_kw + 1.6);
  report::Figure f = report::grid("patching_keyword_comparison", "Emotion keywords with the heads patched in vs not", 1,
                                  n, pw * n + 0.8, 4.6);
  for (int i = 0; i < n; ++i) {
    const auto& s = pat[(size_t)i];
    std::vector<std::string> cats;
    std::vector<Comparison> cs;
    for (auto& [k, c] : s.keywords) {
      auto t =
          s.keyword_totals.count(k) ? s.keyword_totals.at(k) : std::make_pair(c.baseline * c.n, c.intervened * c.n);
      cats.push_back(cat(k, " ", fmt(t.first, 0), "->", fmt(t.second, 0)));
      cs.push_back(c);
    }
    auto& p = f.panels[(size_t)i];
    p.title = "patched from " + s.emotion + " (" + s.head_spec + ")";
    p.series.push_back(change_bar(cats, cs, report::Rgb{0.35, 0.6, 0.4}));
    p.x.label = "keywords (total baseline->patched)";
    p.y.label = "change of count per prompt";
    p.refs.push_back({report::RefLine::Horizontal, 0});
  }
  f.caption =
      "Continuations of the neutral prompts with the heads' z patched in from the paired emotion prompts: the mean "
      "per-prompt change of each emotion's keyword count with its bootstrap 95% interval; the labels give the "
      "seed's totals over all prompts, baseline -> patched.";
  return f;
}

std::vector<GenerationTable> generation_tables(const std::vector<ExperimentSummary>& abl,
                                               const std::vector<ExperimentSummary>& pat) {
  std::vector<GenerationTable> out;
  std::vector<bool> pat_used(pat.size(), false);
  auto sent = [](double b, double o) { return fmt(b, 3) + " -> " + fmt(o, 3) + " (" + signed_fmt(o - b, 3) + ")"; };
  auto pos = [](const GenerationRow& r) {
    return r.baseline_positive && r.intervened_positive
               ? fmt(*r.baseline_positive, 3) + " -> " + fmt(*r.intervened_positive, 3)
               : std::string();
  };
  auto id_of = [](const std::string& s) {
    std::string id;
    for (char c : s) id += std::isalnum((unsigned char)c) ? c : '_';
    return id;
  };
  for (size_t a = 0; a < abl.size(); ++a) {
    const auto& A = abl[a];
    // The patching of the same emotion whose source prompts are these ablation prompts, pair by pair.
    const ExperimentSummary* P = nullptr;
    for (size_t k = 0; k < pat.size() && !P; ++k) {
      if (pat_used[k] || pat[k].emotion != A.emotion || pat[k].rows.size() != A.rows.size()) continue;
      bool same = true;
      for (size_t i = 0; i < A.rows.size() && same; ++i) same = pat[k].rows[i].source_prompt == A.rows[i].prompt;
      if (same) P = &pat[k], pat_used[k] = true;
    }
    bool model = A.positive && (!P || P->positive);
    GenerationTable t;
    t.id = cat("generations_", a, "_", id_of(A.emotion));
    t.title = "Generations: " + A.emotion +
              (P ? " (ablated " + A.head_spec + ", patched " + P->head_spec + ")" : " (ablated " + A.head_spec + ")");
    t.header = {"#", "emotion prompt", "baseline", "ablated", "VADER"};
    if (model) t.header.push_back("P(POSITIVE)");
    if (P) {
      for (const char* h : {"neutral prompt", "baseline", "patched", "VADER"}) t.header.push_back(h);
      if (model) t.header.push_back("P(POSITIVE)");
    }
    for (size_t i = 0; i < A.rows.size(); ++i) {
      const auto& r = A.rows[i];
      std::vector<std::string> row{std::to_string(i + 1), r.prompt, r.baseline, r.intervened,
                                   sent(r.baseline_sentiment, r.intervened_sentiment)};
      if (model) row.push_back(pos(r));
      if (P) {
        const auto& q = P->rows[i];
        for (auto& c : {q.prompt, q.baseline, q.intervened, sent(q.baseline_sentiment, q.intervened_sentiment)})
          row.push_back(c);
        if (model) row.push_back(pos(q));
      }
      t.rows.push_back(std::move(row));
    }
    t.caption =
        "Each emotion prompt's continuation without and with the heads ablated (" + A.path + ")" +
        (P ? ", and its paired neutral prompt's continuation without and with the heads patched in (" + P->path + ")"
           : "") +
        "; sentiment baseline -> intervened (change).";
    out.push_back(std::move(t));
  }
  for (size_t k = 0; k < pat.size(); ++k) {
    if (pat_used[k]) continue;
    const auto& P = pat[k];
    GenerationTable t;
    t.id = cat("generations_patch_", k, "_", id_of(P.emotion));
    t.title = "Generations: " + P.emotion + " (patched " + P.head_spec + ")";
    t.header = {"#", "emotion prompt (source)", "neutral prompt", "baseline", "patched", "VADER"};
    if (P.positive) t.header.push_back("P(POSITIVE)");
    for (size_t i = 0; i < P.rows.size(); ++i) {
      const auto& q = P.rows[i];
      std::vector<std::string> row{std::to_string(i + 1),
                                   q.source_prompt,
                                   q.prompt,
                                   q.baseline,
                                   q.intervened,
                                   sent(q.baseline_sentiment, q.intervened_sentiment)};
      if (P.positive) row.push_back(pos(q));
      t.rows.push_back(std::move(row));
    }
    t.caption = "Each neutral prompt's continuation without and with the heads patched in from its emotion prompt (" +
                P.path + ").";
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace mechscope::analysis::heads
