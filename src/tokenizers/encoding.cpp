#include "tokenizers/encoding.h"

#include "core/error.h"
#include "tokenizers/hf_tokenizer.h"

namespace mechscope::tokenizers {

Encoding encode_input(const Tokenizer& tok, std::string_view text, const EncodeOptions& opt,
                      const std::optional<std::string>& pair) {
  std::string_view second = pair ? std::string_view(*pair) : std::string_view();
  Encoding e = encode_full(tok, text, pair ? &second : nullptr, opt.special_tokens);
  if (!opt.prepend_bos) return e;
  std::optional<int64_t> bos = tok.bos_id() ? tok.bos_id() : opt.bos_fallback;
  if (!bos) fail(option("prepend_bos"), ": neither the tokenizer nor the model's config names a BOS token");
  // The post-processor already put its own first token (Llama's <s>, BERT's [CLS]): as TransformerLens,
  // which adds BOS only when the tokenizer does not prepend one.
  bool starts_special = e.a_begin > 0;
  if (starts_special || (!e.ids.empty() && e.ids[0] == *bos)) return e;
  e.ids.insert(e.ids.begin(), *bos);
  e.type_ids.insert(e.type_ids.begin(), 0);
  ++e.a_begin, ++e.a_end, ++e.b_begin, ++e.b_end;
  return e;
}

}  // namespace mechscope::tokenizers
