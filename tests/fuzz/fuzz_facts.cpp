// locate's facts JSONL, then ROME's subject search over each fact's tokenized prompt (GPT-2's real
// tokenizer, as the fixture ships it). The first byte chooses skip_bad.
#include "fuzz.h"
#include "core/error.h"
#include "analysis/causal_trace/facts.h"
#include "tokenizers/tokenizer.h"

using namespace mechscope;

MECHSCOPE_FUZZ_TARGET(facts) {
  if (size < 1) return;
  static auto tok = tokenizers::load_tokenizer(fuzz::source_dir() + "/tests/fixtures/gpt2/model");
  std::string path = fuzz::scratch() + "/facts.jsonl";
  fuzz::put(path, std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  auto ff = analysis::causal_trace::read_facts(path, data[0] & 1);
  for (const auto& f : ff.facts) {
    auto ids = tok->encode(f.prompt);
    try {
      auto [b, e] = analysis::causal_trace::find_token_range(*tok, ids, f.subject, f.prompt);
      FUZZ_CHECK(0 <= b && b < e && e <= (int64_t)ids.size(), "facts", "subject range outside the prompt");
    } catch (const Error&) {
      // a subject that is not in its prompt: reported per fact, the other facts go on
    }
    (void)analysis::causal_trace::file_safe(f.id);
  }
}
