#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/json.h"
#include "core/fs.h"

namespace mechscope::io {

// The format stores every integer little-endian; we reinterpret them in place.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes a little-endian host");

namespace {

struct DtypeEntry {
  const char* name;
  at::ScalarType type;
  size_t size;
};

// Formats the safetensors spec has and libtorch 1.13 lacks (U16/U32/U64, F8_*) are refused as unknown.
const DtypeEntry kDtypes[] = {
    {"F64", at::kDouble, 8}, {"F32", at::kFloat, 4}, {"F16", at::kHalf, 2},  {"BF16", at::kBFloat16, 2},
    {"I64", at::kLong, 8},   {"I32", at::kInt, 4},   {"I16", at::kShort, 2}, {"I8", at::kChar, 1},
    {"U8", at::kByte, 1},    {"BOOL", at::kBool, 1},
};

const DtypeEntry* dtype_by_name(const std::string& name) {
  for (auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

const DtypeEntry* dtype_by_type(at::ScalarType t) {
  for (auto& d : kDtypes)
    if (t == d.type) return &d;
  return nullptr;
}

std::string dtype_list() {
  std::string s;
  for (auto& d : kDtypes) s += std::string(s.empty() ? "" : ", ") + d.name;
  return s;
}

// The reference implementation refuses larger headers; so do we, before parsing (a hostile length
// would otherwise make the JSON parser build a huge object).
constexpr uint64_t kMaxHeader = 100'000'000;

std::string offsets_str(const TensorInfo& t) { return cat("[", t.begin, ", ", t.end, "]"); }

// Validates one header entry; `where` is "'path': tensor 'name'" for messages.
TensorInfo parse_entry(const std::string& where, const nlohmann::json& e, uint64_t data_size) {
  if (!e.is_object()) fail(where, ": header entry is not a JSON object");
  TensorInfo t;
  auto dt = e.find("dtype");
  if (dt == e.end() || !dt->is_string()) fail(where, ": missing \"dtype\" string");
  t.dtype = dt->get<std::string>();
  const DtypeEntry* d = dtype_by_name(t.dtype);
  if (!d) fail(where, ": unknown or unsupported dtype '", t.dtype, "' (expected one of ", dtype_list(), ")");

  auto sh = e.find("shape");
  if (sh == e.end() || !sh->is_array()) fail(where, ": missing \"shape\" array");
  // numel * size in 128 bits, capped at 2^64 (more than any range): a header claiming
  // [2^40, 2^40] must not wrap around to a small size that matches its data_offsets.
  const unsigned __int128 cap = (unsigned __int128)1 << 64;
  unsigned __int128 bytes = d->size;
  for (auto& v : *sh) {
    if (!v.is_number_unsigned()) fail(where, ": shape ", sh->dump(), " must hold non-negative integers");
    uint64_t n = v.get<uint64_t>();
    if (n > uint64_t(std::numeric_limits<int64_t>::max())) fail(where, ": shape ", sh->dump(), " is too large");
    t.shape.push_back(int64_t(n));
    bytes = std::min(bytes * n, cap);
  }

  auto off = e.find("data_offsets");
  if (off == e.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
      !(*off)[1].is_number_unsigned())
    fail(where, ": \"data_offsets\" must be [begin, end] with non-negative integers");
  t.begin = (*off)[0].get<uint64_t>();
  t.end = (*off)[1].get<uint64_t>();
  if (t.begin > t.end) fail(where, ": data_offsets ", offsets_str(t), " have begin > end");
  if (bytes != t.end - t.begin)
    fail(where, ": shape ", sh->dump(), " of ", t.dtype, " needs ",
         bytes == cap ? std::string("over 2^64") : std::to_string(uint64_t(bytes)), " bytes but data_offsets ",
         offsets_str(t), " hold ", t.end - t.begin);
  if (t.end > data_size)
    fail(where, ": data_offsets ", offsets_str(t), " lie outside the data section (", data_size,
         " bytes; truncated file?)");
  return t;
}

}  // namespace

struct SafetensorsFile::Mapping {
  void* addr = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (addr) ::munmap(addr, size);
  }
};

SafetensorsFile::~SafetensorsFile() = default;

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) fail("cannot open '", path, "': ", std::strerror(errno));
  if (S_ISDIR(st.st_mode)) fail("'", path, "' is a directory, expected a .safetensors file");
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open '", path, "': ", std::strerror(errno));
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    fail("cannot stat '", path, "': ", std::strerror(err));
  }
  uint64_t size = uint64_t(st.st_size);
  if (size < 8) {
    ::close(fd);
    fail("'", path, "' is not a safetensors file: ", size == 0 ? "it is empty" : cat("only ", size, " bytes"),
         " (expected an 8-byte header length, a JSON header, then the data)");
  }
  auto map = std::make_shared<Mapping>();
  // Read-only and private: weights are shared with the page cache, and nothing can change the file.
  void* addr = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int err = errno;
  ::close(fd);  // the mapping keeps the file open on its own
  if (addr == MAP_FAILED) fail("cannot map '", path, "': ", std::strerror(err));
  map->addr = addr;
  map->size = size;

  auto f = std::shared_ptr<SafetensorsFile>(new SafetensorsFile());
  f->path_ = path;
  f->map_ = map;
  const uint8_t* base = static_cast<const uint8_t*>(addr);

  uint64_t header_len;
  std::memcpy(&header_len, base, 8);
  if (header_len > size - 8)
    fail("'", path, "': header length ", header_len, " runs past the end of the file (", size,
         " bytes; truncated or not a safetensors file?)");
  if (header_len > kMaxHeader) fail("'", path, "': header length ", header_len, " exceeds the 100 MB limit");
  f->data_ = base + 8 + header_len;
  uint64_t data_size = size - 8 - header_len;

  nlohmann::json header =
      parse_json(reinterpret_cast<const char*>(base) + 8, reinterpret_cast<const char*>(base) + 8 + header_len,
                 "the header of '" + path + "'");
  if (!header.is_object()) fail("'", path, "': header is not a JSON object");

  std::vector<std::pair<std::string, const TensorInfo*>> by_begin;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) fail("'", path, "': __metadata__ must be a JSON object of strings");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) fail("'", path, "': __metadata__ entry '", m.key(), "' is not a string");
        f->metadata_[m.key()] = m->get<std::string>();
      }
      continue;
    }
    std::string where = cat("'", path, "': tensor '", it.key(), "'");
    f->tensors_[it.key()] = parse_entry(where, *it, data_size);
  }
  for (auto& [name, info] : f->tensors_) by_begin.emplace_back(name, &info);
  std::sort(by_begin.begin(), by_begin.end(), [](auto& a, auto& b) {
    return a.second->begin != b.second->begin ? a.second->begin < b.second->begin : a.second->end < b.second->end;
  });
  // Empty tensors occupy no bytes, so they may sit anywhere; only non-empty ranges can collide.
  const std::pair<std::string, const TensorInfo*>* prev = nullptr;
  for (auto& cur : by_begin) {
    if (cur.second->begin == cur.second->end) continue;
    if (prev && cur.second->begin < prev->second->end)
      fail("'", path, "': tensors '", prev->first, "' ", offsets_str(*prev->second), " and '", cur.first, "' ",
           offsets_str(*cur.second), " have overlapping data_offsets");
    prev = &cur;
  }
  return f;
}

