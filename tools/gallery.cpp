// `build/mechscope-gallery --out DIR`: one of each figure type, drawn from synthetic data shaped like
// the seeds' analyses (ROME causal traces, patching heatmaps, AIE-by-layer, aggregate statistics, SAE
// and AttentionViz scatter plots, a 3-D surface, a per-layer animation), as PNG (SVG/PDF on request),
// plus index.html and manifest.json. A developer tool, not part of the mechscope binary: it is how the
// report layer's figures are looked at and reviewed (tests/report/test_report_gallery.cpp runs it).
#include <algorithm>
#include <cstdio>
#include <cmath>
#include <random>

#include "cli/args.h"
#include "core/error.h"
#include "core/fs_guard.h"
#include "report/label.h"
#include "report/output.h"
#include "report/run.h"
#include "report/ticks.h"

namespace mechscope::cli {
namespace {

using namespace mechscope::report;

double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }
double bump(double x, double mu, double sd) { return std::exp(-0.5 * (x - mu) * (x - mu) / (sd * sd)); }

// Raw text → GPT-2's byte-level token form (the inverse of byte_level_decode), to feed real-looking tokens.
std::string byte_level(const std::string& raw) {
  std::string out;
  std::vector<int> map(256);
  int n = 0;
  for (int b = 0; b < 256; b++) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    map[b] = printable ? b : 0x100 + n++;
  }
  for (unsigned char c : raw) {
    int cp = map[c];
    if (cp < 0x80) out += char(cp);
    else out += char(0xC0 | (cp >> 6)), out += char(0x80 | (cp & 0x3F));
  }
  return out;
}

struct Data {
  std::mt19937 rng;
  std::normal_distribution<double> normal{0, 1};
  double noise(double sd) { return sd * normal(rng); }
};

// ROME's causal trace of "The Space Needle is in downtown" → Seattle (GPT-2-XL, 48 layers).
Heatmap causal_trace(Data& d, const std::string& kind, int window) {
  std::vector<std::string> raw = {"The", " Space", " Needle", " is", " in", " downtown"};
  std::vector<bool> subject = {true, true, true, false, false, false};
  const int L = 48;
  double low = 0.021, high = kind == "all" ? 0.62 : kind == "mlp" ? 0.34 : 0.29;
  Heatmap h;
  h.rows = raw.size();
  h.cols = L;
  for (size_t t = 0; t < raw.size(); t++) {
    LabelStyle st;
    st.dot_spaces = false;
    h.row_labels.push_back(gpt2_token_label(byte_level(raw[t]), st) + (subject[t] ? "*" : ""));
    for (int l = 0; l < L; l++) {
      double e = 0;
      if (kind == "all") {
        if (t == 2) e = sigmoid((22 - l) / 2.5);
        else if (t == 5) e = 0.9 * sigmoid((l - 27) / 2.5);
        else if (subject[t]) e = 0.18 * sigmoid((12 - l) / 2.0);
      } else if (kind == "mlp") {
        if (t == 2) e = bump(l, 15, 6);
        else if (subject[t]) e = 0.25 * bump(l, 8, 4);
        else if (t == 5) e = 0.15 * bump(l, 40, 4);
      } else {
        if (t == 5) e = bump(l, 33, 5);
        else if (t == 2) e = 0.2 * bump(l, 20, 4);
      }
      (void)window;
      h.z.push_back(std::max(0.0, low + (high - low) * e + d.noise(0.008)));
    }
  }
  for (int l = 0; l < L; l++) h.col_labels.push_back(std::to_string(l));
  h.cmap = kind == "all" ? "Purples" : kind == "mlp" ? "Greens" : "Reds";
  h.vmin = low;
  h.colorbar_title = "p(Seattle)";
  h.row_name = "token";
  h.col_name = "layer";
  h.value_name = "p(Seattle)";
  return h;
}

