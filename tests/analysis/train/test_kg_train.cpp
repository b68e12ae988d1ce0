// The knowledge graph generator and the trainer behind the shipped demo model.
#include <gtest/gtest.h>

#include <set>

#include "analysis/kg/kg.h"
#include "analysis/train/train.h"
#include "core/error.h"
#include "core/fs.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "models/model.h"
#include "tensor_util.h"
#include "test_util.h"
#include "tokenizers/tokenizer.h"

using namespace mechscope;
using namespace mechscope::analysis;

namespace {

TEST(KnowledgeGraph, BarabasiAlbertShapeAndFunctionalFacts) {
  KgOptions o;
  o.entities = 200;
  o.relations = 12;
  o.edges_per_node = 2;
  o.seed = 3;
  auto kg = generate_kg(o);
  // A clique of m + 1 nodes, then m edges per further node.
  EXPECT_EQ(kg.edges.size(), 3u + 2u * (200 - 3));
  std::vector<int> degree(200);
  for (auto [a, b] : kg.edges) degree[a]++, degree[b]++;
  for (int d : degree) EXPECT_GE(d, 2);
  // Preferential attachment makes hubs: the largest degree is far above the mean (4).
  EXPECT_GT(*std::max_element(degree.begin(), degree.end()), 15);
  std::set<std::pair<int, int>> subject_relation;
  for (auto& f : kg.facts) EXPECT_TRUE(subject_relation.insert({f.subject, f.relation}).second) << "two answers";
  EXPECT_GE(kg.facts.size(), kg.edges.size() * 9 / 10);
  // Same seed, same graph.
  auto again = generate_kg(o);
  EXPECT_EQ(again.entity_names, kg.entity_names);
  EXPECT_EQ(again.facts.size(), kg.facts.size());
}

TEST(KnowledgeGraph, PromptsTokenizeAsLocateNeeds) {
  KgOptions o;
  o.entities = 80;
  o.relations = 6;
  auto kg = generate_kg(o);
  std::string dir = mstest::tmp_dir("kg");
  write_kg(kg, o, dir);
  auto tok = tokenizers::load_tokenizer(dir + "/tokenizer.json");
  auto back = read_kg(dir + "/graph.jsonl");
  EXPECT_EQ(back.facts.size(), kg.facts.size());
  for (auto& f : kg.facts) {
    auto subj = tok->encode(kg.entity_names[f.subject]);
    EXPECT_GE(subj.size(), 2u);
    EXPECT_LE(subj.size(), 4u);
    auto prompt = tok->encode(kg.prompt(f));
    // The prompt starts with the subject's tokens, then the relation and "->".
    EXPECT_EQ(std::vector<int64_t>(prompt.begin(), prompt.begin() + subj.size()), subj);
    EXPECT_EQ(prompt.size(), subj.size() + 2);
    EXPECT_EQ(tok->encode(kg.entity_ids[f.object]).size(), 1u);
    for (int64_t id : prompt) EXPECT_NE(tok->id_to_token(id), "[UNK]");
  }
  // facts.jsonl lines carry what `mechscope locate` reads.
  std::string first = read_file(dir + "/facts.jsonl");
  auto j = nlohmann::json::parse(first.substr(0, first.find('\n')));
  for (const char* k : {"id", "prompt", "subject", "answer"}) EXPECT_TRUE(j.contains(k)) << k;
}

TEST(Train, TinyGraphIsLearnedAndTheSavedModelReloads) {
  KgOptions ko;
  ko.entities = 30;
  ko.relations = 4;
  ko.seed = 1;
  auto kg = generate_kg(ko);
  std::string dir = mstest::tmp_dir("train");
  write_kg(kg, ko, dir + "/kg");
  TrainOptions o;
  o.n_layers = 2;
  o.d_model = 48;
  o.n_heads = 2;
  o.steps = 400;
  o.warmup = 10;
  o.lr = 1e-2;
  o.batch = 32;
  o.eval_every = 400;
  o.checkpoint_every = 100;
  o.save_dtype = "float32";
  std::vector<double> losses;
  auto r = train_kg_model(kg, dir + "/kg/tokenizer.json", o, dir + "/model",
                          [&](const TrainStatus& s) { losses.push_back(s.loss); });
  ASSERT_EQ(losses.size(), 400u);
  // Loss falls from about log(vocab) to well below it, and the facts are recalled.
  double vocab = tokenizers::load_tokenizer(dir + "/kg/tokenizer.json")->size();
  EXPECT_GT(losses.front(), 0.8 * std::log(vocab));
  EXPECT_LT(r.final_loss, 1.0);
  EXPECT_GE(r.accuracy, 0.95);
  EXPECT_NEAR(fact_accuracy(dir + "/model", kg), r.accuracy, 1e-9);

  // The directory is a Hugging Face GPT-2 directory: same tensor names as transformers' save_pretrained.
  auto saved = io::Checkpoint::open(dir + "/model");
  auto fixture = io::Checkpoint::open(mstest::fixture("gpt2/model"));
  EXPECT_EQ(saved.names(), fixture.names());  // both have two blocks
  auto cfg = io::read_json_file(dir + "/model/config.json");
  EXPECT_EQ(cfg["model_type"], "gpt2");

  // Reloaded with the loader: the same logits as the in-memory model.
  auto m = models::load_model(dir + "/model");
  auto tok = tokenizers::load_tokenizer(dir + "/model");
  auto ids = tok->encode(kg.prompt(kg.facts[0]));
  models::RunContext ctx;
  at::NoGradGuard ng;
  at::Tensor logits = m->forward(at::tensor(ids, at::kLong).unsqueeze(0), ctx).select(1, -1).squeeze(0);
  EXPECT_TRUE(mstest::close(logits, at::tensor(r.probe_logits, at::kDouble), 1e-6, 1e-6));
}

TEST(Train, ResumeContinuesWithTheSameBatches) {
  KgOptions ko;
  ko.entities = 20;
  ko.relations = 3;
  auto kg = generate_kg(ko);
  std::string dir = mstest::tmp_dir("resume");
  write_kg(kg, ko, dir + "/kg");
  TrainOptions o;
  o.n_layers = 1;
  o.d_model = 16;
  o.n_heads = 2;
  o.steps = 40;
  o.warmup = 5;
  o.checkpoint_every = 20;
  o.eval_every = 40;
  o.save_dtype = "float32";
  auto full = train_kg_model(kg, dir + "/kg/tokenizer.json", o, dir + "/full");
  // A run stopped after its step-20 checkpoint, then resumed.
  TrainOptions first = o;
  first.steps = 40;
  int seen = 0;
  try {
    train_kg_model(kg, dir + "/kg/tokenizer.json", first, dir + "/resumed", [&](const TrainStatus& s) {
      if (++seen == 25) throw Error("simulated kill");
    });
  } catch (const Error&) {}
  TrainOptions rest = o;
  rest.resume = true;
  auto resumed = train_kg_model(kg, dir + "/kg/tokenizer.json", rest, dir + "/resumed");
  EXPECT_TRUE(mstest::close(at::tensor(resumed.probe_logits, at::kDouble), at::tensor(full.probe_logits, at::kDouble),
                            1e-4, 1e-5));
  EXPECT_NEAR(resumed.final_loss, full.final_loss, 1e-4);
}

TEST(Train, BadOptionsAreErrors) {
  KgOptions ko;
  ko.entities = 10;
  ko.relations = 2;
  auto kg = generate_kg(ko);
  std::string dir = mstest::tmp_dir("train-bad");
  write_kg(kg, ko, dir);
  TrainOptions o;
  o.d_model = 30;
  o.n_heads = 4;
  EXPECT_THROW(train_kg_model(kg, dir + "/tokenizer.json", o, dir + "/m"), Error);
  o = TrainOptions{};
  o.n_ctx = 3;
  EXPECT_THROW(train_kg_model(kg, dir + "/tokenizer.json", o, dir + "/m"), Error);
  KgOptions bad;
  bad.entities = 2;
  EXPECT_THROW(generate_kg(bad), Error);
}

}  // namespace
