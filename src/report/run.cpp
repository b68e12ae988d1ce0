#include "report/run.h"

#include <algorithm>

#include "core/error.h"
#include "core/text.h"
#include "core/fs.h"
#include "report/output.h"

namespace mechscope::report {

RunOutput::RunOutput(std::string dir, int argc, char** argv, std::string command, std::string title,
                     std::string subtitle)
    : html(std::move(title), std::move(subtitle)), dir_(std::move(dir)) {
  write_dir_ = claim_output_dir(dir_, command);
  manifest.command = std::move(command);
  for (int i = 0; i < argc; i++) manifest.argv.push_back(argv[i]);
  manifest.start();
}

std::vector<std::string> RunOutput::save_figure(const Figure& fig) {
  // Two figures with one id would write one file and two HTML sections with the same anchor.
  if (!saved_ids_.insert(fig.id).second) fail("figure id '", fig.id, "' is used twice in ", dir_);
  std::vector<std::string> names;
  for (Format f : formats) {
    std::string name = fig.id + "." + extension(f);
    render(fig, f, join_path(write_dir_, name), render_options);
    add_file(name);
    names.push_back(name);
  }
  html.add_figure(fig, names);
  return names;
}

void RunOutput::add_file(const std::string& relative_path) {
  if (std::find(manifest.files.begin(), manifest.files.end(), relative_path) == manifest.files.end())
    manifest.files.push_back(relative_path);
}

void RunOutput::finish() {
  html.write(join_path(write_dir_, "index.html"));
  add_file("index.html");
  manifest.status = "complete";
  manifest.finish(write_dir_);
  commit_output_dir(dir_);
  write_dir_ = dir_;
}

std::vector<Format> parse_formats(const std::string& list, const std::string& flag) {
  std::vector<Format> out;
  for (const std::string& item : list_items(list, ", ")) {
    Format f;
    try {
      f = parse_format(item);
    } catch (const Error&) {
      fail(flag, ": unknown format '", item, "' (expected a comma-separated list of png, svg, pdf)");
    }
    if (std::find(out.begin(), out.end(), f) == out.end()) out.push_back(f);
  }
  if (out.empty()) fail(flag, ": no format given (expected e.g. png or png,svg,pdf)");
  return out;
}

}  // namespace mechscope::report
