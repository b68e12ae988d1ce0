// What several commands share: the model/tokenizer flags, loading, and turning --prompt/--ids into
// validated token ids.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/args.h"
#include "models/model.h"
#include "tokenizers/encoding.h"
#include "tokenizers/tokenizer.h"

namespace mechscope::cli {

struct Loaded {
  std::string dir;  // resolved model directory
  std::unique_ptr<models::HookedModel> model;
  std::unique_ptr<tokenizers::Tokenizer> tokenizer;  // null when the model has none
};

// --model, --tokenizer, --dtype, --threads, --device.
void add_model_flags(Args& a);
// --device alone, for commands that load their models some other way (sentiment, train, sae).
void add_device_flag(Args& a);
// The device --device names (Error with one clear message when it is not usable here); records it
// and the runtime (libtorch, CUDA, GPU) for this run's manifest.json.
at::Device device_from_flags(const Args& a);
// The model a command family uses when --model is not given (e.g. `heads`: the shipped emotion model),
// shown in --help; set before its flags are declared. Without one, --model is required.
void set_default_model(const std::string& dir);
// --prompt/--ids (repeatable for batches), with --pair / --token-type-ids for encoders when `segments`,
// and the encoding flags.
void add_prompt_flags(Args& a, bool repeatable, bool segments = false);
// --prepend-bos and --no-special-tokens: the encoding policy of every command that takes text.
void add_encoding_flags(Args& a);
// Applies --threads, loads the model (and its tokenizer when it has one, or --tokenizer).
Loaded load_from_flags(const Args& a);
// The tokenizer, or an Error saying how to provide one (`why` names what needs it).
const tokenizers::Tokenizer& need_tokenizer(const Loaded& m, const std::string& why);

// The encoding policy of the flags (--no-special-tokens, --prepend-bos), the model's BOS as fallback.
tokenizers::EncodeOptions encode_options(const Args& a, const Loaded& m);
// The one prompt encoder of every command (tokenizers::encode_input under the flags' policy): `text`,
// and `pair` as the second segment, as transformers' tokenizer(text[, pair]) encodes them. Error naming
// `what` when the text is not valid UTF-8, gives no tokens, or does not fit the model.
tokenizers::Encoding encode_text(const Args& a, const Loaded& m, const std::string& text, const std::string& what,
                                 const std::optional<std::string>& pair = std::nullopt, int64_t extra = 0);

// One input per --prompt / --ids, in command-line order. --ids are used exactly as given (with
// --token-type-ids after them when given); prompts go through encode_text, a --pair right after a
// --prompt as its second segment. Validates UTF-8, vocabulary range, token types and context length
// (`extra` positions are reserved, e.g. for generated tokens).
struct Inputs {
  std::vector<tokenizers::Encoding> seqs;
  bool segments = false;  // a --pair or --token-type-ids was given
};
Inputs inputs_from_flags(const Args& a, const Loaded& m, int64_t extra = 0);
// Checks token type ids against their ids and the model (length, [0, n_token_types)).
void check_token_types(const std::vector<int64_t>& types, size_t n_ids, const models::ModelConfig& cfg,
                       const std::string& what);
// Error naming `command` when the model has no language-model head (a classifier, a bare encoder).
void need_lm_head(const Loaded& m, const std::string& command);
// Checks one sequence against the model (ids in range, length within the context).
void check_ids(const std::vector<int64_t>& ids, const models::ModelConfig& cfg, const std::string& what,
               int64_t extra = 0);

// Text of `ids`, skipping ids the tokenizer does not have (embedding matrices are often padded past
// the tokenizer's vocabulary), as transformers' decode does.
std::string decode_known(const tokenizers::Tokenizer& tok, const std::vector<int64_t>& ids);

// JSON string escaping for hand-written JSON lines.
std::string json_quote(const std::string& s);

}  // namespace mechscope::cli
