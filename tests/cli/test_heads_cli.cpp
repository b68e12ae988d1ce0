// Head ablation and patching primitives through the CLI: the GPT-2 fixture's `heads` references
// (transformers, float64) on both checkpoint layouts, and the user errors.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "analysis/heads/interventions.h"
#include "analysis/heads/screen.h"
#include "analysis/sentiment/vader.h"
#include "models/generate.h"
#include "core/fs.h"
#include "models/model.h"
#include "tokenizers/tokenizer.h"
#include "io/safetensors.h"
#include "tensor_util.h"
#include "test_util.h"

using namespace mechscope;
using mstest::contains;
using mstest::ids_arg;
using mstest::run_cli;

namespace {

std::shared_ptr<io::SafetensorsFile> ref() {
  static auto f = io::SafetensorsFile::open(mstest::fixture("gpt2/reference.safetensors"));
  return f;
}
const char* kLayouts[] = {"gpt2/model", "gpt2/model-hub-layout"};
const std::pair<int, int> kHeads[] = {{0, 1}, {1, 3}};
std::string head_name(std::pair<int, int> h) { return "L" + std::to_string(h.first) + "H" + std::to_string(h.second); }

std::vector<int64_t> generate_ids(const std::string& model, const std::vector<std::string>& extra) {
  std::vector<std::string> args{
      "generate",         "--model", model,   "--ids", ids_arg(ref()->get("heads.prompt_ids")),
      "--max-new-tokens", "10",      "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = run_cli(args);
  EXPECT_EQ(r.code, 0) << r.err;
  if (r.code != 0) return {};
  auto j = nlohmann::json::parse(r.out);
  auto ids = j["prompt_ids"].get<std::vector<int64_t>>();
  for (int64_t x : j["new_ids"]) ids.push_back(x);
  return ids;
}

TEST(HeadsCli, GenerateWithAblatedHeadMatchesTransformers) {
  for (const char* layout : kLayouts) {
    std::string model = mstest::fixture(layout);
    EXPECT_EQ(generate_ids(model, {}), mstest::to_vec(ref()->get("heads.generate_base"))) << layout;
    for (auto h : kHeads) {
      std::string spec = std::to_string(h.first) + ":" + std::to_string(h.second);
      auto want = mstest::to_vec(ref()->get("heads.generate_ablate_" + head_name(h)));
      EXPECT_EQ(generate_ids(model, {"--ablate-heads", spec}), want) << layout << " " << spec;
      EXPECT_EQ(generate_ids(model, {"--ablate-heads", spec, "--ablation", "zero"}), want) << layout << " " << spec;
    }
  }
}

TEST(HeadsCli, RunWithPatchedHeadMatchesTransformers) {
  for (const char* layout : kLayouts) {
    for (auto h : kHeads) {
      std::string out = join_path(mstest::tmp_dir("heads-run-patch"), "patched.safetensors");
      auto r = run_cli({"run", "--model", mstest::fixture(layout), "--ids", ids_arg(ref()->get("heads.prompt_ids")),
                        "--patch-heads", std::to_string(h.first) + ":" + std::to_string(h.second), "--patch-source-ids",
                        ids_arg(ref()->get("heads.source_ids")), "--out", out});
      ASSERT_EQ(r.code, 0) << r.err;
      at::Tensor logits = io::SafetensorsFile::open(out)->get("logits");
      at::Tensor last = logits[0][-1];
      EXPECT_TRUE(mstest::close(last, ref()->get("heads.patch_logits_" + head_name(h)), 1e-4, 1e-4))
          << layout << " " << head_name(h);
    }
  }
}

TEST(HeadsCli, MeanAblationChangesGenerationAndPatchAppliesPerInput) {
  std::string model = mstest::fixture("gpt2/model");
  auto zero = generate_ids(model, {"--ablate-heads", "1:*"});
  auto mean = generate_ids(model, {"--ablate-heads", "1:*", "--ablation", "mean"});
  EXPECT_EQ(mean.size(), zero.size());
  EXPECT_NE(mean, mstest::to_vec(ref()->get("heads.generate_base")));
  // Two inputs, one source each: the second input patched from itself keeps its plain logits.
  std::string dir = mstest::tmp_dir("heads-run-batch");
  std::string p = ids_arg(ref()->get("heads.prompt_ids")), s = ids_arg(ref()->get("heads.source_ids"));
  auto r = run_cli({"run", "--model", model, "--ids", p, "--ids", s, "--patch-heads", "0:1", "--patch-source-ids", s,
                    "--patch-source-ids", s, "--out", join_path(dir, "b.safetensors")});
  ASSERT_EQ(r.code, 0) << r.err;
  r = run_cli({"run", "--model", model, "--ids", s, "--out", join_path(dir, "plain.safetensors")});
  ASSERT_EQ(r.code, 0) << r.err;
  at::Tensor batch = io::SafetensorsFile::open(join_path(dir, "b.safetensors"))->get("logits");
  at::Tensor plain = io::SafetensorsFile::open(join_path(dir, "plain.safetensors"))->get("logits");
  EXPECT_TRUE(mstest::close(batch[1], plain[0], 1e-5, 1e-5));
  EXPECT_TRUE(mstest::close(batch[0][-1], ref()->get("heads.patch_logits_L0H1"), 1e-4, 1e-4));
}

void expect_error(const std::vector<std::string>& args, const std::string& needle) {
  auto r = run_cli(args);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, needle)) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(HeadsCli, BadHeadsAndSourcesAreOneClearError) {
  std::string model = mstest::fixture("gpt2/model");
  std::string p = ids_arg(ref()->get("heads.prompt_ids"));
  std::vector<std::string> gen{"generate", "--model", model, "--ids", p, "--max-new-tokens", "3"};
  auto with = [](std::vector<std::string> a, std::vector<std::string> more) {
    a.insert(a.end(), more.begin(), more.end());
    return a;
  };
  expect_error(with(gen, {"--ablate-heads", "2:0"}), "layer 2 is out of range (the model has 2 layers");
  expect_error(with(gen, {"--ablate-heads", "0:4"}), "head 4 is out of range");
  expect_error(with(gen, {"--ablate-heads", "a:b"}), "--ablate-heads item 'a:b'");
  expect_error(with(gen, {"--ablate-heads", "0:1", "--ablation", "half"}),
               "--ablation: expected zero or mean, got 'half'");
  expect_error(with(gen, {"--ablation", "mean"}), "--ablation applies to --ablate-heads");
  std::string dir = mstest::tmp_dir("heads-run-bad");
  std::string out = join_path(dir, "x.safetensors");
  std::vector<std::string> run{"run", "--model", model, "--ids", p, "--out", out};
  expect_error(with(run, {"--patch-heads", "0:1"}), "--patch-heads needs --patch-source-ids");
  expect_error(with(run, {"--patch-heads", "0:1", "--patch-source-ids", "1,2,3"}),
               "--patch-source-ids has 3 tokens but input 1 has 6");
  expect_error(with(run, {"--patch-heads", "0:1", "--patch-source-ids", "1,2,3,4,5,99999999"}), "--patch-source-ids");
  expect_error(with(run, {"--patch-heads", "1:x", "--patch-source-ids", p}), "--patch-heads item '1:x'");
  expect_error(with(run, {"--patch-source-ids", p}), "--patch-source-ids applies to --patch-heads");
  expect_error(with(run, {"--patch-heads", "0:1", "--patch-source-ids", p, "--patch-source-ids", p}),
               "--patch-source-ids given 2 times for 1 inputs");
  EXPECT_FALSE(file_exists(out));
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

TEST(SentimentCli, OneObjectPerTextWithTheNpmScores) {
  std::string dir = mstest::tmp_dir("sentiment-cli");
  std::string file = join_path(dir, "texts.jsonl");
  write_file(file,
             "\"VADER is smart, handsome, and funny!!! But not GOOD at all :)\"\n\n{\"text\": \"The book was good.\", "
             "\"id\": 3}\n\"\"\n");
  auto r = run_cli({"sentiment", "--texts", file});
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<nlohmann::json> lines;
  size_t start = 0;
  for (size_t nl; (nl = r.out.find('\n', start)) != std::string::npos; start = nl + 1)
    lines.push_back(nlohmann::json::parse(r.out.substr(start, nl - start)));
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_EQ(lines[0]["text"], "VADER is smart, handsome, and funny!!! But not GOOD at all :)");
  EXPECT_EQ(lines[0]["vader"]["neg"].get<double>(), 0.13);
  EXPECT_EQ(lines[0]["vader"]["neu"].get<double>(), 0.309);
  EXPECT_EQ(lines[0]["vader"]["pos"].get<double>(), 0.56);
  EXPECT_EQ(lines[0]["vader"]["compound"].get<double>(), 0.8666);
  EXPECT_EQ(lines[1]["vader"]["compound"].get<double>(), 0.4404);  // npm: polarity_scores("The book was good.")
  EXPECT_EQ(lines[2]["vader"]["compound"].get<double>(), 0.0);
  r = run_cli({"sentiment", "--text", "I hate this.", "--text", "Thank you!"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "\"compound\":-0.5719")) << r.out;
}

TEST(SentimentCli, BadInputIsOneClearError) {
  std::string dir = mstest::tmp_dir("sentiment-bad");
  std::string empty = join_path(dir, "empty.jsonl"), broken = join_path(dir, "broken.jsonl"),
              notext = join_path(dir, "notext.jsonl");
  write_file(empty, "\n\n");
  write_file(broken, "\"fine\"\n\"unterminated\n");
  write_file(notext, "{\"prompt\": \"x\"}\n");
  expect_error({"sentiment", "--texts", empty}, "has no texts");
  expect_error({"sentiment", "--texts", broken}, "broken.jsonl:2 is not valid JSON");
  expect_error({"sentiment", "--texts", notext},
               "notext.jsonl:1: expected a JSON string or an object with a \"text\" string");
  expect_error({"sentiment", "--texts", join_path(dir, "missing.jsonl")}, "cannot read --texts file");
  expect_error({"sentiment"}, "give the texts with --texts");
}

// A two-emotion profile of two pairs each (one of them of different token lengths).
std::string small_profile(const std::string& name) {
  std::string dir = mstest::tmp_dir(name);
  write_file(join_path(dir, "joy.jsonl"),
             "{\"emotion\": \"Today I really appreciate the gift, and\", \"neutral\": \"Today I just noticed the gift, "
             "and\"}\n"
             "{\"emotion\": \"Honestly, I am so thankful for your help. I\", \"neutral\": \"Honestly, I saw your help. "
             "I\"}\n");
  write_file(join_path(dir, "rage.jsonl"),
             "{\"emotion\": \"I am furious about the noise, so\", \"neutral\": \"I am thinking about the noise, so\"}\n"
             "{\"emotion\": \"We hate the new schedule. It\", \"neutral\": \"We saw the new schedule. It\"}\n");
  write_file(join_path(dir, "keywords.json"), "{\"joy\": [\"thank\", \"glad\"], \"rage\": [\"angry\", \"hate\"]}");
  return dir;
}

TEST(HeadsScreenCli, ScoresEqualTheLibraryOnTheSamePairs) {
  std::string prof = small_profile("screen-prof");
  std::string model_dir = mstest::fixture("gpt2/model");
  auto model = models::load_model(model_dir);
  auto tok = tokenizers::load_tokenizer(model_dir);
  namespace H = analysis::heads;
  auto profile = H::load_profile(prof);
  for (const char* score : {"keyword-attention", "output-norm", "causal"}) {
    std::string out = join_path(mstest::tmp_dir(std::string("screen-") + score), "out");
    auto r = run_cli({"heads", "screen", "--model", model_dir, "--profile", prof, "--score", score, "--out", out});
    ASSERT_EQ(r.code, 0) << r.err;
    auto j = nlohmann::json::parse(read_file(join_path(out, "head_scores.json")));
    EXPECT_EQ(j["scores"].size(), 2u * 4u * 2u);
    EXPECT_EQ(j["score"], score);
    EXPECT_EQ(j["length_mismatched_pairs"]["joy"], 1);
    EXPECT_EQ(j["length_mismatched_pairs"]["rage"], 0);
    auto st = io::SafetensorsFile::open(join_path(out, "head_scores.safetensors"));
    for (const char* e : {"joy", "rage"}) {
      std::vector<H::AlignedPair> pairs;
      for (auto& p : profile.of(e)) pairs.push_back(H::align_pair(tok->encode(p.emotion), tok->encode(p.neutral)));
      at::Tensor want;
      if (std::string(score) == "keyword-attention") want = H::keyword_attention_scores(*model, pairs);
      else if (std::string(score) == "output-norm") want = H::output_norm_scores(*model, pairs);
      else {
        std::vector<int64_t> kw;
        for (auto& w : profile.keywords.at(e)) kw.push_back(tok->encode(" " + w)[0]);
        want = H::causal_scores(*model, pairs, kw);
      }
      EXPECT_TRUE(mstest::close(st->get(e), want, 1e-5, 1e-6)) << score << " " << e;
      for (auto& row : j["scores"])
        if (row["emotion"] == e)
          EXPECT_NEAR(row["score"].get<double>(), want[row["layer"].get<int>()][row["head"].get<int>()].item<double>(),
                      1e-9);
    }
    EXPECT_TRUE(file_exists(join_path(out, "manifest.json")));
    EXPECT_TRUE(file_exists(join_path(out, "index.html")));
  }
  // The shipped profile by name, one emotion.
  std::string out = join_path(mstest::tmp_dir("screen-shipped"), "out");
  auto r =
      run_cli({"heads", "screen", "--model", model_dir, "--profile", "baseline", "--emotion", "anger", "--out", out});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(read_file(join_path(out, "head_scores.json")));
  EXPECT_EQ(j["pairs"]["anger"], 70);
  EXPECT_EQ(j["length_mismatched_pairs"]["anger"], 0);
  EXPECT_EQ(j["top"].size(), 8u);
}

TEST(HeadsScreenCli, BadProfilesAndFlagsAreOneClearErrorWithNothingWritten) {
  std::string model_dir = mstest::fixture("gpt2/model");
  std::string prof = small_profile("screen-bad");
  std::string out = join_path(mstest::tmp_dir("screen-bad-out"), "out");
  std::vector<std::string> base{"heads", "screen", "--model", model_dir, "--out", out, "--profile"};
  auto with = [&](std::vector<std::string> more) {
    auto a = base;
    a.insert(a.end(), more.begin(), more.end());
    return a;
  };
  expect_error(with({prof, "--emotion", "fear"}), "unknown emotion 'fear'");
  expect_error(with({prof, "--emotion", "fear"}), "(known: joy, rage)");
  expect_error(with({prof, "--score", "attention"}), "--score: expected keyword-attention, output-norm or causal");
  expect_error(with({"no-such-profile"}), "--profile 'no-such-profile' is neither a directory nor a shipped profile");
  write_file(join_path(prof, "fear.jsonl"), "\n");
  expect_error(with({prof}), "fear.jsonl' has no pairs");
  write_file(join_path(prof, "fear.jsonl"),
             "{\"emotion\": \"I fear it. I\", \"neutral\": \"I see it. I\"}\nnot json\n");
  expect_error(with({prof}), "fear.jsonl:2 is not valid JSON");
  write_file(join_path(prof, "fear.jsonl"), "{\"emotion\": \"I fear it. I\", \"neutral\": \"I see it. I\"}\n");
  expect_error(with({prof}), "keywords.json has no keywords for emotion 'fear'");
  write_file(join_path(prof, "keywords.json"), "{\"joy\": [\"glad\"], \"rage\": [\"mad\"], \"fear\": [\"afraid\"]}");
  write_file(join_path(prof, "fear.jsonl"), "{\"emotion\": \"I fear\", \"neutral\": \"I see\"}\n");
  expect_error(with({prof}), "fear.jsonl:1: the emotional phrase ends the prompt");
  expect_error({"heads", "scrn"}, "unknown heads subcommand 'scrn' (known: screen, ablate, patch, plot, all)");
  EXPECT_FALSE(dir_exists(out));
}

TEST(HeadsAblateCli, GenerationsEqualGenerateWithTheSameHeadsAndScoresAreTheirs) {
  std::string prof = small_profile("ablate-prof");
  std::string model_dir = mstest::fixture("gpt2/model");
  namespace H = analysis::heads;
  auto model = models::load_model(model_dir);
  auto tok = tokenizers::load_tokenizer(model_dir);
  auto profile = H::load_profile(prof);
  for (const char* kind : {"zero", "mean"}) {
    std::string out = join_path(mstest::tmp_dir(std::string("ablate-") + kind), "out");
    auto r = run_cli({"heads",        "ablate",    "--model",     model_dir,      "--profile", prof,     "--head-spec",
                      "0:1,1:*",      "--emotion", "joy",         "--max-tokens", "5",         "--kind", kind,
                      "--batch-size", "1",         "--resamples", "200",          "--out",     out});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "sentiment")) << r.out;
    auto j = nlohmann::json::parse(read_file(join_path(out, "model_joy_01_10_11_12_13.json")));
    EXPECT_EQ(j["kind"], kind);
    ASSERT_EQ(j["prompts"].size(), 2u);
    // The same heads ablated by the library, one prompt at a time (mean: over every prompt of the profile).
    auto heads = H::parse_head_spec("0:1,1:*", 2, 4, "--h");
    std::map<int64_t, at::Tensor> means;
    if (std::string(kind) == "mean") {
      std::vector<std::vector<int64_t>> all;
      for (auto& [e, ps] : profile.pairs)
        for (auto& p : ps) {
          all.push_back(tok->encode(p.emotion));
          all.push_back(tok->encode(p.neutral));
        }
      means = H::mean_z(*model, all, heads);
    }
    hooks::HookSet hs;
    hooks::ScopedHooks scope(hs);
    H::add_ablation(scope, heads, std::string(kind) == "mean" ? H::HeadAblation::Mean : H::HeadAblation::Zero, means);
    std::vector<double> diffs;
    for (auto& p : j["prompts"]) {
      auto ids = p["prompt_ids"].get<std::vector<int64_t>>();
      models::GenerateOptions g;
      g.max_new_tokens = 5;
      g.eos_token_id = model->config().eos_token_id;
      EXPECT_EQ(p["baseline"]["ids"].get<std::vector<int64_t>>(), models::generate(*model, ids, g));
      g.hooks = &hs;
      EXPECT_EQ(p["ablated"]["ids"].get<std::vector<int64_t>>(), models::generate(*model, ids, g)) << kind;
      for (const char* side : {"baseline", "ablated"})
        EXPECT_EQ(p[side]["sentiment"].get<double>(),
                  analysis::sentiment::vader(p[side]["text"].get<std::string>()).compound);
      diffs.push_back(p["ablated"]["sentiment"].get<double>() - p["baseline"]["sentiment"].get<double>());
    }
    EXPECT_NEAR(j["comparison"]["sentiment"]["mean_diff"].get<double>(), (diffs[0] + diffs[1]) / 2, 1e-12);
    EXPECT_TRUE(j["comparison"]["keywords"].contains("rage"));
    EXPECT_TRUE(file_exists(join_path(out, "head_ablation.safetensors")));
    EXPECT_TRUE(file_exists(join_path(out, "manifest.json")));
  }
  // The zero-ablated continuations also equal `generate --ablate-heads` through the CLI.
  std::string out = join_path(mstest::tmp_dir("ablate-cli-zero"), "out");
  auto r = run_cli({"heads", "ablate", "--model", model_dir, "--profile", prof, "--head-spec", "1:3", "--emotion",
                    "rage", "--max-tokens", "4", "--out", out});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(read_file(join_path(out, "model_rage_13.json")));
  for (auto& p : j["prompts"]) {
    auto g = run_cli({"generate", "--model", model_dir, "--ids",
                      ids_arg(at::tensor(p["prompt_ids"].get<std::vector<int64_t>>())), "--max-new-tokens", "4",
                      "--ablate-heads", "1:3", "--json"});
    ASSERT_EQ(g.code, 0) << g.err;
    EXPECT_EQ(nlohmann::json::parse(g.out)["new_ids"], p["ablated"]["ids"]);
  }
}

