#include "report/output.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <vector>

#include "core/error.h"
#include "core/fs.h"
#include "core/fs_guard.h"
#include "report/manifest.h"

namespace mechscope::report {
namespace {

using json = nlohmann::json;

struct Claim {
  OutputMode mode;
  std::string command, place;  // place: where the command writes (staging folder, or the folder)
  bool created = false;        // this run made the folder
  bool finished = false;       // committed, or (in place) its manifest written by the command
  std::string previous_status;
  // In place over a complete result: its manifest's bytes and what the folder held, so that a run
  // that fails having changed nothing (refused after the claim: other --resume settings) puts the
  // manifest back as it was instead of marking a whole earlier result failed.
  std::string previous_manifest;
  std::map<std::string, std::string> previous_tree;
};

// One entry per claimed folder, for the life of the process (main closes them).
std::map<std::string, Claim>& claims() {
  static std::map<std::string, Claim> m;
  return m;
}
bool g_overwrite = false;

std::string key_of(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  ::closedir(d);
  return out;
}

// What a run leaves besides its results: the lock and temporaries.
bool bookkeeping(const std::string& name) { return name == kLockName || temp_pid(name) > 0; }

// relative path -> inode, size and modification time of everything under `dir` but its manifest,
// lock and temporaries: equal twice when nothing was written in between (each write renames a new file in).
std::map<std::string, std::string> tree_state(const std::string& dir) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  namespace sfs = std::filesystem;
  for (auto it = sfs::recursive_directory_iterator(dir, ec); !ec && it != sfs::recursive_directory_iterator();
       it.increment(ec)) {
    std::string name = it->path().filename().string();
    std::string rel = it->path().lexically_relative(dir).string();
    if (bookkeeping(name) || rel == "manifest.json") {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    struct stat st;
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    out[rel] = cat(st.st_ino, ":", st.st_size, ":", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec);
  }
  return out;
}

json read_manifest(const std::string& dir) {
  std::string p = join_path(dir, "manifest.json");
  struct stat st;
  if (::stat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (64 << 20)) return json();
  try {
    json j = json::parse(read_file(p));
    return j.is_object() ? j : json();
  } catch (...) {
    return json();
  }
}

// A relative path inside the folder (a hand-edited manifest must not make us remove files elsewhere).
bool inside(const std::string& rel) {
  if (rel.empty() || rel[0] == '/') return false;
  for (auto& part : std::filesystem::path(rel))
    if (part == "..") return false;
  return true;
}

void write_status(const std::string& dir, const Claim& c, const std::string& status) {
  json j = read_manifest(dir);
  if (j.is_null()) {
    Manifest m;
    m.command = c.command;
    m.start();
    j = m.to_json(dir);
  }
  j["status"] = status;
  if (status == "running") j["pid"] = (long long)::getpid();
  else j.erase("pid");
  write_file_atomic(join_path(dir, "manifest.json"), j.dump(2) + "\n");
}

// The interrupt's mark (fs_guard's hook; the registry is locked, so the main thread creates and
// renames nothing any more). In-place folders that are not finished: one this run created and left
// empty goes; one that held a complete result this run has not touched gets that manifest back byte
// for byte; one this run wrote into says "interrupted (SIGINT)", so that neither looks like a run
// still going. The temporary's name differs from write_file_atomic's, which may be open mid-write.
void mark_interrupted(const char* sig) {
  for (auto& [dir, c] : claims()) {
    if (c.finished || c.mode != OutputMode::InPlace) continue;
    std::string target = join_path(dir, "manifest.json");
    bool empty = true;
    for (auto& n : entries(dir)) empty &= bookkeeping(n) || n == "manifest.json";
    if (c.created && empty) {
      ::unlink(target.c_str());
      continue;
    }
    std::string bytes;
    if (!c.previous_manifest.empty() && tree_state(dir) == c.previous_tree) {
      bytes = c.previous_manifest;
      set_interrupt_note(
          cat("interrupted before anything was written; ", dir, " holds its earlier complete result, unchanged"));
    } else {
      json j = read_manifest(dir);
      if (!j.is_object()) continue;
      j["status"] = cat("interrupted (", sig, ")");
      j.erase("pid");
      bytes = j.dump(2) + "\n";
    }
    std::string tmp = cat(target, ".interrupt.tmp.", ::getpid());
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) continue;
    bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
    ok &= std::fclose(f) == 0;
    if (!ok || std::rename(tmp.c_str(), target.c_str()) != 0) ::unlink(tmp.c_str());
  }
}

// Claims change only under the registry's lock, so the interrupt's thread reads them whole.
void set_finished(Claim& c) {
  with_temps_locked([&] { c.finished = true; });
}

bool mechscope_safetensors(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  uint64_t n = 0;
  if (!f.read(reinterpret_cast<char*>(&n), 8) || n > (100u << 20)) return false;
  std::string h(n, '\0');
  if (!f.read(&h[0], (std::streamsize)n)) return false;
  try {
    json j = json::parse(h);
    std::string fmt = j.at("__metadata__").at("format").get<std::string>();
    return fmt.rfind("mechscope", 0) == 0;
  } catch (...) {
    return false;
  }
}

}  // namespace

