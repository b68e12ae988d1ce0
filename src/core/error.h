// Errors at the library boundary (see STYLE.md): a user-caused failure is a mechscope::Error whose
// message names the file/flag/key and what was expected; the CLI turns it into "error: …" and exit 2.
// Anything else escaping to main is an internal failure (exit 1).
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace mechscope {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// cat("tensor '", name, "' has shape ", shape) -> one string; anything with operator<<.
template <typename... Args>
std::string cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

template <typename... Args>
[[noreturn]] void fail(Args&&... args) {
  throw Error(cat(std::forward<Args>(args)...));
}

}  // namespace mechscope
