// heads plot: the seed's four figures from the outputs of heads screen / ablate / patch, with index.html
// holding their interactive versions and the generations side by side.
#include <cstdio>

#include "analysis/heads/figures.h"
#include "cli/cmd_heads.h"
#include "core/error.h"
#include "core/fs.h"

namespace mechscope::cli::heads {

PlotData prepare_plot(const PlotInputs& in) {
  PlotData d;
  std::optional<H::HeadScoreTable> scores;
  std::vector<H::ExperimentSummary> abl, pat;
  if (!in.head_scores.empty()) scores = H::read_head_scores(in.head_scores, "--head-scores");
  if (!in.ablation.empty()) abl = H::read_experiments(in.ablation, "ablated", "--ablation-file");
  if (!in.patching.empty()) pat = H::read_experiments(in.patching, "patched", "--patching-file");
  std::vector<std::string> emotions;
  if (scores) {
    if (in.emotion == "all") emotions = scores->emotions;
    else if (scores->scores.count(in.emotion)) emotions = {in.emotion};
    else {
      std::string known;
      for (auto& e : scores->emotions) known += (known.empty() ? "" : ", ") + e;
      fail("--emotion '", in.emotion, "' is not in --head-scores ", scores->path, " (known: ", known, ")");
    }
  }
  auto keep = [&](std::vector<H::ExperimentSummary>& v, const std::string& flag) {
    if (in.emotion == "all" || v.empty()) return;
    std::vector<H::ExperimentSummary> k;
    std::string known;
    for (auto& s : v) {
      if (s.emotion == in.emotion) k.push_back(s);
      known += (known.empty() ? "" : ", ") + s.emotion;
    }
    if (k.empty()) fail("--emotion '", in.emotion, "' is in none of the ", flag, " files (they have: ", known, ")");
    v = std::move(k);
  };
  keep(abl, "--ablation-file");
  keep(pat, "--patching-file");
  std::vector<report::Figure>& figs = d.figures;
  if (scores) {
    figs.push_back(H::head_reaction_heatmap(*scores, emotions));
    figs.push_back(H::top_heads_figure(*scores, emotions, in.top_n));
  }
  if (!abl.empty()) figs.push_back(H::ablation_sentiment_figure(abl));
  if (!pat.empty()) figs.push_back(H::patching_keyword_figure(pat));
  d.tables = H::generation_tables(abl, pat);
  for (auto& f : figs) report::validate(f);
  if (scores) {
    d.numbers.push_back({"head scores", scores->path});
    d.numbers.push_back({"score", scores->score});
    d.numbers.push_back({"layers x heads", cat(scores->n_layers, " x ", scores->n_heads)});
  }
  auto numbers = [&](const std::vector<H::ExperimentSummary>& v, const std::string& what) {
    for (auto& s : v) {
      std::string name = what + " " + s.emotion + " (" + s.head_spec + ")";
      d.numbers.push_back({name + ": VADER change", cat(s.sentiment.diff, " [", s.sentiment.ci_low, ", ",
                                                        s.sentiment.ci_high, "], p = ", s.sentiment.p)});
      if (s.positive)
        d.numbers.push_back({name + ": P(POSITIVE) change", cat(s.positive->diff, " [", s.positive->ci_low, ", ",
                                                                s.positive->ci_high, "], p = ", s.positive->p)});
    }
  };
  numbers(abl, "ablation");
  numbers(pat, "patching");
  return d;
}

void write_plot(report::RunOutput& out, const PlotData& d) {
  for (auto& [k, v] : d.numbers) out.html.add_number(k, v);
  for (auto& f : d.figures) out.save_figure(f);
  for (auto& t : d.tables) out.html.add_table(t.id, t.title, t.header, t.rows, t.caption);
}

int run_plot(int argc, char** argv) {
  Args a("heads plot",
         "--head-scores FILE --ablation-file FILE|DIR --patching-file FILE|DIR --out DIR [--top-n 20] [--emotion E]",
         "The seed's four figures from the outputs of heads screen, heads ablate and heads patch:\n"
         "  head_reaction_heatmap.png          layer x head score per emotion (one panel each)\n"
         "  top_heads.png                      the top-N heads by |score|\n"
         "  ablation_sentiment_comparison.png  mean sentiment baseline vs ablated, and the paired change\n"
         "                                     with its bootstrap 95% interval as error bars\n"
         "  patching_keyword_comparison.png    change of each emotion's keyword count with the heads patched\n"
         "and index.html with their interactive versions and the generations side by side (baseline /\n"
         "ablated / patched, per prompt). --ablation-file and --patching-file take one file or the output\n"
         "folder of the command (every emotion in it); each input is optional, at least one is needed.");
  a.opt("head-scores", "FILE", "head_scores.json of heads screen (or its folder)");
  a.opt("ablation-file", "FILE|DIR", "a heads ablate output <model>_<emotion>_<heads>.json, or its folder");
  a.opt("patching-file", "FILE|DIR", "a heads patch output, or its folder");
  a.opt("emotion", "E", "draw one emotion only, or all", "all");
  a.opt("top-n", "N", "heads in top_heads.png", "20");
  a.opt("profile", "P", "accepted for the seed's command line; the inputs name their profile", "");
  a.opt("formats", "LIST", "static formats: png, svg, pdf (comma-separated)", "png");
  a.opt("out", "DIR", "output folder");
  a.opt("output-dir", "DIR", "the seed's name for --out");
  if (!a.parse(argc, argv)) return 0;
  if (a.has("out") && a.has("output-dir")) fail("give --out or --output-dir, not both");
  std::string dir = a.has("out") ? a.str("out") : a.str("output-dir");
  if (dir.empty()) fail("--out DIR is required");
  PlotInputs in;
  in.head_scores = a.str("head-scores"), in.ablation = a.str("ablation-file"), in.patching = a.str("patching-file");
  if (in.head_scores.empty() && in.ablation.empty() && in.patching.empty())
    fail("nothing to plot: give --head-scores, --ablation-file and/or --patching-file");
  in.emotion = a.str("emotion");
  in.top_n = a.integer("top-n", 1, 100000);
  auto formats = report::parse_formats(a.str("formats"));
  std::string from;
  for (auto* p : {&in.head_scores, &in.ablation, &in.patching})
    if (!p->empty()) from += (from.empty() ? "from " : ", ") + *p;
  // Claimed before the inputs are read, as every command does: a second run into the folder is
  // refused at once, and bad input leaves nothing behind (the staged claim goes with the error).
  report::RunOutput out(dir, argc, argv, "heads plot", "Attention heads and emotion", from);
  out.formats = formats;
  PlotData d = prepare_plot(in);
  write_plot(out, d);
  out.manifest.extra = {{"head_scores", in.head_scores},
                        {"ablation_file", in.ablation},
                        {"patching_file", in.patching},
                        {"emotion", in.emotion},
                        {"top_n", in.top_n}};
  out.finish();
  std::printf("heads plot: %zu figures, %zu generation tables -> %s\n", d.figures.size(), d.tables.size(),
              out.dir().c_str());
  for (auto& f : out.manifest.files) std::printf("  %s\n", f.c_str());
  return 0;
}

}  // namespace mechscope::cli::heads
