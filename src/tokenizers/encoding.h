// The one way a text becomes model input, for every command and analysis: as Hugging Face's
// tokenizer(text) (or tokenizer(text, pair)) encodes it, with the tokenizer's own post-processor
// (nothing added for GPT-2, <s> for Llama, [CLS] ... [SEP] for BERT), which is also what ROME's
// make_inputs does; optionally the BOS token first when the tokenizer did not put a special token
// there itself (TransformerLens's to_tokens with prepend_bos).
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "tokenizers/tokenizer.h"

namespace mechscope::tokenizers {

struct EncodeOptions {
  bool special_tokens = true;           // the post-processor's template (HF's add_special_tokens=True)
  bool prepend_bos = false;             // BOS first unless the encoding already starts with a special token or BOS
  std::optional<int64_t> bos_fallback;  // BOS id when the tokenizer names none (the model's bos_token_id)
};

// text (and the pair's second text when given) -> ids, token type ids and each text's token range.
// Error when the text is not valid UTF-8, when prepend_bos finds no BOS id, or when a pair is given
// to a tokenizer without a pair template.
Encoding encode_input(const Tokenizer& tok, std::string_view text, const EncodeOptions& opt,
                      const std::optional<std::string>& pair = std::nullopt);

}  // namespace mechscope::tokenizers
