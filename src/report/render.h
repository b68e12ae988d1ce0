// The static renderer: a Figure → PNG, SVG or PDF through cairo, with all text laid out by pango
// (so token labels in any script render with font fallback) and measured before placing, so tick
// labels, titles and colour bars never overlap or get clipped.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "report/figure.h"

namespace mechscope::report {

enum class Format { Png, Svg, Pdf };
Format parse_format(const std::string& s);  // "png" | "svg" | "pdf"; Error otherwise
std::string extension(Format f);            // "png", …

struct RenderOptions {
  double dpi = 150;  // PNG only; SVG/PDF are vector, sized in points
};

// The file's bytes.
std::string render_bytes(const Figure& fig, Format format, const RenderOptions& opt = {});
// Writes the file atomically (temporary name, then rename). Error naming the path on failure.
void render(const Figure& fig, Format format, const std::string& path, const RenderOptions& opt = {});

// Size the static image will have, in inches (animations grow to fit their small multiples).
std::pair<double, double> static_size(const Figure& fig);
// PNG size in pixels at `dpi`.
std::pair<int, int> png_size(const Figure& fig, double dpi);

// The font families used for every label: Latin first (matplotlib's DejaVu Sans), then CJK/Hangul;
// colour emoji come from fontconfig's fallback.
extern const char* const kFontFamily;
extern const char* const kMonoFamily;

// Glyphs pango could not find in any font for `text` at our fonts (0 means no tofu).
int unknown_glyphs(const std::string& text);

}  // namespace mechscope::report
