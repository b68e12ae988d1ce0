// Which device tensors live on (--device), and what the process runs on (libtorch, CUDA, GPUs) for
// `mechscope info --device`, --version and manifest.json. Only the ATen/c10 API that libtorch 1.13
// (Debian, CPU) and 2.x (a PyTorch wheel, CUDA) both have: no CUDA header is included, so the same
// source builds against either, and CUDA is found at run time through ATen's CUDA hooks.
#pragma once
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "core/error.h"

namespace mechscope::models {

// "cpu", "cuda", "cuda:N" or "auto" (cuda:0 when a GPU is usable, else cpu) -> the device. Error
// naming `flag` when the text is none of those, when CUDA is asked for and this build or machine has
// none ("CUDA is not available in this build (libtorch 1.13.0, CPU only)"), or when cuda:N is past the
// GPUs there are.
at::Device parse_device(const std::string& text, const std::string& flag = option("device"));

// Error when `dtype` has no kernels on `device` (float16 on the CPU: libtorch 1.13 has none for matmul).
void check_dtype_on(at::ScalarType dtype, const at::Device& device, const std::string& flag = option("dtype"));

struct GpuInfo {
  int index = 0;
  std::string name;  // "NVIDIA H200" ("" when the driver could not be asked)
  int64_t memory_bytes = 0;
};

struct RuntimeInfo {
  std::string libtorch;         // "1.13.0"
  bool cuda_built = false;      // libtorch has its CUDA library (a CUDA wheel)
  std::string cuda_runtime;     // "12.4" when cuda_built
  bool cuda_available = false;  // built with CUDA and at least one GPU usable
  std::vector<GpuInfo> gpus;
};

// Asks libtorch (and, for GPU names, the CUDA driver) once per call.
RuntimeInfo runtime_info();
// "libtorch 1.13.0, CPU only" / "libtorch 2.5.1, CUDA 12.4, 1 GPU (NVIDIA H200)".
std::string runtime_summary(const RuntimeInfo& r);
// The manifest's "runtime" block: {"device", "libtorch", "cuda", "gpu"}; "gpu" names the GPU of
// `device` (null on the CPU), "cuda" the CUDA runtime (null without one).
nlohmann::json runtime_json(const RuntimeInfo& r, const at::Device& device);

// "cpu" / "cuda:0": a device as --device takes it.
std::string device_name(const at::Device& device);

}  // namespace mechscope::models
