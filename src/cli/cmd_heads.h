// What the `mechscope heads` subcommands share (cmd_heads*.cpp): prompt encoding, the screen and the
// two generation experiments as functions that compute everything before anything is written, so
// `heads all` runs them one after another into subfolders of its output folder.
#pragma once
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "analysis/heads/figures.h"
#include "analysis/heads/head_spec.h"
#include "analysis/heads/interventions.h"
#include "analysis/heads/profile.h"
#include "analysis/heads/screen.h"
#include "analysis/sentiment/classifier.h"
#include "cli/batch.h"
#include "cli/common.h"
#include "report/run.h"

namespace mechscope::cli::heads {

namespace H = analysis::heads;

// A profile folder, or the name of a shipped one (examples/emotion/profiles/NAME).
std::string resolve_profile(const std::string& p);

// A prompt through the one prompt encoder (encode_text: --prepend-bos, --no-special-tokens), ids only.
std::vector<int64_t> encode_prompt(const Args& a, const Loaded& m, const std::string& text, const std::string& what,
                                   int64_t extra = 0);

struct Tokenized {
  std::vector<H::AlignedPair> pairs;
  int64_t mismatched = 0;  // pairs whose prompts tokenize to different lengths (aligned on last tokens)
};
// One emotion's pairs encoded and aligned; `extra` positions reserved after the neutral prompt.
Tokenized tokenize_pairs(const Args& a, const Loaded& m, const H::Profile& prof, const std::string& emotion,
                         bool need_after_phrase, int64_t extra = 0);

// heads screen -------------------------------------------------------------------------------------
struct ScreenRow {
  int64_t layer, head;
  std::string emotion;
  double score;
};
struct ScreenResult {
  nlohmann::json json;                       // head_scores.json
  std::map<std::string, at::Tensor> scores;  // emotion -> [layers, heads] float64
  std::vector<ScreenRow> top;                // by |score|, at most top_n
  double seconds = 0;
};
void add_screen_flags(Args& a);  // --score (shared by screen and all)
// Over ranks or shards (job.spread()) the (emotion, pair) terms are items; only where job.lead() is the
// result filled in.
ScreenResult compute_screen(const Args& a, const Loaded& m, const H::Profile& prof,
                            const std::vector<std::string>& emotions, H::ScreenScore score, int64_t top_n,
                            const batch::Job& job);
// head_scores.json and head_scores.safetensors into dir (atomic); returns the file names.
std::vector<std::string> write_screen(const std::string& dir, const ScreenResult& r, const std::string& model);
// Emotion e's top n heads by |score|.
std::vector<H::HeadRef> top_heads_of(const ScreenResult& r, const std::string& e, int64_t n);

// heads ablate / heads patch -----------------------------------------------------------------------
struct Experiment {
  H::Profile prof;
  std::vector<std::string> emotions;
  int64_t max_tokens = 15, batch = 32, resamples = 10000;
  uint64_t seed = 0;
  std::optional<int64_t> eos;
  std::shared_ptr<analysis::sentiment::SentimentClassifier> classifier;  // --sentiment-model, or null
};
// The flags both share (--profile, --emotion, --max-tokens, --sentiment-model, ...); `spec` adds
// --head-spec, --prompts-file and the prompt overrides.
void add_experiment_flags(Args& a, const std::string& what, bool spec = true);
// Everything but the model: profile, overrides, numbers, the classifier. `require_spec` checks --head-spec.
Experiment experiment_from_flags(const Args& a, bool require_spec = true);

struct ExperimentResult {
  std::map<std::string, nlohmann::json> files;              // <model>_<emotion>_<heads>.json -> content
  std::vector<std::pair<std::string, at::Tensor>> tensors;  // per-prompt scores
  double seconds = 0;
};
// Over ranks or shards (job.spread()) the generation batches are items; nullopt where this process
// writes no output (job.lead() false).
std::optional<ExperimentResult> run_ablation(const Args& a, const Loaded& m, const Experiment& x,
                                             const std::vector<std::string>& emotions,
                                             const std::vector<H::HeadRef>& heads, H::HeadAblation kind,
                                             const batch::Job& job);
std::optional<ExperimentResult> run_patching(const Args& a, const Loaded& m, const Experiment& x,
                                             const std::vector<std::string>& emotions,
                                             const std::vector<H::HeadRef>& heads, bool patch_generated_mean,
                                             const batch::Job& job);
// The files and <st_name> into dir (atomic); returns the names written.
std::vector<std::string> write_experiment_files(const std::string& dir, const ExperimentResult& r,
                                                const std::string& st_name,
                                                const std::map<std::string, std::string>& meta);
void print_table(const std::map<std::string, nlohmann::json>& files, const std::string& side);
std::string base_name(std::string p);

// heads plot ---------------------------------------------------------------------------------------
struct PlotInputs {
  std::string head_scores, ablation, patching;  // paths (file or folder for the experiments); empty = none
  std::string emotion = "all";
  int64_t top_n = 20;
};
// Everything heads plot writes, read and built before anything is written (bad input: no folder).
struct PlotData {
  std::vector<report::Figure> figures;
  std::vector<H::GenerationTable> tables;
  std::vector<std::pair<std::string, std::string>> numbers;
};
PlotData prepare_plot(const PlotInputs& in);
// The figures (every format of out), the tables and the key numbers, into out's index.html.
void write_plot(report::RunOutput& out, const PlotData& d);

int run_screen(int argc, char** argv);
int run_ablate(int argc, char** argv);
int run_patch(int argc, char** argv);
int run_plot(int argc, char** argv);
int run_all(int argc, char** argv);

}  // namespace mechscope::cli::heads
