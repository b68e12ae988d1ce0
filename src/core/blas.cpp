#include "core/blas.h"

#include <dlfcn.h>

namespace mechscope {

std::string blas_core() {
  // Exported by OpenBLAS whichever name it is loaded under (libopenblas.so.0, or libblas.so.3 through
  // Debian's alternatives).
  using Fn = char* (*)();
  auto fn = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  const char* name = fn ? fn() : nullptr;
  return name ? name : "";
}

}  // namespace mechscope
