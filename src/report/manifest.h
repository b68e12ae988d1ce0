// manifest.json: what produced an output folder (command line, model, versions, seed, timings) and
// what is in it (every output file with its size), so a figure can be traced back to its run. Its
// "tool": "mechscope" is how a later run recognises the folder as mechscope's (report/output.h).
#pragma once
#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mechscope::report {

struct Manifest {
  std::vector<std::string> argv;  // the command line as given
  std::string command;            // subcommand name ("trace", "gallery")
  std::string model;              // model id or path ("" when none)
  std::optional<unsigned long long> seed;
  std::map<std::string, std::string> versions;      // "mechscope" filled in; callers add "libtorch" etc.
  std::string started_utc;                          // ISO 8601, set by start()
  double wall_seconds = 0;                          // set by finish()
  std::vector<std::string> files;                   // relative to the output folder
  nlohmann::json extra = nlohmann::json::object();  // analysis-specific settings
  // "complete" once written by finish(); batch folders say "running" / "failed: <why>" before
  // (report/output.h). Readers trust only a "complete" folder.
  std::string status = "complete";
  // What the run ran on ({"device", "libtorch", "cuda", "gpu"}); null = the one set_manifest_runtime
  // recorded, left out when none was (commands that load no model).
  nlohmann::json runtime;

  void start();  // stamps started_utc and the wall clock
  // Stops the clock and writes <dir>/manifest.json atomically, with each file's size in bytes.
  void finish(const std::string& dir);
  nlohmann::json to_json(const std::string& dir) const;

 private:
  std::chrono::steady_clock::time_point t0_{};
};

// Records the runtime block of this process's manifests: the CLI sets it once, where --device is
// parsed, so every command's manifest.json says where it ran without each command passing it on.
void set_manifest_runtime(const nlohmann::json& runtime);
const nlohmann::json& manifest_runtime();

}  // namespace mechscope::report
