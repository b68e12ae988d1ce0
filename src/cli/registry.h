// Subcommands register themselves from their own file (one file per command):
//   static const mechscope::cli::Register reg{"info", "architecture, sizes and hook names", 10, run_info};
// `order` sorts the list in `mechscope --help`.
#pragma once
#include <string>
#include <vector>

namespace mechscope::cli {

using CommandFn = int (*)(int argc, char** argv);  // argv excludes "mechscope <name>"

struct Command {
  std::string name, summary;
  int order;
  CommandFn run;
};

std::vector<Command>& commands();

struct Register {
  Register(std::string name, std::string summary, int order, CommandFn run) {
    commands().push_back({std::move(name), std::move(summary), order, run});
  }
};

}  // namespace mechscope::cli
