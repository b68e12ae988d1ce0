// Results of one item as bytes, for the ranks of an MPI job to send to rank 0 (cli/distribute.h):
// numbers, strings and tensors, copied exactly (a tensor's dtype, shape and bytes), so rank 0
// computes with the very values the other rank computed.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"

namespace mechscope::cli::wire {

class Writer {
 public:
  template <class T>
  void pod(const T& v) {
    bytes_.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void str(const std::string& s) {
    pod<uint64_t>(s.size());
    bytes_ += s;
  }
  // An undefined tensor is written as such.
  void tensor(const at::Tensor& t) {
    pod<int8_t>(t.defined());
    if (!t.defined()) return;
    at::Tensor c = t.contiguous().cpu();
    pod<int8_t>((int8_t)c.scalar_type());
    pod<uint64_t>(c.dim());
    for (int64_t s : c.sizes()) pod<int64_t>(s);
    bytes_.append(static_cast<const char*>(c.data_ptr()), c.nbytes());
  }
  std::string take() { return std::move(bytes_); }

 private:
  std::string bytes_;
};

class Reader {
 public:
  explicit Reader(const std::string& bytes) : bytes_(bytes) {}
  template <class T>
  T pod() {
    T v;
    need(sizeof v);
    std::memcpy(&v, bytes_.data() + at_, sizeof v);
    at_ += sizeof v;
    return v;
  }
  std::string str() {
    size_t n = (size_t)pod<uint64_t>();
    need(n);
    std::string s = bytes_.substr(at_, n);
    at_ += n;
    return s;
  }
  at::Tensor tensor() {
    if (!pod<int8_t>()) return {};
    auto type = (at::ScalarType)pod<int8_t>();
    std::vector<int64_t> sizes((size_t)pod<uint64_t>());
    for (auto& s : sizes) s = pod<int64_t>();
    at::Tensor t = at::empty(sizes, at::TensorOptions().dtype(type));
    need(t.nbytes());
    std::memcpy(t.data_ptr(), bytes_.data() + at_, t.nbytes());
    at_ += t.nbytes();
    return t;
  }

 private:
  void need(size_t n) const {
    if (at_ + n > bytes_.size()) fail("internal: a rank's result message is shorter than its contents");
  }
  const std::string& bytes_;
  size_t at_ = 0;
};

}  // namespace mechscope::cli::wire
