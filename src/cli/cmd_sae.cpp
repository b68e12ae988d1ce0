// mechscope sae <subcommand>: sparse-autoencoder analyses (seed 004). Each subcommand lives in its own
// cmd_sae_<name>.cpp; this file dispatches.
#include <cstdio>
#include <cstring>

#include "cli/distribute.h"
#include "cli/registry.h"
#include "core/error.h"

namespace mechscope::cli {

int run_sae_stats(int argc, char** argv);  // cmd_sae_stats.cpp
int run_sae_tsea(int argc, char** argv);   // cmd_sae_tsea.cpp
int run_sae_train(int argc, char** argv);  // cmd_sae_train.cpp
int run_sae_eval(int argc, char** argv);   // cmd_sae_eval.cpp

namespace {

struct Sub {
  const char* name;
  const char* summary;
  int (*run)(int, char**);
  bool ranks;  // distributes its work over MPI ranks (issue 18); the others refuse them
};

const Sub kSubs[] = {
    {"stats", "logit-weight statistics of every feature (W_dec W_U): moments, figures, feature queries", run_sae_stats,
     true},
    {"tsea", "token-set enrichment analysis of the most skewed features, with Manhattan plots", run_sae_tsea, false},
    {"train", "train a standard ReLU SAE on a model's activations, saved in SAELens's format", run_sae_train, true},
    {"eval", "L0, MSE, explained variance and CE loss (clean / spliced / zero-ablated) over a corpus", run_sae_eval,
     false},
};

void usage(std::FILE* f) {
  std::fprintf(f,
               "usage: mechscope sae <subcommand> [options]   (mechscope sae <subcommand> --help)\n\nsubcommands:\n");
  for (const Sub& s : kSubs) std::fprintf(f, "  %-8s %s\n", s.name, s.summary);
}

int run_sae(int argc, char** argv) {
  if (argc >= 1 && (!std::strcmp(argv[0], "--help") || !std::strcmp(argv[0], "-h"))) {
    usage(stdout);
    return 0;
  }
  if (argc >= 1)
    for (const Sub& s : kSubs)
      if (!std::strcmp(argv[0], s.name)) {
        if (dist::size() > 1 && !s.ranks) {
          std::string which;
          for (const Sub& d : kSubs)
            if (d.ranks) which += (which.empty() ? "sae " : " and sae ") + std::string(d.name);
          fail("sae ", s.name, " does not run over MPI ranks yet (", which,
               which.find(" and ") == std::string::npos ? " does" : " do", "); run it without mpirun");
        }
        return s.run(argc - 1, argv + 1);
      }
  std::string names;
  for (const Sub& s : kSubs) names += (names.empty() ? "" : ", ") + std::string(s.name);
  if (argc < 1) fail("missing subcommand (", names, "; see mechscope sae --help)");
  fail("unknown subcommand '", argv[0], "' (", names, "; see mechscope sae --help)");
}

const Register reg{"sae", "sparse autoencoders: sae stats, tsea, train, eval (seed 004)", 85, run_sae};

}  // namespace
}  // namespace mechscope::cli
