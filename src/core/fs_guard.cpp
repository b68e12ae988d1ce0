#include "core/fs_guard.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/fs.h"

namespace mechscope {
namespace {

// The registry lives for the whole process (never destroyed: the interrupt thread may use it while
// static destructors run at exit).
struct Registry {
  std::recursive_mutex mu;
  std::vector<std::pair<std::string, TempKind>> temps;
  std::string command = "mechscope", note = "interrupted; unfinished outputs removed";
  std::function<void(const char*)> hook;
  bool handler_wanted = false, handler_running = false;
  int pipe_w = -1;
};
Registry& reg() {
  static Registry* r = new Registry;
  return *r;
}

void remove_one(const std::string& path, TempKind kind) {
  std::error_code ec;
  switch (kind) {
    case TempKind::File: ::unlink(path.c_str()); break;
    case TempKind::Tree: std::filesystem::remove_all(path, ec); break;
    case TempKind::CreatedDir:
      ::unlink(join_path(path, kLockName).c_str());
      ::rmdir(path.c_str());
      break;
  }
}

void remove_all_locked(Registry& r) {
  for (auto it = r.temps.rbegin(); it != r.temps.rend(); ++it) remove_one(it->first, it->second);
  r.temps.clear();
}

// The signal handler only writes the signal number into a pipe: the cleanup runs on its own thread,
// which takes the registry's lock and so waits for a create or rename in flight on another thread
// (a handler that interrupted that thread could not wait for it without deadlocking).
int g_pipe_w = -1;
void on_signal(int sig) {
  unsigned char b = (unsigned char)sig;
  ssize_t n = ::write(g_pipe_w, &b, 1);
  (void)n;
}

void interrupt_thread(int fd) {
  unsigned char sig = 0;
  while (::read(fd, &sig, 1) != 1) {
    if (errno != EINTR) return;
  }
  Registry& r = reg();
  r.mu.lock();  // held until _exit: nothing is created or renamed after the cleanup
  const char* name = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : sig == SIGHUP ? "SIGHUP" : "a signal";
  if (r.hook) {
    try {
      r.hook(name);
    } catch (...) {}
  }
  remove_all_locked(r);
  std::string line = cat("mechscope ", r.command, ": ", r.note, " (", name, ")\n");
  ssize_t n = ::write(2, line.data(), line.size());
  (void)n;
  ::_exit(128 + sig);
}

// A process that cannot start the thread (ulimit -u) keeps the default dispositions and still runs;
// what an interrupt leaves then is removed by the next run as stale.
void start_handler_locked(Registry& r) {
  if (r.handler_running || !r.handler_wanted) return;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return;
  try {
    std::thread(interrupt_thread, fds[0]).detach();
  } catch (...) {
    ::close(fds[0]);
    ::close(fds[1]);
    r.handler_wanted = false;
    return;
  }
  g_pipe_w = r.pipe_w = fds[1];
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int s : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction old {};
    // A signal the parent set to be ignored (nohup) stays ignored.
    if (::sigaction(s, nullptr, &old) == 0 && old.sa_handler == SIG_IGN) continue;
    ::sigaction(s, &sa, nullptr);
  }
  r.handler_running = true;
}

bool process_alive_for(long pid, const struct stat& st) {
  if (::kill((pid_t)pid, 0) != 0 && errno == ESRCH) return false;
  // A live process with that pid that started after the temporary was last written cannot have
  // written it (a pid reused after a kill).
  std::string stat = [&] {
    try {
      return read_file(cat("/proc/", pid, "/stat"));
    } catch (const Error&) {
      return std::string();
    }
  }();
  auto close_paren = stat.rfind(')');
  if (close_paren == std::string::npos) return true;
  std::vector<std::string> fields;
  std::string cur;
  for (size_t i = close_paren + 2; i < stat.size(); ++i) {
    if (stat[i] == ' ') fields.push_back(cur), cur.clear();
    else cur += stat[i];
  }
  if (fields.size() < 20) return true;
  double start_ticks = std::atof(fields[19].c_str());  // field 22 of /proc/<pid>/stat
  std::string boot;
  try {
    boot = read_file("/proc/stat");
  } catch (const Error&) {
    return true;
  }
  auto b = boot.find("\nbtime ");
  if (b == std::string::npos) return true;
  double started = std::atof(boot.c_str() + b + 7) + start_ticks / (double)::sysconf(_SC_CLK_TCK);
  return started <= (double)st.st_mtime + 2;
}

}  // namespace

void register_temp(const std::string& path, TempKind kind) {
  Registry& r = reg();
  std::lock_guard<std::recursive_mutex> g(r.mu);
  r.temps.emplace_back(path, kind);
  start_handler_locked(r);
}

void forget_temp(const std::string& path) {
  Registry& r = reg();
  std::lock_guard<std::recursive_mutex> g(r.mu);
  for (auto it = r.temps.begin(); it != r.temps.end(); ++it)
    if (it->first == path) {
      r.temps.erase(it);
      return;
    }
}

void with_temps_locked(const std::function<void()>& op) {
  Registry& r = reg();
  std::lock_guard<std::recursive_mutex> g(r.mu);
  op();
}

