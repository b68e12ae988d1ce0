// mechscope kg generate: the synthetic knowledge graph of seed 000.
#include <cstdio>
#include <limits>
#include <cstring>

#include "analysis/kg/kg.h"
#include "cli/args.h"
#include "cli/registry.h"
#include "core/error.h"
#include "core/fs.h"
#include "report/manifest.h"
#include "report/output.h"

namespace mechscope::cli {
namespace {

int run_kg(int argc, char** argv) {
  if (argc < 1 || std::strcmp(argv[0], "generate") != 0) {
    if (argc >= 1 && (!std::strcmp(argv[0], "--help") || !std::strcmp(argv[0], "-h"))) {
      std::printf("usage: mechscope kg generate --out DIR [options]   (mechscope kg generate --help)\n");
      return 0;
    }
    fail("usage: mechscope kg generate --out DIR [options]");
  }
  Args a("kg generate", "--out DIR [--entities N] [--relations R] [--edges-per-node M] [--seed S]",
         "Generates a Barabási–Albert knowledge graph and writes graph.jsonl, facts.jsonl (the format\n"
         "`mechscope locate` reads), tokenizer.json (WordLevel) and kg.json into DIR.\n"
         "It runs no model and no tensor maths (the graph is drawn with a seeded C++ generator), so it takes\n"
         "no --device; `mechscope train --kg` trains on the graph, on --device.");
  a.opt("out", "DIR", "output directory");
  a.opt("entities", "N", "number of entities", "300");
  a.opt("relations", "R", "number of relation types", "30");
  a.opt("edges-per-node", "M", "Barabási–Albert edges per new entity", "2");
  a.opt("seed", "S", "random seed", "0");
  if (!a.parse(argc - 1, argv + 1)) return 0;
  if (!a.has("out")) fail("--out DIR is required");
  analysis::KgOptions o;
  o.entities = (int)a.integer("entities", 4, 20000);
  o.relations = (int)a.integer("relations", 1, 100);
  o.edges_per_node = (int)a.integer("edges-per-node", 1, 1000);
  o.seed = (uint64_t)a.integer("seed", 0, std::numeric_limits<long long>::max());
  // Issue 17: --out is claimed (lock, no foreign folder) before anything is made; the files are
  // written into a staging folder and moved into place at the end, manifest.json last, so a failed
  // or interrupted run leaves an earlier graph in --out as it was.
  std::string place = report::claim_output_dir(a.str("out"), "kg generate");
  report::Manifest man;
  man.start();
  man.argv.assign(argv, argv + argc);
  man.command = "kg generate";
  man.seed = o.seed;
  auto kg = analysis::generate_kg(o);
  analysis::write_kg(kg, o, place);
  man.files = {"graph.jsonl", "facts.jsonl", "tokenizer.json", "kg.json"};
  man.extra = {{"entities", o.entities}, {"relations", o.relations}, {"edges_per_node", o.edges_per_node}};
  man.finish(place);
  report::commit_output_dir(a.str("out"));
  std::printf("%zu entities, %zu relations, %zu edges, %zu facts -> %s/{graph.jsonl,facts.jsonl,tokenizer.json}\n",
              kg.entity_ids.size(), kg.relation_ids.size(), kg.edges.size(), kg.facts.size(), a.str("out").c_str());
  if (!kg.facts.empty()) std::printf("example: %s\n", kg.fact_json(kg.facts[0]).dump().c_str());
  return 0;
}

const Register reg{"kg", "generate a synthetic knowledge graph (kg generate)", 80, run_kg};

}  // namespace
}  // namespace mechscope::cli
