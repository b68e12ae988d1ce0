// tokenizer.json "normalizer" -> Normalizer.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizers/pipeline.h"

namespace mechscope::tokenizers {

std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j) {
  if (j.is_null()) return nullptr;
  std::string type = j.at("type").get<std::string>();
  fail("normalizer type '", type, "' is not supported");
}

}  // namespace mechscope::tokenizers
