// load_tokenizer: picks the files a checkpoint directory holds and builds the HfTokenizer.
// vocab.json + merges.txt (GPT-2) and vocab.txt (BERT) become the tokenizer.json that HF's
// converters (transformers' convert_slow_tokenizer) would write for them.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/fs_guard.h"
#include "core/error.h"
#include "core/json.h"
#include "tokenizers/hf_tokenizer.h"

namespace mechscope::tokenizers {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) fail(p.string(), ": cannot open");
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

json read_json(const fs::path& p) { return parse_json(read_file(p), "'" + p.string() + "'"); }

// tokenizer_config.json stores special tokens as strings or {"content": ...} objects.
std::optional<std::string> config_token(const json& cfg, const char* key) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content")) return (*it)["content"].get<std::string>();
  fail("tokenizer_config.json: \"", key, "\" is neither a string nor {\"content\": ...}");
}

json added_token(int64_t id, const std::string& content) {
  return json{{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", false},
              {"rstrip", false}, {"normalized", false}, {"special", true}};
}

// Special tokens named in tokenizer_config.json (or `defaults` when it names none), each the
// vocab's id or, when absent from the vocab, the next free id (as transformers adds them).
json special_tokens(const json& cfg, const json& vocab, std::vector<std::string> defaults) {
  std::vector<std::string> names;
  for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"})
    if (auto t = config_token(cfg, key)) names.push_back(*t);
  if (cfg.contains("additional_special_tokens") && cfg["additional_special_tokens"].is_array())
    for (const auto& t : cfg["additional_special_tokens"])
      names.push_back(t.is_string() ? t.get<std::string>() : t.at("content").get<std::string>());
  if (names.empty()) names = std::move(defaults);
  int64_t next = 0;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) next = std::max<int64_t>(next, it.value().get<int64_t>() + 1);
  json out = json::array();
  std::vector<std::string> seen;
  for (const auto& n : names) {
    if (std::find(seen.begin(), seen.end(), n) != seen.end()) continue;
    seen.push_back(n);
    out.push_back(added_token(vocab.contains(n) ? vocab[n].get<int64_t>() : next++, n));
  }
  return out;
}

json gpt2_json(const fs::path& vocab_path, const fs::path& merges_path, const json& cfg) {
  json vocab = read_json(vocab_path);
  if (!vocab.is_object()) fail(vocab_path.string(), ": expected a JSON object token -> id");
  json merges = json::array();
  // Line by line, a line longer than 16 MiB refused before it is held (issue 17).
  for_each_line(merges_path.string(), [&](std::string line, long long lineno) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.rfind("#version", 0) == 0) return;
    size_t sp = line.find(' ');
    if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos)
      fail(merges_path.string(), ":", lineno, ": expected two tokens separated by one space");
    merges.push_back(line);
  });
  bool prefix =
      cfg.contains("add_prefix_space") && cfg["add_prefix_space"].is_boolean() && cfg["add_prefix_space"].get<bool>();
  json j;
  j["added_tokens"] = special_tokens(cfg, vocab, {"<|endoftext|>"});
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", prefix}, {"use_regex", true}};
  j["post_processor"] = nullptr;
  j["decoder"] = {{"type", "ByteLevel"}};
  j["model"] = {{"type", "BPE"}, {"vocab", std::move(vocab)}, {"merges", std::move(merges)}, {"unk_token", nullptr}};
  return j;
}

struct Found {
  fs::path tokenizer_json, vocab_json, merges, vocab_txt;
};

Found find_files(const fs::path& dir) {
  Found f;
  if (fs::is_regular_file(dir / "tokenizer.json")) f.tokenizer_json = dir / "tokenizer.json";
  for (auto [v, m] : {std::pair{"vocab.json", "merges.txt"}, std::pair{"encoder.json", "vocab.bpe"}}) {
    if (f.vocab_json.empty() && fs::is_regular_file(dir / v) && fs::is_regular_file(dir / m))
      f.vocab_json = dir / v, f.merges = dir / m;
  }
  if (fs::is_regular_file(dir / "vocab.txt")) f.vocab_txt = dir / "vocab.txt";
  return f;
}

}  // namespace

json bert_json(const fs::path& vocab_txt, const json& cfg);  // wordpiece_load.cpp

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  fs::path p(path);
  fs::path dir = fs::is_directory(p) ? p : p.parent_path();
  json cfg = json::object();
  if (fs::is_regular_file(dir / "tokenizer_config.json")) {
    cfg = read_json(dir / "tokenizer_config.json");
    if (!cfg.is_object()) fail((dir / "tokenizer_config.json").string(), ": expected an object");
  }
  std::unique_ptr<HfTokenizer> tok;
  std::string source;
  std::optional<std::string> default_special;
  if (fs::is_regular_file(p)) {
    source = p.string();
    tok = std::make_unique<HfTokenizer>(read_json(p), source);
  } else if (fs::is_directory(p)) {
    Found f = find_files(p);
    if (!f.tokenizer_json.empty()) {
      source = f.tokenizer_json.string();
      tok = std::make_unique<HfTokenizer>(read_json(f.tokenizer_json), source);
    } else if (!f.vocab_json.empty()) {
      source = f.vocab_json.string();
      tok = std::make_unique<HfTokenizer>(gpt2_json(f.vocab_json, f.merges, cfg), source);
      default_special = "<|endoftext|>";  // GPT2Tokenizer's default bos/eos
    } else if (!f.vocab_txt.empty()) {
      source = f.vocab_txt.string();
      tok = std::make_unique<HfTokenizer>(bert_json(f.vocab_txt, cfg), source);
    } else {
      fail(path,
           ": no tokenizer found (looked for tokenizer.json, vocab.json + merges.txt, "
           "encoder.json + vocab.bpe, vocab.txt)");
    }
  } else {
    fail(path,
         ": no such file or directory (expected a tokenizer.json or a checkpoint "
         "directory holding one)");
  }
  auto bos = config_token(cfg, "bos_token"), eos = config_token(cfg, "eos_token");
  if (!cfg.contains("bos_token") && default_special) bos = default_special;
  if (!cfg.contains("eos_token") && default_special) eos = default_special;
  tok->set_bos_eos(bos, eos, (dir / "tokenizer_config.json").string());
  return tok;
}

bool has_tokenizer(const std::string& dir) {
  if (!fs::is_directory(dir)) return false;
  Found f = find_files(dir);
  return !f.tokenizer_json.empty() || !f.vocab_json.empty() || !f.vocab_txt.empty();
}

}  // namespace mechscope::tokenizers
