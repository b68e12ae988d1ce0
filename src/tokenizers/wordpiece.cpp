#include "tokenizers/wordpiece.h"

#include "core/error.h"
#include "tokenizers/unicode.h"

namespace mechscope::tokenizers {

Vocab::Vocab(const std::vector<std::pair<std::string, int32_t>>& entries, const std::string& where) {
  ids.reserve(entries.size() * 2);
  for (const auto& [tok, id] : entries) {
    if (id < 0) fail(where, ": vocab entry '", tok, "' has negative id ", id);
    // Ids index a table: one far beyond the entries (a malformed file) would allocate gigabytes for
    // nothing. Real vocabularies are dense (0 .. n - 1, the odd gap).
    if (static_cast<size_t>(id) >= 2 * entries.size() + 65536)
      fail(where, ": vocab entry '", tok, "' has id ", id, ", far beyond the ", entries.size(),
           " entries of the vocabulary (ids are 0 .. n - 1)");
    if (static_cast<size_t>(id) >= tokens.size()) tokens.resize(id + 1), has.resize(id + 1);
    tokens[id] = tok;
    has[id] = 1;
    ids[tok] = id;
  }
}

int32_t Vocab::find(std::string_view token) const {
  auto it = ids.find(std::string(token));
  return it == ids.end() ? -1 : it->second;
}

const std::string* Vocab::at(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= tokens.size() || !has[id]) return nullptr;
  return &tokens[id];
}

WordPiece::WordPiece(const std::vector<std::pair<std::string, int32_t>>& vocab, std::string unk_token,
                     std::string prefix, size_t max_input_chars_per_word, const std::string& where)
    : vocab_(vocab, where),
      unk_(std::move(unk_token)),
      prefix_(std::move(prefix)),
      max_chars_(max_input_chars_per_word) {}

void WordPiece::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  auto unk = [&] {
    int32_t id = vocab_.find(unk_);
    if (id < 0) fail("WordPiece: unk_token '", unk_, "' is not in the vocab");
    out.push_back(id);
  };
  size_t nchars = 0;
  for (unsigned char c : word) nchars += (c & 0xC0) != 0x80;
  if (nchars > max_chars_) return unk();
  std::vector<int32_t> pieces;
  std::string sub;
  size_t start = 0;
  while (start < word.size()) {
    size_t end = word.size();
    int32_t found = -1;
    while (start < end) {
      sub.clear();
      if (start > 0) sub += prefix_;
      sub.append(word.data() + start, end - start);
      found = vocab_.find(sub);
      if (found >= 0) break;
      do --end;
      while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80);
    }
    if (found < 0) return unk();
    pieces.push_back(found);
    start = end;
  }
  out.insert(out.end(), pieces.begin(), pieces.end());
}

WordLevel::WordLevel(const std::vector<std::pair<std::string, int32_t>>& vocab, std::string unk_token,
                     const std::string& where)
    : vocab_(vocab, where), unk_(std::move(unk_token)) {}

void WordLevel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  int32_t id = vocab_.find(word);
  if (id < 0) id = vocab_.find(unk_);
  if (id < 0) fail("WordLevel: '", word, "' is not in the vocab and there is no unk_token");
  out.push_back(id);
}

}  // namespace mechscope::tokenizers
