// How every command turns text into model input (one encoder: transformers' tokenizer(text), with
// --prepend-bos and --no-special-tokens), BERT segments (--pair, --token-type-ids), and the
// sequence classifiers (DistilBERT) through the built binary, against the fixtures' references.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "core/fs.h"
#include "io/safetensors.h"
#include "tensor_util.h"
#include "test_util.h"

using namespace mechscope;
using mstest::contains;
using mstest::ids_arg;
using mstest::run_cli;
using json = nlohmann::json;

namespace {

json read_json(const std::string& path) { return json::parse(std::ifstream(path)); }

std::vector<int64_t> ids_of(const json& j) { return j.get<std::vector<int64_t>>(); }

// The llama fixture with the Llama-2-style tokenizer fixture (its post-processor adds <s> = 1) and a
// tokenizer_config.json naming <s> as BOS. The fixture's model has 512 embedding rows and that
// tokenizer 1,500 tokens, so the embedding and unembedding get zero rows up to 1,500 (only the ids
// matter here, not the logits).
struct LlamaInputs : ::testing::Test {
  static std::string dir;
  static void SetUpTestSuite() {
    dir = mstest::tmp_dir("inputs-llama");
    std::string m = mstest::fixture("llama/model"), t = mstest::fixture("tokenizers/llama2_style");
    auto src = io::SafetensorsFile::open(m + "/model.safetensors");
    std::vector<std::pair<std::string, at::Tensor>> weights;
    for (auto& [name, info] : src->tensors()) {
      at::Tensor w = src->get(name);
      if (name == "model.embed_tokens.weight" || name == "lm_head.weight")
        w = at::cat({w, at::zeros({1500 - 512, 32})});
      weights.emplace_back(name, w);
    }
    io::write_safetensors(dir + "/model.safetensors", weights);
    json cfg = read_json(m + "/config.json");
    cfg["vocab_size"] = 1500;
    write_file_atomic(dir + "/config.json", cfg.dump(2));
    mstest::run_shell("cp " + t + "/tokenizer.json " + dir + "/");
    write_file_atomic(dir + "/tokenizer_config.json", R"({"bos_token": "<s>", "eos_token": "</s>"})");
  }
  // mechscope tokenize's ids (checked against the tokenizer fixture's reference below).
  static std::vector<int64_t> tokenize(const std::string& text, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"tokenize", "--model", dir, "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(text);
    auto r = run_cli(args);
    EXPECT_EQ(r.code, 0) << r.err;
    return ids_of(json::parse(r.out)["ids"]);
  }
};
std::string LlamaInputs::dir;

const std::string kText = "a cat to the store";
const std::string kOther = "a bat to the store";  // as many tokens as kText
const std::string kSubject = "cat";

TEST_F(LlamaInputs, TokenizeIsTheTokenizersOwnEncoding) {
  // tokenizer(text) as HF tokenizers gave it (reference.json), <s> included.
  auto refj = read_json(mstest::fixture("tokenizers/llama2_style/reference.json"));
  for (size_t i = 0; i < 10; ++i) {
    ASSERT_FALSE(refj["texts"][i].get<std::string>().empty());
    auto r = run_cli({"tokenize", "--tokenizer", mstest::fixture("tokenizers/llama2_style/tokenizer.json"), "--json",
                      refj["texts"][i].get<std::string>()});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(json::parse(r.out)["ids"], refj["ids"][i]) << i;
  }
  auto ids = tokenize(kText);
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids[0], 1);  // <s>
  // --prepend-bos adds nothing when the tokenizer already starts with its BOS; without special tokens
  // it puts BOS (tokenizer_config's <s>) first, as TransformerLens's to_tokens.
  EXPECT_EQ(tokenize(kText, {"--prepend-bos"}), ids);
  std::vector<int64_t> plain(ids.begin() + 1, ids.end());
  EXPECT_EQ(tokenize(kText, {"--no-special-tokens"}), plain);
  EXPECT_EQ(tokenize(kText, {"--no-special-tokens", "--prepend-bos"}), ids);
}

