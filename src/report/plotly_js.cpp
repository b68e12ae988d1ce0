// plotly.min.js embedded at build time with the assembler's .incbin, so index.html is self-contained
// on a machine without the repository's node_modules. The package.json of the same package is pulled
// into this file's preprocessed tokens (as an ignored attribute argument) so the compiler's dependency
// file names it: a new plotly.js version (npm ci) rebuilds this object.
#include <string>
#include <string_view>

#include "report/html.h"

#if !__has_include("../../node_modules/plotly.js-dist-min/plotly.min.js")
#error "node_modules/plotly.js-dist-min/plotly.min.js is missing: run `npm ci` in the repository root (scripts/install-deps.sh does)"
#endif

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wattributes"
struct [[mechscope::rebuild_when_changed(
#include "../../node_modules/plotly.js-dist-min/package.json"
)]] PlotlyPackageJson;
#pragma GCC diagnostic pop

#ifndef MECHSCOPE_SOURCE_DIR
#error "MECHSCOPE_SOURCE_DIR must be defined (CMake sets it for ms_report)"
#endif

// Hidden global labels: PC-relative access, no text relocations in a PIE.
asm(".section .rodata\n"
    ".balign 16\n"
    ".globl mechscope_plotly_js_begin\n"
    ".hidden mechscope_plotly_js_begin\n"
    "mechscope_plotly_js_begin:\n"
    ".incbin \"" MECHSCOPE_SOURCE_DIR "/node_modules/plotly.js-dist-min/plotly.min.js\"\n"
    "mechscope_plotly_js_end:\n"
    ".byte 0\n"
    ".balign 8\n"
    ".globl mechscope_plotly_js_size\n"
    ".hidden mechscope_plotly_js_size\n"
    "mechscope_plotly_js_size:\n"
    ".quad mechscope_plotly_js_end - mechscope_plotly_js_begin\n"
    ".previous\n");

extern "C" const char mechscope_plotly_js_begin[];
extern "C" const unsigned long long mechscope_plotly_js_size;

namespace mechscope::report {

std::string_view plotly_js() {
  return {mechscope_plotly_js_begin, size_t(mechscope_plotly_js_size)};
}

std::string plotly_version() {
  // The bundle starts with "/**\n* plotly.js v2.35.2\n".
  std::string_view js = plotly_js().substr(0, 200);
  auto p = js.find("plotly.js v");
  if (p == std::string_view::npos) return "unknown";
  auto e = js.find_first_of(" \n*", p + 11);
  return std::string(js.substr(p + 11, e - p - 11));
}

}  // namespace mechscope::report
