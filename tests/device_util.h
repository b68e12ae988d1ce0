// The device tests run models on: MECHSCOPE_TEST_DEVICE (cpu, cuda, cuda:N, auto; default cpu), so the
// same tests check the CPU build here and the GPU on a CUDA build (scripts/device/gpu-check.sh).
#pragma once
#include <cstdlib>
#include <string>

#include "models/device.h"
#include "models/model.h"

namespace mstest {

inline std::string test_device_name() {
  const char* e = std::getenv("MECHSCOPE_TEST_DEVICE");
  return e && *e ? e : "cpu";
}

inline at::Device test_device() { return mechscope::models::parse_device(test_device_name(), "MECHSCOPE_TEST_DEVICE"); }

inline mechscope::models::LoadOptions test_load_options(at::ScalarType dtype = at::kFloat) {
  mechscope::models::LoadOptions o;
  o.dtype = dtype;
  o.device = test_device();
  return o;
}

}  // namespace mstest
