// Fuzz targets for every parser that reads a user's file (issue 17, point 7). One source file per
// target, written once and built two ways:
//  - with -DMECHSCOPE_FUZZ=ON (clang, libFuzzer + ASan/UBSan): one `fuzz_<name>` executable per target,
//    run open-ended by `make fuzz`;
//  - in the normal build: all targets linked into `test_fuzz_replay`, which ctest runs on the checked-in
//    corpora and the regression inputs (tests/fuzz/{corpus,regressions}/<name>/), in seconds.
//
// The contract a target checks: bad input ends in a mechscope::Error (the CLI's one line and exit 2).
// Any other exception escaping the parser (a libtorch c10::Error, nlohmann's, std::bad_alloc, ...) is
// a finding and aborts, as does a sanitizer report or a failed property check (FUZZ_CHECK).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mechscope::fuzz {

using Body = void (*)(const uint8_t* data, size_t size);

// Runs `body` on one input: mechscope::Error is the expected end of bad input; anything else aborts
// with a message naming the target and the exception.
void run_one(const char* target, Body body, const uint8_t* data, size_t size);

int register_target(const char* name, Body body);
struct Registered {
  const char* name;
  Body body;
};
const std::vector<Registered>& targets();

// A scratch folder for this process (under $TMPDIR or /tmp), removed at exit.
const std::string& scratch();
// Writes bytes to `path` (plain write: the fuzzer's own temporaries).
void put(const std::string& path, std::string_view bytes);
// The repository root (tests/fixtures live there).
std::string source_dir();
// Splits an input at the first "\0\0" into a file part and a text part (text empty when absent), so
// one input can carry a tokenizer file and the text to encode with it.
std::pair<std::string_view, std::string_view> split2(const uint8_t* data, size_t size);

[[noreturn]] void finding(const char* target, const std::string& what);

}  // namespace mechscope::fuzz

#define FUZZ_CHECK(cond, target, msg)                                                       \
  do {                                                                                      \
    if (!(cond)) ::mechscope::fuzz::finding(target, std::string("check failed: ") + (msg)); \
  } while (0)

#ifdef MECHSCOPE_LIBFUZZER
#define MECHSCOPE_FUZZ_TARGET(name)                                         \
  static void fuzz_body_##name(const uint8_t* data, size_t size);           \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { \
    ::mechscope::fuzz::run_one(#name, fuzz_body_##name, data, size);        \
    return 0;                                                               \
  }                                                                         \
  static void fuzz_body_##name(const uint8_t* data, size_t size)
#else
#define MECHSCOPE_FUZZ_TARGET(name)                                                                                \
  static void fuzz_body_##name(const uint8_t* data, size_t size);                                                  \
  [[maybe_unused]] static const int fuzz_reg_##name = ::mechscope::fuzz::register_target(#name, fuzz_body_##name); \
  static void fuzz_body_##name(const uint8_t* data, size_t size)
#endif
