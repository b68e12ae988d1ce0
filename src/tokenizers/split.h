// HF's NormalizedString::split: a pattern's matches cut a piece, and the behaviour says what
// happens to the matched parts (tokenizers/src/tokenizer/normalizer.rs).
#pragma once
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizers/regex.h"

namespace mechscope::tokenizers {

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };
SplitBehavior parse_behavior(const std::string& name);  // Error naming an unknown one

struct Span {
  size_t begin, end;
  bool match;
};

// Cover `s` with matched / unmatched spans for each kind of pattern.
std::vector<Span> spans_of_regex(const Regex& re, std::string_view s);
std::vector<Span> spans_of_string(const std::string& needle, std::string_view s);
std::vector<Span> spans_of_chars(const std::function<bool(char32_t)>& pred, std::string_view s);

// Applies the behaviour; returns the byte ranges of the resulting pieces (empty ones dropped).
std::vector<std::pair<size_t, size_t>> apply_behavior(std::vector<Span> spans, SplitBehavior b, bool invert);

}  // namespace mechscope::tokenizers
