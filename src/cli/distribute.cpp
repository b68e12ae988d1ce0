#include "cli/distribute.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "core/progress.h"

#ifdef MECHSCOPE_HAVE_MPI
#include <mpi.h>
#endif

namespace mechscope::cli::dist {
namespace {

bool g_active = false, g_finalized = false;
int g_rank = 0, g_size = 1;

const char* env_world_size() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"})
    if (const char* s = std::getenv(v)) return s;
  return nullptr;
}

#ifdef MECHSCOPE_HAVE_MPI
constexpr int kTagBcast = 18003;
// Each WorkQueue has tags of its own (the queues of a job are made in the same order on every rank), so
// a rank that starts on the next queue (heads all: the screen, then each emotion's generations) is
// never answered by the server of the one before, which may still be waiting for the other ranks.
// 20000 + 2 * 6000 stays below 32767, the least MPI_TAG_UB the standard allows.
int request_tag(long long queue) { return 20000 + 2 * (int)(queue % 6000); }
#endif
long long g_queues = 0;  // WorkQueues made so far on this rank

}  // namespace

bool built_with_mpi() {
#ifdef MECHSCOPE_HAVE_MPI
  return true;
#else
  return false;
#endif
}

bool launched() { return env_world_size() || std::getenv("PMIX_RANK") || std::getenv("PMI_RANK"); }

void init(const std::string& command) {
  if (g_active || !launched()) return;
#ifdef MECHSCOPE_HAVE_MPI
  int provided = 0;
  // Serialized: on rank 0 the hand-out thread makes MPI calls while the main thread makes none.
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
  if (provided < MPI_THREAD_SERIALIZED)
    fail("this MPI library gives no MPI_THREAD_SERIALIZED, which the hand-out of items needs");
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  g_active = true;
#else
  fail(
      "this build has no MPI, so it cannot run under mpirun or srun: install "
      "libopenmpi-dev (scripts/install-deps.sh) and rebuild, or run slices with --shard i/N and combine them "
      "with mechscope merge");
#endif
  (void)command;
}

bool active() { return g_active; }
int rank() { return g_rank; }
int size() { return g_size; }

void finalize() {
#ifdef MECHSCOPE_HAVE_MPI
  if (g_active && !g_finalized) {
    g_finalized = true;
    MPI_Finalize();
  }
#endif
}

void barrier() {
#ifdef MECHSCOPE_HAVE_MPI
  if (g_active) MPI_Barrier(MPI_COMM_WORLD);
#endif
}

