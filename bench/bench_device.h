// Where the benches run: MECHSCOPE_BENCH_DEVICE (cpu, cuda, cuda:N, auto; default cpu), as --device.
// GPU work is asynchronous, so a timed region ends with sync() before the clock is read.
#pragma once
#include <ATen/ATen.h>
#include <ATen/detail/CUDAHooksInterface.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "models/device.h"
#include "models/model.h"

namespace bench {

inline at::Device device() {
  const char* e = std::getenv("MECHSCOPE_BENCH_DEVICE");
  return mechscope::models::parse_device(e && *e ? e : "cpu", "MECHSCOPE_BENCH_DEVICE");
}

inline std::unique_ptr<mechscope::models::HookedModel> load(const std::string& dir) {
  mechscope::models::LoadOptions o;
  o.device = device();
  return mechscope::models::load_model(dir, o);
}

inline void sync() {
  at::Device d = device();
  if (d.is_cuda()) at::detail::getCUDAHooks().deviceSynchronize(d.has_index() ? d.index() : 0);
}

inline std::string device_name() { return mechscope::models::device_name(device()); }

}  // namespace bench
