// While attnviz runs its groups one per thread, each group's small matrix products must not start
// OpenBLAS's own thread pool as well (2 threads x 2 BLAS threads on 2 cores spend their time waiting
// at barriers: on a loaded 2-core machine, 60 s instead of 6 s for 144 heads' normalisation).
// Found through dlsym as core/blas.cpp does, so nothing changes with a BLAS other than OpenBLAS.
#pragma once
#include <dlfcn.h>

namespace mechscope::analysis::attnviz {

class OneBlasThread {
 public:
  OneBlasThread() {
    set_ = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    auto get = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
    if (set_ && get) saved_ = get(), set_(1);
  }
  ~OneBlasThread() {
    if (set_ && saved_ > 0) set_(saved_);
  }
  OneBlasThread(const OneBlasThread&) = delete;
  OneBlasThread& operator=(const OneBlasThread&) = delete;

 private:
  void (*set_)(int) = nullptr;
  int saved_ = 0;
};

}  // namespace mechscope::analysis::attnviz