std::vector<Figure> gallery(Data& d) {
  std::vector<Figure> figs;

  // 1. One causal trace, ROME's Purples.
  {
    Figure f = single_panel("trace_heatmap", "Impact of restoring state after corrupted input", 6.4, 2.6);
    f.caption = "Heatmap: tokens × layers, subject tokens marked *, colour bar from the corrupted run's low score.";
    f.panels[0].series.push_back(causal_trace(d, "all", 1));
    f.panels[0].x.label = "single restored layer within GPT-2-XL";
    figs.push_back(f);
  }
  // 2. All states / MLP / attention side by side, separate colour bars, one token axis.
  {
    Figure f = grid("trace_components", "Causal traces by component", 1, 3, 13, 2.8);
    f.share_y = true;
    const char* kinds[] = {"all", "mlp", "attn"};
    const char* titles[] = {"Single restored layer", "Restored MLP (window 10)", "Restored attention (window 10)"};
    for (int i = 0; i < 3; i++) {
      f.panels[i].series.push_back(causal_trace(d, kinds[i], 10));
      f.panels[i].title = titles[i];
      f.panels[i].x.label = "center of interval";
    }
    f.caption = "Multi-panel grid with a shared token axis and one colour bar per panel.";
    figs.push_back(f);
  }
  // 3. Average indirect effect over 1000 facts (ROME Fig. 2 rows).
  {
    Figure f =
        single_panel("average_heatmap", "Average indirect effect of a single restored layer (n = 1000)", 6.4, 2.6);
    Heatmap h;
    h.row_labels = {"First subject token",    "Middle subject tokens", "Last subject token",
                    "First subsequent token", "Further tokens",        "Last token"};
    h.rows = 6;
    h.cols = 48;
    for (size_t r = 0; r < 6; r++)
      for (int l = 0; l < 48; l++) {
        double e = r == 2   ? 0.45 * sigmoid((20 - l) / 3.0)
                   : r == 5 ? 0.4 * sigmoid((l - 28) / 3.0)
                   : r < 2  ? 0.1 * sigmoid((10 - l) / 2.0)
                            : 0.02;
        h.z.push_back(std::max(0.0, e + d.noise(0.006)));
      }
    h.cmap = "Purples";
    h.colorbar_title = "AIE";
    h.row_name = "position";
    h.col_name = "layer";
    h.value_name = "AIE";
    f.panels[0].series.push_back(h);
    f.panels[0].x.label = "layer";
    figs.push_back(f);
  }
  // 4. Activation patching (IOI), RdBu centred on zero, values in the cells.
  std::vector<std::string> ioi = {"<|endoftext|>", "When", " John", " and",  " Mary", " went",  " to", " the",
                                  " store",        ",",    " Mary", " gave", " a",    " drink", " to"};
  std::vector<double> patch;  // [12 layers, 15 positions]
  {
    for (int l = 0; l < 12; l++)
      for (int p = 0; p < 15; p++) {
        double e = 0;
        if (p == 10) e = sigmoid((8.5 - l) * 1.5);  // the S2 token carries it until ~layer 8
        if (p == 14) e = sigmoid((l - 8.5) * 1.5);  // then the last position
        if (p == 2 && l < 3) e = -0.12;
        patch.push_back(e + d.noise(0.015));
      }
    Figure f = single_panel("patching_rdbu", "Activation patching: blocks.{L}.hook_resid_pre", 7.2, 4.6);
    Heatmap h;
    h.rows = 12;
    h.cols = 15;
    h.z = patch;
    for (int l = 0; l < 12; l++) h.row_labels.push_back(std::to_string(l));
    for (auto& t : ioi) h.col_labels.push_back(gpt2_token_label(byte_level(t)));
    h.cmap = "RdBu";
    h.centered = true;
    h.colorbar_title = "normalised logit difference";
    h.cell_text = true;
    h.cell_decimals = 2;
    h.row_name = "layer";
    h.col_name = "token";
    h.value_name = "patched effect";
    f.panels[0].series.push_back(h);
    f.panels[0].x.label = "position";
    f.panels[0].y.label = "layer";
    f.caption = "Diverging RdBu centred on 0, per-cell values, GPT-2 byte-level tokens shown with · for spaces.";
    figs.push_back(f);
  }
  // 5. Token labels in every script: Latin, CJK, Hangul, emoji, byte-level forms, a split UTF-8 sequence.
  {
    std::vector<std::string> raw = {"<|endoftext|>",
                                    "東京",
                                    "は",
                                    " 한국어",
                                    " café",
                                    " 🙂",
                                    "\n",
                                    "  ",
                                    " supercalifragilisticexpialidocious-and-then-some",
                                    "\xF0\x9F",
                                    " Привет",
                                    " naïve"};
    Figure f = single_panel("tokens_multiscript", "Attention pattern, head 5.1, with tokens in many scripts", 6.4, 5.6);
    Heatmap h;
    size_t n = raw.size();
    h.rows = h.cols = n;
    for (auto& r : raw) {
      h.row_labels.push_back(gpt2_token_label(byte_level(r)));
      h.col_labels.push_back(h.row_labels.back());
    }
    for (size_t q = 0; q < n; q++) {
      std::vector<double> row(n, NAN);
      double sum = 0;
      for (size_t k = 0; k <= q; k++) sum += row[k] = std::exp(1.5 * d.normal(d.rng) + (k == 0 ? 1.5 : 0));
      for (size_t k = 0; k <= q; k++) row[k] /= sum;
      h.z.insert(h.z.end(), row.begin(), row.end());
    }
    h.cmap = "Viridis";
    h.vmin = 0;
    h.vmax = 1;
    h.colorbar_title = "attention";
    h.row_name = "query";
    h.col_name = "key";
    h.value_name = "attention";
    f.panels[0].series.push_back(h);
    f.panels[0].x.label = "key";
    f.panels[0].y.label = "query";
    f.caption = "Causal mask cells are empty; long labels are cut with …; invalid UTF-8 shows as \\xNN.";
    figs.push_back(f);
  }
  // 6. AIE at the first subject token by layer: 4 panels, ± std bands, markers ○ □ △.
  {
    Figure f = grid("aie_by_layer", "AIE at the first subject token (T0) by layer", 2, 2, 10, 7);
    f.share_x = f.share_y = true;
    std::vector<double> layers;
    for (int l = 0; l < 48; l++) layers.push_back(l);
    auto series = [&](const std::string& kind) {
      Line ln;
      ln.x = layers;
      for (int l = 0; l < 48; l++) {
        double m = kind == "all"   ? 0.16 * sigmoid((14 - l) / 2.5)
                   : kind == "mlp" ? 0.09 * bump(l, 9, 5)
                                   : 0.03 * bump(l, 24, 8);
        ln.y.push_back(m + d.noise(0.004));
        ln.err.push_back(0.35 * m + 0.01);
      }
      ln.color = rome_color(kind);
      ln.marker = kind == "all" ? Marker::Circle : kind == "mlp" ? Marker::Square : Marker::Triangle;
      ln.name = kind == "all" ? "All states" : kind == "mlp" ? "MLP" : "Attention";
      return ln;
    };
    Line all = series("all"), mlp = series("mlp"), attn = series("attn");
    for (auto* l : {&all, &mlp, &attn}) f.panels[0].series.push_back(*l);
    f.panels[0].title = "All components";
    f.panels[1].series.push_back(all), f.panels[1].title = "All states";
    f.panels[2].series.push_back(mlp), f.panels[2].title = "MLP";
    f.panels[3].series.push_back(attn), f.panels[3].title = "Attention";
    for (auto& p : f.panels) {
      p.x.label = "layer";
      p.y.label = "AIE";
      p.y.grid = true;
      p.refs.push_back({RefLine::Horizontal, 0, {0.5, 0.5, 0.5}, Dash::Dotted, ""});
    }
    figs.push_back(f);
  }
  // 7. Aggregate statistics: histogram, coloured scatter, error bars, log-log with y = x, CDF, text.
  {
    Figure f = grid("aggregate", "Causal tracing: aggregate statistics over 200 facts", 2, 3, 14, 8.5);
    size_t n = 200;
    std::vector<double> best, effect, clean, corrupt;
    for (size_t i = 0; i < n; i++) {
      best.push_back(std::clamp(std::round(16 + 6 * d.normal(d.rng)), 0.0, 47.0));
      effect.push_back(std::clamp(0.25 + 0.15 * d.normal(d.rng), 0.0, 1.0));
      double c = std::exp(-1.5 + 1.2 * d.normal(d.rng));
      clean.push_back(std::min(c, 0.99));
      corrupt.push_back(std::min(0.99, clean.back() * std::exp(-2.0 + 1.0 * d.normal(d.rng))));
    }
    Histogram hist;
    hist.values = best;
    hist.color = rome_color("all");
    f.panels[0].series.push_back(hist);
    f.panels[0].title = "Distribution of best layers";
    f.panels[0].x.label = "best layer";
    f.panels[0].y.label = "count";

    Scatter sc;
    sc.x = best;
    sc.y = effect;
    for (size_t i = 0; i < n; i++) sc.x[i] += 0.3 * d.normal(d.rng);
    sc.c = effect;
    sc.cmap = "Viridis";
    sc.colorbar_title = "effect";
    sc.alpha = 0.75;
    f.panels[1].series.push_back(sc);
    f.panels[1].title = "Effect magnitude vs layer";
    f.panels[1].x.label = "best layer";
    f.panels[1].y.label = "max effect";

    Line avg;
    for (int l = 0; l < 48; l += 3) {
      avg.x.push_back(l);
      double m = 0.2 * sigmoid((20 - l) / 4.0) + 0.03;
      avg.y.push_back(m + d.noise(0.005));
      avg.err.push_back(0.3 * m);
    }
    avg.err_bars = true;
    avg.marker = Marker::Circle;
    avg.color = rome_color("all");
    avg.name = "mean ± std";
    f.panels[2].series.push_back(avg);
    f.panels[2].title = "Average effect per layer";
    f.panels[2].x.label = "layer";
    f.panels[2].y.label = "indirect effect";

    Scatter ll;
    ll.x = clean;
    ll.y = corrupt;
    ll.color = cycle_color(0);
    ll.alpha = 0.6;
    ll.size = 3;
    f.panels[3].series.push_back(ll);
    f.panels[3].refs.push_back({RefLine::Diagonal, 0, {0.84, 0.15, 0.16}, Dash::Dashed, "y = x"});
    f.panels[3].x.log = f.panels[3].y.log = true;
    f.panels[3].title = "Clean vs corrupted p(answer)";
    f.panels[3].x.label = "clean score";
    f.panels[3].y.label = "corrupted score";

    Cdf cdf;
    cdf.values = effect;
    cdf.color = rome_color("all");
    f.panels[4].series.push_back(cdf);
    f.panels[4].title = "Cumulative distribution of effects";
    f.panels[4].x.label = "max effect";
    f.panels[4].y.label = "fraction of facts";

    double mb = 0, me = 0;
    for (size_t i = 0; i < n; i++) mb += best[i] / n, me += effect[i] / n;
    Text t;
    t.lines = {"Facts traced        200",
               "Succeeded           187",
               "",
               "Best layer   mean   " + format_number(mb, 1),
               "             median " + format_number(median(best), 0),
               "Effect       mean   " + format_number(me, 3),
               "             median " + format_number(median(effect), 3),
               "             max    " + format_number(*std::max_element(effect.begin(), effect.end()), 3),
               "",
               "Clean p      median " + format_number(median(clean), 3),
               "Corrupted p  median " + format_number(median(corrupt), 4)};
    f.panels[5].series.push_back(t);
    f.panels[5].title = "Summary statistics";
    figs.push_back(f);
  }
  // 8. Bar chart with value labels, coloured by value (Purples).
  {
    Figure f = single_panel("layer_importance", "How often each layer is the best layer", 7, 3.6);
    Bar b;
    for (int l = 0; l < 24; l++) {
      b.categories.push_back(std::to_string(l * 2));
      b.values.push_back(std::round(std::max(0.0, 22 * bump(l, 8, 3.5) + 2 + d.noise(1.2))));
    }
    b.cmap = "Purples";
    f.panels[0].series.push_back(b);
    f.panels[0].x.label = "layer";
    f.panels[0].y.label = "facts";
    figs.push_back(f);
  }
  // 9. SAE feature enrichment (Manhattan-style), coloured by Turbo, top features labelled.
  {
    Figure f = single_panel("sae_manhattan", "Token-set enrichment of SAE features (layer 8, 24576 features)", 8, 3.8);
    Scatter s;
    size_t n = 4000;
    for (size_t i = 0; i < n; i++) {
      s.x.push_back(double(i) * 24576 / n);
      double y = std::abs(d.noise(1.0));
      if (i % 397 == 5) y += 4 + 3 * std::abs(d.noise(1));
      s.y.push_back(y);
    }
    std::vector<size_t> idx(n);
    for (size_t i = 0; i < n; i++) idx[i] = i;
    std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return s.y[a] > s.y[b]; });
    s.labels.assign(n, "");
    s.hover.resize(n);
    for (size_t i = 0; i < n; i++) s.hover[i] = "feature " + std::to_string(size_t(s.x[i]));
    for (size_t k = 0; k < 8; k++) s.labels[idx[k]] = "F" + std::to_string(size_t(s.x[idx[k]]));
    s.c = s.y;
    s.cmap = "Turbo";
    s.colorbar_title = "enrichment";
    s.size = 2.2;
    s.alpha = 0.8;
    f.panels[0].series.push_back(s);
    f.panels[0].refs.push_back({RefLine::Horizontal, 3.5, {0.4, 0.4, 0.4}, Dash::Dashed, "threshold"});
    f.panels[0].x.label = "feature";
    f.panels[0].y.label = "enrichment score";
    figs.push_back(f);
  }
  // 10. AttentionViz: queries and keys in one 2-D embedding, each query joined to its top key.
  {
    Figure f = single_panel("attentionviz", "AttentionViz: query and key embeddings, head 3.0", 6.4, 5.2);
    Scatter q, k;
    Line links;
    std::vector<std::string> toks = {"The",     "cat", "sat", "on",   "the", "mat",
                                     "because", "it",  "was", "warm", "and", "soft"};
    for (size_t i = 0; i < toks.size(); i++) {
      double a = 2 * M_PI * i / toks.size();
      q.x.push_back(2 * std::cos(a) + d.noise(0.2)), q.y.push_back(2 * std::sin(a) + d.noise(0.2));
      k.x.push_back(2.6 * std::cos(a + 0.35) + d.noise(0.2)), k.y.push_back(2.6 * std::sin(a + 0.35) + d.noise(0.2));
      q.labels.push_back(toks[i]), k.labels.push_back(toks[i]);
      links.x.insert(links.x.end(), {q.x.back(), k.x.back(), NAN});
      links.y.insert(links.y.end(), {q.y.back(), k.y.back(), NAN});
    }
    q.name = "query", k.name = "key";
    q.color = cycle_color(0), k.color = cycle_color(1);
    q.size = k.size = 4;
    k.marker = Marker::Square;
    links.color = Rgb{0.6, 0.6, 0.6};
    links.width = 0.8;
    links.name = "top attended key";
    f.panels[0].series = {links, q, k};
    f.panels[0].x.label = "t-SNE 1";
    f.panels[0].y.label = "t-SNE 2";
    figs.push_back(f);
  }
  // 11. 3-D surface of the patching result.
  {
    Figure f = single_panel("patching_surface", "Activation patching effect surface", 7, 5.6);
    Surface s;
    s.rows = 12;
    s.cols = 15;
    s.z = patch;
    s.cmap = "Viridis";
    s.x_title = "position";
    s.y_title = "layer";
    s.z_title = "effect";
    f.panels[0].series.push_back(s);
    figs.push_back(f);
  }
  // 12. Per-layer animation: effect per position, one frame per layer.
  {
    Figure f = single_panel("layer_animation", "Patching effect per position, layer by layer", 7, 3.6);
    f.panels[0].x.label = "position";
    f.panels[0].y.label = "effect";
    f.panels[0].refs.push_back({RefLine::Horizontal, 0, {0.3, 0.3, 0.3}, Dash::Solid, ""});
    for (int l = 0; l < 12; l++) {
      Bar b;
      for (size_t p = 0; p < 15; p++) {
        b.categories.push_back(gpt2_token_label(byte_level(ioi[p])));
        b.values.push_back(patch[l * 15 + p]);
      }
      b.cmap = "RdBu";
      b.centered = true;
      b.value_labels = false;
      f.frames.push_back({"layer " + std::to_string(l), {b}});
    }
    f.caption = "index.html: slider and play button through the layers; PNG: small multiples of the frames.";
    figs.push_back(f);
  }
  return figs;
}

