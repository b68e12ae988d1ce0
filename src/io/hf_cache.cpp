// resolve_model_dir: a directory, or a hub id found in the local Hugging Face cache, laid out by
// huggingface_hub as HUB/models--ORG--NAME/{refs/main, snapshots/<commit>/, blobs/}.
#include <cctype>
#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "core/fs.h"
#include "io/checkpoint.h"

namespace mechscope::io {

namespace fs = std::filesystem;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// The same precedence as huggingface_hub's constants.py (HUGGINGFACE_HUB_CACHE is its legacy name).
std::string hub_cache_dir() {
  if (!env("HF_HUB_CACHE").empty()) return env("HF_HUB_CACHE");
  if (!env("HUGGINGFACE_HUB_CACHE").empty()) return env("HUGGINGFACE_HUB_CACHE");
  if (!env("HF_HOME").empty()) return join_path(env("HF_HOME"), "hub");
  if (!env("XDG_CACHE_HOME").empty()) return join_path(env("XDG_CACHE_HOME"), "huggingface/hub");
  return join_path(env("HOME"), ".cache/huggingface/hub");
}

bool valid_part(const std::string& s) {
  if (s.empty() || s == "." || s == "..") return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  return true;
}

// "name" or "org/name" with hub-legal characters; anything else (./x, /x, a/b/c) is meant as a path.
bool looks_like_hub_id(const std::string& s) {
  auto slash = s.find('/');
  if (slash == std::string::npos) return valid_part(s);
  return valid_part(s.substr(0, slash)) && valid_part(s.substr(slash + 1));
}

// The hub redirects the legacy bare ids (gpt2, gpt2-medium, distilgpt2…) to openai-community/…,
// and a cache may hold either spelling depending on what the user typed when downloading.
std::vector<std::string> spellings(const std::string& id) {
  const std::string oc = "openai-community/";
  if (id.find('/') == std::string::npos) return {id, oc + id};
  if (id.compare(0, oc.size(), oc) == 0) return {id, id.substr(oc.size())};
  return {id};
}

std::string cache_folder_name(const std::string& id) {
  std::string out = "models--";
  for (char c : id) out += c == '/' ? std::string("--") : std::string(1, c);
  return out;
}

// The snapshot refs/main points at; else the only one; else the most recently modified.
// Empty when the repo folder has no snapshot.
std::string pick_snapshot(const std::string& repo) {
  std::string snaps = join_path(repo, "snapshots");
  std::string ref_path = join_path(repo, "refs/main");
  if (file_exists(ref_path)) {
    std::string ref = read_file(ref_path);
    while (!ref.empty() && std::isspace(static_cast<unsigned char>(ref.back()))) ref.pop_back();
    std::string snap = join_path(snaps, ref);
    if (!ref.empty() && ref.find('/') == std::string::npos && dir_exists(snap)) return snap;
  }
  std::string best;
  fs::file_time_type best_time;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(snaps, ec)) {
    if (!e.is_directory(ec)) continue;
    auto t = fs::last_write_time(e.path(), ec);
    if (ec) continue;
    if (best.empty() || t > best_time) best = e.path().string(), best_time = t;
  }
  return best;
}

}  // namespace

std::string resolve_model_dir(const std::string& model) {
  if (dir_exists(model)) return model;
  if (file_exists(model)) fail("model '", model, "' is a file; pass the directory that holds it (with config.json)");
  if (!looks_like_hub_id(model)) fail("model directory '", model, "' does not exist");

  std::string hub = hub_cache_dir();
  std::string looked;
  for (auto& id : spellings(model)) {
    std::string repo = join_path(hub, cache_folder_name(id));
    looked += (looked.empty() ? "" : ", ") + repo;
    if (!dir_exists(repo)) continue;
    std::string snap = pick_snapshot(repo);
    if (!snap.empty()) return snap;
  }
  fail("model '", model, "' is neither a directory nor in the Hugging Face cache (looked in ", looked,
       "; the cache is $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub); download it with "
       "`huggingface-cli download ",
       model, "` (or `hf download ", model, "`) on a machine with internet, or pass a directory");
}

}  // namespace mechscope::io
