// Which query-key links to draw, and which tokens a highlighted word covers.
#include <ATen/ATen.h>

#include <algorithm>
#include <cctype>
#include <numeric>

#include "analysis/attnviz/attnviz.h"
#include "analysis/attnviz/text.h"
#include "core/error.h"

namespace mechscope::analysis::attnviz {

LineRule parse_lines(const std::string& s) {
  LineRule r;
  auto bad = [&]() { fail(option("lines"), ": expected top1, topk:K (K >= 1) or mass:P (0 < P <= 1), got '", s, "'"); };
  try {
    size_t used = 0;
    if (s == "top1") return r;
    if (s.rfind("topk:", 0) == 0) {
      r.kind = LineRule::TopK;
      r.k = std::stoi(s.substr(5), &used);
      if (used != s.size() - 5 || r.k < 1) bad();
      return r;
    }
    if (s.rfind("mass:", 0) == 0) {
      r.kind = LineRule::Mass;
      r.mass = std::stod(s.substr(5), &used);
      if (used != s.size() - 5 || !(r.mass > 0 && r.mass <= 1)) bad();
      return r;
    }
  } catch (const std::logic_error&) {}
  bad();
  return r;  // (bad() throws)
}

std::vector<Link> links(const at::Tensor& attn_in, const at::Tensor& allowed, const std::vector<int64_t>& lengths,
                        const LineRule& rule) {
  at::Tensor attn = attn_in.to(at::kDouble).contiguous();
  auto A = attn.accessor<double, 3>();
  auto ok = allowed.accessor<bool, 3>();
  std::vector<Link> out;
  for (int64_t t = 0; t < attn.size(0); ++t)
    for (int64_t i = 0; i < lengths[t]; ++i) {
      std::vector<int64_t> keys;
      for (int64_t j = 0; j < lengths[t]; ++j)
        if (ok[t][i][j]) keys.push_back(j);
      if (keys.empty()) continue;
      // Highest attention first; ties to the earlier key, so the result is deterministic.
      std::stable_sort(keys.begin(), keys.end(), [&](int64_t a, int64_t b) { return A[t][i][a] > A[t][i][b]; });
      size_t take = 1;
      if (rule.kind == LineRule::TopK) take = std::min<size_t>(rule.k, keys.size());
      if (rule.kind == LineRule::Mass) {
        double m = 0;
        take = 0;
        while (take < keys.size() && m < rule.mass - 1e-12) m += A[t][i][keys[take++]];
      }
      for (size_t r = 0; r < take; ++r) out.push_back({t, i, keys[r], A[t][i][keys[r]], r == 0});
    }
  return out;
}

TokenText token_text(const tokenizers::Tokenizer& tok, const std::vector<int64_t>& ids) {
  TokenText tt;
  std::string prev;
  for (size_t i = 0; i < ids.size(); ++i) {
    std::vector<int64_t> prefix(ids.begin(), ids.begin() + i + 1);
    std::string cur = tok.decode(prefix);
    // Decoders are prefix-stable for whole tokens (WordPiece joins, byte-level BPE concatenates);
    // where one is not, the token gets the characters after the common prefix.
    size_t common = 0;
    while (common < prev.size() && common < cur.size() && prev[common] == cur[common]) ++common;
    tt.spans.push_back({common, cur.size()});
    prev = cur;
  }
  tt.text = prev;
  for (auto& s : tt.spans) s.first = std::min(s.first, tt.text.size()), s.second = std::min(s.second, tt.text.size());
  return tt;
}

std::vector<int64_t> match_word(const TokenText& t, const std::string& word) {
  std::vector<int64_t> out;
  if (word.empty()) return out;
  auto low = [](std::string s) {
    for (auto& c : s) c = (char)std::tolower((unsigned char)c);
    return s;
  };
  std::string text = low(t.text), w = low(word);
  auto alnum = [](unsigned char c) { return std::isalnum(c) || c >= 0x80; };
  for (size_t at = text.find(w); at != std::string::npos; at = text.find(w, at + 1)) {
    size_t end = at + w.size();
    if ((at > 0 && alnum(text[at - 1])) || (end < text.size() && alnum(text[end]))) continue;
    for (size_t i = 0; i < t.spans.size(); ++i) {
      auto [b, e] = t.spans[i];
      // A token covers the word if it holds any of its characters (leading spaces of BPE tokens aside).
      if (b < end && e > at && std::find(out.begin(), out.end(), (int64_t)i) == out.end()) out.push_back((int64_t)i);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace mechscope::analysis::attnviz