int run_gallery(int argc, char** argv) {
  Args args("gallery", "--out DIR [--formats png,svg,pdf]",
            "Writes one of each figure type (heatmaps, lines with bands, grids, histogram, bars, scatter, CDF,\n"
            "text panel, 3-D surface, animation) from synthetic data, plus index.html and manifest.json.");
  args.opt("out", "DIR", "output folder (created)")
      .opt("formats", "LIST", "static formats, comma-separated: png, svg, pdf", "png")
      .opt("dpi", "N", "PNG resolution", "150")
      .opt("seed", "N", "seed of the synthetic data", "0");
  if (!args.parse(argc, argv)) return 0;
  if (!args.has("out")) fail("--out DIR is required");
  std::vector<Format> formats = parse_formats(args.str("formats"));
  double dpi = args.number("dpi");
  if (!(dpi >= 30 && dpi <= 600)) fail("--dpi ", args.str("dpi"), " is out of range (30 to 600)");
  long long seed = args.integer("seed");
  if (seed < 0) fail("--seed must be ≥ 0");

  std::vector<std::string> full = {"mechscope-gallery"};
  for (int i = 0; i < argc; i++) full.push_back(argv[i]);
  RunOutput out(args.str("out"), 0, nullptr, "gallery", "mechscope figure gallery",
                "One of each figure type, from synthetic data shaped like the seed analyses");
  out.manifest.argv = full;
  out.manifest.seed = (unsigned long long)seed;
  out.formats = formats;
  out.render_options.dpi = dpi;
  Data d{std::mt19937(unsigned(seed))};
  auto figs = gallery(d);
  for (auto& f : figs) out.save_figure(f);
  out.html.add_number("figures", std::to_string(figs.size()));
  out.html.add_number("formats", args.str("formats"));
  out.html.add_number("PNG dpi", dpi, 0);
  out.html.add_number("seed", std::to_string(seed));
  out.finish();
  std::printf("wrote %zu figures, index.html and manifest.json to %s\n", figs.size(), out.dir().c_str());
  return 0;
}

}  // namespace
}  // namespace mechscope::cli

// Errors as the mechscope binary gives them: one line, exit 2; the run folder is whole or absent.
int main(int argc, char** argv) {
  mechscope::install_interrupt_handler("gallery");
  try {
    int rc = mechscope::cli::run_gallery(argc - 1, argv + 1);
    mechscope::report::close_outputs(rc == 0);
    return rc;
  } catch (const std::exception& e) {
    std::string msg = mechscope::report::public_paths(e.what());
    mechscope::report::close_outputs(false, msg);
    std::fprintf(stderr, "mechscope-gallery: error: %s\n", msg.c_str());
    return dynamic_cast<const mechscope::Error*>(&e) ? 2 : 1;
  }
}
