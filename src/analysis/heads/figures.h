// heads plot (seed 001, "Visualization"): the outputs of heads screen / ablate / patch read back from
// their JSON files, and the seed's four figures built from them:
//   head_reaction_heatmap          layer x head score, one panel per emotion (shared, centred colours)
//   top_heads                      the top-N heads by |score| across the emotions shown
//   ablation_sentiment_comparison  mean sentiment baseline vs ablated per emotion, and the paired
//                                  change with its bootstrap 95% interval as error bars
//   patching_keyword_comparison    per patched emotion, the change of each keyword count per prompt
//                                  (95% interval), the seed's totals in the labels
// No libtorch: everything is plain numbers from the files.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "report/figure.h"

namespace mechscope::analysis::heads {

struct HeadScoreTable {
  std::string path, model, score;
  int64_t n_layers = 0, n_heads = 0;
  std::vector<std::string> emotions;
  std::map<std::string, std::vector<double>> scores;  // emotion -> row-major [n_layers, n_heads]
};
// head_scores.json as heads screen writes it. Errors name `flag` and the file (missing, malformed, not
// a screen output, a score missing or outside the model's layers x heads).
HeadScoreTable read_head_scores(const std::string& path, const std::string& flag);

struct Comparison {
  int64_t n = 0;
  double baseline = 0, intervened = 0, diff = 0, ci_low = 0, ci_high = 0, p = 1;
};

struct GenerationRow {
  std::string prompt, source_prompt;  // source_prompt: the emotion prompt a patch came from
  std::string baseline, intervened;   // continuations
  double baseline_sentiment = 0, intervened_sentiment = 0;
  std::optional<double> baseline_positive, intervened_positive;
};

// One <model>_<emotion>_<heads>.json of heads ablate (side "ablated") or heads patch ("patched").
struct ExperimentSummary {
  std::string path, emotion, side, head_spec, model, sentiment_model;
  Comparison sentiment;
  std::optional<Comparison> positive;                               // with --sentiment-model
  std::map<std::string, Comparison> keywords;                       // per keyword emotion, counts per prompt
  std::map<std::string, std::pair<double, double>> keyword_totals;  // baseline, intervened
  std::vector<GenerationRow> rows;
};
// A file, or a folder whose *.json files are read (other JSON there, e.g. manifest.json, is skipped).
// Error naming `flag` and the path when nothing there is a `side` experiment, or a file is another
// command's (a patching file given as the ablation file).
std::vector<ExperimentSummary> read_experiments(const std::string& path, const std::string& side,
                                                const std::string& flag);

// emotions: the ones to draw (each must be in the table).
report::Figure head_reaction_heatmap(const HeadScoreTable& t, const std::vector<std::string>& emotions);
report::Figure top_heads_figure(const HeadScoreTable& t, const std::vector<std::string>& emotions, int64_t top_n);
report::Figure ablation_sentiment_figure(const std::vector<ExperimentSummary>& ablations);
report::Figure patching_keyword_figure(const std::vector<ExperimentSummary>& patchings);

// The generations side by side: per emotion, each prompt's baseline and intervened continuations of
// the ablation and the patching (joined on the pair when both files cover the same prompts).
struct GenerationTable {
  std::string id, title, caption;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};
std::vector<GenerationTable> generation_tables(const std::vector<ExperimentSummary>& ablations,
                                               const std::vector<ExperimentSummary>& patchings);

}  // namespace mechscope::analysis::heads
