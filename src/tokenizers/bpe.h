// BPE as Hugging Face `tokenizers` runs it (models/bpe): per-character symbols, merges applied
// lowest rank first (leftmost on ties), unknown characters to byte-fallback tokens <0xNN> or to
// the unk token (fused when asked), no unk token -> the character is dropped.
#pragma once
#include <array>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizers/pipeline.h"

namespace mechscope::tokenizers {

struct BpeOptions {
  std::optional<std::string> unk_token;
  std::string continuing_subword_prefix, end_of_word_suffix;
  bool fuse_unk = false, byte_fallback = false, ignore_merges = false;
};

class Bpe : public Model {
 public:
  // vocab: token -> id; merges in rank order. `where` names the source in error messages.
  Bpe(const std::vector<std::pair<std::string, int32_t>>& vocab,
      const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions opt, const std::string& where);

  void tokenize(std::string_view word, std::vector<int32_t>& out) const override;
  int32_t token_to_id(std::string_view token) const override;
  const std::string* id_to_token(int32_t id) const override;
  int32_t size() const override { return static_cast<int32_t>(tokens_.size()); }

 private:
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  BpeOptions opt_;
  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> tokens_;
  std::vector<char> has_;
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;  // (a,b) -> (rank, id)
  int32_t unk_id_ = -1;
  std::array<int32_t, 256> byte_ids_{};  // <0xNN> ids for byte fallback, -1 when absent
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace mechscope::tokenizers
