// tokenizer.json loading, then encoding and decoding a text with it. Input: the file, then "\0\0" and
// the text (a default multi-script text when absent). Round-trip checks hold for every tokenizer
// whose decoder is lossless on what it encoded; here only structural ones: ids in range, decodable.
#include "fuzz.h"
#include "core/utf8.h"
#include "tokenizers/hf_tokenizer.h"
#include "tokenizers/tokenizer.h"

using namespace mechscope;

MECHSCOPE_FUZZ_TARGET(tokenizer_json) {
  auto [file, text] = fuzz::split2(data, size);
  std::string path = fuzz::scratch() + "/tokenizer.json";
  fuzz::put(path, file);
  auto tok = tokenizers::load_tokenizer(path);
  std::string t =
      text.empty() ? std::string("Hello world, naïve café: 日本語 テスト 123 <|endoftext|> [CLS]") : std::string(text);
  if (!utf8::valid(t)) return;
  auto ids = tok->encode(t);
  for (int64_t id : ids) FUZZ_CHECK(id >= 0 && id < tok->size(), "tokenizer_json", "id outside the vocabulary");
  (void)tok->decode(ids);
  auto full = tokenizers::encode_full(*tok, t, nullptr, true);
  FUZZ_CHECK(full.type_ids.empty() || full.type_ids.size() == full.ids.size(), "tokenizer_json", "type ids length");
  std::string_view pair = "second segment";
  (void)tokenizers::encode_full(*tok, t, &pair, true);
  for (int64_t id : full.ids) (void)tok->display(id);
}
