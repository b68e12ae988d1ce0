// What several commands share: the model/tokenizer flags, loading, and turning --prompt/--ids into
// validated token ids.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "cli/args.h"
#include "models/model.h"
#include "tokenizers/tokenizer.h"

namespace mechscope::cli {

struct Loaded {
  std::string dir;  // resolved model directory
  std::unique_ptr<models::HookedModel> model;
  std::unique_ptr<tokenizers::Tokenizer> tokenizer;  // null when the model has none
};

// --model, --tokenizer, --dtype, --threads.
void add_model_flags(Args& a);
// --prompt/--ids (repeatable for batches), --prepend-bos, --no-special-tokens.
void add_prompt_flags(Args& a, bool repeatable);
// Applies --threads, loads the model (and its tokenizer when it has one, or --tokenizer).
Loaded load_from_flags(const Args& a);
// The tokenizer, or an Error saying how to provide one (`why` names what needs it).
const tokenizers::Tokenizer& need_tokenizer(const Loaded& m, const std::string& why);

// One input sequence per --prompt / --ids, in command-line order. --ids are used exactly as given;
// prompts are tokenized as transformers' tokenizer(text) does (special tokens of the post-processor
// included), with the BOS token first when --prepend-bos is on. Validates UTF-8, vocabulary range and
// context length (`extra` positions are reserved, e.g. for generated tokens).
std::vector<std::vector<int64_t>> inputs_from_flags(const Args& a, const Loaded& m, int64_t extra = 0);
// Checks one sequence against the model (ids in range, length within the context).
void check_ids(const std::vector<int64_t>& ids, const models::ModelConfig& cfg, const std::string& what,
               int64_t extra = 0);

// Text of `ids`, skipping ids the tokenizer does not have (embedding matrices are often padded past
// the tokenizer's vocabulary), as transformers' decode does.
std::string decode_known(const tokenizers::Tokenizer& tok, const std::vector<int64_t>& ids);

// JSON string escaping for hand-written JSON lines.
std::string json_quote(const std::string& s);

}  // namespace mechscope::cli
