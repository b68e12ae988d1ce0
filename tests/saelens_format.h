// What SAELens's loaders require of an SAE folder, as read from its source (no PyPI here, so SAELens
// itself cannot run in the tests):
// - SAELens 6 (jbloomAus/SAELens sae_lens/saes/sae.py SAE.load_from_disk, loading/pretrained_sae_loaders.py
//   sae_lens_disk_loader / read_sae_components_from_disk / handle_config_defaulting / handle_pre_6_0_config,
//   constants.py DTYPE_MAP and file names): cfg.json without "sae_lens_version" is a pre-6 config, renamed
//   (hook_point -> hook_name, activation_fn_str -> activation_fn, ...) and filtered into the architecture's
//   SAEConfig (d_in, d_sae, dtype, device, apply_b_dec_to_input, normalize_activations,
//   reshape_activations; topk: k from activation_fn_kwargs.k) and SAEMetadata (model_name, hook_name,
//   hook_layer, hook_head_index, prepend_bos, context_size, dataset_path, neuronpedia_id, ...);
//   cfg["dtype"] indexes DTYPE_MAP; the weights go through a strict load_state_dict.
// - SAELens <= 5 (sae_lens/sae.py SAEConfig, load_from_pretrained): every field of its SAEConfig
//   dataclass without a default must be present (architecture ... sae_lens_training_version).
// - sparsity.safetensors holds "sparsity" [d_sae] (sae_lens_huggingface_loader's f.get_tensor("sparsity")).
#pragma once
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <set>
#include <string>

#include "core/fs.h"
#include "io/safetensors.h"

namespace mstest {

inline void expect_saelens_folder(const std::string& dir) {
  SCOPED_TRACE(dir);
  nlohmann::json c = nlohmann::json::parse(mechscope::read_file(dir + "/cfg.json"));
  ASSERT_TRUE(c.is_object());
  EXPECT_FALSE(c.contains("sae_lens_version"));  // so both 6.x (via handle_pre_6_0_config) and <= 5 read it
  auto is_int = [](const nlohmann::json& v) { return v.is_number_integer(); };
  auto is_str = [](const nlohmann::json& v) { return v.is_string(); };
  auto is_bool = [](const nlohmann::json& v) { return v.is_boolean(); };
  auto opt_int = [](const nlohmann::json& v) { return v.is_null() || v.is_number_integer(); };
  auto opt_str = [](const nlohmann::json& v) { return v.is_null() || v.is_string(); };
  // SAELens <= 5's SAEConfig fields without defaults, with their types.
  const std::vector<std::pair<std::string, std::function<bool(const nlohmann::json&)>>> required = {
      {"architecture", is_str},
      {"d_in", is_int},
      {"d_sae", is_int},
      {"activation_fn_str", is_str},
      {"apply_b_dec_to_input", is_bool},
      {"finetuning_scaling_factor", is_bool},
      {"context_size", is_int},
      {"model_name", is_str},
      {"hook_name", is_str},
      {"hook_layer", is_int},
      {"hook_head_index", opt_int},
      {"prepend_bos", is_bool},
      {"dataset_path", is_str},
      {"dataset_trust_remote_code", is_bool},
      {"normalize_activations", is_str},
      {"dtype", is_str},
      {"device", is_str},
      {"sae_lens_training_version", opt_str}};
  for (auto& [key, ok] : required) {
    ASSERT_TRUE(c.contains(key)) << "cfg.json lacks '" << key << "'";
    EXPECT_TRUE(ok(c[key])) << key << " = " << c[key].dump();
  }
  if (c.contains("activation_fn_kwargs")) EXPECT_TRUE(c["activation_fn_kwargs"].is_object());
  if (c.contains("neuronpedia_id")) EXPECT_TRUE(opt_str(c["neuronpedia_id"]));
  std::string arch = c["architecture"];
  EXPECT_TRUE(arch == "standard" || arch == "jumprelu" || arch == "topk") << arch;
  if (arch == "topk") EXPECT_TRUE(c["activation_fn_kwargs"]["k"].is_number_integer());
  EXPECT_TRUE(std::set<std::string>({"float32", "float64", "float16", "bfloat16", "torch.float32", "torch.float64",
                                     "torch.float16", "torch.bfloat16"})
                  .count(c["dtype"]));
  EXPECT_TRUE(std::set<std::string>({"none", "expected_average_only_in", "constant_norm_rescale", "layer_norm"})
                  .count(c["normalize_activations"]));
  if (c.contains("reshape_activations"))
    EXPECT_TRUE(c["reshape_activations"] == "none" || c["reshape_activations"] == "hook_z");
  EXPECT_EQ(c["finetuning_scaling_factor"], false);  // so no finetuning_scaling_factor tensor is expected

  int64_t di = c["d_in"], ds = c["d_sae"];
  auto w = mechscope::io::SafetensorsFile::open(dir + "/sae_weights.safetensors");
  std::map<std::string, std::vector<int64_t>> want = {
      {"W_enc", {di, ds}}, {"b_enc", {ds}}, {"W_dec", {ds, di}}, {"b_dec", {di}}};
  if (arch == "jumprelu") want["threshold"] = {ds};
  std::set<std::string> names;
  for (auto& [name, info] : w->tensors()) names.insert(name);
  std::set<std::string> want_names;
  for (auto& [name, shape] : want) want_names.insert(name);
  EXPECT_EQ(names, want_names);  // a strict load_state_dict: nothing missing, nothing extra
  for (auto& [name, shape] : want) {
    if (!w->has(name)) continue;
    at::Tensor t = w->get(name);
    EXPECT_EQ(t.sizes().vec(), shape) << name;
    EXPECT_EQ(t.scalar_type(), at::kFloat) << name;
  }
  if (mechscope::file_exists(dir + "/sparsity.safetensors")) {
    auto sp = mechscope::io::SafetensorsFile::open(dir + "/sparsity.safetensors");
    ASSERT_TRUE(sp->has("sparsity"));
    EXPECT_EQ(sp->get("sparsity").sizes().vec(), std::vector<int64_t>{ds});
    EXPECT_EQ(sp->get("sparsity").scalar_type(), at::kFloat);
  }
}

}  // namespace mstest
