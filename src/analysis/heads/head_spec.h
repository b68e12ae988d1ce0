// Head specifications as users type them ("0:1,2:3", "5:*"), parsed once for every command that
// selects attention heads (generate --ablate-heads, run --patch-heads, heads ablate/patch --head-spec).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mechscope::analysis::heads {

struct HeadRef {
  int64_t layer = 0, head = 0;
  bool operator<(const HeadRef& o) const { return layer != o.layer ? layer < o.layer : head < o.head; }
  bool operator==(const HeadRef& o) const { return layer == o.layer && head == o.head; }
};

// "L:H" (one head), "L:*" (every head of layer L), comma-separated lists of those; spaces around items
// are ignored. Checked against the model's n_layers × n_heads; the result is sorted, duplicates
// removed. Error naming `flag` and quoting the bad item otherwise.
std::vector<HeadRef> parse_head_spec(const std::string& spec, int64_t n_layers, int64_t n_heads,
                                     const std::string& flag);

// The heads grouped by layer (ascending heads), for one hook per layer.
std::map<int64_t, std::vector<int64_t>> heads_by_layer(const std::vector<HeadRef>& heads);

// "0:1,2:3": the canonical spelling (every head listed).
std::string format_head_spec(const std::vector<HeadRef>& heads);

}  // namespace mechscope::analysis::heads
