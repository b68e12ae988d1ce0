#include "report/manifest.h"

#include <sys/stat.h>

#include <ctime>

#include "core/blas.h"
#include "core/fs.h"
#include "core/version.h"
#include "report/html.h"
#include "report/label.h"

namespace mechscope::report {

namespace {
nlohmann::json& runtime_slot() {
  static nlohmann::json r;
  return r;
}
}  // namespace

void set_manifest_runtime(const nlohmann::json& runtime) { runtime_slot() = runtime; }
const nlohmann::json& manifest_runtime() { return runtime_slot(); }

void Manifest::start() {
  t0_ = std::chrono::steady_clock::now();
  std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  started_utc = buf;
  versions["mechscope"] = MECHSCOPE_VERSION;
  versions["plotly.js"] = plotly_version();
  std::string blas = blas_core();
  if (!blas.empty()) versions["openblas_kernels"] = blas;
  // Set when mechscope restarted itself with OPENBLAS_CORETYPE (core/blas.h): what OpenBLAS had chosen.
  std::string guessed = blas_guessed();
  if (!guessed.empty()) versions["openblas_kernels_guessed"] = guessed;
}

nlohmann::json Manifest::to_json(const std::string& dir) const {
  nlohmann::json j;
  nlohmann::json args = nlohmann::json::array();
  for (auto& a : argv) args.push_back(valid_utf8(a));
  j["tool"] = "mechscope";
  j["status"] = status;
  j["command"] = command;
  j["argv"] = args;
  j["model"] = model.empty() ? nlohmann::json(nullptr) : nlohmann::json(model);
  j["seed"] = seed ? nlohmann::json(*seed) : nlohmann::json(nullptr);
  j["versions"] = versions;
  const nlohmann::json& rt = runtime.is_null() ? manifest_runtime() : runtime;
  if (!rt.is_null()) j["runtime"] = rt;
  j["started_utc"] = started_utc;
  j["wall_seconds"] = wall_seconds;
  nlohmann::json fs = nlohmann::json::array();
  for (auto& f : files) {
    struct stat st;
    nlohmann::json e = {{"path", f}};
    e["bytes"] = ::stat(join_path(dir, f).c_str(), &st) == 0 ? nlohmann::json(st.st_size) : nlohmann::json(nullptr);
    fs.push_back(e);
  }
  j["files"] = fs;
  if (!extra.empty()) j["settings"] = extra;
  return j;
}

void Manifest::finish(const std::string& dir) {
  if (t0_ != std::chrono::steady_clock::time_point{})
    wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  write_file_atomic(join_path(dir, "manifest.json"), to_json(dir).dump(2) + "\n");
}

}  // namespace mechscope::report
