#include "core/json.h"

#include "core/error.h"
#include "core/fs.h"

namespace mechscope {

namespace {
// nlohmann's what() reads "[json.exception.parse_error.101] parse error at line 1, column 5: ...":
// keep what follows the bracketed id, which says where and why.
std::string reason(const nlohmann::json::exception& e) {
  std::string s = e.what();
  if (!s.empty() && s[0] == '[') {
    auto close = s.find("] ");
    if (close != std::string::npos) s = s.substr(close + 2);
  }
  return s;
}
}  // namespace

nlohmann::json parse_json(const char* begin, const char* end, const std::string& what) {
  try {
    return nlohmann::json::parse(begin, end);
  } catch (const nlohmann::json::exception& e) {
    fail(what, " is not valid JSON: ", reason(e));
  }
}

nlohmann::json parse_json(const std::string& text, const std::string& what) {
  return parse_json(text.data(), text.data() + text.size(), what);
}

nlohmann::json read_json_file(const std::string& path) {
  if (dir_exists(path)) fail("'", path, "' is a directory, expected a JSON file");
  return parse_json(read_file(path), "'" + path + "'");
}

}  // namespace mechscope
