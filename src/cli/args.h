// A small command-line parser: every subcommand declares its flags with help text and defaults, so
// `--help` always lists each flag with its default. Bad usage throws mechscope::Error (exit 2).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "core/text.h"  // split, trim, list_items

namespace mechscope::cli {

class Args {
 public:
  Args(std::string command, std::string synopsis, std::string description);

  // --name VALUE; `def` is shown in --help and returned when the flag is absent.
  Args& opt(const std::string& name, const std::string& metavar, const std::string& help, const std::string& def = "");
  // --name VALUE, may be given several times (order kept).
  Args& multi(const std::string& name, const std::string& metavar, const std::string& help);
  // --name with no value.
  Args& flag(const std::string& name, const std::string& help);
  // The last flag declared fills the library option `field` (mechscope::option, core/error.h): a
  // library error naming the field shows this flag. Without it a field names "--" + field, '_' -> '-'.
  Args& fills(const std::string& field);
  // A positional argument, one value each, in declaration order.
  Args& positional(const std::string& name, const std::string& help, bool required = true);

  // Returns false when --help was asked for (help already printed to stdout).
  bool parse(int argc, char** argv);

  bool has(const std::string& name) const;         // given on the command line (or positional present)
  std::string str(const std::string& name) const;  // value or default
  std::vector<std::string> all(const std::string& name) const;
  bool on(const std::string& name) const;
  long long integer(const std::string& name) const;
  // Finite numbers only: "nan", "inf" and values beyond a double are refused, quoting what was typed.
  double number(const std::string& name) const;
  // The same, checked for its domain [lo, hi] (or (lo, hi] when lo_open); the Error quotes the value
  // as typed and states the domain.
  long long integer(const std::string& name, long long lo, long long hi) const;
  double number(const std::string& name, double lo, double hi, bool lo_open = false) const;
  // Values in command-line order for a set of flags, e.g. --prompt and --ids interleaved.
  std::vector<std::pair<std::string, std::string>> ordered(const std::vector<std::string>& names) const;

  // The command line as parsed, for running it again (merge, issue 18): the command's words, each
  // given flag in order (but those in `without`) as --name [VALUE], then the positionals.
  std::vector<std::string> command_line(const std::vector<std::string>& without) const;
  // Every given flag and positional with its values.
  const std::map<std::string, std::vector<std::string>>& given() const { return values_; }

  std::string help_text() const;
  const std::string& command() const { return command_; }

 private:
  struct Spec {
    std::string name, metavar, help, def;
    bool is_flag = false, repeat = false;
  };
  const Spec* find(const std::string& name) const;

  std::string command_, synopsis_, description_;
  std::vector<Spec> specs_;
  std::vector<Spec> positionals_;
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::pair<std::string, std::string>> order_;
};

// The flag that fills a library option field in this run (see Args::fills).
std::string flag_of_field(const std::string& field);

// Parses "1,2,3" (commas and/or spaces) into integers; Error naming `flag` on bad input.
std::vector<long long> parse_int_list(const std::string& s, const std::string& flag);

}  // namespace mechscope::cli
