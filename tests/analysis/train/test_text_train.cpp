// Training on a text corpus: the corpus reader, the word-level tokenizer built from it (checked
// against Hugging Face `tokenizers` through npm), and next-token training, save and resume.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "analysis/train/corpus.h"
#include "analysis/train/train.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "models/model.h"
#include "tensor_util.h"
#include "test_util.h"
#include "tokenizers/hf_tokenizer.h"
#include "tokenizers/tokenizer.h"

using namespace mechscope;
using namespace mechscope::analysis;
using nlohmann::json;

namespace {

std::string write_lines(const std::string& dir, const std::vector<std::string>& lines) {
  std::string p = dir + "/corpus.jsonl";
  std::ofstream f(p);
  for (auto& l : lines) f << l << "\n";
  return p;
}

std::string text_line(const std::string& t) { return json{{"text", t}}.dump(); }

// A small corpus whose continuation depends on a word several tokens back, like the emotion corpus.
std::vector<std::string> tiny_corpus() {
  const char* moods[][2] = {{"glad", "it was lovely ."}, {"angry", "it was awful ."}, {"busy", "it is on the list ."}};
  const char* things[] = {"the dinner", "your note", "the trip", "the report"};
  std::vector<std::string> out;
  for (auto& m : moods)
    for (auto* t : things) out.push_back(text_line(std::string("Today I am ") + m[0] + " about " + t + ". " + m[1]));
  return out;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ReadCorpus, BadFilesAreErrorsNamingTheLine) {
  std::string dir = mstest::tmp_dir("corpus-bad");
  EXPECT_TRUE(mstest::contains(error_of([&] { read_corpus(write_lines(dir, {})); }), "has no texts"));
  EXPECT_TRUE(mstest::contains(error_of([&] { read_corpus(write_lines(dir, {"", "  "})); }), "has no texts"));
  std::string e = error_of([&] { read_corpus(write_lines(dir, {text_line("a b"), "", "{\"text\": \"c"})); });
  EXPECT_TRUE(mstest::contains(e, "corpus.jsonl:3")) << e;
  e = error_of([&] { read_corpus(write_lines(dir, {text_line("a"), "{\"txt\": \"b\"}"})); });
  EXPECT_TRUE(mstest::contains(e, "corpus.jsonl:2: expected {\"text\"")) << e;
  e = error_of([&] { read_corpus(write_lines(dir, {"[\"a\"]"})); });
  EXPECT_TRUE(mstest::contains(e, "corpus.jsonl:1")) << e;
  e = error_of([&] { read_corpus(write_lines(dir, {text_line("")})); });
  EXPECT_TRUE(mstest::contains(e, "corpus.jsonl:1: the text is empty")) << e;
  EXPECT_TRUE(mstest::contains(error_of([&] { read_corpus(dir + "/missing.jsonl"); }), "does not exist"));
  auto c = read_corpus(write_lines(dir, {text_line("one"), "", text_line("two")}));
  EXPECT_EQ(c.texts, (std::vector<std::string>{"one", "two"}));
  EXPECT_EQ(c.lines, (std::vector<int64_t>{1, 3}));
}

TEST(BuildWordTokenizer, SpecialsFirstThenWordsByCount) {
  std::string dir = mstest::tmp_dir("corpus-vocab");
  auto c = read_corpus(write_lines(dir, {text_line("The cat, the DOG."), text_line("the end!")}));
  json j = build_word_tokenizer(c, true);
  const json& v = j["model"]["vocab"];
  EXPECT_EQ(v["<|endoftext|>"], 0);
  EXPECT_EQ(v["[UNK]"], 1);
  EXPECT_EQ(v["[PAD]"], 2);
  EXPECT_EQ(v["the"], 3);        // three times, after lowercasing
  EXPECT_EQ(v.size(), 3u + 7u);  // the cat , dog . end !
  EXPECT_FALSE(v.contains("The"));
  json cased = build_word_tokenizer(c, false);
  EXPECT_TRUE(cased["model"]["vocab"].contains("The"));
  EXPECT_TRUE(cased["model"]["vocab"].contains("DOG"));

  tokenizers::HfTokenizer tok(j, "built");
  auto ids = tok.encode("the cat, the bird.");
  ASSERT_EQ(ids.size(), 6u);
  EXPECT_EQ(ids[4], 1);  // bird: never seen
  EXPECT_EQ(tok.decode(tok.encode("The cat, the DOG.")), "the cat , the dog .");

  auto blank = read_corpus(write_lines(dir, {text_line("fine"), text_line(" \t ")}));
  std::string e = error_of([&] { build_word_tokenizer(blank, true); });
  EXPECT_TRUE(mstest::contains(e, "corpus.jsonl:2: the text has no tokens")) << e;
}

// The reference: Hugging Face tokenizers (Rust, via npm) loading the same tokenizer.json.
TEST(BuildWordTokenizer, HfTokenizersLoadsItAndAgrees) {
  std::string dir = mstest::tmp_dir("corpus-hf");
  std::vector<std::string> lines = tiny_corpus();
  lines.push_back(text_line("I can't stand it -- it's \"awful\"!! (Really.)"));
  lines.push_back(text_line("Café au lait, naïve résumé; 3.14 and 2,000 #tags"));
  auto c = read_corpus(write_lines(dir, lines));
  std::vector<std::string> texts = c.texts;
  texts.insert(texts.end(), {"Unseen WORDS here, and some seen: today I am glad.", "  spaces\tand\nnewlines  ",
                             "punctuation...!?", "¿Qué? «quotes» — dash", "<|endoftext|> inside [PAD] text"});
  for (bool lower : {true, false}) {
    std::string tj = dir + (lower ? "/lower.json" : "/cased.json");
    write_file_atomic(tj, build_word_tokenizer(c, lower).dump());
    {
      std::ofstream f(dir + "/texts.jsonl");
      for (auto& t : texts) f << json(t).dump() << "\n";
    }
    auto r = mstest::run_shell("node '" + mstest::source_dir() + "/tests/tokenizers/hf_tokenizers.js' '" + tj + "' '" +
                               dir + "/texts.jsonl' '" + dir + "/ref.jsonl'");
    ASSERT_EQ(r.code, 0) << r.err;
    auto tok = tokenizers::load_tokenizer(tj);
    std::ifstream f(dir + "/ref.jsonl");
    size_t i = 0;
    for (std::string line; std::getline(f, line); ++i) {
      json ref = json::parse(line);
      ASSERT_LT(i, texts.size());
      auto ids = tok->encode(texts[i]);
      EXPECT_EQ(ids, ref["ids"].get<std::vector<int64_t>>()) << texts[i] << (lower ? " lower" : " cased");
      EXPECT_EQ(tok->decode(ids), ref["decoded"].get<std::string>()) << texts[i];
      // Every corpus text round-trips: decoding and encoding again gives the same ids, none unknown.
      if (i < c.texts.size()) {
        EXPECT_EQ(tok->encode(tok->decode(ids)), ids) << texts[i];
        for (int64_t id : ids) EXPECT_NE(id, 1) << texts[i];
      }
    }
    EXPECT_EQ(i, texts.size());
  }
}

TrainOptions tiny_options() {
  TrainOptions o;
  o.n_layers = 2;
  o.d_model = 32;
  o.n_heads = 2;
  o.n_ctx = 24;
  o.steps = 150;
  o.warmup = 10;
  o.lr = 1e-2;
  o.batch = 12;
  o.eval_every = 150;
  o.checkpoint_every = 50;
  o.save_dtype = "float32";
  return o;
}

TEST(TrainText, LossFallsAndTheSavedFolderReloads) {
  std::string dir = mstest::tmp_dir("text-train");
  auto c = read_corpus(write_lines(dir, tiny_corpus()));
  std::string tj = build_word_tokenizer(c, true).dump();
  std::vector<double> losses;
  auto r = train_text_model(c, tj, "built", tiny_options(), dir + "/model",
                            [&](const TrainStatus& s) { losses.push_back(s.loss); });
  ASSERT_EQ(losses.size(), 150u);
  int64_t vocab = json::parse(tj)["model"]["vocab"].size();
  EXPECT_GT(losses.front(), 0.8 * std::log((double)vocab));
  EXPECT_LT(r.final_loss, 0.5 * losses.front());
  EXPECT_EQ(r.examples, 12u);
  // Every next token but the mood word (one of three) and the object (one of four) is determined.
  EXPECT_GT(r.accuracy, 0.75);

  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                        "training_log.jsonl", "train_summary.json"})
    EXPECT_TRUE(file_exists(dir + "/model/" + f)) << f;
  auto summary = read_json_file(dir + "/model/train_summary.json");
  EXPECT_EQ(summary["texts"], 12);
  EXPECT_NEAR(summary["token_accuracy"].get<double>(), r.accuracy, 1e-12);
  auto tc = read_json_file(dir + "/model/tokenizer_config.json");
  EXPECT_EQ(tc["pad_token"], "[PAD]");

  // Reloaded by the loader: the same logits on the first text (without its <|endoftext|>), and the
  // model continues the mood it read four tokens back.
  auto m = models::load_model(dir + "/model");
  auto tok = tokenizers::load_tokenizer(dir + "/model");
  EXPECT_EQ(tok->eos_id(), std::optional<int64_t>(0));
  auto ids = tok->encode(c.texts[0]);
  models::RunContext ctx;
  at::NoGradGuard ng;
  at::Tensor logits = m->forward(at::tensor(ids, at::kLong).unsqueeze(0), ctx).select(1, -1).squeeze(0);
  EXPECT_TRUE(mstest::close(logits, at::tensor(r.probe_logits, at::kDouble), 1e-6, 1e-6));
  for (auto [mood, word] : {std::pair{"glad", "lovely"}, {"angry", "awful"}}) {
    auto p = tok->encode(std::string("Today I am ") + mood + " about the trip. it was");
    models::RunContext c2;
    int64_t next = m->forward(at::tensor(p, at::kLong).unsqueeze(0), c2).select(1, -1).argmax(-1).item<int64_t>();
    EXPECT_EQ(tok->id_to_token(next), word) << mood;
  }
}

