#include "cli/args.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/error.h"
#include "report/output.h"

namespace mechscope::cli {

Args::Args(std::string command, std::string synopsis, std::string description)
    : command_(std::move(command)), synopsis_(std::move(synopsis)), description_(std::move(description)) {}

Args& Args::opt(const std::string& name, const std::string& metavar, const std::string& help, const std::string& def) {
  specs_.push_back({name, metavar, help, def, false, false});
  return *this;
}
Args& Args::multi(const std::string& name, const std::string& metavar, const std::string& help) {
  specs_.push_back({name, metavar, help, "", false, true});
  return *this;
}
Args& Args::flag(const std::string& name, const std::string& help) {
  specs_.push_back({name, "", help, "", true, false});
  return *this;
}
Args& Args::positional(const std::string& name, const std::string& help, bool required) {
  positionals_.push_back({name, "", help, required ? "" : "-", false, false});
  return *this;
}

namespace {
std::map<std::string, std::string>& field_flags() {
  static std::map<std::string, std::string> m;
  return m;
}
}  // namespace

Args& Args::fills(const std::string& field) {
  if (!specs_.empty()) field_flags()[field] = "--" + specs_.back().name;
  return *this;
}

std::string flag_of_field(const std::string& field) {
  auto it = field_flags().find(field);
  if (it != field_flags().end()) return it->second;
  std::string f = "--" + field;
  for (char& c : f)
    if (c == '_') c = '-';
  return f;
}

const Args::Spec* Args::find(const std::string& name) const {
  for (auto& s : specs_)
    if (s.name == name) return &s;
  for (auto& s : positionals_)
    if (s.name == name) return &s;
  return nullptr;
}

namespace {
// A flag whose value names a file or folder: an empty value can only be a mistake (and would become
// a write to '' or to the current directory).
bool is_path(const std::string& metavar) {
  for (const char* w : {"DIR", "FILE", "PATH", ".json", ".safetensors"})
    if (metavar.find(w) != std::string::npos) return true;
  return false;
}
}  // namespace

bool Args::parse(int argc, char** argv) {
  // Every command that writes gets --overwrite (report/output.h: what mechscope did not write is never
  // replaced without it); commands with their own meaning of it (locate) declare it themselves.
  if (find("out") && !find("overwrite"))
    flag("overwrite",
         "write into an --out that mechscope did not make (a folder's other files are kept; a file is replaced)");
  size_t npos = 0;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(help_text().c_str(), stdout);
      return false;
    }
    if (a.size() > 2 && a.compare(0, 2, "--") == 0) {
      std::string name = a.substr(2), value;
      bool inline_value = false;
      if (auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        inline_value = true;
      }
      const Spec* s = nullptr;
      for (auto& sp : specs_)
        if (sp.name == name) s = &sp;
      if (!s) fail("unknown option --", name, " for '", command_, "' (see mechscope ", command_, " --help)");
      if (s->is_flag) {
        if (inline_value) fail("--", name, " takes no value");
        values_[name].push_back("1");
        order_.push_back({name, "1"});
        continue;
      }
      if (!inline_value) {
        if (i + 1 >= argc) fail("--", name, " needs a value (", s->metavar, ")");
        value = argv[++i];
      }
      if (!s->repeat && values_.count(name)) fail("--", name, " given twice");
      if (value.empty() && is_path(s->metavar)) fail("--", name, " needs a path (", s->metavar, "), got ''");
      values_[name].push_back(value);
      order_.push_back({name, value});
      continue;
    }
    // One value per positional: a second word is a mistake (an unquoted text), never dropped.
    if (npos >= positionals_.size()) {
      if (!positionals_.empty())
        fail("unexpected argument '", a, "' for '", command_, "': ", positionals_.back().name,
             " is one argument (quote a text with spaces)");
      fail("unexpected argument '", a, "' for '", command_, "'");
    }
    values_[positionals_[npos].name].push_back(a);
    ++npos;
  }
  for (auto& p : positionals_)
    if (p.def.empty() && !values_.count(p.name))
      fail("missing argument ", p.name, " (see mechscope ", command_, " --help)");
  if (find("out")) report::set_overwrite(has("overwrite"));
  return true;
}

std::vector<std::string> Args::command_line(const std::vector<std::string>& without) const {
  std::vector<std::string> out = split(command_, ' ');
  for (auto& [name, value] : order_) {
    if (std::find(without.begin(), without.end(), name) != without.end()) continue;
    out.push_back("--" + name);
    if (!find(name)->is_flag) out.push_back(value);
  }
  for (auto& p : positionals_)
    for (auto& v : all(p.name)) out.push_back(v);
  return out;
}

bool Args::has(const std::string& name) const { return values_.count(name) > 0; }

std::string Args::str(const std::string& name) const {
  auto it = values_.find(name);
  if (it != values_.end()) return it->second.back();
  const Spec* s = find(name);
  return s && s->def != "-" ? s->def : "";
}

std::vector<std::string> Args::all(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

bool Args::on(const std::string& name) const { return has(name); }

long long Args::integer(const std::string& name) const {
  std::string v = str(name);
  errno = 0;
  char* end = nullptr;
  long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end || errno) fail("--", name, ": expected an integer, got '", v, "'");
  return x;
}

double Args::number(const std::string& name) const {
  std::string v = str(name);
  errno = 0;
  char* end = nullptr;
  double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end || errno || !std::isfinite(x)) fail("--", name, ": expected a finite number, got '", v, "'");
  return x;
}

long long Args::integer(const std::string& name, long long lo, long long hi) const {
  std::string v = str(name);
  errno = 0;
  char* end = nullptr;
  long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end || errno || x < lo || x > hi)
    fail("--", name, " must be an integer in ", lo, " .. ", hi, ", got '", v, "'");
  return x;
}

double Args::number(const std::string& name, double lo, double hi, bool lo_open) const {
  double x = number(name);
  if (x < lo || x > hi || (lo_open && x == lo))
    fail("--", name, " must be in ", lo_open ? "(" : "[", lo, ", ", hi, "], got '", str(name), "'");
  return x;
}

std::vector<std::pair<std::string, std::string>> Args::ordered(const std::vector<std::string>& names) const {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& kv : order_)
    for (auto& n : names)
      if (kv.first == n) out.push_back(kv);
  return out;
}

std::string Args::help_text() const {
  std::string out = cat("usage: mechscope ", command_, " ", synopsis_, "\n\n", description_, "\n");
  if (!positionals_.empty()) {
    out += "\narguments:\n";
    for (auto& p : positionals_) out += cat("  ", p.name, "\n      ", p.help, "\n");
  }
  out += "\noptions:\n";
  for (auto& s : specs_) {
    std::string head = "  --" + s.name + (s.is_flag ? "" : " " + s.metavar);
    out += head + "\n      " + s.help;
    if (s.repeat) out += " (repeatable)";
    if (!s.is_flag && !s.def.empty()) out += cat(" [default: ", s.def, "]");
    out += "\n";
  }
  out += "  --help\n      show this help\n";
  return out;
}

std::vector<long long> parse_int_list(const std::string& s, const std::string& flag) {
  std::vector<long long> out;
  for (const std::string& cur : list_items(s, ", \t[]")) {
    errno = 0;
    char* end = nullptr;
    long long x = std::strtoll(cur.c_str(), &end, 10);
    if (*end || errno) fail(flag, ": expected comma-separated integers, got '", cur, "'");
    out.push_back(x);
  }
  if (out.empty()) fail(flag, ": expected at least one integer");
  return out;
}

}  // namespace mechscope::cli
