// WordPiece (BERT) and WordLevel models as Hugging Face `tokenizers` runs them.
#pragma once
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizers/pipeline.h"

namespace mechscope::tokenizers {

// A token <-> id table shared by the vocabulary-lookup models.
struct Vocab {
  std::unordered_map<std::string, int32_t> ids;
  std::vector<std::string> tokens;
  std::vector<char> has;
  Vocab(const std::vector<std::pair<std::string, int32_t>>& entries, const std::string& where);
  int32_t find(std::string_view token) const;
  const std::string* at(int32_t id) const;
};

// Greedy longest-match-first over each word; a word with an unmatched rest is one unk token.
class WordPiece : public Model {
 public:
  WordPiece(const std::vector<std::pair<std::string, int32_t>>& vocab, std::string unk_token, std::string prefix,
            size_t max_input_chars_per_word, const std::string& where);
  void tokenize(std::string_view word, std::vector<int32_t>& out) const override;
  int32_t token_to_id(std::string_view token) const override { return vocab_.find(token); }
  const std::string* id_to_token(int32_t id) const override { return vocab_.at(id); }
  int32_t size() const override { return static_cast<int32_t>(vocab_.tokens.size()); }

 private:
  Vocab vocab_;
  std::string unk_, prefix_;
  size_t max_chars_;
};

// Whole words looked up; unknown -> unk token (Error when there is none).
class WordLevel : public Model {
 public:
  WordLevel(const std::vector<std::pair<std::string, int32_t>>& vocab, std::string unk_token, const std::string& where);
  void tokenize(std::string_view word, std::vector<int32_t>& out) const override;
  int32_t token_to_id(std::string_view token) const override { return vocab_.find(token); }
  const std::string* id_to_token(int32_t id) const override { return vocab_.at(id); }
  int32_t size() const override { return static_cast<int32_t>(vocab_.tokens.size()); }

 private:
  Vocab vocab_;
  std::string unk_;
};

}  // namespace mechscope::tokenizers
