// --threads for every command: one place that checks the request against the machine and sets the
// intra-op pool (OpenBLAS's OpenMP build shares it).
#pragma once
#include <string>

namespace mechscope::cli {

// requested: the value of --threads as typed (0 = all cores). Error when it is not a whole number, is
// more than the machine's cores, or would exceed the process limit (ulimit -u): asking libgomp for
// threads it cannot create makes it hang, and threads beyond the cores only slow GEMMs down.
void set_threads(const std::string& requested);

}  // namespace mechscope::cli
