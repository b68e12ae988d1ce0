// patch's --pairs JSONL, read exactly as `mechscope patch --pairs FILE` reads it (the CLI's own code),
// on the GPT-2 fixture and its tokenizer.
#include "fuzz.h"
#include "cli/args.h"
#include "cli/common.h"
#include "cli/patch_common.h"

using namespace mechscope;

MECHSCOPE_FUZZ_TARGET(pairs) {
  static cli::Loaded m = [] {
    cli::Args a("patch", "", "");
    cli::add_model_flags(a);
    std::string model = fuzz::source_dir() + "/tests/fixtures/gpt2/model";
    const char* argv[] = {"--model", model.c_str(), "--threads", "1"};
    a.parse(4, const_cast<char**>(argv));
    return cli::load_from_flags(a);
  }();
  std::string path = fuzz::scratch() + "/pairs.jsonl";
  fuzz::put(path, std::string_view(reinterpret_cast<const char*>(data), size));
  cli::Args a("patch", "", "");
  cli::add_model_flags(a);
  cli::add_prompt_pair_flags(a);
  cli::add_answer_flags(a);
  cli::add_encoding_flags(a);
  a.opt("pairs", "FILE", "");
  const char* argv[] = {"--pairs", path.c_str()};
  a.parse(2, const_cast<char**>(argv));
  auto in = cli::pairs_from_flags(a, m);
  for (const auto& p : in.pairs) {
    FUZZ_CHECK(p.clean.size() == p.corrupt.size() || &p != &in.pairs[0], "pairs", "first pair lengths differ");
    for (int64_t id : p.clean) FUZZ_CHECK(id >= 0 && id < m.model->config().d_vocab, "pairs", "clean id out of range");
    for (int64_t id : p.corrupt)
      FUZZ_CHECK(id >= 0 && id < m.model->config().d_vocab, "pairs", "corrupt id out of range");
  }
}
