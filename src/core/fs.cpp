#include "core/fs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "core/fs_guard.h"

namespace mechscope {

std::string read_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail("cannot read '", path, "': ", std::strerror(errno));
  std::string out;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  bool bad = std::ferror(f);
  std::fclose(f);
  if (bad) fail("error while reading '", path, "'");
  return out;
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool dir_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

void make_dirs(const std::string& path) {
  if (path.empty() || dir_exists(path)) return;
  auto slash = path.find_last_of('/');
  if (slash != std::string::npos && slash > 0) make_dirs(path.substr(0, slash));
  if (::mkdir(path.c_str(), 0777) != 0 && errno != EEXIST)
    fail("cannot create directory '", path, "': ", std::strerror(errno));
}

std::string join_path(const std::string& a, const std::string& b) {
  if (a.empty() || (!b.empty() && b[0] == '/')) return b;
  return a.back() == '/' ? a + b : a + "/" + b;
}

void write_file_atomic(const std::string& path, const std::function<void(std::FILE*)>& write) {
  // Renaming onto a device node, a FIFO or a folder would replace it (as root, /dev/full became a
  // regular file): refuse before writing anything.
  std::string special = special_file_kind(path);
  if (!special.empty())
    fail("cannot write '", path, "': it is ", special, ", not a regular file; refusing to replace it");
  if (dir_exists(path)) fail("cannot write '", path, "': a folder stands there; move it away or choose another output");
  std::string tmp = temp_name(path);
  std::FILE* f = nullptr;
  // Created and registered in one step, so an interrupt removes it even mid-write.
  with_temps_locked([&] {
    f = std::fopen(tmp.c_str(), "wb");
    if (f) register_temp(tmp, TempKind::File);
  });
  if (!f) fail("cannot write '", path, "': ", std::strerror(errno));
  auto discard = [&] {
    with_temps_locked([&] {
      std::remove(tmp.c_str());
      forget_temp(tmp);
    });
  };
  try {
    write(f);
  } catch (...) {
    std::fclose(f);
    discard();
    throw;
  }
  bool bad = std::ferror(f) != 0;
  bad |= std::fflush(f) != 0;
  int err = errno;
  bad |= std::fclose(f) != 0;
  if (bad) {
    discard();
    fail("error while writing '", path, "': ",
         err == EFBIG ? "file size limit reached"
         : err        ? std::strerror(err)
                      : "write failed",
         err == ENOSPC || err == EFBIG ? "" : " (disk full?)");
  }
  bool renamed = false;
  with_temps_locked([&] {
    renamed = std::rename(tmp.c_str(), path.c_str()) == 0;
    err = errno;
    if (!renamed) std::remove(tmp.c_str());
    forget_temp(tmp);
  });
  if (!renamed) fail("cannot rename '", tmp, "' to '", path, "': ", std::strerror(err));
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  write_file_atomic(path, [&](std::FILE* f) { std::fwrite(bytes.data(), 1, bytes.size(), f); });
}

}  // namespace mechscope
