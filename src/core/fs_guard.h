// What keeps outputs whole under faults (issue 17). Every temporary this process creates is
// registered here, so that an error exit, SIGINT, SIGTERM or SIGHUP removes it; temporaries carry the
// creating process's pid ("<name>.tmp.<pid>"), so the next run into the same place removes those a
// SIGKILLed process left. Output folders are locked with flock(2), which the kernel releases when the
// holder dies, so a crashed run never blocks the next one.
#pragma once
#include <functional>
#include <string>

namespace mechscope {

enum class TempKind {
  File,        // unlinked
  Tree,        // removed with everything in it (a staging folder)
  CreatedDir,  // an output folder this run created: removed when nothing but its lock file is in it
};
// Registers / forgets a temporary (removal happens in reverse order of registration).
void register_temp(const std::string& path, TempKind kind);
void forget_temp(const std::string& path);
// Runs `op` (creating, renaming or removing registered paths) so that an interrupt's cleanup sees
// the registry and the disk either before or after it, never half-way.
void with_temps_locked(const std::function<void()>& op);
// Removes every registered temporary (the error exit; an interrupt does the same).
void remove_temps() noexcept;

std::string temp_name(const std::string& path);  // "<path>.tmp.<pid>"
// The pid in a temporary's name ("x.tmp.123" -> 123), or -1 when the name is not one.
long temp_pid(const std::string& name);
// Removes the entries "<prefix>*.tmp.<pid>" of `dir` whose process no longer runs (or, with this
// process's pid, that this process did not register: a pid reused after a kill). Returns how many.
int remove_stale_temps(const std::string& dir, const std::string& prefix = "");

// SIGINT/SIGTERM/SIGHUP: removes the temporaries, prints "mechscope <command>: interrupted (SIGINT);
// <note>" and exits with 128 + the signal number (130, 143, 129). Call once, before any thread starts.
void install_interrupt_handler(const std::string& command);
// What the interrupt line says was kept (the output layer and batch commands set it).
void set_interrupt_note(const std::string& note);
// Runs on the interrupt's thread with the registry locked (so nothing is created or renamed any
// more), before the temporaries are removed: the output layer marks in-place folders there. It gets
// the signal's name ("SIGINT") and must not throw. One hook per process; a later call replaces it.
void set_interrupt_hook(std::function<void(const char* signal_name)> hook);

// "a FIFO", "a character device", "a block device", "a socket" when `path` exists and is none of a
// regular file, a directory or a link to one of them; "" otherwise.
std::string special_file_kind(const std::string& path);

// Takes an exclusive flock on <dir>/.mechscope.lock (writing this pid into it) and holds it until the
// process exits. Error "<what> is in use by another mechscope run (pid N)" when another process holds it.
void lock_dir(const std::string& dir, const std::string& what);
inline constexpr const char* kLockName = ".mechscope.lock";

// Reads `path` line by line, refusing (Error "<path>:<n>: ...") a line longer than `max_bytes`
// before holding more than that in memory. `on_line(text, n)` gets each line without its '\n'.
void for_each_line(const std::string& path, const std::function<void(const std::string&, long long)>& on_line,
                   size_t max_bytes = size_t(1) << 24);

}  // namespace mechscope
