#include "tokenizers/split.h"

#include <algorithm>

#include "core/error.h"
#include "tokenizers/unicode.h"

namespace mechscope::tokenizers {

SplitBehavior parse_behavior(const std::string& name) {
  if (name == "Removed") return SplitBehavior::Removed;
  if (name == "Isolated") return SplitBehavior::Isolated;
  if (name == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (name == "Contiguous") return SplitBehavior::Contiguous;
  fail("split behavior '", name, "' is not supported");
}

namespace {
std::vector<Span> cover(const std::vector<std::pair<size_t, size_t>>& found, size_t n) {
  std::vector<Span> out;
  if (n == 0) return {Span{0, 0, false}};
  size_t prev = 0;
  for (auto [b, e] : found) {
    if (prev != b) out.push_back(Span{prev, b, false});
    out.push_back(Span{b, e, true});
    prev = e;
  }
  if (prev != n) out.push_back(Span{prev, n, false});
  return out;
}
}  // namespace

std::vector<Span> spans_of_regex(const Regex& re, std::string_view s) { return cover(re.find_all(s), s.size()); }

std::vector<Span> spans_of_string(const std::string& needle, std::string_view s) {
  std::vector<std::pair<size_t, size_t>> found;
  if (!needle.empty()) {
    for (size_t p = s.find(needle); p != std::string_view::npos; p = s.find(needle, p + needle.size()))
      found.emplace_back(p, p + needle.size());
  }
  return cover(found, s.size());
}

std::vector<Span> spans_of_chars(const std::function<bool(char32_t)>& pred, std::string_view s) {
  std::vector<std::pair<size_t, size_t>> found;
  for (size_t i = 0; i < s.size();) {
    size_t b = i;
    if (pred(uni::next(s, i))) found.emplace_back(b, i);
  }
  return cover(found, s.size());
}

std::vector<std::pair<size_t, size_t>> apply_behavior(std::vector<Span> spans, SplitBehavior b, bool invert) {
  if (invert)
    for (auto& sp : spans) sp.match = !sp.match;
  std::vector<Span> acc;
  bool prev = false;
  switch (b) {
    case SplitBehavior::Isolated: acc = spans; break;
    case SplitBehavior::Removed:
      for (const auto& sp : spans)
        if (!sp.match) acc.push_back(sp);
      break;
    case SplitBehavior::MergedWithPrevious:
      for (const auto& sp : spans) {
        if (sp.match && !prev && !acc.empty()) acc.back().end = sp.end;
        else acc.push_back(sp);
        prev = sp.match;
      }
      break;
    case SplitBehavior::MergedWithNext:
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->match && !prev && !acc.empty()) acc.back().begin = it->begin;
        else acc.push_back(*it);
        prev = it->match;
      }
      std::reverse(acc.begin(), acc.end());
      break;
    case SplitBehavior::Contiguous:
      for (const auto& sp : spans) {
        if (sp.match == prev && !acc.empty()) acc.back().end = sp.end;
        else acc.push_back(sp);
        prev = sp.match;
      }
      break;
  }
  std::vector<std::pair<size_t, size_t>> out;
  for (const auto& sp : acc)
    if (sp.end > sp.begin) out.emplace_back(sp.begin, sp.end);
  return out;
}

}  // namespace mechscope::tokenizers
