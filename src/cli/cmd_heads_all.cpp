// heads all: the seed's whole Phase 7 in one command. Screen every head, then per emotion ablate and
// patch its top-N heads (together), then plot; into DIR/screen, DIR/ablation, DIR/patching, with the
// figures, index.html and the one manifest in DIR. Each stage's files are written whole as it ends, so
// --resume continues a killed run from the first stage whose files are missing.
#include <torch/version.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "cli/cmd_heads.h"
#include "cli/distribute.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "report/output.h"

namespace mechscope::cli::heads {

namespace {

// head_scores.json back into a ScreenResult (the --resume path).
ScreenResult load_screen(const std::string& path) {
  ScreenResult r;
  r.json = read_json_file(path);
  H::HeadScoreTable t = H::read_head_scores(path, "--resume");
  for (auto& e : t.emotions) r.scores[e] = at::tensor(t.scores[e], at::kDouble).view({t.n_layers, t.n_heads}).clone();
  return r;
}

}  // namespace

int run_all(int argc, char** argv) {
  Args a("heads all", "--model M --profile P --out DIR [--top-n N] [--score S] [--resume]",
         "Runs the seed's Phase 7: heads screen over every emotion of the profile, then for each emotion\n"
         "heads ablate and heads patch of its top-N heads by |score| (ablated / patched together), then\n"
         "heads plot. Writes DIR/screen (head_scores.json, .safetensors), DIR/ablation and DIR/patching\n"
         "(<model>_<emotion>_<heads>.json and .safetensors per emotion), and in DIR the four figures,\n"
         "index.html and manifest.json. --resume continues a run in DIR with the same settings, keeping the\n"
         "stages whose files are there.");
  add_experiment_flags(a, "", false);
  add_screen_flags(a);
  a.opt("top-n", "N", "heads of each emotion ablated and patched (its top N by |score|)", "5");
  a.opt("plot-top-n", "N", "heads in top_heads.png", "20");
  a.opt("kind", "K", "ablation: zero, or mean (over every prompt of the profile)", "zero");
  a.opt("patch-generated", "G", "patching: none, or mean (generated positions get the emotion prompt's mean z)",
        "none");
  a.opt("formats", "LIST", "static formats of the figures: png, svg, pdf", "png");
  a.flag("resume", "continue the run in --out: stages already written are kept");
  if (!a.parse(argc, argv)) return 0;
  auto score = H::parse_screen_score(a.str("score"), "--score");
  auto kind = H::parse_head_ablation(a.str("kind"), "--kind");
  std::string pg = a.str("patch-generated");
  if (pg != "none" && pg != "mean") fail("--patch-generated: expected none or mean, got '", pg, "'");
  int64_t top_n = a.integer("top-n", 1, 1 << 20), plot_top_n = a.integer("plot-top-n", 1, 100000);
  auto formats = report::parse_formats(a.str("formats"));
  Experiment x = experiment_from_flags(a, false);
  Loaded m = load_from_flags(a);
  const auto& cfg = m.model->config();
  need_lm_head(m, "heads all");
  std::string dir = a.str("out");

  nlohmann::json settings{{"model", m.dir},
                          {"profile", x.prof.dir},
                          {"emotions", x.emotions},
                          {"score", H::screen_score_name(score)},
                          {"top_n", top_n},
                          {"kind", H::head_ablation_name(kind)},
                          {"patch_generated", pg},
                          {"max_tokens", x.max_tokens},
                          {"resamples", x.resamples},
                          {"seed", x.seed},
                          {"eos_stop", !a.on("no-eos-stop")},
                          {"prepend_bos", a.on("prepend-bos")},
                          {"special_tokens", !a.on("no-special-tokens")},
                          {"sentiment_model", x.classifier ? x.classifier->name : ""}};
  // Over MPI ranks (issue 18) the screen's pairs and each stage's generation batches are items; rank 0
  // alone reads and writes the folder and tells the other ranks the heads and the stages to run. No
  // --shard: each stage needs the one before it whole.
  batch::Job job = batch::start(a, false);
  const bool lead = job.lead();
  // A batch run written in place (stages are resumed), as locate: lock, status, no foreign folder.
  std::string run_path = join_path(dir, "run.json");
  if (lead) {
    report::claim_output_dir(dir, "heads all", report::OutputMode::InPlace);
    if (file_exists(run_path)) {
      if (!a.on("resume"))
        fail("--out ", dir, " holds an earlier heads all run: pass --resume to continue it, or give a new --out");
      nlohmann::json old = read_json_file(run_path);
      for (auto& [k, v] : settings.items())
        if (!old.contains(k) || old[k] != v)
          fail("--resume: ", k, " differs from the run in ", dir, " (", old.value(k, nlohmann::json()).dump(),
               " there, ", v.dump(), " now); use the same settings or a new --out");
    }
  }
  // Every prompt is encoded and checked against the context before anything is written.
  for (auto& e : x.emotions) {
    tokenize_pairs(a, m, x.prof, e, true, x.max_tokens);
    for (auto& p : x.prof.of(e)) encode_prompt(a, m, p.emotion, p.where() + " (emotion prompt)", x.max_tokens);
  }
  // Rank 0's decision, on every rank.
  auto shared = [](bool v) {
    std::vector<long long> b{v ? 1 : 0};
    dist::bcast(b);
    return b.at(0) != 0;
  };

  auto t0 = std::chrono::steady_clock::now();
  std::optional<report::RunOutput> out_holder;
  if (lead) {
    out_holder.emplace(dir, argc, argv, "heads all", "Attention heads and emotion: " + m.dir,
                       H::screen_score_name(score) + " screen, top " + std::to_string(top_n) +
                           " heads per emotion ablated (" + H::head_ablation_name(kind) + ") and patched, profile " +
                           x.prof.dir);
    out_holder->formats = formats;
    write_file_atomic(run_path, settings.dump(1));
    out_holder->add_file("run.json");
  }
  nlohmann::json stages;

  std::string screen_dir = join_path(dir, "screen"), scores_path = join_path(screen_dir, "head_scores.json");
  ScreenResult sr;
  if (shared(lead && a.on("resume") && file_exists(scores_path))) {
    if (lead) sr = load_screen(scores_path);
    stages["screen"] = "resumed";
  } else {
    sr = compute_screen(a, m, x.prof, x.emotions, score, plot_top_n, job);
    if (lead) write_screen(screen_dir, sr, m.dir);
    stages["screen"] = sr.seconds;
  }
  if (lead) {
    out_holder->add_file("screen/head_scores.json");
    out_holder->add_file("screen/head_scores.safetensors");
  }

  std::map<std::string, nlohmann::json> abl_files, pat_files;
  nlohmann::json chosen;
  for (auto& e : x.emotions) {
    std::vector<H::HeadRef> heads;
    std::vector<long long> flat;
    if (lead)
      for (auto& h : top_heads_of(sr, e, top_n)) flat.push_back(h.layer), flat.push_back(h.head);
    dist::bcast(flat);
    for (size_t i = 0; i + 1 < flat.size(); i += 2) heads.push_back({flat[i], flat[i + 1]});
    chosen[e] = H::format_head_spec(heads);
    for (int side = 0; side < 2; ++side) {
      std::string sub = side == 0 ? "ablation" : "patching";
      std::string sub_dir = join_path(dir, sub);
      // A finished stage is its JSON with the safetensors twin (written after it) for these heads.
      ExperimentResult r;
      bool resumed = false;
      if (lead && a.on("resume") && dir_exists(sub_dir)) {
        for (auto& entry : std::filesystem::directory_iterator(sub_dir)) {
          std::string f = entry.path().filename().string();
          if (entry.path().extension() != ".json") continue;
          nlohmann::json j = read_json_file(entry.path().string());
          if (j.is_object() && j.contains("emotion") && j["emotion"] == e && j.contains("head_spec") &&
              j["head_spec"] == H::format_head_spec(heads) &&
              file_exists(join_path(sub_dir, f.substr(0, f.size() - 5) + ".safetensors"))) {
            r.files[f] = j;
            resumed = true;
          }
        }
      }
      resumed = shared(resumed);
      if (!resumed) {
        auto got = side == 0 ? run_ablation(a, m, x, {e}, heads, kind, job)
                             : run_patching(a, m, x, {e}, heads, pg == "mean", job);
        if (got) r = std::move(*got);
        for (auto& [name, j] : r.files) {
          std::string stem = name.substr(0, name.size() - 5);
          ExperimentResult one;
          one.files[name] = j;
          one.tensors = r.tensors;
          write_experiment_files(sub_dir, one, stem + ".safetensors",
                                 {{"model", m.dir}, {"head_spec", H::format_head_spec(heads)}, {"emotion", e}});
        }
      }
      if (!lead) continue;
      for (auto& [name, j] : r.files) {
        out_holder->add_file(sub + "/" + name);
        out_holder->add_file(sub + "/" + name.substr(0, name.size() - 5) + ".safetensors");
        (side == 0 ? abl_files : pat_files)[name] = j;
      }
      stages[sub][e] = resumed ? nlohmann::json("resumed") : nlohmann::json(r.seconds);
    }
  }
  if (!lead) return 0;
  report::RunOutput& out = *out_holder;

  PlotInputs in;
  in.head_scores = scores_path;
  in.ablation = join_path(dir, "ablation");
  in.patching = join_path(dir, "patching");
  in.top_n = plot_top_n;
  PlotData d = prepare_plot(in);
  write_plot(out, d);
  double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out.manifest.model = m.dir;
  out.manifest.seed = x.seed;
  out.manifest.versions["libtorch"] = TORCH_VERSION;
  out.manifest.extra = settings;
  out.manifest.extra["heads"] = chosen;
  out.manifest.extra["stages_s"] = stages;
  out.manifest.extra["total_s"] = total;
  out.finish();

  std::printf("heads all: %lld layers x %lld heads, %zu emotions, top %lld heads each, in %.1fs -> %s\n",
              (long long)cfg.n_layers, (long long)cfg.n_heads, x.emotions.size(), (long long)top_n, total, dir.c_str());
  for (auto& e : x.emotions) std::printf("  %-10s heads %s\n", e.c_str(), chosen[e].get<std::string>().c_str());
  std::printf("\nablation (emotion prompts):\n");
  print_table(abl_files, "ablated");
  std::printf("\npatching (neutral prompts, heads from the emotion prompts):\n");
  print_table(pat_files, "patched");
  std::printf("\nreport: %s\n", join_path(dir, "index.html").c_str());
  return 0;
}

}  // namespace mechscope::cli::heads
