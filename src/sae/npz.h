// NumPy .npy / .npz readers (Gemma Scope ships its SAEs as params.npz). The zip container and the npy
// header are parsed here rather than through numpy's loader, which would unpickle object arrays
// (running arbitrary code): those are refused.
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <string>

namespace mechscope::sae {

// The arrays of an .npz written by numpy.savez (stored entries) or savez_compressed (deflate),
// zip64 included, keyed by name without the ".npy" suffix. CRC-32 of every entry checked. Error naming
// the file and the entry for: not a zip, truncated, encryption, a compression other than stored or
// deflate, object or structured dtypes, a malformed npy header.
std::map<std::string, at::Tensor> read_npz(const std::string& path);

// One .npy held in memory; `what` names it in errors ("params.npz: W_enc.npy").
at::Tensor parse_npy(const std::string& bytes, const std::string& what);

}  // namespace mechscope::sae
