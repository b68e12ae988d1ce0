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
  void ints(const std::vector<int64_t>& v) {
    pod<uint64_t>(v.size());
    bytes_.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(int64_t));
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
  // `what` names the bytes in errors.
  explicit Reader(const std::string& bytes,
                  std::string what = "an item's result (a rank's message or a shard's items/K.bin)")
      : bytes_(bytes), what_(std::move(what)) {}
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
  std::vector<int64_t> ints() {
    uint64_t n = pod<uint64_t>();
    if (n > (bytes_.size() - at_) / sizeof(int64_t)) need(bytes_.size() + 1);
    std::vector<int64_t> v((size_t)n);
    std::memcpy(v.data(), bytes_.data() + at_, v.size() * sizeof(int64_t));
    at_ += v.size() * sizeof(int64_t);
    return v;
  }
  at::Tensor tensor() {
    if (!pod<int8_t>()) return {};
    int8_t code = pod<int8_t>();
    uint64_t dims = pod<uint64_t>();
    // Shard items are read back from files: a damaged one is refused before anything is allocated.
    if (code < 0 || code >= (int8_t)at::ScalarType::NumOptions || dims > 64) bad();
    auto type = (at::ScalarType)code;
    std::vector<int64_t> sizes((size_t)dims);
    uint64_t count = 1;
    for (auto& s : sizes) {
      s = pod<int64_t>();
      if (s < 0 || (s > 0 && count > (bytes_.size() - at_) / (uint64_t)s)) bad();
      count *= (uint64_t)s;
    }
    if (count > (bytes_.size() - at_) / at::elementSize(type)) bad();
    at::Tensor t = at::empty(sizes, at::TensorOptions().dtype(type));
    need(t.nbytes());
    std::memcpy(t.data_ptr(), bytes_.data() + at_, t.nbytes());
    at_ += t.nbytes();
    return t;
  }

 private:
  void need(size_t n) const {
    if (n > bytes_.size() - at_) bad();
  }
  [[noreturn]] void bad() const { fail(what_, " is damaged: shorter than its contents or not a result"); }
  const std::string& bytes_;
  std::string what_;
  size_t at_ = 0;
};

}  // namespace mechscope::cli::wire
