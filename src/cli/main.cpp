// mechscope entry point: dispatches to the registered subcommand and turns errors into one line on
// stderr and an exit code (0 success, 2 bad input or usage, 1 internal failure). Nothing else in the
// program prints errors or exits.
#include <c10/util/Exception.h>
#include <torch/version.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <new>

#include "cli/registry.h"
#include "core/blas.h"
#include "core/error.h"
#include "core/version.h"

namespace mechscope::cli {

std::vector<Command>& commands() {
  static std::vector<Command> list;
  return list;
}

namespace {

void print_usage() {
  auto list = commands();
  std::sort(list.begin(), list.end(), [](auto& a, auto& b) { return a.order < b.order; });
  std::printf(
      "mechscope %s: mechanistic interpretability of transformer language models\n\n"
      "usage: mechscope <command> [options]   (mechscope <command> --help for its options)\n\n"
      "commands:\n",
      MECHSCOPE_VERSION);
  for (auto& c : list) std::printf("  %-12s %s\n", c.name.c_str(), c.summary.c_str());
  std::printf("\n  --version    print the version and the libtorch it runs on\n");
}

}  // namespace
}  // namespace mechscope::cli

int main(int argc, char** argv) {
  using namespace mechscope::cli;
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    print_usage();
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::string blas = mechscope::blas_core();
    std::printf("mechscope %s (libtorch %s%s)\n", MECHSCOPE_VERSION, TORCH_VERSION,
                blas.empty() ? "" : (", OpenBLAS " + blas + " kernels").c_str());
    return 0;
  }
  std::string name = argv[1];
  for (auto& c : commands()) {
    if (c.name != name) continue;
    try {
      return c.run(argc - 2, argv + 2);
    } catch (const mechscope::Error& e) {
      std::fprintf(stderr, "mechscope %s: error: %s\n", name.c_str(), e.what());
      return 2;
    } catch (const c10::Error& e) {
      std::fprintf(stderr, "mechscope %s: internal error: %s\n", name.c_str(), e.what_without_backtrace());
      return 1;
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr, "mechscope %s: error: out of memory\n", name.c_str());
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "mechscope %s: internal error: %s\n", name.c_str(), e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "mechscope: error: unknown command '%s' (see mechscope --help)\n", name.c_str());
  return 2;
}
