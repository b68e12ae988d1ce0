// tokenizer.json "pre_tokenizer" -> PreTokenizer.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizers/byte_level.h"

namespace mechscope::tokenizers {

namespace {
bool bool_or(const nlohmann::json& j, const char* key, bool dflt) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? dflt : it->get<bool>();
}
}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j) {
  if (j.is_null()) return nullptr;
  std::string type = j.at("type").get<std::string>();
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPreTokenizer>(bool_or(j, "add_prefix_space", true),
                                                   bool_or(j, "use_regex", true));
  }
  fail("pre_tokenizer type '", type, "' is not supported");
}

}  // namespace mechscope::tokenizers