TEST_F(LlamaInputs, RunEncodesAsTokenize) {
  std::string out = mstest::tmp_dir("inputs-llama-run") + "/r.safetensors";
  auto r = run_cli({"run", "--model", dir, "--prompt", kText, "--prompt", kOther, "--json", "--out", out});
  ASSERT_EQ(r.code, 0) << r.err;
  auto f = io::SafetensorsFile::open(out);
  EXPECT_EQ(mstest::to_vec(f->get("input_ids")[0]), tokenize(kText));
  EXPECT_EQ(mstest::to_vec(f->get("input_ids")[1]), tokenize(kOther));
  auto j = json::parse(r.out);
  EXPECT_EQ(ids_of(j["inputs"][1]["ids"]), tokenize(kOther));
  EXPECT_EQ(j["inputs"][0]["tokens"][0], "<s>");
  EXPECT_FALSE(f->has("token_type_ids"));  // Llama takes none
  EXPECT_TRUE(contains(f->metadata().at("inputs"), "\"<s>\""));
  // --ids are used exactly as given.
  auto plain = run_cli({"run", "--model", dir, "--ids", "5,6,7", "--json", "--out", out});
  ASSERT_EQ(plain.code, 0) << plain.err;
  EXPECT_EQ(ids_of(json::parse(plain.out)["inputs"][0]["ids"]), (std::vector<int64_t>{5, 6, 7}));
}

