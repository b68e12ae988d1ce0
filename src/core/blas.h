// Which BLAS kernels libtorch's matrix products run on, for --version and manifest.json: OpenBLAS
// picks them when it loads, from the CPU or OPENBLAS_CORETYPE, and they set most of the speed.
#pragma once
#include <string>

namespace mechscope {

// The OpenBLAS kernel family in use ("Haswell", "Cooperlake", ...), or "" when the BLAS is not OpenBLAS.
std::string blas_core();

// The kernel family to ask OpenBLAS for when it took this CPU for an older one: OpenBLAS 0.3.21
// (Debian 12) identifies CPUs by cpuid family/model, and on a KVM "Intel(R) Xeon(R) Processor" with
// AVX-512 it fell back to its SSE3 "Prescott" kernels, whose sgemm is 4-9x slower here. "SkylakeX"
// when the CPU and OS support AVX-512F, "Haswell" with AVX2 + FMA, when the chosen family predates
// AVX2; "" otherwise (a recognised CPU, or nothing better to ask for).
std::string blas_better_core();

// OpenBLAS reads OPENBLAS_CORETYPE once, when it loads: when the variable is unset and
// blas_better_core() names a family, sets it and MECHSCOPE_BLAS_GUESSED ("<guessed>><chosen>") and
// restarts the program (execv of /proc/self/exe with `argv`). Returns when nothing is restarted (a
// recognised CPU, a value the user set, or exec failing, which leaves the environment as it was).
void restart_with_better_blas(char* const argv[]);
// The family OpenBLAS had guessed when this process runs on the one restart_with_better_blas chose
// (OPENBLAS_CORETYPE still names it, so an inherited marker with a user's own value is ignored), else "".
std::string blas_guessed();

}  // namespace mechscope
