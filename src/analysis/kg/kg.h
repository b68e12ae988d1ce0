// A synthetic knowledge graph for causal tracing (seed 000): a Barabási–Albert graph over entities
// E_000 … with relation types R_00 …, each fact (subject, relation, object) written as a prompt that a
// small GPT can memorise and mechscope can trace:
//
//   prompt  "ka ri to R_27 ->"      subject "ka ri to" (2–4 tokens)     answer "E_042" (one token)
//
// Subjects are spelled as syllables so that ROME's token categories (first / middle / last subject
// token, first subsequent token, last token) are all distinct; the object is named by its id, one
// token of a WordLevel tokenizer (WhitespaceSplit) that the tokenizer.json pipeline reads.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mechscope::analysis {

struct KgOptions {
  int entities = 300;
  int relations = 30;
  int edges_per_node = 2;  // Barabási–Albert m
  uint64_t seed = 0;
};

struct KgFact {
  int subject, relation, object;
};

struct KnowledgeGraph {
  std::vector<std::string> entity_ids;    // "E_008"
  std::vector<std::string> entity_names;  // "ka ri to"
  std::vector<std::string> relation_ids;  // "R_27"
  std::vector<KgFact> facts;
  std::vector<std::pair<int, int>> edges;  // undirected BA edges, before facts were oriented

  std::string prompt(const KgFact& f) const;   // ends right before the answer
  std::string fact_id(const KgFact& f) const;  // "E_008_R_27"
  // One JSON object per fact in the format `mechscope locate` reads.
  nlohmann::json fact_json(const KgFact& f) const;
  // A WordLevel tokenizer.json covering every word the prompts and answers use.
  nlohmann::json tokenizer_json() const;
};

// Builds the graph: preferential attachment, then each edge becomes one fact with a relation the
// subject does not use yet (so every (subject, relation) has one answer). Edges whose both ends
// have used every relation are dropped.
KnowledgeGraph generate_kg(const KgOptions& opts);

// Writes graph.jsonl (one fact per line, with the entity names), facts.jsonl (locate's format) and
// tokenizer.json into `dir`, atomically.
void write_kg(const KnowledgeGraph& kg, const KgOptions& opts, const std::string& dir);

// Reads graph.jsonl back. Error naming the line on malformed input.
KnowledgeGraph read_kg(const std::string& graph_jsonl);

}  // namespace mechscope::analysis
