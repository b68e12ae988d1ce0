#include "fuzz.h"

#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <new>
#include <stdexcept>
#include <typeinfo>

#include "core/error.h"
#include "core/source_dir.h"  // MECHSCOPE_SOURCE_DIR

namespace mechscope::fuzz {

[[noreturn]] void finding(const char* target, const std::string& what) {
  std::fprintf(stderr, "\nFUZZ FINDING in %s: %s\n", target, what.c_str());
  std::fflush(stderr);
  std::abort();
}

void run_one(const char* target, Body body, const uint8_t* data, size_t size) {
  try {
    body(data, size);
  } catch (const mechscope::Error&) {
    // the documented end of bad input
  } catch (const c10::Error& e) {
    finding(target, std::string("libtorch error escaped: ") + e.what_without_backtrace());
  } catch (const nlohmann::json::exception& e) {
    finding(target, std::string("nlohmann::json exception escaped: ") + e.what());
  } catch (const std::bad_alloc&) {
    finding(target, "std::bad_alloc escaped (an unbounded allocation)");
  } catch (const std::exception& e) {
    finding(target, std::string(typeid(e).name()) + " escaped: " + e.what());
  } catch (...) {
    finding(target, "a non-standard exception escaped");
  }
}

static std::vector<Registered>& table() {
  static std::vector<Registered> t;
  return t;
}

int register_target(const char* name, Body body) {
  table().push_back({name, body});
  return 0;
}

const std::vector<Registered>& targets() { return table(); }

namespace {
struct Scratch {
  std::string dir;
  Scratch() {
    const char* t = std::getenv("TMPDIR");
    std::string base = t && *t ? t : "/tmp";
    dir = base + "/mechscope-fuzz-" + std::to_string(::getpid());
    std::filesystem::create_directories(dir);
  }
  ~Scratch() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};
}  // namespace

const std::string& scratch() {
  static Scratch s;
  return s.dir;
}

void put(const std::string& path, std::string_view bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), (std::streamsize)bytes.size());
  if (!f) finding("fuzz", "cannot write the scratch file " + path);
}

std::string source_dir() { return MECHSCOPE_SOURCE_DIR; }

std::pair<std::string_view, std::string_view> split2(const uint8_t* data, size_t size) {
  std::string_view all(reinterpret_cast<const char*>(data), size);
  size_t cut = all.find(std::string_view("\0\0", 2));
  if (cut == std::string_view::npos) return {all, {}};
  return {all.substr(0, cut), all.substr(cut + 2)};
}

}  // namespace mechscope::fuzz
