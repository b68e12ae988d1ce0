#include "io/checkpoint.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "core/fs.h"
#include "test_util.h"

using mechscope::Error;
using namespace mechscope::io;
namespace fs = std::filesystem;

namespace {

const std::string kModelDir = mstest::fixture("gpt2/model");

template <typename F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a mechscope::Error";
  return "";
}

#define EXPECT_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << "message: " << (msg)

// Splits the fixture model into two shards named as save_pretrained names them; returns the
// weight_map it used (tensor -> shard file).
std::map<std::string, std::string> write_two_shards(const std::string& dir) {
  auto src = SafetensorsFile::open(kModelDir + "/model.safetensors");
  std::vector<std::pair<std::string, at::Tensor>> shard[2];
  std::map<std::string, std::string> weight_map;
  const char* names[2] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
  int i = 0;
  for (auto& kv : src->tensors()) {
    int s = i++ % 2;
    shard[s].emplace_back(kv.first, src->get(kv.first));
    weight_map[kv.first] = names[s];
  }
  for (int s = 0; s < 2; s++) write_safetensors(dir + "/" + names[s], shard[s], {{"format", "pt"}});
  fs::copy_file(kModelDir + "/config.json", dir + "/config.json");
  return weight_map;
}

void write_index(const std::string& dir, const std::map<std::string, std::string>& weight_map) {
  nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}};
  mechscope::write_file_atomic(dir + "/model.safetensors.index.json", index.dump(2));
}

}  // namespace

TEST(Checkpoint, OpensSingleFile) {
  Checkpoint c = Checkpoint::open(kModelDir);
  EXPECT_EQ(c.files(), std::vector<std::string>{kModelDir + "/model.safetensors"});
  auto names = c.names();
  EXPECT_EQ(names.size(), 28u);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_TRUE(c.has("transformer.wte.weight"));
  EXPECT_FALSE(c.has("lm_head.weight"));  // tied to wte in GPT-2 checkpoints
  EXPECT_EQ(c.info("transformer.h.1.mlp.c_fc.weight").shape, (std::vector<int64_t>{32, 128}));
  at::Tensor w = c.get("transformer.h.1.mlp.c_fc.weight", at::kDouble);
  EXPECT_EQ(w.scalar_type(), at::kDouble);
}

TEST(Checkpoint, MissingTensorNamesIt) {
  Checkpoint c = Checkpoint::open(kModelDir);
  std::string msg = error_of([&] { c.get("lm_head.weight"); });
  EXPECT_HAS(msg, "no tensor 'lm_head.weight'");
  EXPECT_HAS(msg, kModelDir);
  EXPECT_HAS(error_of([&] { c.info("nope"); }), "'nope'");
}

TEST(Checkpoint, ShardedWithIndexGivesIdenticalTensors) {
  std::string dir = mstest::tmp_dir("ckpt-sharded");
  write_index(dir, write_two_shards(dir));
  Checkpoint single = Checkpoint::open(kModelDir);
  Checkpoint sharded = Checkpoint::open(dir);
  EXPECT_EQ(sharded.files().size(), 2u);
  ASSERT_EQ(sharded.names(), single.names());
  for (auto& n : single.names()) {
    SCOPED_TRACE(n);
    EXPECT_TRUE(at::equal(sharded.get(n), single.get(n)));
    EXPECT_EQ(sharded.info(n).shape, single.info(n).shape);
  }
}

TEST(Checkpoint, ShardedWithoutIndexWhenTheSetIsComplete) {
  std::string dir = mstest::tmp_dir("ckpt-noindex");
  write_two_shards(dir);
  Checkpoint c = Checkpoint::open(dir);
  EXPECT_EQ(c.names(), Checkpoint::open(kModelDir).names());

  // An unrelated file makes it ambiguous which files form the model.
  write_safetensors(dir + "/sae.safetensors", {{"W_enc", at::ones({2, 2})}});
  std::string msg = error_of([&] { Checkpoint::open(dir); });
  EXPECT_HAS(msg, "sae.safetensors");
  EXPECT_HAS(msg, "model.safetensors.index.json");

  // An incomplete set is refused rather than half a model loaded.
  fs::remove(dir + "/sae.safetensors");
  fs::remove(dir + "/model-00002-of-00002.safetensors");
  EXPECT_HAS(error_of([&] { Checkpoint::open(dir); }), "complete set of shards");

  // One file under any other name is unambiguous.
  fs::rename(dir + "/model-00001-of-00002.safetensors", dir + "/weights.safetensors");
  EXPECT_EQ(Checkpoint::open(dir).files(), std::vector<std::string>{dir + "/weights.safetensors"});
}

