#include "cli/threads.h"

#include <ATen/Parallel.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <thread>

#include "core/error.h"

namespace mechscope::cli {

void set_threads(const std::string& requested) {
  errno = 0;
  char* end = nullptr;
  long long n = std::strtoll(requested.c_str(), &end, 10);
  long long cores = std::max(1u, std::thread::hardware_concurrency());
  if (requested.empty() || *end || errno || n < 0 || n > cores)
    fail("--threads must be an integer in 0 .. ", cores, " (0 = all ", cores, " cores of this machine), got '",
         requested, "'");
  long long threads = n ? n : cores;
  // Ranks of one MPI job on this machine share its cores (issue 18): all cores divided among them.
  if (!n)
    for (const char* v : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"})
      if (const char* local = std::getenv(v)) {
        long long k = std::atoll(local);
        if (k > 0) threads = std::max(1LL, cores / k);
        break;
      }
  rlimit lim{};
  if (getrlimit(RLIMIT_NPROC, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) {
    // The limit counts every process and thread of the user; keep half of it for everything else.
    long long room = std::max<long long>(1, (long long)lim.rlim_cur / 2);
    if (n > room)
      fail("--threads ", n, " exceeds what the process limit allows (ulimit -u is ", (long long)lim.rlim_cur,
           "; give at most ", room, ")");
    threads = std::min(threads, room);
  }
  at::set_num_threads((int)threads);
}

}  // namespace mechscope::cli
