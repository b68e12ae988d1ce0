// The zip layout (PKWARE APPNOTE 6.3): numpy's savez writes each array as "<name>.npy" through
// zipfile with force_zip64, so sizes may sit in the zip64 extra field; the central directory is the
// authoritative index (local headers may carry zero sizes plus a data descriptor).
#include "sae/npz.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "core/error.h"
#include "core/fs.h"

namespace mechscope::sae {

namespace {

uint64_t le(const std::string& b, uint64_t off, int n, const std::string& what) {
  if (off + n > b.size()) fail(what, ": truncated (a record runs past the end of the file)");
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[off + i]);
  return v;
}

struct Entry {
  std::string name;
  uint16_t flags = 0, method = 0;
  uint32_t crc = 0;
  uint64_t comp = 0, size = 0, local = 0;
};

std::vector<Entry> central_directory(const std::string& b, const std::string& path) {
  if (b.size() < 22) fail("'", path, "' is not an npz file (too short to be a zip archive)");
  // The end-of-central-directory record sits in the last 22 + 65535 (comment) bytes.
  int64_t eocd = -1;
  int64_t lo = std::max<int64_t>(0, static_cast<int64_t>(b.size()) - 22 - 65535);
  for (int64_t i = static_cast<int64_t>(b.size()) - 22; i >= lo; --i)
    if (le(b, i, 4, path) == 0x06054b50) {
      eocd = i;
      break;
    }
  if (eocd < 0) fail("'", path, "' is not an npz file (no zip end-of-central-directory record)");
  uint64_t n = le(b, eocd + 10, 2, path), cd_off = le(b, eocd + 16, 4, path);
  if (n == 0xFFFF || cd_off == 0xFFFFFFFFu) {
    if (eocd < 20 || le(b, eocd - 20, 4, path) != 0x07064b50)
      fail("'", path, "': zip64 archive without its zip64 end-of-central-directory locator");
    uint64_t z = le(b, eocd - 20 + 8, 8, path);
    if (le(b, z, 4, path) != 0x06064b50) fail("'", path, "': corrupt zip64 end-of-central-directory record");
    n = le(b, z + 32, 8, path);
    cd_off = le(b, z + 48, 8, path);
  }
  std::vector<Entry> out;
  uint64_t p = cd_off;
  for (uint64_t i = 0; i < n; ++i) {
    if (le(b, p, 4, path) != 0x02014b50) fail("'", path, "': corrupt zip central directory (entry ", i, ")");
    Entry e;
    e.flags = le(b, p + 8, 2, path);
    e.method = le(b, p + 10, 2, path);
    e.crc = le(b, p + 16, 4, path);
    e.comp = le(b, p + 20, 4, path);
    e.size = le(b, p + 24, 4, path);
    uint64_t nlen = le(b, p + 28, 2, path), xlen = le(b, p + 30, 2, path), clen = le(b, p + 32, 2, path);
    e.local = le(b, p + 42, 4, path);
    if (p + 46 + nlen > b.size()) fail("'", path, "': truncated zip central directory");
    e.name = b.substr(p + 46, nlen);
    // zip64 extra field: only the values saturated in the fixed record are present, in this order.
    uint64_t x = p + 46 + nlen, xend = x + xlen;
    while (x + 4 <= xend) {
      uint64_t id = le(b, x, 2, path), sz = le(b, x + 2, 2, path), q = x + 4;
      if (id == 0x0001) {
        if (e.size == 0xFFFFFFFFu) e.size = le(b, q, 8, path), q += 8;
        if (e.comp == 0xFFFFFFFFu) e.comp = le(b, q, 8, path), q += 8;
        if (e.local == 0xFFFFFFFFu) e.local = le(b, q, 8, path), q += 8;
      }
      x += 4 + sz;
    }
    out.push_back(e);
    p = xend + clen;
  }
  return out;
}

std::string entry_bytes(const std::string& b, const Entry& e, const std::string& what) {
  if (e.flags & 1) fail(what, ": encrypted zip entries are not supported");
  if (le(b, e.local, 4, what) != 0x04034b50) fail(what, ": corrupt zip local header");
  uint64_t start = e.local + 30 + le(b, e.local + 26, 2, what) + le(b, e.local + 28, 2, what);
  if (start + e.comp > b.size()) fail(what, ": truncated (entry data runs past the end of the file)");
  std::string out;
  if (e.method == 0) {
    if (e.comp != e.size) fail(what, ": stored entry whose sizes differ (", e.comp, " vs ", e.size, ")");
    out = b.substr(start, e.size);
  } else if (e.method == 8) {
    // Deflate cannot expand beyond ~1032:1; a larger claimed size is corruption, not data.
    if (e.size > e.comp * 1100 + 4096) fail(what, ": corrupt sizes (", e.size, " bytes from ", e.comp, " compressed)");
    out.resize(e.size);
    z_stream zs{};
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) fail(what, ": zlib inflateInit failed");
    uint64_t in_done = 0, out_done = 0;
    int rc = Z_OK;
    while (rc == Z_OK) {
      uInt in_chunk = static_cast<uInt>(std::min<uint64_t>(e.comp - in_done, 1u << 30));
      uInt out_chunk = static_cast<uInt>(std::min<uint64_t>(e.size - out_done, 1u << 30));
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(b.data() + start + in_done));
      zs.avail_in = in_chunk;
      zs.next_out = reinterpret_cast<Bytef*>(&out[0] + out_done);
      zs.avail_out = out_chunk;
      rc = inflate(&zs, Z_NO_FLUSH);
      in_done += in_chunk - zs.avail_in;
      out_done += out_chunk - zs.avail_out;
      if (rc == Z_OK && zs.avail_in == in_chunk && zs.avail_out == out_chunk) rc = Z_DATA_ERROR;  // no progress
      if (rc == Z_BUF_ERROR && out_done == e.size) rc = Z_DATA_ERROR;
    }
    inflateEnd(&zs);
    if (rc != Z_STREAM_END || out_done != e.size) fail(what, ": corrupt deflate data");
  } else {
    fail(what, ": zip compression method ", e.method, " is not supported (numpy writes 0 = stored or 8 = deflate)");
  }
  uint64_t crc = 0;
  for (uint64_t off = 0; off < out.size(); off += 1u << 30)
    crc = crc32(crc, reinterpret_cast<const Bytef*>(out.data() + off),
                static_cast<uInt>(std::min<uint64_t>(out.size() - off, 1u << 30)));
  if (crc != e.crc) fail(what, ": CRC-32 mismatch (the file is corrupt)");
  return out;
}