TEST(Checkpoint, WeightMapNamingMissingTensorIsRefused) {
  std::string dir = mstest::tmp_dir("ckpt-badmap");
  auto wm = write_two_shards(dir);
  wm["transformer.h.0.ln_1.weight"] = wm["transformer.h.0.ln_1.weight"] == "model-00001-of-00002.safetensors"
                                          ? "model-00002-of-00002.safetensors"
                                          : "model-00001-of-00002.safetensors";
  write_index(dir, wm);
  std::string msg = error_of([&] { Checkpoint::open(dir); });
  EXPECT_HAS(msg, "model.safetensors.index.json");
  EXPECT_HAS(msg, "tensor 'transformer.h.0.ln_1.weight'");
  EXPECT_HAS(msg, wm["transformer.h.0.ln_1.weight"]);

  wm["transformer.h.0.ln_1.weight"] = "model-00003-of-00002.safetensors";
  write_index(dir, wm);
  msg = error_of([&] { Checkpoint::open(dir); });
  EXPECT_HAS(msg, "model-00003-of-00002.safetensors");
  EXPECT_HAS(msg, "missing");

  wm["transformer.h.0.ln_1.weight"] = "../model.safetensors";
  write_index(dir, wm);
  EXPECT_HAS(error_of([&] { Checkpoint::open(dir); }), "same directory");

  mechscope::write_file_atomic(dir + "/model.safetensors.index.json", R"({"metadata": {}})");
  EXPECT_HAS(error_of([&] { Checkpoint::open(dir); }), "weight_map");
}

TEST(Checkpoint, PickleOnlyDirectoryIsRefused) {
  std::string dir = mstest::tmp_dir("ckpt-pickle");
  mechscope::write_file_atomic(dir + "/config.json", "{}");
  mechscope::write_file_atomic(dir + "/pytorch_model.bin", "not really a pickle");
  std::string msg = error_of([&] { Checkpoint::open(dir); });
  EXPECT_HAS(msg, dir);
  EXPECT_HAS(msg, "pytorch_model.bin");
  EXPECT_HAS(msg, "pickle");
  EXPECT_HAS(msg, "arbitrary code");
  EXPECT_HAS(msg, "safe_serialization=True");
}

TEST(Checkpoint, MissingDirectoryOrNoWeights) {
  std::string dir = mstest::tmp_dir("ckpt-empty");
  EXPECT_HAS(error_of([&] { Checkpoint::open(dir + "/gone"); }), "model directory '" + dir + "/gone' does not exist");
  mechscope::write_file_atomic(dir + "/config.json", "{}");
  std::string msg = error_of([&] { Checkpoint::open(dir); });
  EXPECT_HAS(msg, "no model weights");
  EXPECT_HAS(msg, "model.safetensors.index.json");
  EXPECT_HAS(msg, "config.json");
  EXPECT_HAS(error_of([&] { Checkpoint::open(dir + "/config.json"); }), "not a directory");
}

TEST(ReadJsonFile, ParsesAndNamesFileOnError) {
  EXPECT_EQ(read_json_file(kModelDir + "/config.json")["n_embd"], 32);
  std::string dir = mstest::tmp_dir("json");
  mechscope::write_file_atomic(dir + "/bad.json", "{\"a\": 1,\n \"b\": }");
  std::string msg = error_of([&] { read_json_file(dir + "/bad.json"); });
  EXPECT_HAS(msg, dir + "/bad.json");
  EXPECT_HAS(msg, "parse error");
  EXPECT_HAS(msg, "line 2");
  EXPECT_HAS(error_of([&] { read_json_file(dir + "/none.json"); }), dir + "/none.json");
  EXPECT_HAS(error_of([&] { read_json_file(dir); }), "is a directory");
}

// Each test gets the Hugging Face environment variables cleared and restored afterwards.
class HfCache : public ::testing::Test {
 protected:
  const std::vector<std::string> vars_ = {"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"};
  std::map<std::string, std::optional<std::string>> saved_;
  void SetUp() override {
    for (auto& v : vars_) {
      const char* s = std::getenv(v.c_str());
      saved_[v] = s ? std::optional<std::string>(s) : std::nullopt;
      ::unsetenv(v.c_str());
    }
  }
  void TearDown() override {
    for (auto& [v, s] : saved_) s ? ::setenv(v.c_str(), s->c_str(), 1) : ::unsetenv(v.c_str());
  }

