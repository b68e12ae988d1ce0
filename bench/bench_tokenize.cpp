// GPT-2 tokenizer throughput (the real 50,257-token vocabulary of the gpt2 fixture) on the seeded
// multi-script texts of the tokenizer tests, against Hugging Face `tokenizers` (Rust, via its Node
// binding, bench/hf_tokenize.js) on the same texts in the same run, both on one thread. Prints one JSON
// object; exits 1 when the two disagree on the number of tokens.
//
//   bench_tokenize [REPO_ROOT=.] [TEXTS=20000]   (bench/run.sh runs it from the repository root)
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <unistd.h>

#include "../tests/tokenizers/corpus.h"
#include "tokenizers/tokenizer.h"

using namespace mechscope;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  std::string root = argc > 1 ? argv[1] : ".";
  size_t n = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 20000;
  std::string tokenizer = root + "/tests/fixtures/gpt2/model/tokenizer.json";
  auto texts = mstest::make_corpus(n, 7);
  std::string file = "/tmp/mechscope-bench-tokenize-" + std::to_string(::getpid()) + ".jsonl";
  {
    std::ofstream f(file);
    for (const auto& t : texts) f << nlohmann::json(t).dump() << "\n";
  }
  auto tok = tokenizers::load_tokenizer(tokenizer);
  for (size_t i = 0; i < std::min<size_t>(100, n); ++i) tok->encode(texts[i]);  // warm up, as the baseline
  auto t0 = Clock::now();
  size_t tokens = 0;
  for (const auto& s : texts) tokens += tok->encode(s).size();
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();

  std::string cmd = "node '" + root + "/bench/hf_tokenize.js' '" + tokenizer + "' '" + file + "'";
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[512];
    while (size_t k = fread(buf, 1, sizeof buf, p)) out.append(buf, k);
    if (pclose(p) != 0) out.clear();
  }
  std::remove(file.c_str());
  if (out.empty()) {
    std::fprintf(stderr, "bench_tokenize: %s failed\n", cmd.c_str());
    return 1;
  }
  auto hf = nlohmann::json::parse(out);
  nlohmann::json j{{"texts", n},
                   {"tokens", tokens},
                   {"mechscope_s", secs},
                   {"hf_tokenizers_s", hf["seconds"]},
                   {"mechscope_texts_per_s", n / secs},
                   {"speedup_vs_hf_tokenizers", hf["seconds"].get<double>() / secs}};
  std::printf("%s\n", j.dump(2).c_str());
  if (hf["tokens"].get<size_t>() != tokens) {
    std::fprintf(stderr, "bench_tokenize: token counts differ (mechscope %zu, HF %zu)\n", tokens,
                 hf["tokens"].get<size_t>());
    return 1;
  }
  return 0;
}
