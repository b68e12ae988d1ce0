// What the fault tests (test_faults.cpp, test_faults2.cpp) share: running the built binary as a
// child to signal, stop or limit it, and checking what a run left in its folder (temporaries, whole
// files, unchanged bytes).
#pragma once
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/fs.h"
#include "core/source_dir.h"  // MECHSCOPE_BINARY
#include "io/safetensors.h"
#include "test_util.h"

namespace mstest::faults {

using json = nlohmann::json;
namespace fs = std::filesystem;
using mechscope::read_file;
namespace io = mechscope::io;
using mstest::contains;

struct Child {
  pid_t pid = -1;
  std::string log;  // stderr goes to <log>.err
};
// fork + exec of the built binary; `in_child` runs between them (async-signal-safe calls only).
inline Child spawn(const std::vector<std::string>& args, const std::string& log,
                   const std::function<void()>& in_child = {}) {
  std::vector<std::string> store{MECHSCOPE_BINARY};
  store.insert(store.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : store) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::string out = log + ".out", err = log + ".err";
  Child c{-1, log};
  c.pid = ::fork();
  if (c.pid == 0) {
    int in = ::open("/dev/null", O_RDONLY), o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644),
        e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(in, 0), ::dup2(o, 1), ::dup2(e, 2);
    if (in_child) in_child();
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return c;
}
// Exit code, or 128 + the signal that ended it (as a shell reports it).
inline int wait_for(const Child& c) {
  int st = 0;
  ::waitpid(c.pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
inline std::string err_of(const Child& c) { return read_file(c.log + ".err"); }

// Every temporary (".tmp.<pid>" in its name) under `dir`.
inline std::vector<std::string> temporaries(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); it != fs::recursive_directory_iterator(); it.increment(ec))
    if (contains(it->path().filename().string(), ".tmp.")) out.push_back(it->path().string());
  return out;
}

inline bool ends_with(const std::string& s, const std::string& end) {
  return s.size() >= end.size() && s.compare(s.size() - end.size(), end.size(), end) == 0;
}

// Every file under `dir` (temporaries aside) parses whole: JSON, safetensors (header and sizes
// checked), PNG (signature and IEND), HTML, SVG, PDF.
inline void expect_whole(const std::string& dir) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    std::string p = it->path().string(), name = it->path().filename().string();
    if (contains(p, ".tmp.")) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file()) continue;
    std::string bytes = read_file(p);
    if (ends_with(name, ".json") || ends_with(name, ".jsonl")) {
      if (ends_with(name, ".json")) EXPECT_NO_THROW(json::parse(bytes)) << p;
    } else if (ends_with(name, ".safetensors")) {
      EXPECT_NO_THROW(io::SafetensorsFile::open(p)) << p;
    } else if (ends_with(name, ".png")) {
      EXPECT_TRUE(bytes.size() > 20 && bytes.compare(1, 3, "PNG") == 0 &&
                  bytes.compare(bytes.size() - 8, 4, "IEND") == 0)
          << p;
    } else if (ends_with(name, ".html")) {
      EXPECT_TRUE(contains(bytes.substr(bytes.size() > 64 ? bytes.size() - 64 : 0), "</html>")) << p;
    } else if (ends_with(name, ".svg")) {
      EXPECT_TRUE(contains(bytes.substr(bytes.size() > 64 ? bytes.size() - 64 : 0), "</svg>")) << p;
    }
  }
}

// name -> bytes of every regular file directly in `dir`.
inline std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename() != ".mechscope.lock")
      out[e.path().filename().string()] = read_file(e.path().string());
  return out;
}

// The names whose bytes differ between two snapshots ("" when none), so a failure does not print megabytes.
inline std::string differing(const std::map<std::string, std::string>& a, const std::map<std::string, std::string>& b) {
  std::string out;
  for (auto& [k, v] : a)
    if (!b.count(k) || b.at(k) != v) out += k + " ";
  for (auto& [k, v] : b)
    if (!a.count(k)) out += k + " ";
  return out;
}

inline json manifest_of(const std::string& dir) { return json::parse(read_file(dir + "/manifest.json")); }

inline void expect_one_line_error(const mstest::RunResult& r, const std::string& needle) {
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, needle)) << "wanted '" << needle << "' in: " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

inline long dead_pid() {
  pid_t p = ::fork();
  if (p == 0) ::_exit(0);
  ::waitpid(p, nullptr, 0);
  return p;
}

inline void limit_file_size(rlim_t bytes) {
  struct rlimit rl {
    bytes, bytes
  };
  ::setrlimit(RLIMIT_FSIZE, &rl);
  ::signal(SIGXFSZ, SIG_IGN);  // a write past the limit then fails with EFBIG instead of killing
}

// Holds <dir>/.mechscope.lock as a mechscope run does (flock, this process's pid inside) until destroyed.
struct HeldLock {
  int fd = -1;
  explicit HeldLock(const std::string& dir) {
    fs::create_directories(dir);
    fd = ::open((dir + "/.mechscope.lock").c_str(), O_RDWR | O_CREAT, 0644);
    EXPECT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
    std::string pid = std::to_string(::getpid()) + "\n";
    EXPECT_EQ(::write(fd, pid.data(), pid.size()), (ssize_t)pid.size());
  }
  ~HeldLock() { ::close(fd); }
  HeldLock(const HeldLock&) = delete;
  HeldLock& operator=(const HeldLock&) = delete;
};

}  // namespace mstest::faults
