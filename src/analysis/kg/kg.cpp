#include "analysis/kg/kg.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "core/fs_guard.h"
#include "core/error.h"
#include "core/json.h"
#include "core/fs.h"

namespace mechscope::analysis {

namespace {

const char* kConsonants[] = {"b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "sh"};
const char* kVowels[] = {"a", "e", "i", "o", "u"};

std::string pad(int x, int width) {
  std::string s = std::to_string(x);
  return std::string(std::max(0, width - (int)s.size()), '0') + s;
}

std::vector<std::string> syllables() {
  std::vector<std::string> out;
  for (auto c : kConsonants)
    for (auto v : kVowels) out.push_back(std::string(c) + v);
  return out;
}

}  // namespace

std::string KnowledgeGraph::prompt(const KgFact& f) const {
  return entity_names[f.subject] + " " + relation_ids[f.relation] + " ->";
}

std::string KnowledgeGraph::fact_id(const KgFact& f) const {
  return entity_ids[f.subject] + "_" + relation_ids[f.relation];
}

nlohmann::json KnowledgeGraph::fact_json(const KgFact& f) const {
  return {{"id", fact_id(f)},
          {"prompt", prompt(f)},
          {"subject", entity_names[f.subject]},
          {"answer", entity_ids[f.object]}};
}

nlohmann::json KnowledgeGraph::tokenizer_json() const {
  nlohmann::json vocab = nlohmann::json::object();
  int64_t next = 0;
  auto add = [&](const std::string& w) {
    if (!vocab.contains(w)) vocab[w] = next++;
  };
  add("<|endoftext|>");
  add("[UNK]");
  for (auto& s : syllables()) add(s);
  for (auto& r : relation_ids) add(r);
  add("->");
  for (auto& e : entity_ids) add(e);
  auto special = [](int64_t id, const char* content) {
    return nlohmann::json{{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", false},
                          {"rstrip", false}, {"normalized", false}, {"special", true}};
  };
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", {special(0, "<|endoftext|>"), special(1, "[UNK]")}},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "WhitespaceSplit"}}},
          {"post_processor", nullptr},
          {"decoder", nullptr},
          {"model", {{"type", "WordLevel"}, {"vocab", vocab}, {"unk_token", "[UNK]"}}}};
}

KnowledgeGraph generate_kg(const KgOptions& o) {
  if (o.entities < 4) fail(option("entities"), " must be at least 4");
  if (o.relations < 1 || o.relations > 100) fail(option("relations"), " must be between 1 and 100");
  if (o.edges_per_node < 1 || o.edges_per_node >= o.entities)
    fail(option("edges_per_node"), " must be in [1, ", option("entities"), ")");
  auto syl = syllables();
  // Names of 2–4 syllables: 75^2 = 5,625 two-syllable names alone; cap well below the space.
  if (o.entities > 20000) fail(option("entities"), " must be at most 20000");
  std::mt19937_64 rng(o.seed);
  KnowledgeGraph kg;
  std::set<std::string> used;
  for (int i = 0; i < o.entities; ++i) {
    kg.entity_ids.push_back("E_" + pad(i, o.entities > 1000 ? 4 : 3));
    std::string name;
    do {
      int len = 2 + (int)(rng() % 3);
      name.clear();
      for (int k = 0; k < len; ++k) name += (k ? " " : "") + syl[rng() % syl.size()];
    } while (!used.insert(name).second);
    kg.entity_names.push_back(name);
  }
  for (int r = 0; r < o.relations; ++r) kg.relation_ids.push_back("R_" + pad(r, 2));

  // Barabási–Albert: a clique of m + 1 nodes, then each new node attaches to m distinct nodes
  // chosen with probability proportional to degree (the repeated-endpoint list trick).
  int m = o.edges_per_node;
  std::vector<int> endpoints;
  for (int a = 0; a <= m; ++a)
    for (int b = a + 1; b <= m; ++b) {
      kg.edges.push_back({a, b});
      endpoints.push_back(a);
      endpoints.push_back(b);
    }
  for (int v = m + 1; v < o.entities; ++v) {
    std::set<int> targets;
    while ((int)targets.size() < m) targets.insert(endpoints[rng() % endpoints.size()]);
    for (int t : targets) {
      kg.edges.push_back({v, t});
      endpoints.push_back(v);
      endpoints.push_back(t);
    }
  }

  std::vector<std::set<int>> free(o.entities);
  for (auto& f : free)
    for (int r = 0; r < o.relations; ++r) f.insert(r);
  for (auto [a, b] : kg.edges) {
    int s = a, t = b;
    if (rng() % 2) std::swap(s, t);
    if (free[s].empty()) std::swap(s, t);
    if (free[s].empty()) continue;
    auto it = free[s].begin();
    std::advance(it, rng() % free[s].size());
    kg.facts.push_back({s, *it, t});
    free[s].erase(it);
  }
  return kg;
}

void write_kg(const KnowledgeGraph& kg, const KgOptions& o, const std::string& dir) {
  make_dirs(dir);
  std::string graph, facts;
  for (auto& f : kg.facts) {
    nlohmann::json g{{"subject", kg.entity_ids[f.subject]},
                     {"relation", kg.relation_ids[f.relation]},
                     {"object", kg.entity_ids[f.object]},
                     {"subject_name", kg.entity_names[f.subject]},
                     {"object_name", kg.entity_names[f.object]}};
    graph += g.dump() + "\n";
    facts += kg.fact_json(f).dump() + "\n";
  }
  write_file_atomic(join_path(dir, "graph.jsonl"), graph);
  write_file_atomic(join_path(dir, "facts.jsonl"), facts);
  write_file_atomic(join_path(dir, "tokenizer.json"), kg.tokenizer_json().dump(1));
  nlohmann::json meta{{"generator", "mechscope kg generate"},
                      {"model", "barabasi-albert"},
                      {"entities", o.entities},
                      {"relations", o.relations},
                      {"edges_per_node", o.edges_per_node},
                      {"seed", o.seed},
                      {"edges", kg.edges.size()},
                      {"facts", kg.facts.size()}};
  write_file_atomic(join_path(dir, "kg.json"), meta.dump(2) + "\n");
}

KnowledgeGraph read_kg(const std::string& path) {
  KnowledgeGraph kg;
  std::map<std::string, int> ent, rel;
  auto entity = [&](const std::string& id, const std::string& name) {
    auto it = ent.find(id);
    if (it != ent.end()) return it->second;
    kg.entity_ids.push_back(id);
    kg.entity_names.push_back(name);
    return ent[id] = (int)kg.entity_ids.size() - 1;
  };
  // Line by line, a line longer than 16 MiB refused before it is held (issue 17).
  for_each_line(path, [&](const std::string& line, long long n) {
    if (line.empty()) return;
    nlohmann::json j = parse_json(line, cat(path, ":", n));
    try {
      KgFact f;
      f.subject = entity(j.at("subject").get<std::string>(), j.at("subject_name").get<std::string>());
      f.object = entity(j.at("object").get<std::string>(), j.at("object_name").get<std::string>());
      std::string r = j.at("relation").get<std::string>();
      if (!rel.count(r)) {
        kg.relation_ids.push_back(r);
        rel[r] = (int)kg.relation_ids.size() - 1;
      }
      f.relation = rel[r];
      kg.facts.push_back(f);
    } catch (const nlohmann::json::exception& e) {
      fail(path, ":", n, ": expected {\"subject\", \"relation\", \"object\", \"subject_name\", \"object_name\"} (",
           e.what(), ")");
    }
  });
  if (kg.facts.empty()) fail(path, ": no facts");
  return kg;
}

}  // namespace mechscope::analysis
