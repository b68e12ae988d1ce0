// test_fuzz_replay: every fuzz target on its checked-in corpus and regression inputs
// (tests/fuzz/corpus/<target>/, tests/fuzz/regressions/<target>/). A finding aborts the process, so
// ctest fails and the output names the target and the input. A target with no input at all fails
// too: a replay that runs nothing cannot pass.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz.h"

namespace fs = std::filesystem;
using namespace mechscope::fuzz;

int main(int argc, char** argv) {
  std::string root = source_dir() + "/tests/fuzz";
  std::string only = argc > 1 ? argv[1] : "";
  int missing = 0;
  size_t total = 0;
  auto names = targets();
  std::sort(names.begin(), names.end(), [](auto& a, auto& b) { return std::string(a.name) < b.name; });
  for (const auto& t : names) {
    if (!only.empty() && only != t.name) continue;
    size_t n = 0;
    for (const char* kind : {"corpus", "regressions"}) {
      fs::path dir = fs::path(root) / kind / t.name;
      if (!fs::is_directory(dir)) continue;
      std::vector<fs::path> files;
      for (auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file()) files.push_back(e.path());
      std::sort(files.begin(), files.end());
      for (auto& p : files) {
        std::ifstream f(p, std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        std::fprintf(stderr, "%s\r", p.c_str());
        run_one(t.name, t.body, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
        ++n;
      }
    }
    std::printf("%-22s %5zu inputs\n", t.name, n);
    if (n == 0) {
      std::printf("  no corpus or regression inputs for %s under %s\n", t.name, root.c_str());
      ++missing;
    }
    total += n;
  }
  if (!only.empty() && std::none_of(names.begin(), names.end(), [&](auto& t) { return only == t.name; })) {
    std::printf("no fuzz target named '%s' (usage: test_fuzz_replay [TARGET])\n", only.c_str());
    return 2;
  }
  std::printf("%zu inputs replayed, no findings\n", total);
  return missing ? 1 : 0;
}
