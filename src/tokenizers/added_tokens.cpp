#include "tokenizers/added_tokens.h"

#include "tokenizers/unicode.h"

namespace mechscope::tokenizers {

void AddedVocab::Trie::add(const std::string& s, int32_t index) {
  if (token.empty()) token.push_back(-1);
  if (s.empty()) return;
  int32_t node = 0;
  for (unsigned char b : s) {
    uint64_t key = (static_cast<uint64_t>(node) << 8) | b;
    auto it = edges.find(key);
    if (it == edges.end()) {
      int32_t next = static_cast<int32_t>(token.size());
      token.push_back(-1);
      it = edges.emplace(key, next).first;
    }
    node = it->second;
  }
  first[static_cast<unsigned char>(s[0])] = true;
  if (token[node] < 0) token[node] = index;  // the first of duplicate patterns wins
}

void AddedVocab::build(std::vector<AddedToken> tokens, const Normalizer* normalizer) {
  tokens_ = std::move(tokens);
  raw_ = Trie{};
  normalized_ = Trie{};
  raw_.token.push_back(-1);
  normalized_.token.push_back(-1);
  // HF orders the patterns special tokens first, then the others, each in the order given.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < tokens_.size(); ++i) {
      const auto& t = tokens_[i];
      if (t.special != (pass == 0) || t.content.empty()) continue;
      if (t.normalized) {
        normalized_.add(normalizer ? normalizer->normalize(t.content) : t.content, static_cast<int32_t>(i));
      } else {
        raw_.add(t.content, static_cast<int32_t>(i));
      }
    }
  }
  by_id_.clear();
  by_content_.clear();
  for (size_t i = 0; i < tokens_.size(); ++i) {
    by_id_[tokens_[i].id] = i;
    by_content_.emplace(tokens_[i].content, i);
  }
}

const AddedToken* AddedVocab::by_id(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocab::by_content(const std::string& content) const {
  auto it = by_content_.find(content);
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

namespace {
char32_t last_char(std::string_view s) {
  size_t i = s.size();
  while (i > 0 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80) --i;
  if (i > 0) --i;
  return uni::next(s, i);
}
}  // namespace

void AddedVocab::split_one(const Trie& trie, const Piece& piece, Pieces& out) const {
  const std::string& s = piece.text;
  size_t done = 0;  // end of the previous match
  auto emit = [&](size_t a, size_t b, int32_t id) {
    if (b > a) out.push_back(Piece{s.substr(a, b - a), piece.at_start && a == 0, id});
  };
  size_t i = 0;
  while (i < s.size()) {
    if (!trie.first[static_cast<unsigned char>(s[i])]) {
      ++i;
      continue;
    }
    int32_t node = 0, best = -1;
    size_t best_end = 0;
    for (size_t j = i; j < s.size(); ++j) {
      auto it = trie.edges.find((static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(s[j]));
      if (it == trie.edges.end()) break;
      node = it->second;
      if (trie.token[node] >= 0) best = trie.token[node], best_end = j + 1;
    }
    if (best < 0) {
      ++i;
      continue;
    }
    const AddedToken& t = tokens_[best];
    size_t start = i, stop = best_end;
    i = best_end;
    if (t.single_word) {
      bool left_ok = start == 0 || !uni::is_word(last_char(std::string_view(s).substr(0, start)));
      size_t k = stop;
      bool right_ok = stop == s.size() || !uni::is_word(uni::next(s, k));
      if (!left_ok || !right_ok) continue;
    }
    if (t.lstrip) {
      size_t a = start;
      while (a > done) {
        size_t b = a - 1;
        while (b > done && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
        size_t k = b;
        if (!uni::is_space(uni::next(s, k))) break;
        a = b;
      }
      start = a;
    }
    if (t.rstrip) {
      while (stop < s.size()) {
        size_t k = stop;
        if (!uni::is_space(uni::next(s, k))) break;
        stop = k;
      }
      i = stop;
    }
    emit(done, start, -1);
    emit(start, stop, t.id);
    done = stop;
  }
  emit(done, s.size(), -1);
}

void AddedVocab::split(Pieces& pieces, bool normalized) const {
  const Trie& trie = normalized ? normalized_ : raw_;
  Pieces out;
  out.reserve(pieces.size());
  for (auto& p : pieces) {
    if (p.added_id >= 0 || trie.empty()) {
      if (!p.text.empty() || p.added_id >= 0) out.push_back(std::move(p));
      continue;
    }
    split_one(trie, p, out);
  }
  pieces = std::move(out);
}

}  // namespace mechscope::tokenizers
