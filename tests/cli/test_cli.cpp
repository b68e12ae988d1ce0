// The commands of the core engine, end to end through the built binary.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "core/fs.h"
#include "core/source_dir.h"  // MECHSCOPE_BINARY
#include "io/safetensors.h"
#include "tensor_util.h"
#include "test_util.h"

using namespace mechscope;
using mstest::contains;
using mstest::gpt2_tokenizer;
using mstest::ids_arg;
using mstest::run_cli;

namespace {

const std::string kModel = mstest::fixture("gpt2/model");
std::shared_ptr<io::SafetensorsFile> ref() {
  static auto f = io::SafetensorsFile::open(mstest::fixture("gpt2/reference.safetensors"));
  return f;
}

// OpenBLAS guesses its kernels from cpuid and mistakes some CPUs for old ones (a KVM Intel Xeon with
// AVX-512 for a "Prescott"); mechscope then restarts itself with OPENBLAS_CORETYPE set, and keeps a
// value the user set.
TEST(Cli, BlasKernelsAreNeverAnOldFamilyOnANewerCpu) {
  const std::string bin = "'" + std::string(MECHSCOPE_BINARY) + "'";
  auto user = mstest::run_shell("OPENBLAS_CORETYPE=Prescott " + bin + " --version");
  EXPECT_EQ(user.code, 0);
  EXPECT_TRUE(contains(user.out, "OpenBLAS Prescott kernels)")) << user.out;
  auto v = mstest::run_shell("env -u OPENBLAS_CORETYPE " + bin + " --version");
  ASSERT_EQ(v.code, 0);
  bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  for (const char* old : {"Prescott", "Core2", "Penryn", "Nehalem", "Sandybridge"}) {
    if (avx2) EXPECT_FALSE(contains(v.out, std::string("OpenBLAS ") + old + " kernels")) << v.out;
  }
  if (contains(v.out, "set by mechscope")) {
    EXPECT_TRUE(contains(v.out, "OpenBLAS SkylakeX kernels") || contains(v.out, "OpenBLAS Haswell kernels")) << v.out;
    EXPECT_TRUE(contains(v.out, "took this CPU for ")) << v.out;
  }
}

TEST(Cli, VersionAndHelp) {
  auto v = run_cli({"--version"});
  EXPECT_EQ(v.code, 0);
  EXPECT_TRUE(contains(v.out, "libtorch")) << v.out;
  // install-deps.sh installs OpenBLAS; the kernels it runs on are part of what a run depends on.
  EXPECT_TRUE(contains(v.out, "OpenBLAS ")) << v.out;
  auto h = run_cli({"--help"});
  EXPECT_EQ(h.code, 0);
  for (const char* c : {"info", "tokenize", "run", "generate"}) EXPECT_TRUE(contains(h.out, c)) << c;
  auto g = run_cli({"generate", "--help"});
  EXPECT_EQ(g.code, 0);
  EXPECT_TRUE(contains(g.out, "--max-new-tokens N")) << g.out;
  EXPECT_TRUE(contains(g.out, "[default: 20]")) << g.out;
  auto bad = run_cli({"frobnicate"});
  EXPECT_EQ(bad.code, 2);
  auto flag = run_cli({"info", "--modle", kModel});
  EXPECT_EQ(flag.code, 2);
  EXPECT_TRUE(contains(flag.err, "unknown option --modle")) << flag.err;
}

TEST(Cli, InfoJson) {
  auto r = run_cli({"info", "--model", kModel, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["model_type"], "gpt2");
  EXPECT_EQ(j["n_layers"], 2);
  EXPECT_EQ(j["d_model"], 32);
  EXPECT_EQ(j["d_vocab"], 50257);
  // wte + wpe + 2 blocks + ln_f, tied unembedding counted once.
  int64_t d = 32, m = 128, per_block = 2 * d + d * 3 * d + 3 * d + d * d + d + 2 * d + d * m + m + m * d + d;
  EXPECT_EQ(j["parameters"], 50257 * d + 64 * d + 2 * per_block + 2 * d);
  EXPECT_EQ(j["hooks"].size(), 2u + 2 * 18 + 2);  // embed, pos_embed; 18 per block; ln_final scale/normalized
}

TEST(Cli, TokenizeJsonAndJsonl) {
  auto r = run_cli({"tokenize", "--tokenizer", gpt2_tokenizer(), "--json", "Hello world, it's me"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["ids"], nlohmann::json::parse("[15496, 995, 11, 340, 338, 502]"));
  EXPECT_EQ(j["tokens"][1], "\xC4\xA0world");  // byte-level form "Ġworld"
  std::string dir = mstest::tmp_dir("jsonl");
  std::string texts;
  for (int i = 0; i < 3000; ++i) texts += nlohmann::json("line " + std::to_string(i) + " ünïcödé 日本").dump() + "\n";
  write_file_atomic(dir + "/t.jsonl", texts);
  auto many = run_cli({"tokenize", "--tokenizer", gpt2_tokenizer(), "--jsonl", dir + "/t.jsonl"});
  ASSERT_EQ(many.code, 0) << many.err;
  std::istringstream in(many.out);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    auto ids = nlohmann::json::parse(line);
    ASSERT_TRUE(ids.is_array());
    if (n == 7) EXPECT_EQ(ids[0], 1370);  // "line"
    ++n;
  }
  EXPECT_EQ(n, 3000);
}

TEST(Cli, RunWritesLogitsAndCachedHooksMatchingTransformers) {
  std::string dir = mstest::tmp_dir("run");
  at::Tensor ids = ref()->get("input_ids");
  auto r =
      run_cli({"run", "--model", kModel, "--ids", ids_arg(ids[0]), "--ids", ids_arg(ids[1]), "--cache",
               "blocks.*.hook_resid_pre", "--cache", "blocks.1.attn.hook_pattern", "--out", dir + "/out.safetensors"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto out = io::SafetensorsFile::open(dir + "/out.safetensors");
  EXPECT_TRUE(mstest::close(out->get("logits"), ref()->get("logits")));
  EXPECT_TRUE(mstest::close(out->get("blocks.1.hook_resid_pre"), ref()->get("hidden_states.1")));
  EXPECT_TRUE(mstest::close(out->get("blocks.1.attn.hook_pattern"), ref()->get("attentions.1")));
  EXPECT_EQ(mstest::to_vec(out->get("input_ids")), mstest::to_vec(ids));
  EXPECT_FALSE(out->has("blocks.0.hook_resid_post"));
}

TEST(Cli, RunBatchOfDifferentLengthsWithPrompts) {
  std::string dir = mstest::tmp_dir("run-batch");
  auto r = run_cli({"run", "--model", kModel, "--tokenizer", gpt2_tokenizer(), "--prompt", "Hello world", "--prompt",
                    "The Eiffel Tower is located in", "--out", dir + "/b.safetensors"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto out = io::SafetensorsFile::open(dir + "/b.safetensors");
  auto tok = run_cli({"tokenize", "--tokenizer", gpt2_tokenizer(), "--json", "The Eiffel Tower is located in"});
  size_t n = nlohmann::json::parse(tok.out)["ids"].size();
  EXPECT_EQ(out->get("attention_mask").sum().item<int64_t>(), (int64_t)(2 + n));
  EXPECT_EQ(out->get("input_ids").size(1), (int64_t)n);
  auto single = run_cli({"run", "--model", kModel, "--ids", "15496,995", "--out", dir + "/s.safetensors"});
  ASSERT_EQ(single.code, 0) << single.err;
  auto s = io::SafetensorsFile::open(dir + "/s.safetensors");
  EXPECT_TRUE(mstest::close(out->get("logits")[0].narrow(0, 0, 2), s->get("logits")[0], 1e-5, 1e-5));
}

TEST(Cli, GenerateGreedyMatchesTransformers) {
  auto expect = mstest::to_vec(ref()->get("generate_greedy"));
  auto r = run_cli(
      {"generate", "--model", kModel, "--ids", ids_arg(ref()->get("input_ids")[0]), "--max-new-tokens", "8", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  std::vector<int64_t> all = j["prompt_ids"].get<std::vector<int64_t>>();
  for (auto& x : j["new_ids"]) all.push_back(x.get<int64_t>());
  EXPECT_EQ(all, expect);
}

TEST(Cli, GenerateSamplingIsSeeded) {
  std::vector<std::string> args{"generate", "--model",       kModel, "--ids",   "1,2,3", "--max-new-tokens",
                                "6",        "--temperature", "1.5",  "--top-k", "50",    "--top-p",
                                "0.9",      "--json"};
  auto a = run_cli([&] {
    auto v = args;
    v.insert(v.end(), {"--seed", "7"});
    return v;
  }());
  auto b = run_cli([&] {
    auto v = args;
    v.insert(v.end(), {"--seed", "7"});
    return v;
  }());
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(nlohmann::json::parse(a.out)["new_ids"].size(), 6u);
}

// --- bad input: one clear message, exit code 2, no output file -----------------------------------

struct BadInput : ::testing::Test {
  std::string dir = mstest::tmp_dir("bad");
  std::string out() const { return dir + "/out.safetensors"; }
  // A model directory with the fixture's config and the given model.safetensors bytes.
  std::string model_with(const std::string& weights, const std::string& name = "m") {
    std::string m = dir + "/" + name;
    make_dirs(m);
    write_file_atomic(m + "/config.json", read_file(kModel + "/config.json"));
    write_file_atomic(m + "/model.safetensors", weights);
    return m;
  }
  void expect_refused(const std::vector<std::string>& args, const std::string& message) {
    auto r = run_cli(args);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_TRUE(contains(r.err, message)) << "stderr: " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
    EXPECT_FALSE(file_exists(out())) << "output written despite the error";
  }
  std::vector<std::string> run_args(const std::string& model) {
    return {"run", "--model", model, "--ids", "1,2", "--out", out()};
  }
  // Raw safetensors: header JSON + data bytes.
  static std::string st(const std::string& header, size_t data_bytes, uint64_t len_override = 0) {
    std::string s(8, '\0');
    uint64_t n = len_override ? len_override : header.size();
    for (int i = 0; i < 8; ++i) s[i] = char((n >> (8 * i)) & 0xff);
    return s + header + std::string(data_bytes, '\0');
  }
};

TEST_F(BadInput, MissingModelDirectory) { expect_refused(run_args(dir + "/nope"), "does not exist"); }

TEST_F(BadInput, TruncatedSafetensors) {
  std::string bytes = read_file(kModel + "/model.safetensors");
  expect_refused(run_args(model_with(bytes.substr(0, bytes.size() / 2))), "outside the data section");
}

TEST_F(BadInput, HeaderLengthPastEndOfFile) { expect_refused(run_args(model_with(st("{}", 0, 1 << 20))), "header"); }

TEST_F(BadInput, DataRangeOutsideFile) {
  expect_refused(run_args(model_with(st(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8))),
                 "outside the data section");
}

TEST_F(BadInput, OverlappingRanges) {
  expect_refused(run_args(model_with(st(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                                        R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
                                        24))),
                 "overlap");
}

TEST_F(BadInput, UnknownDtype) {
  expect_refused(run_args(model_with(st(R"({"a":{"dtype":"F13","shape":[4],"data_offsets":[0,16]}})", 16))), "F13");
}

TEST_F(BadInput, ShapeSizeMismatch) {
  expect_refused(run_args(model_with(st(R"({"a":{"dtype":"F32","shape":[5],"data_offsets":[0,16]}})", 16))), "shape");
}

TEST_F(BadInput, MissingTensor) {
  auto full = io::SafetensorsFile::open(kModel + "/model.safetensors");
  std::vector<std::pair<std::string, at::Tensor>> keep;
  for (auto& [name, info] : full->tensors())
    if (name != "transformer.h.1.mlp.c_fc.bias") keep.emplace_back(name, full->get(name));
  std::string m = dir + "/missing";
  make_dirs(m);
  write_file_atomic(m + "/config.json", read_file(kModel + "/config.json"));
  io::write_safetensors(m + "/model.safetensors", keep);
  expect_refused(run_args(m), "transformer.h.1.mlp.c_fc.bias");
}

TEST_F(BadInput, UnknownModelType) {
  std::string m = model_with(read_file(kModel + "/model.safetensors"));
  write_file_atomic(m + "/config.json", R"({"model_type": "rwkv"})");
  expect_refused(run_args(m), "unsupported model_type 'rwkv'");
}

TEST_F(BadInput, PickleCheckpointRefused) {
  std::string m = dir + "/pickle";
  make_dirs(m);
  write_file_atomic(m + "/config.json", read_file(kModel + "/config.json"));
  write_file_atomic(m + "/pytorch_model.bin", "not really a pickle");
  expect_refused(run_args(m), "pickle");
}

TEST_F(BadInput, PromptLongerThanContext) {
  std::string text;
  for (int i = 0; i < 70; ++i) text += " word";
  expect_refused({"run", "--model", kModel, "--tokenizer", gpt2_tokenizer(), "--prompt", text, "--out", out()},
                 "more than the model's context of 64");
  expect_refused({"generate", "--model", kModel, "--ids", "1,2,3", "--max-new-tokens", "62"}, "context of 64");
}

TEST_F(BadInput, IdOutsideVocabulary) {
  expect_refused({"run", "--model", kModel, "--ids", "1,50257", "--out", out()},
                 "token id 50257 is outside the vocabulary");
  expect_refused({"run", "--model", kModel, "--ids", "1,x", "--out", out()}, "--ids");
}

TEST_F(BadInput, NonUtf8Prompt) {
  expect_refused(
      {"run", "--model", kModel, "--tokenizer", gpt2_tokenizer(), "--prompt", "caf\xe9 au lait", "--out", out()},
      "not valid UTF-8");
}

TEST_F(BadInput, CacheGlobMatchingNothing) {
  expect_refused({"run", "--model", kModel, "--ids", "1,2", "--cache", "blocks.*.hook_nonsense", "--out", out()},
                 "matches no hook point");
}

}  // namespace
