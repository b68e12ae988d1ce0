#include "core/blas.h"

#include <dlfcn.h>
#include <strings.h>
#include <unistd.h>

#include <cstdlib>

namespace mechscope {

std::string blas_core() {
  // Exported by OpenBLAS whichever name it is loaded under (libopenblas.so.0, or libblas.so.3 through
  // Debian's alternatives).
  using Fn = char* (*)();
  auto fn = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  const char* name = fn ? fn() : nullptr;
  return name ? name : "";
}

std::string blas_better_core() {
  std::string core = blas_core();
  if (core.empty()) return "";
  // OpenBLAS's x86-64 families without AVX2 kernels (its names, as openblas_get_corename gives them).
  static const char* const kOld[] = {
      "Prescott",     "Core2",      "Penryn",    "Dunnington", "Nehalem",    "Sandybridge", "Atom",      "Opteron",
      "Opteron_SSE3", "Barcelona",  "Bobcat",    "Bulldozer",  "Piledriver", "Steamroller", "Excavator", "Nano",
      "Katmai",       "Coppermine", "Northwood", "Banias",     "generic",    "unknown"};
  bool old = false;
  for (const char* o : kOld) old = old || !strcasecmp(core.c_str(), o);
  if (!old) return "";
#if defined(__x86_64__)
  // libgcc's checks include the OS's support for the wider registers (XGETBV), not only cpuid.
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
  return "";
}

void restart_with_better_blas(char* const argv[]) {
  if (std::getenv("OPENBLAS_CORETYPE")) return;
  std::string better = blas_better_core();
  if (better.empty()) return;
  setenv("MECHSCOPE_BLAS_GUESSED", (blas_core() + ">" + better).c_str(), 1);
  setenv("OPENBLAS_CORETYPE", better.c_str(), 1);
  execv("/proc/self/exe", argv);
  unsetenv("OPENBLAS_CORETYPE");
  unsetenv("MECHSCOPE_BLAS_GUESSED");
}

std::string blas_guessed() {
  const char* marker = std::getenv("MECHSCOPE_BLAS_GUESSED");
  const char* chosen = std::getenv("OPENBLAS_CORETYPE");
  if (!marker || !chosen) return "";
  std::string m = marker;
  size_t gt = m.find('>');
  if (gt == std::string::npos || m.substr(gt + 1) != chosen) return "";
  return m.substr(0, gt);
}

}  // namespace mechscope