void bcast(std::vector<long long>& v) {
#ifdef MECHSCOPE_HAVE_MPI
  if (!g_active || g_size == 1) return;
  // Point to point, received with MPI_Iprobe + 1 ms sleeps: the other ranks wait here while rank 0
  // checks an earlier run's files, and a blocking collective would spin their cores all that time.
  if (g_rank == 0) {
    for (int r = 1; r < g_size; ++r) MPI_Send(v.data(), (int)v.size(), MPI_LONG_LONG, r, kTagBcast, MPI_COMM_WORLD);
    return;
  }
  MPI_Status st;
  for (int flag = 0;;) {
    MPI_Iprobe(0, kTagBcast, MPI_COMM_WORLD, &flag, &st);
    if (flag) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  int count = 0;
  MPI_Get_count(&st, MPI_LONG_LONG, &count);
  v.resize((size_t)count);
  MPI_Recv(v.data(), count, MPI_LONG_LONG, 0, kTagBcast, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
#else
  (void)v;
#endif
}

double sum(double v) {
#ifdef MECHSCOPE_HAVE_MPI
  if (g_active) MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
#endif
  return v;
}

namespace {
#ifdef MECHSCOPE_HAVE_MPI
template <class T>
struct MpiType;
template <>
struct MpiType<float> {
  static MPI_Datatype get() { return MPI_FLOAT; }
};
template <>
struct MpiType<double> {
  static MPI_Datatype get() { return MPI_DOUBLE; }
};
#endif

template <class T>
void allreduce_sum_of(T* data, size_t n) {
#ifdef MECHSCOPE_HAVE_MPI
  // MPI counts are int: sent in slices of 2^30 elements.
  for (size_t at = 0; g_active && at < n; at += size_t(1) << 30)
    MPI_Allreduce(MPI_IN_PLACE, data + at, (int)std::min(n - at, size_t(1) << 30), MpiType<T>::get(), MPI_SUM,
                  MPI_COMM_WORLD);
#else
  (void)data, (void)n;
#endif
}
}  // namespace

void allreduce_sum(float* data, size_t n) { allreduce_sum_of(data, n); }
void allreduce_sum(double* data, size_t n) { allreduce_sum_of(data, n); }

struct WorkQueue::Impl {
  long long n;
  std::atomic<long long> next{0};
  std::atomic<bool> stop{false};
  std::mutex mu;  // guards results and progress
  std::map<long long, std::string> results;
  std::unique_ptr<Progress> progress;
  std::thread server;
  long long mine = -1;  // the item this rank holds
  int tag_request = 0, tag_reply = 0;

  long long take() {
    long long i = next.fetch_add(1);
    return i < n ? i : -1;
  }
  void done(long long item, std::string result) {
    std::lock_guard<std::mutex> lock(mu);
    results[item] = std::move(result);
    if (progress) progress->tick();
  }
#ifdef MECHSCOPE_HAVE_MPI
  // Rank 0's hand-out thread: answers requests until every other rank has been told there is no more.
  void serve() {
    int finished = 0;
    std::string buf;
    while (finished < g_size - 1 && !stop) {
      int flag = 0;
      MPI_Status st;
      MPI_Iprobe(MPI_ANY_SOURCE, tag_request, MPI_COMM_WORLD, &flag, &st);
      if (!flag) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      int count = 0;
      MPI_Get_count(&st, MPI_BYTE, &count);
      buf.resize((size_t)count);
      MPI_Recv(buf.data(), count, MPI_BYTE, st.MPI_SOURCE, tag_request, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      int64_t prev = -1;
      std::memcpy(&prev, buf.data(), sizeof prev);
      if (prev >= 0) done(prev, buf.substr(sizeof prev));
      int64_t item = take();
      MPI_Send(&item, 1, MPI_INT64_T, st.MPI_SOURCE, tag_reply, MPI_COMM_WORLD);
      if (item < 0) ++finished;
    }
  }
#endif
};

WorkQueue::WorkQueue(std::string label, long long n) : impl_(std::make_unique<Impl>()) {
  impl_->n = n;
  long long queue = g_queues++;
#ifdef MECHSCOPE_HAVE_MPI
  impl_->tag_request = request_tag(queue);
  impl_->tag_reply = impl_->tag_request + 1;
#else
  (void)queue;
#endif
  if (g_rank == 0) impl_->progress = std::make_unique<Progress>(std::move(label), n);
#ifdef MECHSCOPE_HAVE_MPI
  if (g_active && g_size > 1 && g_rank == 0) impl_->server = std::thread([this] { impl_->serve(); });
#endif
}

WorkQueue::~WorkQueue() {
  // An error on rank 0 leaves through here: the thread is stopped (mpirun then ends the other ranks).
  if (impl_->server.joinable()) {
    impl_->stop = true;
    impl_->server.join();
  }
}

std::optional<long long> WorkQueue::next(std::string result) {
  long long prev = impl_->mine, item = -1;
  if (g_rank == 0 || !g_active) {
    if (prev >= 0) impl_->done(prev, std::move(result));
    item = impl_->take();
  } else {
#ifdef MECHSCOPE_HAVE_MPI
    std::string msg(sizeof(int64_t), '\0');
    int64_t p = prev;
    std::memcpy(msg.data(), &p, sizeof p);
    if (prev >= 0) msg += result;
    MPI_Send(msg.data(), (int)msg.size(), MPI_BYTE, 0, impl_->tag_request, MPI_COMM_WORLD);
    int64_t got = -1;
    MPI_Recv(&got, 1, MPI_INT64_T, 0, impl_->tag_reply, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    item = got;
#endif
  }
  impl_->mine = item;
  if (item < 0) return std::nullopt;
  return item;
}

void WorkQueue::note(const std::string& text) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->progress) impl_->progress->set_note(text);
}

std::map<long long, std::string> WorkQueue::finish() {
  if (impl_->server.joinable()) impl_->server.join();
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->progress.reset();  // finishes the line
  if (g_rank != 0) return {};
  return std::move(impl_->results);
}

std::map<long long, std::string> compute_items(const std::string& label, long long n,
                                               const std::function<std::string(long long)>& compute) {
  WorkQueue queue(label, n);
  std::string done;
  while (auto k = queue.next(std::move(done))) done = compute(*k);
  return queue.finish();
}

void check_shard_set(const std::vector<std::pair<int, std::string>>& shards, int count) {
  std::map<int, std::string> by_index;
  for (auto& [index, dir] : shards) {
    auto [it, fresh] = by_index.emplace(index, dir);
    if (!fresh) fail(dir, " and ", it->second, " are both shard ", index, "/", count, ": give each shard once");
  }
  for (int i = 0; i < count; ++i)
    if (!by_index.count(i))
      fail("shard ", i, "/", count, " is missing: merge needs all ", count, " shard folders of the run");
}

Shard parse_shard(const std::string& text) {
  auto slash = text.find('/');
  auto whole = [](const std::string& s, long long& v) {
    if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) return false;
    v = std::stoll(s);
    return true;
  };
  long long i = -1, n = -1;
  if (slash == std::string::npos || !whole(text.substr(0, slash), i) || !whole(text.substr(slash + 1), n))
    fail("--shard must be i/N (this run's slice i of N, 0 <= i < N), got '", text, "'");
  if (n < 1) fail("--shard ", text, ": N must be >= 1");
  if (i >= n) fail("--shard ", text, ": i must be in 0 .. ", n - 1, " (slices are numbered from 0)");
  Shard s;
  s.index = (int)i;
  s.count = (int)n;
  s.on = true;
  return s;
}

}  // namespace mechscope::cli::dist