at::Tensor SafetensorsFile::get(const std::string& name, std::optional<at::ScalarType> want) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) fail("'", path_, "': no tensor '", name, "' (the file has ", tensors_.size(), " tensors)");
  const TensorInfo& info = it->second;
  const DtypeEntry* d = dtype_by_name(info.dtype);  // validated at open
  const uint8_t* ptr = data_ + info.begin;
  at::Tensor t;
  if (info.begin == info.end) {
    t = at::empty(info.shape, at::TensorOptions().dtype(d->type));
  } else if (reinterpret_cast<uintptr_t>(ptr) % d->size == 0) {
    auto keep = map_;  // the tensor owns a reference to the mapping, so it may outlive this object
    t = at::from_blob(
        const_cast<uint8_t*>(ptr), info.shape, [keep](void*) {}, at::TensorOptions().dtype(d->type));
  } else {
    t = at::empty(info.shape, at::TensorOptions().dtype(d->type));
    std::memcpy(t.data_ptr(), ptr, info.end - info.begin);
  }
  if (want && *want != d->type) t = t.to(*want);
  return t;
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  struct Item {
    std::string name;
    at::Tensor t;  // contiguous, on the CPU
    const DtypeEntry* d;
  };
  std::vector<Item> items;
  std::set<std::string> seen;
  for (auto& [name, t] : tensors) {
    if (name == "__metadata__") fail("cannot write '", path, "': '__metadata__' is reserved, not a tensor name");
    if (!seen.insert(name).second) fail("cannot write '", path, "': tensor name '", name, "' appears twice");
    if (!t.defined()) fail("cannot write '", path, "': tensor '", name, "' is undefined");
    const DtypeEntry* d = dtype_by_type(t.scalar_type());
    if (!d)
      fail("cannot write '", path, "': tensor '", name, "' has dtype ", t.scalar_type(),
           ", which safetensors I/O does not support (", dtype_list(), ")");
    items.push_back({name, t.cpu().contiguous(), d});
  }
  // Widest elements first (then by name), as the reference writer does: with the data section starting
  // at a multiple of 8, every tensor then starts aligned to its element size, so reads are zero-copy.
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    return a.d->size != b.d->size ? a.d->size > b.d->size : a.name < b.name;
  });

  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (auto& it : items) {
    uint64_t bytes = uint64_t(it.t.numel()) * it.d->size;
    header[it.name] = {
        {"dtype", it.d->name}, {"shape", it.t.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');
  uint64_t len = h.size();

  write_file_atomic(path, [&](std::FILE* f) {
    std::fwrite(&len, 1, 8, f);
    std::fwrite(h.data(), 1, h.size(), f);
    for (auto& it : items)  // an empty tensor has no data pointer (fwrite's is declared nonnull)
      if (it.t.numel() > 0) std::fwrite(it.t.data_ptr(), 1, size_t(it.t.numel()) * it.d->size, f);
  });
}

}  // namespace mechscope::io
