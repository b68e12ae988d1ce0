// safetensors files (https://github.com/huggingface/safetensors): memory-mapped, header validated
// before any data is touched, tensors handed out zero-copy when the stored dtype is the one asked for.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mechscope::io {

struct TensorInfo {
  std::string dtype;  // as in the header: "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range inside the data section (header's data_offsets)
};

class SafetensorsFile {
 public:
  // Maps `path` and validates the header: 8-byte length within the file, JSON object, known dtypes,
  // shape product × dtype size == byte range, ranges inside the data section and not overlapping.
  // Error naming the file and the offending tensor otherwise.
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool has(const std::string& name) const { return tensors_.count(name) > 0; }

  // The tensor `name`. With `want` unset or equal to the stored type: a zero-copy view of the mapping
  // (keeps the file mapped while alive; read-only memory: do not write into it). Otherwise a
  // converted copy. The format does not align tensor starts, so a tensor whose start is not a
  // multiple of its element size is copied too (a misaligned float* is undefined behaviour).
  // Error naming the tensor when missing.
  at::Tensor get(const std::string& name, std::optional<at::ScalarType> want = std::nullopt) const;

 private:
  struct Mapping;  // the mmap; shared with every zero-copy tensor so it outlives this object if need be
  SafetensorsFile() = default;
  std::string path_;
  std::shared_ptr<const Mapping> map_;
  const uint8_t* data_ = nullptr;  // start of the data section, inside map_
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Writes tensors (any dtype of the list above, contiguous or not) to `path` atomically
// (temporary name + rename). Names must be unique.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace mechscope::io
