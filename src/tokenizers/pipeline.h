// The stages Hugging Face `tokenizers` runs (normalizer -> pre-tokenizer -> model ->
// post-processor; decoder back), as small interfaces built from tokenizer.json by the make_*
// factories. Offsets are not tracked: mechscope needs ids, tokens and text only.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace mechscope::tokenizers {

// One piece of the text on its way through the pipeline (a split of HF's PreTokenizedString).
struct Piece {
  std::string text;
  bool at_start = false;  // begins at offset 0 of the original text (Metaspace's "first")
  int32_t added_id = -1;  // an added token matched in the text: passes through untouched
};
using Pieces = std::vector<Piece>;

struct Normalizer {
  virtual ~Normalizer() = default;
  virtual std::string normalize(std::string_view s) const = 0;
};

struct PreTokenizer {
  virtual ~PreTokenizer() = default;
  // Splits (and may rewrite) every piece whose added_id < 0; empty pieces are dropped.
  virtual void pre_tokenize(Pieces& pieces) const = 0;
};

struct Model {
  virtual ~Model() = default;
  // Appends the ids of one pre-tokenized word.
  virtual void tokenize(std::string_view word, std::vector<int32_t>& out) const = 0;
  virtual int32_t token_to_id(std::string_view token) const = 0;  // -1 when absent
  virtual const std::string* id_to_token(int32_t id) const = 0;   // null when absent
  virtual int32_t size() const = 0;                               // max id + 1
};

struct Decoder {
  virtual ~Decoder() = default;
  // Rewrites the token strings in place (HF's decode_chain); the text is their concatenation.
  // Bytes that do not form UTF-8 become U+FFFD, or \xNN when `escape` (for display labels).
  virtual void decode_chain(std::vector<std::string>& tokens, bool escape) const = 0;
};

// A special token the post-processor inserts.
struct SpecialInsert {
  std::string token;
  std::vector<int32_t> ids;
};

// What a post-processor makes of one sequence or a pair: the ids with its special tokens, the token
// type id of each, and where each input sequence's own tokens lie ([begin, end) in ids).
struct Processed {
  std::vector<int32_t> ids, type_ids;
  size_t a_begin = 0, a_end = 0, b_begin = 0, b_end = 0;
};

// Without special tokens (or a post-processor): a then b, type ids 0 then 1 (HF's default_process).
Processed concat_sequences(const std::vector<int32_t>& a, const std::vector<int32_t>* b);

struct PostProcessor {
  virtual ~PostProcessor() = default;
  // a (and b, the pair's second sequence, when not null) -> with the special tokens and token type
  // ids of the single or pair template (HF's add_special_tokens=True).
  virtual Processed process(const std::vector<int32_t>& a, const std::vector<int32_t>* b) const = 0;
};

// Applies f(piece_text, emit) to every piece not yet matched as an added token; emit(offset, len,
// text) adds a sub-piece that starts `offset` bytes into the piece (for at_start).
template <typename F>
void split_pieces(Pieces& pieces, F&& f) {
  Pieces out;
  out.reserve(pieces.size() * 2);
  for (auto& p : pieces) {
    if (p.added_id >= 0) {
      out.push_back(std::move(p));
      continue;
    }
    bool at_start = p.at_start;
    auto emit = [&](size_t offset, std::string text) {
      if (text.empty()) return;
      out.push_back(Piece{std::move(text), at_start && offset == 0, -1});
    };
    f(p.text, emit);
  }
  pieces = std::move(out);
}

std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j);       // null for null
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j);  // null for null
std::unique_ptr<Decoder> make_decoder(const nlohmann::json& j);             // null for null
std::unique_ptr<Model> make_model(const nlohmann::json& j);
// token -> id resolves the template's special tokens (added tokens first, then the model).
std::unique_ptr<PostProcessor> make_post_processor(const nlohmann::json& j,
                                                   const std::function<int32_t(const std::string&)>& token_to_id);

}  // namespace mechscope::tokenizers
