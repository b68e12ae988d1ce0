// Which BLAS kernels libtorch's matrix products run on, for --version and manifest.json: OpenBLAS
// picks them when it loads, from the CPU or OPENBLAS_CORETYPE, and they set most of the speed.
#pragma once
#include <string>

namespace mechscope {

// The OpenBLAS kernel family in use ("Haswell", "Cooperlake", ...), or "" when the BLAS is not OpenBLAS.
std::string blas_core();

}  // namespace mechscope
