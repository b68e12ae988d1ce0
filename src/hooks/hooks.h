// Hook points, TransformerLens style: every named activation passes through HookSet::fire, where the
// hooks registered for that name (exact name or glob such as "blocks.*.hook_z") may read it, replace
// it or edit it in place. A run with no hooks pays one branch per hook point.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace mechscope::hooks {

struct HookContext {
  const std::string& name;
  int layer;     // block index, -1 for hooks outside the blocks
  int64_t pos0;  // absolute position of index 0 along the pos axis (> 0 with a KV cache)
};

// t: the activation; assign to t to replace it (same shape), or edit it in place.
using HookFn = std::function<void(at::Tensor& t, const HookContext& ctx)>;

// The axis layout of a hook point, from the one table of TransformerLens point names (hooks.cpp):
// what caching, interventions, patch targets and the packed engine read instead of guessing.
enum class Layout {
  PerPosition,  // [batch, pos, d] (resid, attn_out, mlp pre/post, normalized, embed) and [batch, pos, 1] (scale)
  PerHead,      // [batch, pos, head, d] (q, k, v, z, rot_q, rot_k, result)
  Pattern,      // [batch, head, query_pos, key_pos] (attn_scores, pattern)
};
Layout point_layout(const std::string& name);
inline int64_t pos_axis(Layout l) { return l == Layout::Pattern ? 2 : 1; }
inline int64_t head_axis(Layout l) { return l == Layout::Pattern ? 1 : l == Layout::PerHead ? 2 : -1; }

// True when `name` matches `pattern`: exact, or a glob where '*' matches any run of characters
// and '?' one character.
bool glob_match(const std::string& pattern, const std::string& name);

class HookSet {
 public:
  // Registers fn for every hook point matching `pattern`; returns an id for remove().
  int add(const std::string& pattern, HookFn fn);
  void remove(int id);
  void clear();
  bool empty() const { return hooks_.empty(); }

  // Would any hook run for `name`? Models use this to skip optional work (hook_result).
  bool wants(const std::string& name) const;

  // Runs the hooks for `name` in registration order. Cheap when none match.
  void fire(const std::string& name, at::Tensor& t, int layer = -1, int64_t pos0 = 0) const;

 private:
  struct Entry {
    int id;
    std::string pattern;
    HookFn fn;
  };
  const std::vector<const Entry*>& matching(const std::string& name) const;
  std::vector<Entry> hooks_;
  int next_id_ = 0;
  mutable std::unordered_map<std::string, std::vector<const Entry*>> memo_;
};

// Removes exactly the hooks it added when it goes out of scope (TransformerLens's `hooks()` context).
class ScopedHooks {
 public:
  explicit ScopedHooks(HookSet& set) : set_(set) {}
  ~ScopedHooks() {
    for (int id : ids_) set_.remove(id);
  }
  ScopedHooks& add(const std::string& pattern, HookFn fn) {
    ids_.push_back(set_.add(pattern, std::move(fn)));
    return *this;
  }
  ScopedHooks(const ScopedHooks&) = delete;
  ScopedHooks& operator=(const ScopedHooks&) = delete;

 private:
  HookSet& set_;
  std::vector<int> ids_;
};

// Keeps a detached copy of every activation whose name matches one of the filters (and nothing else).
class ActivationCache {
 public:
  // Adds a caching hook for each pattern to `set`. With a KV cache (generation), successive calls for
  // the same name are concatenated along the pos axis.
  void attach(HookSet& set, const std::vector<std::string>& patterns);
  bool has(const std::string& name) const { return acts_.count(name) > 0; }
  const at::Tensor& get(const std::string& name) const;  // Error naming the hook when absent
  const std::map<std::string, at::Tensor>& all() const { return acts_; }
  void clear() { acts_.clear(); }

 private:
  std::map<std::string, at::Tensor> acts_;
};

// Interventions, as hook functions. `positions`/`heads` empty = all. Heads index axis 2 of
// [batch, pos, head, d] activations (z, q, k, v, result); for [batch, head, q, k] patterns they
// index axis 1 and positions index the query axis. Positions are absolute (pos0 is accounted for).
struct Select {
  std::vector<int64_t> positions;
  std::vector<int64_t> heads;
};
HookFn replace_with(at::Tensor value,
                    Select where = {});  // value: same shape as the activation (or broadcastable to the selection)
HookFn zero(Select where = {});
HookFn add(at::Tensor delta, Select where = {});
HookFn scale(double factor, Select where = {});
// Sets the selection to `value` at every position the call covers, generated ones included (mean
// ablation): value broadcasts to the selected block, e.g. [heads, d_head] for z with heads selected.
HookFn fill(at::Tensor value, Select where = {});

}  // namespace mechscope::hooks