// Value of `key` in the npy header's Python dict literal, as raw text up to the matching delimiter.
std::string dict_value(const std::string& h, const std::string& key, const std::string& what) {
  size_t k = h.find("'" + key + "'");
  if (k == std::string::npos) fail(what, ": npy header has no '", key, "' (header: ", h, ")");
  size_t c = h.find(':', k);
  if (c == std::string::npos) fail(what, ": malformed npy header: ", h);
  size_t s = c + 1;
  while (s < h.size() && std::isspace(static_cast<unsigned char>(h[s]))) ++s;
  if (s >= h.size()) fail(what, ": malformed npy header: ", h);
  char open = h[s];
  char close = open == '(' ? ')' : open == '[' ? ']' : open == '\'' ? '\'' : open == '"' ? '"' : ',';
  size_t e = h.find(close, s + 1);
  if (close == ',') {
    size_t brace = h.find('}', s);
    e = std::min(e, brace);
    return h.substr(s, e - s);
  }
  if (e == std::string::npos) fail(what, ": malformed npy header: ", h);
  return h.substr(s, e - s + 1);
}

}  // namespace

at::Tensor parse_npy(const std::string& b, const std::string& what) {
  if (b.size() < 10 || b.compare(0, 6, "\x93NUMPY") != 0) fail(what, ": not an npy array (bad magic)");
  int major = static_cast<unsigned char>(b[6]);
  uint64_t hlen, hstart;
  if (major == 1) hlen = le(b, 8, 2, what), hstart = 10;
  else if (major == 2 || major == 3) hlen = le(b, 8, 4, what), hstart = 12;
  else fail(what, ": npy format version ", major, " is not supported (1, 2 and 3 are)");
  if (hstart + hlen > b.size()) fail(what, ": truncated npy header");
  std::string h = b.substr(hstart, hlen);

  std::string descr = dict_value(h, "descr", what);
  if (descr.empty() || descr[0] == '[')
    fail(what, ": structured dtype ", descr, " is not supported (plain numeric arrays only)");
  if (descr.size() < 3 || descr.front() != '\'' || descr.back() != '\'') fail(what, ": malformed npy descr ", descr);
  std::string d = descr.substr(1, descr.size() - 2);
  char order = d[0];
  std::string kind = (order == '<' || order == '>' || order == '|' || order == '=') ? d.substr(1) : d;
  if (kind == "O")
    fail(what,
         ": object array (dtype 'O'): refused, because reading it means unpickling, which can run arbitrary "
         "code; re-save it as a numeric array");
  at::ScalarType st;
  if (kind == "f2") st = at::kHalf;
  else if (kind == "f4") st = at::kFloat;
  else if (kind == "f8") st = at::kDouble;
  else if (kind == "i1") st = at::kChar;
  else if (kind == "i2") st = at::kShort;
  else if (kind == "i4") st = at::kInt;
  else if (kind == "i8") st = at::kLong;
  else if (kind == "u1") st = at::kByte;
  else if (kind == "b1") st = at::kBool;
  else fail(what, ": dtype '", d, "' is not supported (f2, f4, f8, i1, i2, i4, i8, u1, b1 are)");
  bool fortran = dict_value(h, "fortran_order", what).find("True") != std::string::npos;

  std::string shape_s = dict_value(h, "shape", what);
  std::vector<int64_t> shape;
  int64_t numel = 1;
  for (size_t i = 1; i + 1 < shape_s.size();) {
    while (i + 1 < shape_s.size() && !std::isdigit(static_cast<unsigned char>(shape_s[i]))) {
      if (shape_s[i] == '-') fail(what, ": negative dimension in shape ", shape_s);
      ++i;
    }
    if (i + 1 >= shape_s.size()) break;
    int64_t v = 0;
    while (i < shape_s.size() && std::isdigit(static_cast<unsigned char>(shape_s[i]))) {
      v = v * 10 + (shape_s[i] - '0');
      if (v > (int64_t{1} << 48)) fail(what, ": implausible dimension in shape ", shape_s);
      ++i;
    }
    shape.push_back(v);
    // Checked before multiplying: two plausible dimensions can overflow int64 together.
    if (v != 0 && numel > (int64_t{1} << 48) / v) fail(what, ": implausible shape ", shape_s);
    numel *= v;
  }
  size_t item = c10::elementSize(st);
  uint64_t data_start = hstart + hlen;
  if (b.size() - data_start != static_cast<uint64_t>(numel) * item)
    fail(what, ": data is ", b.size() - data_start, " bytes but shape ", shape_s, " of '", d, "' needs ",
         static_cast<uint64_t>(numel) * item);

  std::vector<int64_t> stored = shape;
  if (fortran) std::reverse(stored.begin(), stored.end());
  at::Tensor t = at::empty(stored, at::TensorOptions().dtype(st));
  if (numel) std::memcpy(t.data_ptr(), b.data() + data_start, numel * item);
  if (order == '>' && item > 1) {
    auto* p = static_cast<unsigned char*>(t.data_ptr());
    for (int64_t i = 0; i < numel; ++i) std::reverse(p + i * item, p + (i + 1) * item);
  }
  if (fortran && shape.size() > 1) {
    std::vector<int64_t> perm(shape.size());
    for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int64_t>(perm.size() - 1 - i);
    t = t.permute(perm).contiguous();
  }
  return t;
}

std::map<std::string, at::Tensor> read_npz(const std::string& path) {
  std::string b = read_file(path);
  std::map<std::string, at::Tensor> out;
  for (const Entry& e : central_directory(b, path)) {
    std::string what = path + ": " + e.name;
    std::string name = e.name;
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".npy") == 0) name.resize(name.size() - 4);
    else fail(what, ": npz entry is not an .npy array");
    out[name] = parse_npy(entry_bytes(b, e, what), what);
  }
  return out;
}

}  // namespace mechscope::sae