TEST(HeadsAblateCli, BadInputIsOneClearErrorWithNothingWritten) {
  std::string model_dir = mstest::fixture("gpt2/model");
  std::string prof = small_profile("ablate-bad");
  std::string out = join_path(mstest::tmp_dir("ablate-bad-out"), "out");
  std::vector<std::string> base{"heads", "ablate", "--model", model_dir, "--profile", prof, "--out", out};
  auto with = [&](std::vector<std::string> more) {
    auto a = base;
    a.insert(a.end(), more.begin(), more.end());
    return a;
  };
  expect_error(with({"--head-spec", "2:0"}), "--head-spec item '2:0': layer 2 is out of range (the model has 2 layers");
  expect_error(with({"--head-spec", "a:b"}), "--head-spec item 'a:b'");
  expect_error(with({}), "--head-spec L:H,... is required");
  expect_error(with({"--head-spec", "0:0", "--kind", "half"}), "--kind: expected zero or mean, got 'half'");
  expect_error(with({"--head-spec", "0:0", "--emotion", "fear"}), "unknown emotion 'fear'");
  expect_error(with({"--head-spec", "0:0", "--prompts-file", join_path(prof, "joy.jsonl")}),
               "--prompts-file replaces one emotion's prompts");
  expect_error(with({"--head-spec", "0:0", "--emotion", "joy", "--prompts-file", join_path(prof, "missing.jsonl")}),
               "missing.jsonl");
  EXPECT_FALSE(dir_exists(out));
}

