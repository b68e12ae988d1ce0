// BERT's vocab.txt -> the tokenizer.json transformers' BertConverter writes for it.
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace mechscope::tokenizers {

nlohmann::json bert_json(const std::filesystem::path& vocab_txt, const nlohmann::json& cfg) {
  fail(vocab_txt.string(), ": loading a bare vocab.txt is not implemented yet");
}

}  // namespace mechscope::tokenizers
