#include "tokenizers/bpe.h"

#include <cstdio>
#include <queue>

#include "core/error.h"
#include "tokenizers/unicode.h"

namespace mechscope::tokenizers {

namespace {
uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}
constexpr size_t kCacheMax = 100000;   // entries; HF keeps 10,000
constexpr size_t kCacheWordMax = 256;  // bytes; longer words are not cached (as HF)
}  // namespace

Bpe::Bpe(const std::vector<std::pair<std::string, int32_t>>& vocab,
         const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions opt, const std::string& where)
    : opt_(std::move(opt)) {
  vocab_.reserve(vocab.size() * 2);
  for (const auto& [tok, id] : vocab) {
    if (id < 0) fail(where, ": BPE vocab entry '", tok, "' has negative id ", id);
    if (static_cast<size_t>(id) >= tokens_.size()) tokens_.resize(id + 1), has_.resize(id + 1);
    tokens_[id] = tok;
    has_[id] = 1;
    vocab_[tok] = id;
  }
  merges_.reserve(merges.size() * 2);
  const size_t plen = opt_.continuing_subword_prefix.size();
  for (size_t r = 0; r < merges.size(); ++r) {
    const auto& [a, b] = merges[r];
    auto ia = vocab_.find(a), ib = vocab_.find(b);
    if (ia == vocab_.end() || ib == vocab_.end())
      fail(where, ": BPE merge ", r + 1, " ('", a, "' '", b, "') uses a token not in the vocab");
    std::string joined = a + (plen && b.compare(0, plen, opt_.continuing_subword_prefix) == 0 ? b.substr(plen) : b);
    auto in = vocab_.find(joined);
    if (in == vocab_.end()) fail(where, ": BPE merge ", r + 1, " gives '", joined, "', which is not in the vocab");
    merges_.emplace(pair_key(ia->second, ib->second), std::make_pair(static_cast<int32_t>(r), in->second));
  }
  if (opt_.unk_token) unk_id_ = token_to_id(*opt_.unk_token);
  byte_ids_.fill(-1);
  if (opt_.byte_fallback) {
    for (int b = 0; b < 256; ++b) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "<0x%02X>", b);
      byte_ids_[b] = token_to_id(buf);
    }
  }
}

int32_t Bpe::token_to_id(std::string_view token) const {
  auto it = vocab_.find(std::string(token));
  return it == vocab_.end() ? -1 : it->second;
}

const std::string* Bpe::id_to_token(int32_t id) const {
  if (id < 0 || id >= size() || !has_[id]) return nullptr;
  return &tokens_[id];
}

void Bpe::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (opt_.ignore_merges) {
    int32_t id = token_to_id(word);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  std::string key(word);
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  merge_word(word, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  if (word.size() < kCacheWordMax) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_.size() < kCacheMax) cache_.emplace(std::move(key), std::move(ids));
  }
}

void Bpe::merge_word(std::string_view w, std::vector<int32_t>& out) const {
  struct Sym {
    int32_t id;
    int prev, next;
    bool alive;
  };
  std::vector<Sym> syms;
  syms.reserve(w.size());
  auto add = [&](int32_t id) {
    int n = static_cast<int>(syms.size());
    syms.push_back(Sym{id, n - 1, -1, true});
    if (n > 0) syms[n - 1].next = n;
  };
  int32_t pending_unk = -1;  // an unk waiting to be emitted (fuse_unk extends it)
  std::string s;
  for (size_t i = 0; i < w.size();) {
    size_t start = i;
    i += uni::char_len(static_cast<unsigned char>(w[i]));
    if (i > w.size()) i = w.size();
    s.clear();
    if (start > 0) s += opt_.continuing_subword_prefix;
    s.append(w.data() + start, i - start);
    if (i == w.size()) s += opt_.end_of_word_suffix;
    int32_t id = token_to_id(s);
    if (id >= 0) {
      if (pending_unk >= 0) add(pending_unk), pending_unk = -1;
      add(id);
      continue;
    }
    if (opt_.byte_fallback) {
      bool all = true;
      for (unsigned char b : s) all = all && byte_ids_[b] >= 0;
      if (all) {
        // HF pushes byte tokens without flushing a pending unk first.
        for (unsigned char b : s) add(byte_ids_[b]);
        continue;
      }
    }
    if (opt_.unk_token) {
      if (unk_id_ < 0) fail("BPE: unk_token '", *opt_.unk_token, "' is not in the vocab");
      if (pending_unk >= 0 && !opt_.fuse_unk) add(pending_unk);
      pending_unk = unk_id_;
    }
  }
  if (pending_unk >= 0) add(pending_unk);

  struct Cand {
    int32_t rank;
    int pos;
    int32_t id;
  };
  auto worse = [](const Cand& a, const Cand& b) { return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos; };
  std::priority_queue<Cand, std::vector<Cand>, decltype(worse)> queue(worse);
  auto push = [&](int pos) {
    int nx = syms[pos].next;
    if (nx < 0) return;
    auto it = merges_.find(pair_key(syms[pos].id, syms[nx].id));
    if (it != merges_.end()) queue.push(Cand{it->second.first, pos, it->second.second});
  };
  for (int p = 0; p + 1 < static_cast<int>(syms.size()); ++p) push(p);
  while (!queue.empty()) {
    Cand c = queue.top();
    queue.pop();
    Sym& left = syms[c.pos];
    if (!left.alive || left.next < 0) continue;
    Sym& right = syms[left.next];
    auto it = merges_.find(pair_key(left.id, right.id));
    if (it == merges_.end() || it->second.first != c.rank || it->second.second != c.id) continue;
    left.id = c.id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) syms[right.next].prev = c.pos;
    if (left.prev >= 0) push(left.prev);
    push(c.pos);
  }
  for (const auto& sym : syms)
    if (sym.alive) out.push_back(sym.id);
}

}  // namespace mechscope::tokenizers
