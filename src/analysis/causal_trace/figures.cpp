#include "analysis/causal_trace/figures.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>

#include "core/error.h"

namespace mechscope::analysis::causal_trace {

using namespace report;

static const char* cmap_of(Kind k) { return k == Kind::All ? "Purples" : k == Kind::Mlp ? "Greens" : "Reds"; }
static const char* kindname(Kind k) { return k == Kind::Mlp ? "MLP" : "Attn"; }

static std::vector<double> to_vector(const at::Tensor& t) {
  at::Tensor c = t.to(at::kDouble).cpu().contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

static std::string fmt(double v, const char* spec = "%.4g") {
  char buf[64];
  std::snprintf(buf, sizeof buf, spec, v);
  return buf;
}

// Integer layer ticks (1-2-5 steps, about 12 at most) over [-0.5, L - 0.5].
static void layer_axis(Axis& a, int L) {
  int step = 1;
  for (int s : {1, 2, 5, 10, 20, 50, 100})
    if (L / s <= 12) {
      step = s;
      break;
    }
  a.ticks.clear();
  a.tick_labels.clear();
  for (int l = 0; l < L; l += step) {
    a.ticks.push_back(l);
    a.tick_labels.push_back(std::to_string(l));
  }
  a.min = -0.5;
  a.max = L - 0.5;
}

Figure trace_heatmap(const std::string& id, const at::Tensor& scores, const std::vector<std::string>& tokens, int64_t b,
                     int64_t e, double low_score, const std::string& answer, Kind kind, int window,
                     const std::string& model_name) {
  const size_t n = (size_t)scores.size(0), L = (size_t)scores.size(1);
  std::string title = kind == Kind::All ? "Impact of restoring state after corrupted input"
                                        : cat("Impact of restoring ", kindname(kind), " after corrupted input");
  // ROME draws 3.5 × 2 inches for ~10 tokens; grow with the prompt so labels stay readable.
  double height = std::max(2.6, 1.25 + 0.2 * (double)n);
  Figure fig = single_panel(id, "", 5.0, height);
  Panel& p = fig.panels[0];
  p.title = title;
  p.x.label = kind == Kind::All ? cat("single restored layer within ", model_name)
                                : cat("center of interval of ", window, " restored ", kindname(kind), " layers");
  Heatmap h;
  h.rows = n;
  h.cols = L;
  h.z = to_vector(scores);
  for (size_t i = 0; i < n; ++i) {
    std::string t = i < tokens.size() ? tokens[i] : std::to_string(i);
    h.row_labels.push_back((int64_t)i >= b && (int64_t)i < e ? t + "*" : t);
  }
  for (size_t l = 0; l < L; ++l) h.col_labels.push_back(std::to_string(l));
  h.cmap = cmap_of(kind);
  h.vmin = low_score;
  h.colorbar_title = cat("p(", answer, ")");
  h.row_name = "token";
  h.col_name = kind == Kind::All ? "layer" : "window centre";
  h.value_name = cat("p(", answer, ")");
  p.series.push_back(h);
  return fig;
}

Figure average_heatmap(const std::string& id, const AieAccumulator& acc, Kind kind, double vmax, int window,
                       const std::string& model_name) {
  at::Tensor aie = acc.aie().clamp_min(0);  // ROME: numpy.clip(result - low_score, 0, None); NaN stays NaN
  const size_t L = (size_t)aie.size(1);
  std::string what = kind == Kind::All ? "hᵢ⁽ˡ⁾" : kindname(kind);
  Figure fig = single_panel(id, "", 6.4, 3.0);
  Panel& p = fig.panels[0];
  p.title = cat("Avg indirect effect of ", what, " over ", acc.facts(), " prompts");
  p.x.label = kind == Kind::All ? cat("single patched layer within ", model_name)
                                : cat("center of interval of ", window, " patched ", kindname(kind), " layers");
  Heatmap h;
  h.rows = 6;
  h.cols = L;
  h.z = to_vector(aie);
  for (int c = 0; c < 6; ++c) h.row_labels.push_back(kCategoryNames[c]);
  for (size_t l = 0; l < L; ++l) h.col_labels.push_back(std::to_string(l));
  h.cmap = cmap_of(kind);
  h.vmin = 0;
  if (std::isfinite(vmax) && vmax > 0) h.vmax = vmax;
  h.colorbar_title = "AIE";
  h.row_name = "token";
  h.col_name = "layer";
  h.value_name = "AIE";
  p.series.push_back(h);
  fig.caption =
      cat("Average indirect effect (mean p(answer) with the state restored − mean low score) per token "
          "category, as ROME's average_causal_effects notebook; negative values drawn as 0. Mean low score ",
          fmt(acc.mean_low()), ", mean high score ", fmt(acc.mean_high()), ".");
  return fig;
}

Figure t0_aie_figure(const std::string& id, const std::vector<Kind>& kinds,
                     const std::vector<const AieAccumulator*>& accs, const std::string& model_name) {
  int64_t facts = accs.empty() ? 0 : accs[0]->facts();
  Figure fig = grid(id, cat("AIE at the first subject token (T0) by layer, ", facts, " facts"), 2, 2, 11, 8);
  auto line_of = [&](size_t i) {
    Kind k = kinds[i];
    at::Tensor aie = accs[i]->aie()[0], sd = accs[i]->effect_std()[0];
    Line ln;
    ln.y = to_vector(aie);
    ln.err = to_vector(sd);
    for (size_t l = 0; l < ln.y.size(); ++l) ln.x.push_back((double)l);
    ln.name = k == Kind::All ? "All states" : k == Kind::Mlp ? "MLP" : "Attention";
    ln.color = rome_color(kind_name(k));
    ln.marker = k == Kind::All ? Marker::Circle : k == Kind::Mlp ? Marker::Square : Marker::Triangle;
    for (size_t l = 0; l < ln.y.size(); ++l)
      ln.hover.push_back(cat(ln.name, ", layer ", l, ": AIE ", fmt(ln.y[l]), " ± ", fmt(ln.err[l])));
    return ln;
  };
  auto style = [&](Panel& p, const std::string& title) {
    p.title = title;
    p.x.label = cat("layer in ", model_name);
    p.x.integer = true;
    p.y.label = "AIE on p(answer)";
    p.x.grid = p.y.grid = true;
    p.refs.push_back(RefLine{RefLine::Horizontal, 0.0, {0.5, 0.5, 0.5}, Dash::Dotted, ""});
    if (!accs.empty()) layer_axis(p.x, (int)accs[0]->aie().size(1));
  };
  style(fig.panels[0], "All / MLP / Attention");
  for (size_t i = 0; i < kinds.size(); ++i) fig.panels[0].series.push_back(line_of(i));
  fig.panels[0].legend = Legend::Best;
  const Kind order[3] = {Kind::All, Kind::Mlp, Kind::Attn};
  const char* titles[3] = {"All states", "MLP", "Attention"};
  for (int j = 0; j < 3; ++j) {
    Panel& p = fig.panels[1 + j];
    style(p, titles[j]);
    p.legend = Legend::None;
    for (size_t i = 0; i < kinds.size(); ++i)
      if (kinds[i] == order[j]) p.series.push_back(line_of(i));
    if (p.series.empty()) p.series.push_back(Text{{cat(kind_name(order[j]), " was not traced in this run")}, false});
  }
  fig.caption =
      "AIE = mean p(answer) with the state at the first subject token restored − mean low score, over the "
      "facts traced; bands ± one standard deviation of the per-fact indirect effects.";
  return fig;
}

static double mean_of(const std::vector<double>& v) {
  return v.empty() ? NAN : std::accumulate(v.begin(), v.end(), 0.0) / v.size();
}
static double std_of(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  double m = mean_of(v), s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / v.size());
}

Figure aggregate_figure(const std::string& id, const std::vector<FactSummary>& facts, int L, const std::string& located,
                        int total, int skipped) {
  Figure fig =
      grid(id, cat("Causal tracing over ", facts.size(), " facts: effect of restoring ", located), 2, 3, 16, 9.5);
  std::vector<double> best, best_eff, low, high;
  std::vector<std::vector<double>> per_layer(L);
  Scatter sc;
  sc.cmap = "Purples";
  sc.colorbar_title = "effect";
  sc.size = 3;
  for (auto& f : facts) {
    best.push_back(f.best_layer);
    best_eff.push_back(f.best_effect);
    low.push_back(f.low);
    high.push_back(f.high);
    for (int l = 0; l < L && l < (int)f.effect.size(); ++l) {
      per_layer[l].push_back(f.effect[l]);
      sc.x.push_back(l);
      sc.y.push_back(f.effect[l]);
      sc.c.push_back(f.effect[l]);
      sc.hover.push_back(cat(f.id, ", layer ", l, ": ", fmt(f.effect[l])));
    }
  }
  // 1. best layers
  Panel& p1 = fig.panels[0];
  p1.title = "Distribution of best layers";
  Histogram hb;
  hb.values = best;
  hb.color = rome_color("all");
  hb.name = "facts";
  p1.series.push_back(hb);
  p1.legend = Legend::None;
  layer_axis(p1.x, L);
  p1.x.label = "best layer";
  p1.x.integer = true;
  p1.y.label = "facts";
  p1.y.integer = true;
  // 2. effect vs layer
  Panel& p2 = fig.panels[1];
  p2.title = "Effect magnitude vs layer";
  p2.series.push_back(sc);
  p2.x.label = "layer";
  p2.x.integer = true;
  layer_axis(p2.x, L);
  p2.y.label = "indirect effect on p(answer)";
  p2.refs.push_back(RefLine{RefLine::Horizontal, 0.0, {0.5, 0.5, 0.5}, Dash::Dotted, ""});
  // 3. mean effect per layer
  Panel& p3 = fig.panels[2];
  p3.title = "Average effect per layer";
  Line ml;
  for (int l = 0; l < L; ++l) {
    ml.x.push_back(l);
    ml.y.push_back(mean_of(per_layer[l]));
    ml.err.push_back(std_of(per_layer[l]));
  }
  ml.err_bars = true;
  ml.marker = Marker::Circle;
  ml.color = rome_color("all");
  ml.name = "mean ± std";
  p3.series.push_back(ml);
  p3.x.label = "layer";
  p3.x.integer = true;
  layer_axis(p3.x, L);
  p3.y.label = "indirect effect on p(answer)";
  p3.x.grid = p3.y.grid = true;
  p3.legend = Legend::None;
  // 4. clean vs corrupted
  Panel& p4 = fig.panels[3];
  p4.title = "Clean vs corrupted scores";
  Scatter cc;
  cc.x = high;
  cc.y = low;
  for (auto& f : facts) cc.hover.push_back(cat(f.id, ": clean ", fmt(f.high), ", corrupted ", fmt(f.low)));
  cc.color = rome_color("all");
  cc.name = "facts";
  p4.series.push_back(cc);
  p4.refs.push_back(RefLine{RefLine::Diagonal, 0, {0.8, 0.1, 0.1}, Dash::Dashed, "y = x"});
  p4.x.label = "clean p(answer) (high score)";
  p4.y.label = "corrupted p(answer) (low score)";
  p4.x.log = p4.y.log = true;
  // 5. CDF of best effects
  Panel& p5 = fig.panels[4];
  p5.title = "Cumulative distribution of effects";
  Cdf cdf;
  cdf.values = best_eff;
  cdf.color = rome_color("all");
  cdf.name = "best effect per fact";
  p5.series.push_back(cdf);
  p5.x.label = "best indirect effect on p(answer)";
  p5.y.label = "fraction of facts";
  // 6. summary
  Panel& p6 = fig.panels[5];
  p6.title = "Summary statistics";
  std::map<int, int> counts;
  for (double b : best) counts[(int)b]++;
  int mode = -1, mode_n = 0;
  for (auto& [l, c] : counts)
    if (c > mode_n) mode = l, mode_n = c;
  std::vector<std::string> lines{
      cat("facts given:         ", total),
      cat("traced:              ", facts.size()),
      cat("skipped:             ", skipped),
      "",
      cat("best layer mean:     ", fmt(mean_of(best), "%.2f")),
      cat("best layer std:      ", fmt(std_of(best), "%.2f")),
      cat("best layer mode:     ", mode < 0 ? std::string("-") : cat(mode, " (", mode_n, " facts)")),
      "",
      cat("effect mean:         ", fmt(mean_of(best_eff))),
      cat("effect median:       ", best_eff.empty() ? std::string("-") : fmt(median(best_eff))),
      cat("effect std:          ", fmt(std_of(best_eff))),
      cat("effect max:          ",
          best_eff.empty() ? std::string("-") : fmt(*std::max_element(best_eff.begin(), best_eff.end()))),
      cat("effect min:          ",
          best_eff.empty() ? std::string("-") : fmt(*std::min_element(best_eff.begin(), best_eff.end()))),
      "",
      cat("high score mean:     ", fmt(mean_of(high))),
      cat("low score mean:      ", fmt(mean_of(low))),
      cat("total effect mean:   ", fmt(mean_of(high) - mean_of(low))),
  };
  p6.series.push_back(Text{lines, true});
  fig.caption = cat("Effect = p(answer) with ", located,
                    " restored − the fact's low score; best layer = the layer where that effect is largest.");
  return fig;
}

Figure layer_importance_figure(const std::string& id, const std::vector<FactSummary>& facts, int L,
                               const std::string& located) {
  Figure fig = single_panel(id, "", std::max(6.4, 0.3 * L + 2), 4.2);
  Panel& p = fig.panels[0];
  p.title = cat("Layer importance: best layer of ", facts.size(), " facts");
  Bar bar;
  std::vector<double> counts(L, 0);
  for (auto& f : facts)
    if (f.best_layer >= 0 && f.best_layer < L) counts[f.best_layer] += 1;
  for (int l = 0; l < L; ++l) bar.categories.push_back(std::to_string(l));
  bar.values = counts;
  bar.cmap = "Purples";
  bar.value_labels = true;
  bar.decimals = 0;
  bar.name = "facts";
  p.series.push_back(bar);
  p.x.label = "layer";
  p.x.integer = true;
  p.y.label = "facts with this best layer";
  p.y.integer = true;
  p.legend = Legend::None;
  fig.caption = cat("How often each layer is where restoring ", located, " helps most.");
  return fig;
}

}  // namespace mechscope::analysis::causal_trace
