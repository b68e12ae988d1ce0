// tokenizer.json "model" -> Model.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizers/bpe.h"
#include "tokenizers/wordpiece.h"

namespace mechscope::tokenizers {

namespace {

std::string str_or(const nlohmann::json& j, const char* key, const std::string& dflt) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? dflt : it->get<std::string>();
}

bool bool_or(const nlohmann::json& j, const char* key, bool dflt) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? dflt : it->get<bool>();
}

std::vector<std::pair<std::string, int32_t>> read_vocab(const nlohmann::json& j, const char* type) {
  std::vector<std::pair<std::string, int32_t>> out;
  auto it = j.find("vocab");
  if (it == j.end() || !it->is_object()) fail("model ", type, " has no \"vocab\" object");
  out.reserve(it->size());
  for (auto e = it->begin(); e != it->end(); ++e) out.emplace_back(e.key(), e.value().get<int32_t>());
  return out;
}

std::vector<std::pair<std::string, std::string>> read_merges(const nlohmann::json& j) {
  std::vector<std::pair<std::string, std::string>> out;
  auto it = j.find("merges");
  if (it == j.end() || it->is_null()) return out;
  out.reserve(it->size());
  for (const auto& m : *it) {
    if (m.is_array() && m.size() == 2) {
      out.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      continue;
    }
    std::string s = m.get<std::string>();
    size_t sp = s.find(' ');
    if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
      fail("model BPE: merge '", s, "' is not two tokens separated by one space");
    out.emplace_back(s.substr(0, sp), s.substr(sp + 1));
  }
  return out;
}

}  // namespace

std::unique_ptr<Model> make_model(const nlohmann::json& j) {
  std::string type = str_or(j, "type", "");
  if (type.empty()) {
    // Older files omit the type; tell the models apart by their fields as HF does.
    if (j.contains("merges")) type = "BPE";
    else if (j.contains("continuing_subword_prefix")) type = "WordPiece";
    else if (j.contains("unk_token")) type = "WordLevel";
  }
  if (type == "BPE") {
    auto drop = j.find("dropout");
    if (drop != j.end() && !drop->is_null() && drop->get<double>() != 0.0)
      fail("model BPE with dropout ", drop->get<double>(), " is not supported (random merges)");
    BpeOptions opt;
    auto unk = j.find("unk_token");
    if (unk != j.end() && !unk->is_null()) opt.unk_token = unk->get<std::string>();
    opt.continuing_subword_prefix = str_or(j, "continuing_subword_prefix", "");
    opt.end_of_word_suffix = str_or(j, "end_of_word_suffix", "");
    opt.fuse_unk = bool_or(j, "fuse_unk", false);
    opt.byte_fallback = bool_or(j, "byte_fallback", false);
    opt.ignore_merges = bool_or(j, "ignore_merges", false);
    return std::make_unique<Bpe>(read_vocab(j, "BPE"), read_merges(j), std::move(opt), "model BPE");
  }
  if (type == "WordPiece") {
    return std::make_unique<WordPiece>(
        read_vocab(j, "WordPiece"), str_or(j, "unk_token", "[UNK]"), str_or(j, "continuing_subword_prefix", "##"),
        j.contains("max_input_chars_per_word") && !j["max_input_chars_per_word"].is_null()
            ? j["max_input_chars_per_word"].get<size_t>()
            : size_t{100},
        "model WordPiece");
  }
  if (type == "WordLevel") {
    return std::make_unique<WordLevel>(read_vocab(j, "WordLevel"), str_or(j, "unk_token", ""), "model WordLevel");
  }
  fail("model type '", type, "' is not supported (supported: BPE, WordPiece, WordLevel)");
}

}  // namespace mechscope::tokenizers