void set_overwrite(bool on) { g_overwrite = on; }
bool overwrite() { return g_overwrite; }

bool made_by_mechscope(const std::string& dir) {
  json m = read_manifest(dir);
  if (m.is_object()) {
    if (m.value("tool", json()) == "mechscope") return true;
    if (m.contains("versions") && m["versions"].is_object() && m["versions"].contains("mechscope")) return true;
  }
  // Runs from before manifests said "tool", killed before their manifest: locate's and train's records.
  for (const char* f : {"facts/run.json", "checkpoint/state.json", "train_summary.json"})
    if (file_exists(join_path(dir, f))) return true;
  // A knowledge graph of `kg generate` from before it wrote a manifest (examples/kg).
  std::string kg = join_path(dir, "kg.json");
  struct stat st;
  if (::stat(kg.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size < (1 << 20)) {
    try {
      json j = json::parse(read_file(kg));
      if (j.is_object() && j.value("generator", json()) == "mechscope kg generate") return true;
    } catch (...) {}
  }
  return false;
}

std::string claim_output_dir(const std::string& dir_in, const std::string& command, OutputMode mode) {
  std::string dir = key_of(dir_in);
  auto& all = claims();
  if (auto it = all.find(dir); it != all.end()) return it->second.place;

  std::string special = special_file_kind(dir);
  if (!special.empty()) fail(option("out"), " '", dir, "' is ", special, ", not a folder; refusing to write there");
  if (file_exists(dir))
    fail(option("out"), " '", dir, "' is a file; ", command, " writes a folder of results (choose another ",
         option("out"), ")");
  Claim c;
  c.mode = mode;
  c.command = command;
  if (!dir_exists(dir)) {
    auto slash = dir.find_last_of('/');
    if (slash != std::string::npos && slash > 0) make_dirs(dir.substr(0, slash));
    with_temps_locked([&] {
      if (::mkdir(dir.c_str(), 0777) == 0) {
        c.created = true;
        register_temp(dir, TempKind::CreatedDir);
      }
    });
    if (!c.created && !dir_exists(dir)) fail("cannot create directory '", dir, "': ", std::strerror(errno));
  } else if (!g_overwrite && !made_by_mechscope(dir)) {
    // Checked before the lock, which would otherwise leave a lock file in a folder we do not write.
    for (auto& n : entries(dir))
      if (!bookkeeping(n))
        fail(option("out"), " '", dir, "' holds files mechscope did not write (e.g. '", n, "'): pass ",
             option("overwrite"), " to write into it anyway, or choose a new folder");
  }
  lock_dir(dir, cat(option("out"), " '", dir, "'"));
  remove_stale_temps(dir);

  if (mode == OutputMode::Staged) {
    c.place = join_path(dir, cat(".run.tmp.", ::getpid()));
    with_temps_locked([&] {
      if (::mkdir(c.place.c_str(), 0777) == 0) register_temp(c.place, TempKind::Tree);
    });
    if (!dir_exists(c.place)) fail("cannot write into ", option("out"), " '", dir, "': ", std::strerror(errno));
    set_interrupt_note(
        cat("interrupted; nothing was written to ", dir, c.created ? "" : " (what it held before is unchanged)"));
  } else {
    c.place = dir;
    json old = read_manifest(dir);
    if (old.is_object() && old.contains("status") && old["status"].is_string()) c.previous_status = old["status"];
    if (c.previous_status == "complete") {
      c.previous_manifest = read_file(join_path(dir, "manifest.json"));
      c.previous_tree = tree_state(dir);
    }
    // Recorded (with the interrupt's hook) before "running" is written, so a signal from then on
    // finds the claim and marks the folder.
    with_temps_locked([&] {
      all.emplace(dir, c);
      set_interrupt_hook(mark_interrupted);
      set_interrupt_note(
          cat("interrupted; rerun with ", option("resume"), " to continue (what is finished is kept in ", dir, ")"));
    });
    write_status(dir, c, "running");
    return dir;
  }
  std::string place;
  with_temps_locked([&] { place = all.emplace(dir, c).first->second.place; });
  return place;
}

std::string previous_status(const std::string& dir) {
  auto it = claims().find(key_of(dir));
  return it == claims().end() ? "" : it->second.previous_status;
}

void commit_output_dir(const std::string& dir_in) {
  std::string dir = key_of(dir_in);
  auto it = claims().find(dir);
  if (it == claims().end() || it->second.finished) return;
  Claim& c = it->second;
  if (c.mode == OutputMode::InPlace) {
    set_finished(c);
    return;
  }
  std::vector<std::string> names = entries(c.place);
  // Everything in the way is checked before anything is moved, so a refusal replaces nothing.
  for (auto& n : names) {
    std::string target = join_path(dir, n), special = special_file_kind(target);
    bool is_dir = dir_exists(join_path(c.place, n));
    if (!special.empty())
      fail("'", target, "' is ", special, "; nothing in ", dir, " was replaced (move it away or choose another ",
           option("out"), ")");
    if (!is_dir && dir_exists(target))
      fail("'", target, "' is a folder where this run's ", n, " goes; nothing in ", dir,
           " was replaced (move it away or choose another ", option("out"), ")");
    if (is_dir && file_exists(target))
      fail("'", target, "' is a file where this run's folder ", n, " goes; nothing in ", dir, " was replaced");
  }
  // The earlier run's files that this one does not rewrite go, so the folder holds one run.
  std::set<std::string> old_files;
  if (json old = read_manifest(dir); old.is_object() && old.contains("files") && old["files"].is_array())
    for (auto& f : old["files"])
      if (f.is_object() && f.contains("path") && f["path"].is_string()) old_files.insert(f["path"].get<std::string>());
  std::set<std::string> fresh(names.begin(), names.end());
  std::string failed;
  with_temps_locked([&] {
    auto move = [&](const std::string& n) {
      std::string from = join_path(c.place, n), to = join_path(dir, n);
      std::error_code ec;
      if (dir_exists(from) && dir_exists(to)) std::filesystem::remove_all(to, ec);
      if (std::rename(from.c_str(), to.c_str()) != 0 && failed.empty())
        failed = cat("cannot move '", from, "' to '", to, "': ", std::strerror(errno));
    };
    for (auto& n : names)
      if (n != "manifest.json") move(n);
    for (auto& f : old_files)
      if (!fresh.count(f) && f != "manifest.json" && inside(f) && file_exists(join_path(dir, f)))
        ::unlink(join_path(dir, f).c_str());
    if (fresh.count("manifest.json") && failed.empty()) move("manifest.json");
    std::error_code ec;
    std::filesystem::remove_all(c.place, ec);
    forget_temp(c.place);
    forget_temp(dir);
    // Under the same lock the cleanup waits for: a signal from here on finds the run in place.
    if (failed.empty()) set_interrupt_note(cat("interrupted after the run was written to ", dir, " (it is complete)"));
  });
  set_finished(c);
  c.place = dir;
  if (!failed.empty()) fail(failed);
}

void claim_output_file(const std::string& path) {
  std::string special = special_file_kind(path);
  if (!special.empty())
    fail(option("out"), " '", path, "' is ", special, ", not a regular file; refusing to replace it");
  if (dir_exists(path)) fail(option("out"), " '", path, "' is a folder; give a file name");
  if (file_exists(path) && !g_overwrite && !mechscope_safetensors(path))
    fail(option("out"), " '", path, "' exists and was not written by mechscope: pass ", option("overwrite"),
         " to replace it, or choose another name");
  auto slash = path.find_last_of('/');
  std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (slash != std::string::npos && slash > 0) make_dirs(parent);
  remove_stale_temps(parent, base + ".tmp.");
  set_interrupt_note(cat("interrupted; nothing was written to ", path));
}

std::string public_paths(std::string message) {
  for (auto& [dir, c] : claims()) {
    std::string stage = join_path(dir, cat(".run.tmp.", ::getpid()));
    for (size_t at; (at = message.find(stage)) != std::string::npos;) message.replace(at, stage.size(), dir);
  }
  return message;
}

void close_outputs(bool ok, const std::string& why) {
  for (auto& [dir, c] : claims()) {
    if (c.finished) continue;
    try {
      if (c.mode == OutputMode::InPlace) {
        bool empty = true;
        for (auto& n : entries(dir)) empty &= bookkeeping(n) || n == "manifest.json";
        if (!ok && c.created && empty) {
          // Failed before writing anything: the folder goes as if the run had never started.
          ::unlink(join_path(dir, "manifest.json").c_str());
        } else if (!ok && !c.previous_manifest.empty() && tree_state(dir) == c.previous_tree) {
          // Failed over a complete result without writing a file: that result is still whole and complete.
          write_file_atomic(join_path(dir, "manifest.json"), c.previous_manifest);
          forget_temp(dir);
        } else {
          write_status(dir, c, ok ? "complete" : "failed: " + public_paths(why));
          forget_temp(dir);
        }
      }
    } catch (...) {
      // The run's own error is what the user sees; a folder we cannot mark keeps "running".
    }
    set_finished(c);
  }
  remove_temps();
}

}  // namespace mechscope::report
