#include "analysis/heads/head_spec.h"

#include <algorithm>
#include <cctype>

#include "core/error.h"
#include "core/text.h"

namespace mechscope::analysis::heads {
namespace {

// A non-negative decimal integer, or -1 when `s` is not one (no sign, no spaces, no overflow).
int64_t parse_index(const std::string& s) {
  if (s.empty() || s.size() > 9) return -1;
  for (char c : s)
    if (c < '0' || c > '9') return -1;
  return std::stoll(s);
}

}  // namespace

std::vector<HeadRef> parse_head_spec(const std::string& spec, int64_t n_layers, int64_t n_heads,
                                     const std::string& flag) {
  const std::string form = "expected LAYER:HEAD items such as '0:1,2:3' or 'LAYER:*' for a whole layer";
  std::vector<HeadRef> out;
  if (trim(spec).empty()) fail(flag, " is empty: ", form);
  for (const std::string& field : split(spec, ',')) {
    std::string item = trim(field);
    if (item.empty()) fail(flag, " '", spec, "' has an empty item: ", form);
    size_t colon = item.find(':');
    if (colon == std::string::npos) fail(flag, " item '", item, "' has no ':': ", form);
    std::string ls = trim(item.substr(0, colon)), hs = trim(item.substr(colon + 1));
    int64_t layer = parse_index(ls);
    if (layer < 0) fail(flag, " item '", item, "': layer '", ls, "' is not a non-negative integer; ", form);
    if (layer >= n_layers)
      fail(flag, " item '", item, "': layer ", layer, " is out of range (the model has ", n_layers, " layers, 0..",
           n_layers - 1, ")");
    if (hs == "*") {
      for (int64_t h = 0; h < n_heads; ++h) out.push_back({layer, h});
      continue;
    }
    int64_t head = parse_index(hs);
    if (head < 0) fail(flag, " item '", item, "': head '", hs, "' is not a non-negative integer or '*'; ", form);
    if (head >= n_heads)
      fail(flag, " item '", item, "': head ", head, " is out of range (the model has ", n_heads,
           " heads per layer, 0..", n_heads - 1, ")");
    out.push_back({layer, head});
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::map<int64_t, std::vector<int64_t>> heads_by_layer(const std::vector<HeadRef>& heads) {
  std::map<int64_t, std::vector<int64_t>> by;
  for (auto& h : heads) by[h.layer].push_back(h.head);
  for (auto& [l, v] : by) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
  }
  return by;
}

std::string format_head_spec(const std::vector<HeadRef>& heads) {
  std::string s;
  for (auto& h : heads) s += (s.empty() ? "" : ",") + std::to_string(h.layer) + ":" + std::to_string(h.head);
  return s;
}

}  // namespace mechscope::analysis::heads
