// What `trace` and `locate` share: the tracing flags, prompt/answer encoding and the JSON they write.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "analysis/causal_trace/causal_trace.h"
#include "cli/args.h"
#include "cli/common.h"
#include "core/text.h"
#include "report/render.h"

namespace mechscope::cli {

struct TraceSettings {
  analysis::causal_trace::NoiseRule rule;
  analysis::causal_trace::TraceOptions opt;  // noise filled in once the embedding std is known
  std::vector<report::Format> formats{report::Format::Png};
};

// --noise (or, for locate, the seed's --noise-level K meaning sK), --samples (--num-noise-samples),
// --window, --kinds, --seed, --replace, --naive, --formats, --max-batch-tokens.
void add_trace_flags(Args& a, bool locate_names = false);
TraceSettings trace_settings_from_flags(const Args& a, bool locate_names = false);

// The prompt by the one encoder of every command (encode_text: tokenizer(text), --prepend-bos,
// --no-special-tokens).
tokenizers::Encoding encode_prompt(const Args& a, const Loaded& m, const std::string& text, const std::string& what);
// The subject's tokens [begin, end) in the encoded prompt (ROME's find_token_range, offset past the
// special tokens before the prompt's own); Error naming the subject when it is not in the prompt.
std::pair<int64_t, int64_t> subject_range(const Loaded& m, const tokenizers::Encoding& e, const std::string& subject,
                                          const std::string& prompt, const std::string& what);
// The subject encoded alone as the prompts are (for the noise level's embedding std, as ROME).
std::vector<int64_t> subject_ids(const Args& a, const Loaded& m, const std::string& subject, const std::string& what);
// One token for an answer text: " TEXT" first (answers follow a space), then TEXT; Error otherwise.
int64_t answer_token(const Loaded& m, const std::string& text, const std::string& prompt, const std::string& what);
std::vector<std::string> token_labels(const Loaded& m,
                                      const std::vector<int64_t>& ids);  // ids as text without a tokenizer
std::string token_text(const Loaded& m, int64_t id);

nlohmann::json settings_json(const TraceSettings& s, double embedding_std);
nlohmann::json trace_json(const analysis::causal_trace::TraceResult& r, const analysis::causal_trace::TraceInput& in,
                          const std::vector<std::string>& tokens, const std::string& answer, const TraceSettings& s,
                          double embedding_std);

}  // namespace mechscope::cli
