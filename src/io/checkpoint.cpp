#include "io/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <regex>
#include <set>

#include "core/error.h"
#include "core/json.h"
#include "core/fs.h"

namespace mechscope::io {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> list_files(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file(ec)) out.push_back(e.path().filename().string());  // follows symlinks (HF cache)
  if (ec) fail("cannot list model directory '", dir, "': ", ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s.empty() ? "nothing" : s;
}

const std::regex kShardName(R"((.*)-(\d+)-of-(\d+)\.safetensors)");

// Several *.safetensors without an index are only taken as one model when they are a complete
// "PREFIX-0000i-of-0000n.safetensors" set (what save_pretrained writes), so unrelated files
// (an SAE, an adapter) in the same folder are never silently merged into the model, and a
// missing shard is reported rather than half a model loaded.
bool is_complete_shard_set(const std::vector<std::string>& files) {
  const std::regex& re = kShardName;
  std::string prefix;
  long total = -1;
  std::set<long> idx;
  for (auto& f : files) {
    std::smatch m;
    if (!std::regex_match(f, m, re)) return false;
    long n = std::stol(m[3]);
    if (total >= 0 && (n != total || m[1] != prefix)) return false;
    prefix = m[1];
    total = n;
    idx.insert(std::stol(m[2]));
  }
  if (total != long(files.size())) return false;
  return *idx.begin() == 1 && *idx.rbegin() == total && long(idx.size()) == total;
}

[[noreturn]] void refuse_pickle(const std::string& dir, const std::vector<std::string>& pickles) {
  fail("model directory '", dir, "' has only PyTorch pickle weights (", joined(pickles),
       "); mechscope does not load them because unpickling runs arbitrary code from the file. "
       "Convert the model to safetensors once, with Python: python -c \"from transformers import "
       "AutoModelForCausalLM as M; M.from_pretrained('",
       dir,
       "').save_pretrained('OUT', safe_serialization=True)\" (then copy the tokenizer files too), "
       "and pass OUT");
}

}  // namespace

Checkpoint Checkpoint::open(const std::string& dir) {
  if (!fs::exists(dir)) fail("model directory '", dir, "' does not exist");
  if (!dir_exists(dir))
    fail("'", dir, "' is not a directory (expected a model directory holding config.json and model.safetensors)");
  Checkpoint c;
  auto add_file = [&](const std::string& name) {
    c.files_.push_back(SafetensorsFile::open(join_path(dir, name)));
    c.file_paths_.push_back(c.files_.back()->path());
    return c.files_.size() - 1;
  };

  std::string index_path = join_path(dir, "model.safetensors.index.json");
  if (file_exists(index_path)) {
    nlohmann::json index = read_json_file(index_path);
    auto wm = index.find("weight_map");
    if (!index.is_object() || wm == index.end() || !wm->is_object())
      fail("'", index_path, "': expected a JSON object with a \"weight_map\" object (tensor name -> shard file)");
    std::map<std::string, size_t> shard_of_file;
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!it->is_string()) fail("'", index_path, "': weight_map entry '", it.key(), "' is not a file name");
      std::string shard = it->get<std::string>();
      // Shards live beside the index; a path out of the directory is a corrupt or hostile index.
      if (shard.empty() || shard.find('/') != std::string::npos || shard == "..")
        fail("'", index_path, "': tensor '", it.key(), "' names shard '", shard,
             "', expected a file name in the same directory");
      auto [pos, fresh] = shard_of_file.emplace(shard, 0);
      if (fresh) {
        if (!file_exists(join_path(dir, shard)))
          fail("'", index_path, "': tensor '", it.key(), "' is in shard '", shard, "', which is missing from '", dir,
               "'");
        pos->second = add_file(shard);
      }
      if (!c.files_[pos->second]->has(it.key()))
        fail("'", index_path, "': tensor '", it.key(), "' should be in shard '", shard, "', but '",
             c.files_[pos->second]->path(), "' has no such tensor");
      c.where_[it.key()] = pos->second;
    }
    return c;
  }

  std::vector<std::string> files = list_files(dir);
  std::vector<std::string> st_files;
  for (auto& f : files)
    if (ends_with(f, ".safetensors")) st_files.push_back(f);

  if (std::count(files.begin(), files.end(), "model.safetensors")) {
    st_files = {"model.safetensors"};
  } else if ((st_files.size() > 1 || (st_files.size() == 1 && std::regex_match(st_files[0], kShardName))) &&
             !is_complete_shard_set(st_files)) {
    fail("model directory '", dir, "' holds .safetensors files (", joined(st_files),
         ") that are neither one model file nor a complete set of shards (NAME-0000i-of-0000n.safetensors), "
         "and no model.safetensors.index.json says which tensors make up the model; add the index "
         "or keep only the model's files");
  } else if (st_files.empty()) {
    std::vector<std::string> pickles;
    for (auto& f : files)
      if (ends_with(f, ".bin") || ends_with(f, ".pt") || ends_with(f, ".pth") || ends_with(f, ".ckpt") ||
          f == "pytorch_model.bin.index.json")
        pickles.push_back(f);
    if (!pickles.empty()) refuse_pickle(dir, pickles);
    fail("no model weights in '", dir,
         "': looked for model.safetensors, model.safetensors.index.json and *.safetensors (found: ", joined(files),
         ")");
  }
  for (auto& f : st_files) {
    size_t i = add_file(f);
    for (auto& [name, info] : c.files_[i]->tensors()) {
      auto [pos, fresh] = c.where_.emplace(name, i);
      if (!fresh)
        fail("model directory '", dir, "': tensor '", name, "' is in both '", c.file_paths_[pos->second], "' and '",
             c.file_paths_[i], "'");
    }
  }
  return c;
}

bool Checkpoint::has(const std::string& name) const { return where_.count(name) > 0; }

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  for (auto& kv : where_) out.push_back(kv.first);
  return out;
}

static std::string location(const std::vector<std::string>& paths) {
  if (paths.size() == 1) return cat("'", paths[0], "'");
  fs::path p(paths.empty() ? "" : paths[0]);
  return cat("the checkpoint in '", p.parent_path().string(), "' (", paths.size(), " shards)");
}

const TensorInfo& Checkpoint::info(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) fail(location(file_paths_), ": no tensor '", name, "' (", where_.size(), " tensors)");
  return files_[it->second]->tensors().at(name);
}

at::Tensor Checkpoint::get(const std::string& name, std::optional<at::ScalarType> want) const {
  auto it = where_.find(name);
  if (it == where_.end()) fail(location(file_paths_), ": no tensor '", name, "' (", where_.size(), " tensors)");
  return files_[it->second]->get(name, want);
}

}  // namespace mechscope::io
