// Gemma Scope's params.npz: the .npy reader on raw bytes (first byte even), or the zip container
// (first byte odd). Object arrays are refused; nothing is unpickled.
#include <ATen/ATen.h>

#include "fuzz.h"
#include "sae/npz.h"

using namespace mechscope;

MECHSCOPE_FUZZ_TARGET(npy) {
  if (size < 1) return;
  std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1) {
    std::string path = fuzz::scratch() + "/params.npz";
    fuzz::put(path, rest);
    for (auto& [name, t] : sae::read_npz(path)) (void)t.to(at::kDouble).sum().item<double>();
  } else {
    at::Tensor t = sae::parse_npy(rest, "fuzz.npy");
    (void)t.to(at::kDouble).sum().item<double>();
  }
}
