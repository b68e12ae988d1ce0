// Errors at the library boundary (see STYLE.md): a user-caused failure is a mechscope::Error whose
// message names the file/flag/key and what was expected; the CLI turns it into "error: …" and exit 2.
// Anything else escaping to main is an internal failure (exit 1).
#pragma once
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace mechscope {

// A library message names an option by the field of its options struct, `option("samples")`, never by
// a command-line flag: the library does not know which flag (if any) filled the field. Error::what()
// shows the field ("samples must be >= 1"), or, in the CLI, the flag it parsed into that field
// ("--num-noise-samples must be >= 1"; set_option_namer below, cli/args.h: flag_of_field).
inline std::string option(const std::string& field) { return "\x1e" + field + "\x1f"; }

// `raw` with every option(field) replaced by name(field).
template <typename Name>
std::string name_options(const std::string& raw, Name&& name) {
  std::string out;
  size_t i = 0;
  while (i < raw.size()) {
    size_t a = raw.find('\x1e', i), b = a == std::string::npos ? a : raw.find('\x1f', a);
    if (b == std::string::npos) return out + raw.substr(i);
    out += raw.substr(i, a - i);
    out += name(raw.substr(a + 1, b - a - 1));
    i = b + 1;
  }
  return out;
}

// How option(field) reads in messages: the field itself, unless a front end installs its own naming
// (the CLI installs the flag that fills the field, at start, before any library call).
using OptionNamer = std::string (*)(const std::string& field);
inline OptionNamer option_namer = nullptr;
inline void set_option_namer(OptionNamer namer) { option_namer = namer; }
inline std::string name_options(const std::string& raw) {
  return name_options(raw, [](const std::string& f) { return option_namer ? option_namer(f) : f; });
}

struct Error : std::runtime_error {
  explicit Error(const std::string& raw)
      : std::runtime_error(name_options(raw)), raw_(std::make_shared<const std::string>(raw)) {}
  // The message with its option markers: what a handler that adds context passes on (fail(where, e.raw())).
  const std::string& raw() const { return *raw_; }

 private:
  std::shared_ptr<const std::string> raw_;  // shared: an exception's copy must not throw
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
