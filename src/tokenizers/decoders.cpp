// tokenizer.json "decoder" -> Decoder.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizers/byte_level.h"

namespace mechscope::tokenizers {

std::unique_ptr<Decoder> make_decoder(const nlohmann::json& j) {
  if (j.is_null()) return nullptr;
  std::string type = j.at("type").get<std::string>();
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  fail("decoder type '", type, "' is not supported");
}

}  // namespace mechscope::tokenizers
