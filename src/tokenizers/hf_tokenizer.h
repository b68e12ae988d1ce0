// The tokenizer.json pipeline (Hugging Face `tokenizers`), which every tokenizer mechscope loads
// is: GPT-2's vocab.json + merges.txt and BERT's vocab.txt are turned into the equivalent
// tokenizer.json. Beyond the Tokenizer interface it offers what HF's add_special_tokens=True and
// skip_special_tokens=True do.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizers/added_tokens.h"
#include "tokenizers/pipeline.h"
#include "tokenizers/tokenizer.h"

namespace mechscope::tokenizers {

class HfTokenizer : public Tokenizer {
 public:
  // `j` is the parsed tokenizer.json; `where` names its file in error messages. Error naming
  // the component type when one is not supported.
  HfTokenizer(const nlohmann::json& j, const std::string& where);

  std::vector<int64_t> encode(std::string_view text) const override;
  // encode, then the post-processor's special tokens (HF's add_special_tokens=True), e.g.
  // [CLS] ... [SEP] for BERT, <s> ... for Llama 2; as encode when there is no post-processor.
  std::vector<int64_t> encode_with_special(std::string_view text) const;
  // HF's tokenizer(text, pair, add_special_tokens=special): the single or pair template's special
  // tokens, the token type ids, and where each text's tokens are. Error when the post-processor has
  // no pair template and `pair` is given.
  Encoding encode_full(std::string_view text, const std::string_view* pair, bool special) const;
  std::string decode(const std::vector<int64_t>& ids) const override;
  // HF's decode(ids, skip_special_tokens=skip_special).
  std::string decode(const std::vector<int64_t>& ids, bool skip_special) const;
  // The vocabulary entries of `ids` (HF's convert_ids_to_tokens).
  std::vector<std::string> tokens(const std::vector<int64_t>& ids) const;

  std::string id_to_token(int64_t id) const override;
  int64_t token_to_id(std::string_view token) const override;
  std::string display(int64_t id) const override;
  int64_t size() const override;
  std::optional<int64_t> bos_id() const override { return bos_; }
  std::optional<int64_t> eos_id() const override { return eos_; }
  std::optional<int64_t> unk_id() const override { return unk_; }

  // bos/eos from tokenizer_config.json; error naming `where` when the token is not known.
  void set_bos_eos(const std::optional<std::string>& bos, const std::optional<std::string>& eos,
                   const std::string& where);
  bool is_special(int64_t id) const;

 private:
  const std::string& token_ref(int64_t id) const;
  std::string decode_tokens(std::vector<std::string> toks, bool escape) const;

  std::string where_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<PostProcessor> post_processor_;
  std::unique_ptr<Decoder> decoder_;
  AddedVocab added_;
  int64_t size_ = 0;
  std::optional<int64_t> bos_, eos_, unk_;
};

// The HfTokenizer behind `t`; Error when `t` is another kind (none exists today).
const HfTokenizer& as_hf(const Tokenizer& t);
// Free-function forms of the HfTokenizer extras, for callers holding a Tokenizer.
std::vector<int64_t> encode_with_special(const Tokenizer& t, std::string_view text);
Encoding encode_full(const Tokenizer& t, std::string_view text, const std::string_view* pair, bool special);
std::string decode_skip_special(const Tokenizer& t, const std::vector<int64_t>& ids);

}  // namespace mechscope::tokenizers
