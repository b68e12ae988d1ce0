// mechscope demo (= make demo): the seed-000 locating job on the knowledge-graph GPT shipped in
// examples/kg, with run_locating.sh's defaults, then a plain-words account of what it found.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/common.h"
#include "cli/registry.h"
#include "core/error.h"
#include "core/fs.h"
#include "io/checkpoint.h"
#include "core/source_dir.h"  // MECHSCOPE_SOURCE_DIR, MECHSCOPE_BINARY

namespace mechscope::cli {
namespace {

// The shipped example, from the working directory or, failing that, from the source tree it was built in.
std::string example_path(const std::string& rel) {
  if (file_exists(rel) || dir_exists(rel)) return rel;
  std::string in_tree = join_path(MECHSCOPE_SOURCE_DIR, rel);
  if (file_exists(in_tree) || dir_exists(in_tree)) return in_tree;
  fail("cannot find '", rel, "' (run from the mechscope repository, or pass --model-dir and --kg-file)");
}

int run_demo(int argc, char** argv) {
  Args a("demo", "[--out DIR] [--num-samples N]",
         "Locates factual knowledge (ROME causal tracing) in the knowledge-graph GPT shipped in examples/kg:\n"
         "`mechscope locate` with the defaults of the seed's run_locating.sh, then a summary of the findings.");
  a.opt("out", "DIR", "output folder", "outputs/locating_results");
  a.opt("num-samples", "N", "facts to trace", "50");
  a.opt("model-dir", "DIR", "model (default: examples/kg/model)");
  a.opt("kg-file", "FILE", "facts (default: examples/kg/facts.jsonl)");
  a.opt("threads", "N", "CPU threads (0 = all cores)", "0");
  add_device_flag(a);
  // ROME restores MLP/attention over 10 of GPT-2 XL's 48 layers; over the shipped model's 6 layers a
  // window of 10 restores every layer at once and the MLP/attention traces go flat. 2 of 6 keeps
  // about ROME's proportion.
  a.opt("window", "W", "layers restored together for the MLP/attention traces", "2");
  if (!a.parse(argc, argv)) return 0;
  device_from_flags(a);  // a device not usable here ends the demo before it starts
  std::string model = a.has("model-dir") ? a.str("model-dir") : example_path("examples/kg/model");
  std::string facts = a.has("kg-file") ? a.str("kg-file") : example_path("examples/kg/facts.jsonl");
  std::string out = a.str("out");
  std::vector<std::string> args{"--model-dir",
                                model,
                                "--kg-file",
                                facts,
                                "--num-samples",
                                a.str("num-samples"),
                                "--noise-level",
                                "3.0",
                                "--num-noise-samples",
                                "10",
                                "--window",
                                a.str("window"),
                                "--out",
                                out,
                                "--threads",
                                a.str("threads"),
                                "--device",
                                a.str("device"),
                                "--overwrite"};
  std::vector<char*> av;
  for (auto& s : args) av.push_back(s.data());
  CommandFn locate = nullptr;
  for (auto& c : commands())
    if (c.name == "locate") locate = c.run;
  if (!locate) fail("this build has no locate command");
  std::printf("mechscope demo: causal tracing of %s facts in %s\n\n", a.str("num-samples").c_str(), model.c_str());
  std::fflush(stdout);
  int rc = locate((int)av.size(), av.data());
  if (rc != 0) return rc;

  auto s = read_json_file(join_path(out, "locating_summary.json"));
  std::printf("\n%d facts traced (%d skipped: the model did not predict their answer).\n", s.value("facts_traced", 0),
              s.value("facts_skipped", 0));
  if (s.contains("aie")) {
    std::printf("corrupting the subject drops p(answer) from %.3f to %.3f on average (total effect %.3f).\n",
                s.value("mean_high_score", 0.0), s.value("mean_low_score", 0.0), s.value("average_total_effect", 0.0));
    const char* names[] = {"all", "mlp", "attn"};
    const char* words[] = {"hidden state (whole block)", "MLP output", "attention output"};
    for (int k = 0; k < 3; ++k) {
      if (!s["aie"].contains(names[k])) continue;
      auto& j = s["aie"][names[k]];
      std::printf(
          "  restoring the %-27s: best at the last subject token, layer %lld (AIE %.3f); at the last token, layer %lld "
          "(AIE %.3f)\n",
          words[k], (long long)j.value("argmax_layer_last_subject_token", 0LL),
          j.value("best_aie_last_subject_token", 0.0), (long long)j.value("argmax_layer_last_token", 0LL),
          j.value("best_aie_last_token", 0.0));
    }
    if (s["aie"].contains("mlp") && s["aie"].contains("attn")) {
      double mlp = s["aie"]["mlp"].value("best_aie_last_subject_token", 0.0);
      double attn = s["aie"]["attn"].value("best_aie_last_subject_token", 0.0);
      std::printf("at the last subject token the %s carries more of the fact (MLP %.3f vs attention %.3f), %s\n",
                  mlp >= attn ? "MLP" : "attention", mlp, attn,
                  mlp >= attn ? "as ROME found for GPT-2 XL." : "unlike ROME's finding for GPT-2 XL.");
    }
  }
  if (s.value("facts_traced", 0) == 0) {
    std::printf(
        "\nnothing was traced, so there are no figures: %s/locating_summary.json lists why each fact was skipped.\n",
        out.c_str());
    return 0;
  }
  std::printf("\nreport: %s/index.html (figures: %s/*.png, numbers: %s/locating_summary.json)\n", out.c_str(),
              out.c_str(), out.c_str());
  return 0;
}

const Register reg{"demo", "trace facts in the shipped knowledge-graph GPT (what `make demo` runs)", 5, run_demo};

}  // namespace
}  // namespace mechscope::cli
