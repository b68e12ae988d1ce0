// The one JSON reader every file goes through (core/json): parse, and read from a file.
#include "fuzz.h"
#include "core/json.h"

using namespace mechscope;

MECHSCOPE_FUZZ_TARGET(json) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto j = parse_json(text, "fuzz.json");
  std::string path = fuzz::scratch() + "/in.json";
  fuzz::put(path, text);
  auto k = read_json_file(path);
  FUZZ_CHECK(j == k, "json", "file and string parses differ");
}
