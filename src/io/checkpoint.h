// A Hugging Face model directory: config.json plus one model.safetensors or a sharded set
// (model.safetensors.index.json), found from a path or a hub id in the local HF cache.
#pragma once
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "io/safetensors.h"

namespace mechscope::io {

// `model` is a directory (used as is), or a hub id ("gpt2", "openai-community/gpt2",
// "EleutherAI/pythia-160m") looked up in the Hugging Face cache: $HF_HUB_CACHE, else $HF_HOME/hub,
// else ~/.cache/huggingface/hub; models--ORG--NAME/snapshots/<rev>/ where <rev> is what
// refs/main names (else the only/newest snapshot). Error saying how to download it when not found.
std::string resolve_model_dir(const std::string& model);

// JSON files are read with mechscope::read_json_file (core/json.h).
using mechscope::read_json_file;

class Checkpoint {
 public:
  // Opens the weights of `dir`: model.safetensors, or every shard named by
  // model.safetensors.index.json (shards opened once each; weight_map checked against their
  // headers). A directory with only pytorch_model.bin / *.bin / *.pt / *.pth is refused with the
  // reason (unpickling runs code) and how to convert to safetensors.
  static Checkpoint open(const std::string& dir);

  bool has(const std::string& name) const;
  std::vector<std::string> names() const;                 // sorted
  const TensorInfo& info(const std::string& name) const;  // Error naming the tensor when missing
  // As SafetensorsFile::get, from whichever shard holds `name`.
  at::Tensor get(const std::string& name, std::optional<at::ScalarType> want = std::nullopt) const;
  const std::vector<std::string>& files() const { return file_paths_; }

 private:
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::vector<std::string> file_paths_;
  std::map<std::string, size_t> where_;  // tensor name -> index in files_
};

}  // namespace mechscope::io