  // HUB/models--ORG--NAME as huggingface_hub lays it out: files in blobs/, symlinked from snapshots/<rev>/.
  static std::string make_repo(const std::string& hub, const std::string& folder, const std::string& rev,
                               bool with_ref) {
    std::string repo = hub + "/" + folder;
    mechscope::make_dirs(repo + "/blobs");
    mechscope::make_dirs(repo + "/snapshots/" + rev);
    for (std::string f : {"config.json", "model.safetensors"}) {
      std::string blob = "blob-" + rev + "-" + f;
      fs::copy_file(kModelDir + "/" + f, repo + "/blobs/" + blob, fs::copy_options::overwrite_existing);
      fs::create_symlink("../../blobs/" + blob, repo + "/snapshots/" + rev + "/" + f);
    }
    if (with_ref) {
      mechscope::make_dirs(repo + "/refs");
      mechscope::write_file_atomic(repo + "/refs/main", rev);  // no trailing newline, as the hub writes it
    }
    return repo;
  }
};

TEST_F(HfCache, ExistingDirectoryIsUsedAsIs) { EXPECT_EQ(resolve_model_dir(kModelDir), kModelDir); }

TEST_F(HfCache, BareNameFindsOpenaiCommunitySpellingThroughRefsMain) {
  std::string hub = mstest::tmp_dir("hf-hub");
  std::string repo = make_repo(hub, "models--openai-community--gpt2", "aaaa1111", true);
  make_repo(hub, "models--openai-community--gpt2", "bbbb2222", false);  // newer, but refs/main wins
  ::setenv("HF_HUB_CACHE", hub.c_str(), 1);
  std::string dir = resolve_model_dir("gpt2");
  EXPECT_EQ(dir, repo + "/snapshots/aaaa1111");
  Checkpoint c = Checkpoint::open(dir);  // through the symlinks into blobs/
  EXPECT_EQ(c.info("transformer.wte.weight").shape, (std::vector<int64_t>{50257, 32}));
  EXPECT_EQ(resolve_model_dir("openai-community/gpt2"), dir);
}

TEST_F(HfCache, OrgNameFindsBareSpellingUnderHfHome) {
  std::string home = mstest::tmp_dir("hf-home");
  std::string repo = make_repo(home + "/hub", "models--gpt2", "cccc3333", true);
  ::setenv("HF_HOME", home.c_str(), 1);
  EXPECT_EQ(resolve_model_dir("openai-community/gpt2"), repo + "/snapshots/cccc3333");
  EXPECT_EQ(resolve_model_dir("gpt2"), repo + "/snapshots/cccc3333");
  // HF_HUB_CACHE takes precedence over HF_HOME.
  ::setenv("HF_HUB_CACHE", (home + "/elsewhere").c_str(), 1);
  EXPECT_HAS(error_of([&] { resolve_model_dir("gpt2"); }), home + "/elsewhere/models--gpt2");
}

TEST_F(HfCache, WithoutRefsMainTakesNewestSnapshotUnderXdgCache) {
  std::string xdg = mstest::tmp_dir("hf-xdg");
  std::string hub = xdg + "/huggingface/hub";
  std::string repo = make_repo(hub, "models--EleutherAI--pythia-160m", "old", false);
  make_repo(hub, "models--EleutherAI--pythia-160m", "new", false);
  auto now = fs::file_time_type::clock::now();
  fs::last_write_time(repo + "/snapshots/old", now - std::chrono::hours(2));
  fs::last_write_time(repo + "/snapshots/new", now - std::chrono::hours(1));
  ::setenv("XDG_CACHE_HOME", xdg.c_str(), 1);
  EXPECT_EQ(resolve_model_dir("EleutherAI/pythia-160m"), repo + "/snapshots/new");
}

TEST_F(HfCache, NotFoundSaysWhereItLookedAndHowToDownload) {
  std::string hub = mstest::tmp_dir("hf-empty");
  ::setenv("HF_HUB_CACHE", hub.c_str(), 1);
  std::string msg = error_of([&] { resolve_model_dir("gpt2"); });
  EXPECT_HAS(msg, "model 'gpt2' is neither a directory nor in the Hugging Face cache");
  EXPECT_HAS(msg, hub + "/models--gpt2");
  EXPECT_HAS(msg, hub + "/models--openai-community--gpt2");
  EXPECT_HAS(msg, "huggingface-cli download gpt2");
  EXPECT_HAS(msg, "hf download gpt2");
  // Paths are never looked up in the cache.
  EXPECT_HAS(error_of([&] { resolve_model_dir("./gpt2"); }), "model directory './gpt2' does not exist");
  EXPECT_HAS(error_of([&] { resolve_model_dir("/no/such/model"); }), "does not exist");
  EXPECT_HAS(error_of([&] { resolve_model_dir(kModelDir + "/config.json"); }), "is a file");
}
