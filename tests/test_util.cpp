#include "test_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/blas.h"
#include "core/source_dir.h"  // MECHSCOPE_SOURCE_DIR, MECHSCOPE_BINARY

namespace mstest {

std::string source_dir() { return MECHSCOPE_SOURCE_DIR; }
std::string fixture(const std::string& rel) { return source_dir() + "/tests/fixtures/" + rel; }

std::string tmp_dir(const std::string& name) {
  std::string base = std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + "/mechscope-test-" +
                     std::to_string(::getpid());
  std::string d = base + "/" + name;
  std::system(("rm -rf '" + d + "' && mkdir -p '" + d + "'").c_str());
  return d;
}

static std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

static std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

// mechscope restarts itself when OpenBLAS took the CPU for an old one (core/blas.h). A test program
// does the same before its tests run, so that it computes on the same kernels as the binaries it
// starts (several tests compare a command's numbers with the library's to 1e-9) and those binaries,
// finding OPENBLAS_CORETYPE set, load libtorch once (~0.5 s each). The restart itself is tested with
// the variable unset.
[[maybe_unused]] static const bool kBlasRestarted = [] {
  if (std::getenv("OPENBLAS_CORETYPE")) return false;
  std::ifstream f("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> args;
  for (std::string a; std::getline(f, a, '\0');) args.push_back(a);
  if (args.empty()) return false;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  mechscope::restart_with_better_blas(argv.data());
  return false;
}();

RunResult run_shell(const std::string& cmd) {
  std::string dir = tmp_dir("run-shell");
  std::string full = "(" + cmd + ") >" + dir + "/out 2>" + dir + "/err </dev/null";
  int st = std::system(full.c_str());
  RunResult r{WIFEXITED(st) ? WEXITSTATUS(st) : 128, slurp(dir + "/out"), slurp(dir + "/err")};
  return r;
}

std::string kg_facts(const std::string& dir, int n) {
  std::ifstream in(source_dir() + "/examples/kg/facts.jsonl");
  std::string line, text;
  for (int i = 0; i < n && std::getline(in, line); ++i) text += line + "\n";
  std::string p = dir + "/facts.jsonl";
  std::ofstream(p) << text;
  return p;
}

RunResult run_cli(const std::vector<std::string>& args) {
  std::string cmd = quote(MECHSCOPE_BINARY);
  for (auto& a : args) cmd += " " + quote(a);
  return run_shell(cmd);
}

}  // namespace mstest
