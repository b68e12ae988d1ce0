// Tokenizers from plain vocabulary files: GPT-2's vocab.json + merges.txt, and BERT's vocab.txt.
// Input: the first byte picks the kind; then vocab "\0\0" merges "\0\0" text (BPE) or vocab "\0\0" text.
#include <filesystem>

#include "fuzz.h"
#include "core/utf8.h"
#include "tokenizers/tokenizer.h"

using namespace mechscope;

MECHSCOPE_FUZZ_TARGET(vocab_files) {
  if (size < 1) return;
  bool bpe = data[0] & 1;
  auto [first, rest] = fuzz::split2(data + 1, size - 1);
  std::string dir = fuzz::scratch() + (bpe ? "/bpe" : "/wordpiece");
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string text;
  if (bpe) {
    auto [merges, t] = fuzz::split2(reinterpret_cast<const uint8_t*>(rest.data()), rest.size());
    fuzz::put(dir + "/vocab.json", first);
    fuzz::put(dir + "/merges.txt", merges);
    text = t;
  } else {
    fuzz::put(dir + "/vocab.txt", first);
    text = rest;
  }
  auto tok = tokenizers::load_tokenizer(dir);
  if (text.empty()) text = "The quick brown fox, naïve café 日本 unaffable";
  if (!utf8::valid(text)) return;
  auto ids = tok->encode(text);
  for (int64_t id : ids) FUZZ_CHECK(id >= 0 && id < tok->size(), "vocab_files", "id outside the vocabulary");
  (void)tok->decode(ids);
}
