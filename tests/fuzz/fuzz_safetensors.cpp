// safetensors header and data: open (header validation), then read every tensor stored and converted.
#include <ATen/ATen.h>

#include "fuzz.h"
#include "io/safetensors.h"

using namespace mechscope;

MECHSCOPE_FUZZ_TARGET(safetensors) {
  std::string path = fuzz::scratch() + "/in.safetensors";
  fuzz::put(path, std::string_view(reinterpret_cast<const char*>(data), size));
  auto f = io::SafetensorsFile::open(path);
  for (const auto& [name, info] : f->tensors()) {
    at::Tensor t = f->get(name);
    FUZZ_CHECK(t.numel() * (int64_t)t.element_size() == (int64_t)(info.end - info.begin), "safetensors",
               "tensor size differs from its byte range: " + name);
    at::Tensor c = f->get(name, at::kFloat);
    (void)c.sum().item<double>();
  }
}
