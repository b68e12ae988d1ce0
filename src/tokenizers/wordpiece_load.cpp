// BERT's vocab.txt -> the tokenizer.json transformers' BertConverter writes for it, with
// do_lower_case / strip_accents / tokenize_chinese_chars and the special tokens taken from
// tokenizer_config.json (BertTokenizer's defaults when absent).
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/fs_guard.h"
#include "core/error.h"

namespace mechscope::tokenizers {

using nlohmann::json;

namespace {
std::string token_or(const json& cfg, const char* key, const char* dflt) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return dflt;
  if (it->is_object()) return it->at("content").get<std::string>();
  return it->get<std::string>();
}
}  // namespace

json bert_json(const std::filesystem::path& vocab_txt, const json& cfg) {
  {
    std::ifstream f(vocab_txt, std::ios::binary);
    if (!f) fail(vocab_txt.string(), ": cannot open");
  }
  json vocab = json::object();
  int64_t id = 0;
  // Line by line, a line longer than 16 MiB refused before it is held (issue 17).
  for_each_line(vocab_txt.string(), [&](std::string line, long long) {
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
    if (!vocab.contains(line)) vocab[line] = id;
    ++id;
  });
  if (vocab.empty()) fail(vocab_txt.string(), ": empty vocabulary");
  auto flag = [&](const char* key, bool dflt) {
    auto it = cfg.find(key);
    return it == cfg.end() || it->is_null() ? dflt : it->get<bool>();
  };
  bool lower = flag("do_lower_case", true);
  json strip = cfg.contains("strip_accents") ? cfg["strip_accents"] : json(nullptr);
  std::string unk = token_or(cfg, "unk_token", "[UNK]"), sep = token_or(cfg, "sep_token", "[SEP]"),
              pad = token_or(cfg, "pad_token", "[PAD]"), cls = token_or(cfg, "cls_token", "[CLS]"),
              mask = token_or(cfg, "mask_token", "[MASK]");
  json added = json::array();
  for (const auto& t : {pad, unk, cls, sep, mask}) {
    if (!vocab.contains(t)) continue;  // BertTokenizer only marks tokens the vocab holds
    added.push_back({{"id", vocab[t]},
                     {"content", t},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  for (const auto& t : {cls, sep})
    if (!vocab.contains(t)) fail(vocab_txt.string(), ": special token '", t, "' is not in the vocab");
  json j;
  j["added_tokens"] = added;
  j["normalizer"] = {{"type", "BertNormalizer"},
                     {"clean_text", true},
                     {"handle_chinese_chars", flag("tokenize_chinese_chars", true)},
                     {"strip_accents", strip},
                     {"lowercase", lower}};
  j["pre_tokenizer"] = {{"type", "BertPreTokenizer"}};
  j["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", json::array({{{"SpecialToken", {{"id", cls}, {"type_id", 0}}}},
                                                 {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                                                 {{"SpecialToken", {{"id", sep}, {"type_id", 0}}}}})},
                         {"special_tokens",
                          {{cls, {{"id", cls}, {"ids", {vocab[cls]}}, {"tokens", {cls}}}},
                           {sep, {{"id", sep}, {"ids", {vocab[sep]}}, {"tokens", {sep}}}}}}};
  j["decoder"] = {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}};
  j["model"] = {{"type", "WordPiece"},
                {"unk_token", unk},
                {"continuing_subword_prefix", "##"},
                {"max_input_chars_per_word", 100},
                {"vocab", std::move(vocab)}};
  return j;
}

}  // namespace mechscope::tokenizers
