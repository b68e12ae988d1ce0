// mechscope entry point: dispatches to the registered subcommand and turns errors into one line on
// stderr and an exit code (0 success, 2 bad input or usage, 1 internal failure). Nothing else in the
// program prints errors or exits.
#include <c10/util/Exception.h>
#include <torch/version.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <strings.h>
#include <new>

#include "cli/args.h"
#include "cli/distribute.h"
#include "cli/registry.h"
#include "core/blas.h"
#include "core/error.h"
#include "core/fs_guard.h"
#include "core/version.h"
#include "models/device.h"
#include "report/output.h"

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

// mechscope sets its thread count itself (--threads), but libgomp parses the OpenMP variables when it
// is loaded, before main, and prints a warning for a value it cannot read (OMP_NUM_THREADS=abc). Run
// from the executable's preinit array, which the dynamic linker calls before any library's
// constructors, this removes such values so libgomp never sees them.
bool positive_list(const char* v, bool list) {
  if (!*v) return false;
  for (const char* p = v; *p;) {
    if (*p < '1' || *p > '9') return false;
    while (*p >= '0' && *p <= '9') ++p;
    if (*p == ',' && list && p[1]) ++p;
    else if (*p) return false;
  }
  return true;
}

// Called before libc has set `environ` (getenv/unsetenv do not work yet): edits the array it is given,
// which becomes `environ`, by dropping the entries libgomp would reject.
void sanitize_openmp_env(int, char**, char** env) {
  auto bad = [](const char* entry) {
    auto value = [&](const char* name) -> const char* {
      size_t n = std::strlen(name);
      return !std::strncmp(entry, name, n) && entry[n] == '=' ? entry + n + 1 : nullptr;
    };
    if (const char* v = value("OMP_NUM_THREADS")) return !positive_list(v, true);
    if (const char* v = value("OMP_THREAD_LIMIT")) return !positive_list(v, false);
    for (const char* name : {"OMP_DYNAMIC", "OMP_NESTED"})
      if (const char* v = value(name)) return strcasecmp(v, "true") != 0 && strcasecmp(v, "false") != 0;
    if (const char* v = value("OMP_WAIT_POLICY")) return strcasecmp(v, "active") != 0 && strcasecmp(v, "passive") != 0;
    return false;
  };
  if (!env) return;
  char** out = env;
  for (char** e = env; *e; ++e)
    if (!bad(*e)) *out++ = *e;
  *out = nullptr;
}

__attribute__((section(".preinit_array"), used)) void (*const preinit_sanitize)(int, char**,
                                                                                char**) = sanitize_openmp_env;

}  // namespace
}  // namespace mechscope::cli

int main(int argc, char** argv) {
  using namespace mechscope::cli;
  // A better kernel family than the one OpenBLAS guessed for this CPU takes a restart (core/blas.h).
  mechscope::restart_with_better_blas(argv);
  if (argc < 2) {
    std::fprintf(stderr, "mechscope: error: no command given (mechscope --help lists the commands)\n");
    return 2;
  }
  if (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    print_usage();
    return 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::string blas = mechscope::blas_core();
    std::string guessed = mechscope::blas_guessed();
    std::string note = guessed.empty() ? ""
                                       : mechscope::cat(": OPENBLAS_CORETYPE=", blas,
                                                        " set by mechscope, OpenBLAS took this CPU for ", guessed);
    // "libtorch 1.13.0, CPU only" / "libtorch 2.5.1, CUDA 12.4, 1 GPU (NVIDIA H200)"
    std::printf("mechscope %s (%s%s%s)\n", MECHSCOPE_VERSION,
                mechscope::models::runtime_summary(mechscope::models::runtime_info()).c_str(),
                blas.empty() ? "" : (", OpenBLAS " + blas + " kernels").c_str(), note.c_str());
    return 0;
  }
  std::string name = argv[1];
  mechscope::set_option_namer(&mechscope::cli::flag_of_field);  // library errors name the flags
  for (auto& c : commands()) {
    if (c.name != name) continue;
    mechscope::install_interrupt_handler(name);
    // Every way out marks or removes what the run was writing (report/output.h) before the message,
    // which names the output folder rather than its staging folder.
    auto failed = [&](const std::string& why, const char* kind) {
      std::string msg = mechscope::report::public_paths(why);
      mechscope::report::close_outputs(false, msg);
      // Under mpirun every rank may meet the same bad input: the others say which rank they are.
      std::string who =
          mechscope::cli::dist::rank() ? mechscope::cat(" (rank ", mechscope::cli::dist::rank(), ")") : "";
      std::fprintf(stderr, "mechscope %s%s: %s: %s\n", name.c_str(), who.c_str(), kind, msg.c_str());
    };
    try {
      // Under mpirun/srun (issue 18) the batch commands hand their items out over the ranks; any other
      // command would run once per rank into the same place, so it is refused.
      static const char* const kDistributed[] = {"locate", "patch", "ablate", "heads", "train", "sae", "attnviz"};
      if (mechscope::cli::dist::launched()) {
        if (std::find_if(std::begin(kDistributed), std::end(kDistributed), [&](const char* d) { return name == d; }) ==
            std::end(kDistributed))
          mechscope::fail("mechscope ", name,
                          " does not run over MPI ranks (locate, patch, ablate, heads, train, attnviz, sae stats and "
                          "sae train do); run it without mpirun");
        mechscope::cli::dist::init(name);
      }
      int rc = c.run(argc - 2, argv + 2);
      mechscope::report::close_outputs(rc == 0, mechscope::cat("exit code ", rc));
      // A rank that fails leaves MPI unfinished: mpirun then ends the job and names the rank.
      if (rc == 0) mechscope::cli::dist::finalize();
      return rc;
    } catch (const mechscope::Error& e) {
      failed(e.what(), "error");
      return 2;
    } catch (const c10::Error& e) {
      failed(e.what_without_backtrace(), "internal error");
      return 1;
    } catch (const std::bad_alloc&) {
      failed("out of memory", "error");
      return 1;
    } catch (const std::exception& e) {
      failed(e.what(), "internal error");
      return 1;
    }
  }
  std::fprintf(stderr, "mechscope: error: unknown command '%s' (see mechscope --help)\n", name.c_str());
  return 2;
}