void remove_temps() noexcept {
  Registry& r = reg();
  std::lock_guard<std::recursive_mutex> g(r.mu);
  remove_all_locked(r);
}

std::string temp_name(const std::string& path) { return cat(path, ".tmp.", ::getpid()); }

long temp_pid(const std::string& name) {
  auto k = name.rfind(".tmp.");
  if (k == std::string::npos || k + 5 >= name.size() || name.size() - k - 5 > 10) return -1;
  long pid = 0;
  for (size_t i = k + 5; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    pid = pid * 10 + (name[i] - '0');
  }
  return pid > 0 ? pid : -1;
}

int remove_stale_temps(const std::string& dir, const std::string& prefix) {
  DIR* d = ::opendir(dir.empty() ? "." : dir.c_str());
  if (!d) return 0;
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.compare(0, prefix.size(), prefix) == 0 && temp_pid(n) > 0) names.push_back(n);
  }
  ::closedir(d);
  int removed = 0;
  Registry& r = reg();
  std::lock_guard<std::recursive_mutex> g(r.mu);
  for (auto& n : names) {
    std::string p = join_path(dir, n);
    long pid = temp_pid(n);
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) continue;
    bool ours = false;
    for (auto& t : r.temps) ours |= t.first == p;
    if (ours) continue;
    if (pid != (long)::getpid() && process_alive_for(pid, st)) continue;
    std::error_code ec;
    if (S_ISDIR(st.st_mode)) std::filesystem::remove_all(p, ec);
    else ::unlink(p.c_str());
    ++removed;
  }
  return removed;
}

void install_interrupt_handler(const std::string& command) {
  Registry& r = reg();
  std::lock_guard<std::recursive_mutex> g(r.mu);
  r.command = command;
  r.handler_wanted = true;
  start_handler_locked(r);
}

void set_interrupt_hook(std::function<void(const char*)> hook) {
  Registry& r = reg();
  std::lock_guard<std::recursive_mutex> g(r.mu);
  r.hook = std::move(hook);
}

void set_interrupt_note(const std::string& note) {
  Registry& r = reg();
  std::string named = name_options(note);  // option(field) as the front end names it, before a signal
  std::lock_guard<std::recursive_mutex> g(r.mu);
  r.note = std::move(named);
}

std::string special_file_kind(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) return "";
  if (S_ISFIFO(st.st_mode)) return "a FIFO";
  if (S_ISCHR(st.st_mode)) return "a character device";
  if (S_ISBLK(st.st_mode)) return "a block device";
  if (S_ISSOCK(st.st_mode)) return "a socket";
  return "not a regular file";
}

void lock_dir(const std::string& dir, const std::string& what) {
  std::string path = join_path(dir, kLockName);
  std::string special = special_file_kind(path);
  if (!special.empty()) fail(what, ": '", path, "' is ", special, ", not mechscope's lock file; remove it");
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) fail("cannot write into ", what, ": ", std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    if (err != EWOULDBLOCK) return;  // a filesystem without flock: run unlocked rather than not at all
    // The holder writes its pid right after locking: give it a moment.
    std::string pid;
    for (int i = 0; i < 50 && pid.empty(); ++i) {
      char buf[32] = {0};
      ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
      for (ssize_t k = 0; k < n && buf[k] >= '0' && buf[k] <= '9'; ++k) pid += buf[k];
      if (pid.empty()) ::usleep(2000);
    }
    ::close(fd);
    fail(what, " is in use by another mechscope run (pid ", pid.empty() ? "unknown" : pid,
         "): wait for it to finish, or choose another folder");
  }
  std::string me = cat(::getpid(), "\n");
  if (::ftruncate(fd, 0) == 0) {
    ssize_t n = ::pwrite(fd, me.data(), me.size(), 0);
    (void)n;
  }
  // The descriptor stays open (close-on-exec) for the life of the process: that is the lock.
}

void for_each_line(const std::string& path, const std::function<void(const std::string&, long long)>& on_line,
                   size_t max_bytes) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail("cannot read '", path, "': ", std::strerror(errno));
  std::string line;
  long long n = 1;
  char buf[1 << 16];
  size_t got;
  auto too_long = [&] {
    std::fclose(f);
    f = nullptr;
    fail(path, ":", n, ": the line is longer than ", max_bytes >> 20, " MiB (one record per line is expected)");
  };
  try {
    while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) {
      size_t start = 0;
      for (size_t i = 0; i < got; ++i) {
        if (buf[i] != '\n') continue;
        if (line.size() + (i - start) > max_bytes) too_long();
        line.append(buf + start, i - start);
        on_line(line, n++);
        line.clear();
        start = i + 1;
      }
      if (line.size() + (got - start) > max_bytes) too_long();
      line.append(buf + start, got - start);
    }
    bool bad = std::ferror(f);
    std::fclose(f);
    f = nullptr;
    if (bad) fail("error while reading '", path, "'");
    if (!line.empty()) on_line(line, n);
  } catch (...) {
    if (f) std::fclose(f);
    throw;
  }
}

}  // namespace mechscope