TEST(HeadsPatchCli, GenerationsEqualTheHandWrittenPatchOnePromptAtATime) {
  std::string prof = small_profile("patch-prof");
  std::string model_dir = mstest::fixture("gpt2/model");
  namespace H = analysis::heads;
  auto model = models::load_model(model_dir);
  for (const char* pg : {"none", "mean"}) {
    std::string out = join_path(mstest::tmp_dir(std::string("patch-") + pg), "out");
    auto r = run_cli({"heads", "patch", "--model", model_dir, "--profile", prof, "--head-spec", "0:*,1:2", "--emotion",
                      "joy", "--max-tokens", "5", "--patch-generated", pg, "--resamples", "100", "--out", out});
    ASSERT_EQ(r.code, 0) << r.err;
    auto j = nlohmann::json::parse(read_file(join_path(out, "model_joy_00_01_02_03_12.json")));
    EXPECT_EQ(j["length_mismatched_pairs"], 1);
    ASSERT_EQ(j["prompts"].size(), 2u);
    auto heads = H::parse_head_spec("0:*,1:2", 2, 4, "--h");
    for (auto& p : j["prompts"]) {
      auto nids = p["prompt_ids"].get<std::vector<int64_t>>(), eids = p["source_ids"].get<std::vector<int64_t>>();
      int64_t n = (int64_t)nids.size();
      hooks::HookSet hs;
      std::vector<int64_t> gen_pos;
      for (int64_t q = n; q < n + 5; ++q) gen_pos.push_back(q);
      for (auto& [l, hl] : H::heads_by_layer(heads)) {
        at::Tensor ez = H::capture_z(*model, at::tensor(eids, at::kLong).unsqueeze(0), {l})[l];
        at::Tensor nz = H::capture_z(*model, at::tensor(nids, at::kLong).unsqueeze(0), {l})[l];
        auto patch = hooks::replace_with(H::aligned_source(ez, nz), {{}, hl});
        hs.add(H::z_hook(l), [patch, n](at::Tensor& t, const hooks::HookContext& c) {
          if (c.pos0 < n) patch(t, c);
        });
        if (std::string(pg) == "mean")
          hs.add(H::z_hook(l), hooks::fill(ez[0].index_select(1, at::tensor(hl, at::kLong)).mean(0), {gen_pos, hl}));
      }
      models::GenerateOptions g;
      g.max_new_tokens = 5;
      g.eos_token_id = model->config().eos_token_id;
      EXPECT_EQ(p["baseline"]["ids"].get<std::vector<int64_t>>(), models::generate(*model, nids, g));
      g.hooks = &hs;
      EXPECT_EQ(p["patched"]["ids"].get<std::vector<int64_t>>(), models::generate(*model, nids, g)) << pg;
      EXPECT_EQ(p["patched"]["sentiment"].get<double>(),
                analysis::sentiment::vader(p["patched"]["text"].get<std::string>()).compound);
    }
    EXPECT_TRUE(file_exists(join_path(out, "head_patching.safetensors")));
  }
  std::string out = join_path(mstest::tmp_dir("patch-bad"), "out");
  std::vector<std::string> base{"heads", "patch", "--model", model_dir, "--profile", prof, "--out", out};
  auto with = [&](std::vector<std::string> more) {
    auto a = base;
    a.insert(a.end(), more.begin(), more.end());
    return a;
  };
  expect_error(with({"--head-spec", "0:0", "--patch-generated", "all"}),
               "--patch-generated: expected none or mean, got 'all'");
  expect_error(with({"--head-spec", "0:9"}), "head 9 is out of range");
  expect_error(with({"--head-spec", "0:0", "--emotion", "fear"}), "(known: joy, rage)");
  EXPECT_FALSE(dir_exists(out));
}

}  // namespace