TEST(TrainText, ResumeGivesTheSameModelAndRefusesOtherData) {
  std::string dir = mstest::tmp_dir("text-resume");
  auto c = read_corpus(write_lines(dir, tiny_corpus()));
  std::string tj = build_word_tokenizer(c, true).dump();
  TrainOptions o = tiny_options();
  o.n_layers = 1;
  o.d_model = 16;
  o.steps = 40;
  o.checkpoint_every = 20;
  o.eval_every = 40;
  auto full = train_text_model(c, tj, "built", o, dir + "/full");
  int seen = 0;
  try {
    train_text_model(c, tj, "built", o, dir + "/resumed", [&](const TrainStatus&) {
      if (++seen == 25) throw Error("simulated kill");
    });
  } catch (const Error&) {}
  TrainOptions rest = o;
  rest.resume = true;
  // Another corpus (one text fewer) is not what the checkpoint was trained on.
  TextCorpus other = c;
  other.texts.pop_back();
  other.lines.pop_back();
  std::string e = error_of([&] { train_text_model(other, tj, "built", rest, dir + "/resumed"); });
  EXPECT_TRUE(mstest::contains(e, "trained on other data")) << e;
  auto resumed = train_text_model(c, tj, "built", rest, dir + "/resumed");
  EXPECT_TRUE(mstest::close(at::tensor(resumed.probe_logits, at::kDouble), at::tensor(full.probe_logits, at::kDouble),
                            1e-4, 1e-5));
  EXPECT_NEAR(resumed.final_loss, full.final_loss, 1e-4);
}

