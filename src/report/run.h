// One output folder per run (ARCHITECTURE.md): what an analysis command calls to write its figures
// (PNG/SVG/PDF), the interactive index.html with the same figures, and manifest.json.
//
//   report::RunOutput out(dir, argc, argv, "trace", "Causal tracing: gpt2-xl");
//   out.manifest.model = "gpt2-xl";  out.manifest.seed = 1;
//   out.html.add_number("facts", "1000");
//   out.save_figure(fig);            // <dir>/<fig.id>.png (+ .svg/.pdf per formats) and the HTML twin
//   out.add_file("scores.json");     // anything else the command wrote, for the manifest
//   out.finish();                    // index.html, then manifest.json, then all moved into place
//
// The folder is claimed as report/output.h says (lock, nothing foreign replaced); unless the command
// claimed it in place before, everything is written into a staging folder (out.dir()) and appears in
// `dir` only when finish() succeeds.
#pragma once
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "report/figure.h"
#include "report/html.h"
#include "report/manifest.h"
#include "report/render.h"

namespace mechscope::report {

class RunOutput {
 public:
  // Claims `dir` (creating it when missing) and starts the manifest's clock.
  RunOutput(std::string dir, int argc, char** argv, std::string command, std::string title, std::string subtitle = "");

  std::vector<Format> formats{Format::Png};
  RenderOptions render_options;
  Manifest manifest;
  HtmlReport html;

  // Writes the figure in every format and adds it to index.html; returns the relative file names.
  // Error when a figure with the same id was saved before.
  std::vector<std::string> save_figure(const Figure& fig);
  void add_file(const std::string& relative_path);
  void finish();
  // Where the command writes its files: the staging folder until finish(), `dir` after.
  const std::string& dir() const { return write_dir_; }

 private:
  std::string dir_, write_dir_;
  std::set<std::string> saved_ids_;
};

// "png,svg" → formats; Error naming the flag on a bad entry.
std::vector<Format> parse_formats(const std::string& list, const std::string& flag = option("formats"));

}  // namespace mechscope::report
