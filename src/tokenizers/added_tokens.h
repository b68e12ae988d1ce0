// Added and special tokens (tokenizer.json "added_tokens"), matched in the text before
// pre-tokenization as HF's AddedVocabulary does: leftmost-longest, tokens with normalized=false
// on the raw text, the others on the normalized text, honoring single_word, lstrip and rstrip.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizers/pipeline.h"

namespace mechscope::tokenizers {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool single_word = false, lstrip = false, rstrip = false, normalized = false, special = false;
};

class AddedVocab {
 public:
  // `normalizer` (may be null) gives the form normalized tokens are matched in.
  void build(std::vector<AddedToken> tokens, const Normalizer* normalizer);

  // Splits the pieces not yet matched around occurrences of the raw (normalized=false) tokens,
  // or of the normalized ones when `normalized` is true.
  void split(Pieces& pieces, bool normalized) const;

  const AddedToken* by_id(int32_t id) const;
  const AddedToken* by_content(const std::string& content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  struct Trie {
    std::unordered_map<uint64_t, int32_t> edges;  // (node << 8 | byte) -> node
    std::vector<int32_t> token;                   // node -> index into tokens_, or -1
    bool first[256] = {};
    void add(const std::string& s, int32_t index);
    bool empty() const { return token.size() <= 1; }
  };
  void split_one(const Trie& trie, const Piece& piece, Pieces& out) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> by_id_;
  std::unordered_map<std::string, size_t> by_content_;
  Trie raw_, normalized_;
};

}  // namespace mechscope::tokenizers
