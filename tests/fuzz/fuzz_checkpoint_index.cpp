// model.safetensors.index.json of a sharded checkpoint, over two real shards.
#include <ATen/ATen.h>

#include <filesystem>

#include "fuzz.h"
#include "io/checkpoint.h"

using namespace mechscope;

static const std::string& shard_dir() {
  static std::string dir = [] {
    std::string d = fuzz::scratch() + "/sharded";
    std::filesystem::create_directories(d);
    io::write_safetensors(d + "/model-00001-of-00002.safetensors",
                          {{"wte.weight", at::arange(6, at::kFloat).reshape({2, 3})}});
    io::write_safetensors(d + "/model-00002-of-00002.safetensors",
                          {{"ln_f.weight", at::ones({3})}, {"ln_f.bias", at::zeros({3}, at::kHalf)}});
    return d;
  }();
  return dir;
}

MECHSCOPE_FUZZ_TARGET(checkpoint_index) {
  const std::string& dir = shard_dir();
  fuzz::put(dir + "/model.safetensors.index.json", std::string_view(reinterpret_cast<const char*>(data), size));
  auto ck = io::Checkpoint::open(dir);
  for (const auto& name : ck.names()) (void)ck.get(name, at::kFloat).sum().item<double>();
}
