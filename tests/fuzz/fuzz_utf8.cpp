// UTF-8 validation and decoding: valid input round-trips exactly; where find_invalid flags a byte,
// the prefix before it is valid and decode gives U+FFFD there.
#include "fuzz.h"
#include "core/error.h"
#include "core/utf8.h"

#include <algorithm>

using namespace mechscope;

MECHSCOPE_FUZZ_TARGET(utf8) {
  std::string_view s(reinterpret_cast<const char*>(data), size);
  size_t bad = utf8::find_invalid(s);
  if (bad == std::string_view::npos) {
    auto cps = utf8::decode(s);
    FUZZ_CHECK(utf8::encode(cps) == s, "utf8", "valid text does not round-trip");
    for (char32_t c : cps)
      FUZZ_CHECK(c <= 0x10FFFF && (c < 0xD800 || c > 0xDFFF), "utf8", "decoded a non-scalar value");
  } else {
    FUZZ_CHECK(bad < size, "utf8", "invalid offset past the end");
    FUZZ_CHECK(utf8::find_invalid(s.substr(0, bad)) == std::string_view::npos, "utf8",
               "prefix before the error is not valid");
    // Documented: invalid bytes decode as U+FFFD (one per byte not in a valid sequence).
    auto cps = utf8::decode(s);
    auto head = utf8::decode(s.substr(0, bad));
    FUZZ_CHECK(
        cps.size() > head.size() && std::equal(head.begin(), head.end(), cps.begin()) && cps[head.size()] == 0xFFFD,
        "utf8", "the valid prefix does not decode the same, or the invalid byte is not U+FFFD");
  }
}
