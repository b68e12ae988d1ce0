#include "models/device.h"

#include <ATen/Context.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <dlfcn.h>

#include <cstdlib>

#include "core/error.h"

#if __has_include(<torch/version.h>)
#include <torch/version.h>
#endif

namespace mechscope::models {

namespace {

std::string libtorch_version() {
#if defined(TORCH_VERSION)
  return TORCH_VERSION;
#elif defined(TORCH_VERSION_MAJOR)
  return cat(TORCH_VERSION_MAJOR, ".", TORCH_VERSION_MINOR, ".", TORCH_VERSION_PATCH);
#else
  return "unknown";
#endif
}

// ATen's CUDA hooks are a stub that throws unless libtorch_cuda is linked in: that is how a CPU-only
// build is told from a CUDA build on a machine without a GPU.
bool cuda_built(std::string* runtime) {
  try {
    long v = at::detail::getCUDAHooks().versionCUDART();  // 12040 = 12.4
    if (runtime) *runtime = cat(v / 1000, ".", (v % 1000) / 10);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

int gpu_count() {
  try {
    return at::hasCUDA() ? (int)at::detail::getCUDAHooks().getNumGPUs() : 0;
  } catch (const std::exception&) {
    return 0;
  }
}

// GPU names and memory from the CUDA driver API (libcuda.so.1, loaded by libtorch_cuda already):
// plain C calls with int handles, so no CUDA header is needed to build.
void describe_gpus(std::vector<GpuInfo>& gpus) {
  void* lib = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
  if (!lib) lib = dlopen("libcuda.so.1", RTLD_LAZY);
  if (!lib) return;
  using Init = int (*)(unsigned);
  using Name = int (*)(char*, int, int);
  using Mem = int (*)(size_t*, int);
  auto init = (Init)dlsym(lib, "cuInit");
  auto name = (Name)dlsym(lib, "cuDeviceGetName");
  auto mem = (Mem)dlsym(lib, "cuDeviceTotalMem_v2");
  if (!init || !name || init(0) != 0) return;
  for (auto& g : gpus) {
    char buf[256] = {0};
    if (name(buf, sizeof buf - 1, g.index) == 0) g.name = buf;
    size_t bytes = 0;
    if (mem && mem(&bytes, g.index) == 0) g.memory_bytes = (int64_t)bytes;
  }
}

}  // namespace

RuntimeInfo runtime_info() {
  RuntimeInfo r;
  r.libtorch = libtorch_version();
  r.cuda_built = cuda_built(&r.cuda_runtime);
  int n = r.cuda_built ? gpu_count() : 0;
  r.cuda_available = n > 0;
  for (int i = 0; i < n; ++i) r.gpus.push_back(GpuInfo{i, "", 0});
  if (n > 0) describe_gpus(r.gpus);
  return r;
}

std::string runtime_summary(const RuntimeInfo& r) {
  std::string s = "libtorch " + r.libtorch;
  if (!r.cuda_built) return s + ", CPU only";
  s += ", CUDA " + r.cuda_runtime;
  if (r.gpus.empty()) return s + ", no GPU usable";
  s += cat(", ", r.gpus.size(), r.gpus.size() == 1 ? " GPU (" : " GPUs (");
  for (size_t i = 0; i < r.gpus.size(); ++i)
    s += (i ? ", " : "") + (r.gpus[i].name.empty() ? std::string("unnamed") : r.gpus[i].name);
  return s + ")";
}

std::string device_name(const at::Device& device) {
  if (device.is_cpu()) return "cpu";
  return cat(c10::DeviceTypeName(device.type(), /*lower_case=*/true), ":",
             device.has_index() ? (int)device.index() : 0);
}

nlohmann::json runtime_json(const RuntimeInfo& r, const at::Device& device) {
  nlohmann::json j;
  j["device"] = device_name(device);
  j["libtorch"] = r.libtorch;
  j["cuda"] = r.cuda_built ? nlohmann::json(r.cuda_runtime) : nlohmann::json(nullptr);
  j["gpu"] = nullptr;
  if (device.is_cuda()) {
    int i = device.has_index() ? device.index() : 0;
    if (i < (int)r.gpus.size()) j["gpu"] = r.gpus[i].name;
  }
  return j;
}

at::Device parse_device(const std::string& text, const std::string& flag) {
  if (text == "cpu") return at::Device(at::kCPU);
  bool autodetect = text == "auto";
  std::string index;
  if (!autodetect) {
    if (text.rfind("cuda", 0) != 0 || (text.size() > 4 && text[4] != ':'))
      fail(flag, ": expected cpu, cuda, cuda:N or auto, got '", text, "'");
    index = text.size() > 5 ? text.substr(5) : "";
    if (text.size() == 5 || (!index.empty() && index.find_first_not_of("0123456789") != std::string::npos) ||
        index.size() > 4)
      fail(flag, ": expected cpu, cuda, cuda:N or auto, got '", text, "'");
  }
  RuntimeInfo r;
  r.libtorch = libtorch_version();
  r.cuda_built = cuda_built(&r.cuda_runtime);
  int n = r.cuda_built ? gpu_count() : 0;
  if (autodetect) return n > 0 ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  if (!r.cuda_built) fail(flag, " ", text, ": CUDA is not available in this build (", runtime_summary(r), ")");
  if (n == 0)
    fail(flag, " ", text, ": CUDA is not available on this machine (libtorch ", r.libtorch, ", CUDA ", r.cuda_runtime,
         ", no GPU usable)");
  int i = index.empty() ? 0 : std::atoi(index.c_str());
  if (i >= n) fail(flag, " ", text, ": cuda:", i, " does not exist (", n, n == 1 ? " GPU)" : " GPUs)");
  return at::Device(at::kCUDA, (c10::DeviceIndex)i);
}

void check_dtype_on(at::ScalarType dtype, const at::Device& device, const std::string& flag) {
  if (dtype == at::kHalf && device.is_cpu())
    fail(flag, " float16 has no CPU kernels in libtorch; use float32 or bfloat16 (or float16 with ", option("device"),
         " cuda)");
}

}  // namespace mechscope::models