TEST(TrainText, TextsTheModelCannotTakeAreErrorsBeforeAnythingIsWritten) {
  std::string dir = mstest::tmp_dir("text-bad");
  auto c = read_corpus(write_lines(dir, {text_line("short one"), text_line("a b c d e f g h i j k l")}));
  std::string tj = build_word_tokenizer(c, false).dump();
  TrainOptions o = tiny_options();
  o.n_ctx = 8;
  std::string e = error_of([&] { train_text_model(c, tj, "built", o, dir + "/m"); });
  EXPECT_TRUE(mstest::contains(e, "corpus.jsonl:2: the text has 13 tokens with <|endoftext|>, more than n_ctx 8")) << e;
  EXPECT_FALSE(dir_exists(dir + "/m"));
  // With a given tokenizer (not built from this corpus), a text of whitespace only has no tokens.
  auto blank = read_corpus(write_lines(dir, {text_line("short one"), text_line(" \t ")}));
  e = error_of([&] { train_text_model(blank, tj, "tokenizer.json", tiny_options(), dir + "/m"); });
  EXPECT_TRUE(mstest::contains(e, "corpus.jsonl:2: the text has no tokens under 'tokenizer.json'")) << e;
  EXPECT_FALSE(dir_exists(dir + "/m"));
}

}  // namespace