TEST_F(LlamaInputs, GenerateEncodesAsTokenize) {
  auto r = run_cli({"generate", "--model", dir, "--prompt", kText, "--max-new-tokens", "2", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = json::parse(r.out);
  EXPECT_EQ(ids_of(j["prompt_ids"]), tokenize(kText));
  EXPECT_EQ(j["prompt_tokens"][0], "<s>");
  auto nb = run_cli({"generate", "--model", dir, "--prompt", kText, "--max-new-tokens", "1", "--no-special-tokens",
                     "--prepend-bos", "--json"});
  ASSERT_EQ(nb.code, 0) << nb.err;
  EXPECT_EQ(ids_of(json::parse(nb.out)["prompt_ids"]), tokenize(kText));
}

TEST_F(LlamaInputs, TraceEncodesAsTokenizeAndFindsTheSubjectAfterBos) {
  std::string out = mstest::tmp_dir("inputs-llama-trace");
  auto r = run_cli({"trace", "--model", dir, "--prompt", kText, "--subject", kSubject, "--samples", "2", "--window",
                    "1", "--kinds", "all", "--out", out});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = read_json(out + "/trace.json");
  auto ids = tokenize(kText);
  EXPECT_EQ(ids_of(j["input_ids"]), ids);
  EXPECT_EQ(j["input_tokens"].size(), ids.size());
  // "cat" is "c" "at" after <s> "▁" "a▁": tokens 3 and 4 of the prompt (2 and 3 of its own tokens,
  // shifted past <s>).
  EXPECT_EQ(j["input_tokens"][3], "c");
  EXPECT_EQ(j["subject_range"], json({3, 5}));
  auto st = io::SafetensorsFile::open(out + "/trace.safetensors");
  EXPECT_EQ(mstest::to_vec(st->get("input_ids")), ids);
  // Without <s> the same subject is one token earlier.
  auto plain = run_cli({"trace", "--model", dir, "--prompt", kText, "--subject", kSubject, "--samples", "2", "--window",
                        "1", "--kinds", "all", "--no-special-tokens", "--out", out});
  ASSERT_EQ(plain.code, 0) << plain.err;
  auto pj = read_json(out + "/trace.json");
  EXPECT_EQ(ids_of(pj["input_ids"]), tokenize(kText, {"--no-special-tokens"}));
  EXPECT_EQ(pj["subject_range"], json({2, 4}));
}

TEST_F(LlamaInputs, LocateEncodesAsTokenize) {
  std::string out = mstest::tmp_dir("inputs-llama-locate");
  write_file_atomic(out + "/facts.jsonl", json({{"prompt", kText}, {"subject", kSubject}, {"id", "f"}}).dump() + "\n");
  auto r = run_cli({"locate", "--model", dir, "--kg-file", out + "/facts.jsonl", "--num-noise-samples", "2", "--window",
                    "1", "--kinds", "all", "--out", out + "/res"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto s = read_json(out + "/res/locating_summary.json");
  ASSERT_EQ(s["facts"].size(), 1u);
  auto ids = tokenize(kText);
  EXPECT_EQ(s["facts"][0]["subject_range"], json({3, 5}));
  EXPECT_EQ(s["facts"][0]["input_tokens"].size(), ids.size());
  auto f = io::SafetensorsFile::open(out + "/res/facts/000_f.safetensors");
  EXPECT_EQ(mstest::to_vec(f->get("input_ids")), ids);
  EXPECT_EQ(ids_of(json::parse(f->metadata().at("fact"))["input_ids"]), ids);
}

TEST_F(LlamaInputs, PatchAndAblateEncodeAsTokenize) {
  std::string out = mstest::tmp_dir("inputs-llama-patch");
  auto p = run_cli({"patch", "--model", dir, "--clean", kText, "--corrupt", kOther, "--answer-id", "5", "--wrong-id",
                    "6", "--targets", "resid_pre", "--out", out + "/p"});
  ASSERT_EQ(p.code, 0) << p.err;
  auto pj = read_json(out + "/p/patch.json");
  EXPECT_EQ(ids_of(pj["clean_ids"]), tokenize(kText));
  EXPECT_EQ(ids_of(pj["corrupt_ids"]), tokenize(kOther));
  EXPECT_EQ(pj["clean_tokens"].size(), tokenize(kText).size());
  auto a = run_cli({"ablate", "--model", dir, "--prompt", kText, "--answer-id", "5", "--wrong-id", "6", "--targets",
                    "resid_pre", "--out", out + "/a"});
  ASSERT_EQ(a.code, 0) << a.err;
  auto aj = read_json(out + "/a/ablate.json");
  EXPECT_EQ(ids_of(aj["ids"]), tokenize(kText));
  EXPECT_EQ(aj["tokens"].size(), tokenize(kText).size());
  // --no-special-tokens reaches patch too.
  auto n = run_cli({"ablate", "--model", dir, "--prompt", kText, "--answer-id", "5", "--wrong-id", "6", "--targets",
                    "resid_pre", "--no-special-tokens", "--out", out + "/n"});
  ASSERT_EQ(n.code, 0) << n.err;
  EXPECT_EQ(ids_of(read_json(out + "/n/ablate.json")["ids"]), tokenize(kText, {"--no-special-tokens"}));
}

TEST(Gpt2Inputs, PrependBosAddsEndOfTextWhereTheTokenizerAddsNothing) {
  std::string model = mstest::fixture("gpt2/model");
  auto plain = run_cli({"tokenize", "--model", model, "--json", "Hello world"});
  auto bos = run_cli({"tokenize", "--model", model, "--json", "--prepend-bos", "Hello world"});
  ASSERT_EQ(plain.code, 0) << plain.err;
  ASSERT_EQ(bos.code, 0) << bos.err;
  EXPECT_EQ(json::parse(plain.out)["ids"], json({15496, 995}));
  EXPECT_EQ(json::parse(bos.out)["ids"], json({50256, 15496, 995}));
  std::string out = mstest::tmp_dir("inputs-gpt2") + "/r.safetensors";
  auto r = run_cli({"run", "--model", model, "--prompt", "Hello world", "--prepend-bos", "--json", "--out", out});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["inputs"][0]["ids"], json({50256, 15496, 995}));
}

// ---- BERT segments ---------------------------------------------------------------------------------

struct BertSegments : ::testing::Test {
  std::string model = mstest::fixture("bert/model");
  std::shared_ptr<io::SafetensorsFile> ref = io::SafetensorsFile::open(mstest::fixture("bert/reference.safetensors"));
  json refj = read_json(mstest::fixture("bert/reference.json"));
  std::string text(int i) { return refj["texts"][i].get<std::string>(); }
  void expect_reference(const std::string& out) {
    auto f = io::SafetensorsFile::open(out);
    EXPECT_TRUE(at::equal(f->get("input_ids"), ref->get("input_ids")));
    EXPECT_TRUE(at::equal(f->get("token_type_ids"), ref->get("token_type_ids")));
    EXPECT_TRUE(at::equal(f->get("attention_mask"), ref->get("attention_mask")));
    at::Tensor mask = ref->get("attention_mask").to(at::kBool);
    // Logits at real tokens (padding rows are not compared: HF's are of no meaning either).
    EXPECT_TRUE(mstest::close(f->get("logits").index({mask}), ref->get("logits").index({mask})));
    for (int l = 0; l < 2; ++l) {
      std::string L = std::to_string(l);
      EXPECT_TRUE(mstest::close(f->get("blocks." + L + ".hook_normalized_resid_post").index({mask}),
                                ref->get("hidden_states." + std::to_string(l + 1)).index({mask})))
          << l;
      EXPECT_TRUE(mstest::close(f->get("blocks." + L + ".attn.hook_pattern"), ref->get("attentions." + L))) << l;
    }
  }
};

TEST_F(BertSegments, RunWithPairMatchesTheReference) {
  std::string out = mstest::tmp_dir("inputs-bert-pair") + "/r.safetensors";
  auto r =
      run_cli({"run", "--model", model, "--prompt", text(0), "--prompt", text(1), "--pair", text(2), "--cache",
               "blocks.*.hook_normalized_resid_post", "--cache", "blocks.*.attn.hook_pattern", "--json", "--out", out});
  ASSERT_EQ(r.code, 0) << r.err;
  expect_reference(out);
  auto j = json::parse(r.out);
  EXPECT_EQ(mstest::to_vec(ref->get("token_type_ids")[1]), ids_of(j["inputs"][1]["token_type_ids"]));
  EXPECT_EQ(j["inputs"][1]["tokens"][0], "[CLS]");
}

TEST_F(BertSegments, RunWithIdsAndTokenTypeIdsMatchesTheReference) {
  std::string out = mstest::tmp_dir("inputs-bert-ids") + "/r.safetensors";
  at::Tensor ids = ref->get("input_ids"), types = ref->get("token_type_ids"), mask = ref->get("attention_mask");
  int64_t n0 = mask[0].sum().item<int64_t>();
  auto r = run_cli({"run", "--model", model, "--ids", ids_arg(ids[0].narrow(0, 0, n0)), "--ids", ids_arg(ids[1]),
                    "--token-type-ids", ids_arg(types[1]), "--cache", "blocks.*.hook_normalized_resid_post", "--cache",
                    "blocks.*.attn.hook_pattern", "--out", out});
  ASSERT_EQ(r.code, 0) << r.err;
  expect_reference(out);
}

TEST_F(BertSegments, TokenizeShowsThePairsTypeIds) {
  auto r = run_cli({"tokenize", "--model", model, "--json", "--pair", text(2), text(1)});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = json::parse(r.out);
  EXPECT_EQ(ids_of(j["ids"]), mstest::to_vec(ref->get("input_ids")[1]));
  EXPECT_EQ(ids_of(j["token_type_ids"]), mstest::to_vec(ref->get("token_type_ids")[1]));
  auto t = run_cli({"tokenize", "--model", model, "--pair", "b", "a"});
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_TRUE(contains(t.out, "5 tokens")) << t.out;  // [CLS] a [SEP] b [SEP]
}

TEST_F(BertSegments, PatchAndAblateRunThePairWithItsTokenTypes) {
  // The clean run's metric is the reference's logit difference on the pair row (transformers' numbers);
  // the corrupt run is the same ids without segments (all type 0).
  std::string out = mstest::tmp_dir("inputs-bert-patch");
  at::Tensor logits = ref->get("logits")[1][5];
  double want = (logits[100] - logits[200]).item<double>();
  std::vector<std::string> common{"--answer-id", "100", "--wrong-id", "200",
                                  "--position",  "5",   "--targets",  "resid_pre"};
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.end(), common.begin(), common.end());
    auto r = run_cli(args);
    EXPECT_EQ(r.code, 0) << r.err;
    return r;
  };
  std::vector<json> results;
  for (const char* method : {"exact", "naive"}) {
    run({"patch", "--model", model, "--clean", text(1), "--clean-pair", text(2), "--corrupt-ids",
         ids_arg(ref->get("input_ids")[1]), "--method", method, "--raw", "--out", out + "/" + method});
    auto j = read_json(out + "/" + method + "/patch.json");
    EXPECT_NEAR(j["metric"]["clean"].get<double>(), want, 1e-4);
    EXPECT_GT(std::abs(j["metric"]["clean"].get<double>() - j["metric"]["corrupt"].get<double>()), 1e-4);
    EXPECT_EQ(ids_of(j["clean_token_type_ids"]), mstest::to_vec(ref->get("token_type_ids")[1]));
    results.push_back(j);
  }
  // resid_pre of layer 0 at every position: patching all of them gives the clean run back.
  for (size_t p = 0; p < 29; ++p)
    EXPECT_NEAR(results[0]["targets"][0]["values"][0][p].get<double>(),
                results[1]["targets"][0]["values"][0][p].get<double>(), 1e-4)
        << p;
  run({"ablate", "--model", model, "--prompt", text(1), "--pair", text(2), "--out", out + "/a"});
  auto aj = read_json(out + "/a/ablate.json");
  EXPECT_NEAR(aj["metric"]["clean"].get<double>(), want, 1e-4);
  EXPECT_EQ(ids_of(aj["token_type_ids"]), mstest::to_vec(ref->get("token_type_ids")[1]));
}

TEST_F(BertSegments, BadSegmentsAreRefusedWithOneLine) {
  std::string out = mstest::tmp_dir("inputs-bert-bad") + "/r.safetensors";
  auto refused = [&](std::vector<std::string> args, const std::string& msg) {
    args.insert(args.end(), {"--out", out});
    auto r = run_cli(args);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_TRUE(contains(r.err, msg)) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(file_exists(out));
  };
  refused({"run", "--model", model, "--ids", "2,5,3", "--token-type-ids", "0,1"}, "2 token type ids for 3 token ids");
  refused({"run", "--model", model, "--ids", "2,5,3", "--token-type-ids", "0,2,1"},
          "token type id 2 is outside 0 .. 1");
  refused({"run", "--model", model, "--ids", "2,5,3", "--token-type-ids", "0,x,1"}, "--token-type-ids");
  refused({"run", "--model", model, "--pair", "b", "--prompt", "a"}, "must come right after the --prompt");
  refused({"run", "--model", model, "--prompt", "a", "--token-type-ids", "0,0,0"}, "must come right after the --ids");
  refused({"run", "--model", mstest::fixture("gpt2/model"), "--ids", "1,2", "--token-type-ids", "0,1"},
          "gpt2 models take no token type ids");
  // A tokenizer whose post-processor has no pair template.
  std::string dir = mstest::tmp_dir("inputs-no-pair");
  auto tj = read_json(mstest::fixture("tokenizers/llama2_style/tokenizer.json"));
  tj["post_processor"].erase("pair");
  write_file_atomic(dir + "/tokenizer.json", tj.dump());
  refused({"run", "--model", mstest::fixture("llama/model"), "--tokenizer", dir + "/tokenizer.json", "--prompt", "a",
           "--pair", "b"},
          "no \"pair\" template");
}

// ---- sequence classifiers ------------------------------------------------------------------------------

struct Classifier : ::testing::Test {
  std::string model = mstest::fixture("distilbert_sst/model");
  std::shared_ptr<io::SafetensorsFile> ref =
      io::SafetensorsFile::open(mstest::fixture("distilbert_sst/reference.safetensors"));
  json refj = read_json(mstest::fixture("distilbert_sst/reference.json"));
};

TEST_F(Classifier, InfoShowsTheLabels) {
  auto t = run_cli({"info", "--model", model});
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_TRUE(contains(t.out, "distilbert")) << t.out;
  EXPECT_TRUE(contains(t.out, "0 NEGATIVE, 1 POSITIVE")) << t.out;
  auto j = run_cli({"info", "--model", model, "--json"});
  ASSERT_EQ(j.code, 0) << j.err;
  EXPECT_EQ(json::parse(j.out)["labels"], json({"NEGATIVE", "POSITIVE"}));
}

TEST_F(Classifier, RunWritesTheReferenceClassLogits) {
  std::string out = mstest::tmp_dir("inputs-classifier") + "/r.safetensors";
  std::vector<std::string> args{"run", "--model", model, "--cache", "blocks.1.attn.hook_pattern", "--out", out};
  for (int i = 0; i < 4; ++i) args.insert(args.end(), {"--prompt", refj["texts"][i].get<std::string>()});
  auto r = run_cli(args);
  ASSERT_EQ(r.code, 0) << r.err;
  auto f = io::SafetensorsFile::open(out);
  EXPECT_TRUE(at::equal(f->get("input_ids"), ref->get("input_ids")));
  EXPECT_TRUE(mstest::close(f->get("class_logits"), ref->get("logits")));
  EXPECT_TRUE(mstest::close(f->get("blocks.1.attn.hook_pattern"), ref->get("attentions.1")));
  EXPECT_FALSE(f->has("logits"));
  EXPECT_FALSE(f->has("token_type_ids"));
  // One line per input: the predicted label and each label's probability.
  at::Tensor p = at::softmax(ref->get("logits").to(at::kDouble), 1);
  EXPECT_TRUE(contains(r.out, "input 0: POSITIVE (NEGATIVE ")) << r.out;
  char want[64];
  std::snprintf(want, sizeof want, "POSITIVE %.4f", p[0][1].item<double>());
  EXPECT_TRUE(contains(r.out, want)) << r.out << " wants " << want;
  args.push_back("--json");
  auto j = run_cli(args);
  ASSERT_EQ(j.code, 0) << j.err;
  auto rj = json::parse(j.out);
  EXPECT_EQ(rj["labels"], json({"NEGATIVE", "POSITIVE"}));
  EXPECT_EQ(rj["predicted"].size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(rj["probabilities"][i][1].get<double>(), p[i][1].item<double>(), 1e-5) << i;
  EXPECT_EQ(ids_of(rj["inputs"][1]["ids"]), refj["bert_ids"][1].get<std::vector<int64_t>>());
}

TEST(BertClassifier, RunWritesClassLogitsOfThePairFromThePoolerAndClassifier) {
  // A BertForSequenceClassification made from the BERT fixture's encoder with a random head; the
  // expected class logits are the head's maths in plain torch on the reference's last hidden states
  // (transformers' numbers), for the single text and the two-segment pair.
  std::string dir = mstest::tmp_dir("inputs-bert-classifier");
  auto src = io::SafetensorsFile::open(mstest::fixture("bert/model/model.safetensors"));
  std::vector<std::pair<std::string, at::Tensor>> w;
  for (auto& [name, info] : src->tensors())
    if (name.rfind("bert.", 0) == 0) w.emplace_back(name, src->get(name));
  at::manual_seed(5);
  at::Tensor pw = at::randn({32, 32}) * 0.3, pb = at::randn({32}) * 0.1, cw = at::randn({2, 32}), cb = at::randn({2});
  w.insert(w.end(), {{"bert.pooler.dense.weight", pw},
                     {"bert.pooler.dense.bias", pb},
                     {"classifier.weight", cw},
                     {"classifier.bias", cb}});
  io::write_safetensors(dir + "/model.safetensors", w);
  json cfg = read_json(mstest::fixture("bert/model/config.json"));
  cfg["architectures"] = {"BertForSequenceClassification"};
  cfg["id2label"] = {{"0", "NEGATIVE"}, {"1", "POSITIVE"}};
  write_file_atomic(dir + "/config.json", cfg.dump());
  mstest::run_shell("cp " + mstest::fixture("bert/model/tokenizer.json") + " " + dir + "/");
  auto info = run_cli({"info", "--model", dir});
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_TRUE(contains(info.out, "0 NEGATIVE, 1 POSITIVE")) << info.out;
  auto refj = read_json(mstest::fixture("bert/reference.json"));
  auto ref = io::SafetensorsFile::open(mstest::fixture("bert/reference.safetensors"));
  std::string out = dir + "/r.safetensors";
  auto r = run_cli({"run", "--model", dir, "--prompt", refj["texts"][0].get<std::string>(), "--prompt",
                    refj["texts"][1].get<std::string>(), "--pair", refj["texts"][2].get<std::string>(), "--out", out});
  ASSERT_EQ(r.code, 0) << r.err;
  at::Tensor cls = ref->get("hidden_states.2").select(1, 0);
  at::Tensor expect = at::matmul(at::tanh(at::matmul(cls, pw.t()) + pb), cw.t()) + cb;
  auto f = io::SafetensorsFile::open(out);
  EXPECT_TRUE(mstest::close(f->get("class_logits"), expect));
  EXPECT_TRUE(at::equal(f->get("token_type_ids"), ref->get("token_type_ids")));
  EXPECT_TRUE(contains(r.out, "input 1: ")) << r.out;
}

TEST_F(Classifier, GenerateTraceAndPatchAreRefusedWithTheReason) {
  std::string out = mstest::tmp_dir("inputs-classifier-refused");
  for (std::vector<std::string> args :
       {std::vector<std::string>{"generate", "--model", model, "--prompt", "good", "--max-new-tokens", "1"},
        std::vector<std::string>{"trace", "--model", model, "--prompt", "a good film", "--subject", "good", "--out",
                                 out + "/t"},
        std::vector<std::string>{"ablate", "--model", model, "--prompt", "a good film", "--answer-id", "5",
                                 "--wrong-id", "6", "--out", out + "/a"}}) {
    auto r = run_cli(args);
    EXPECT_EQ(r.code, 2) << args[0] << ": " << r.err;
    EXPECT_TRUE(contains(r.err, "sequence classifier")) << r.err;
    EXPECT_TRUE(contains(r.err, "NEGATIVE, POSITIVE")) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  EXPECT_FALSE(file_exists(out + "/t"));
  EXPECT_FALSE(file_exists(out + "/a"));
}

}  // namespace
