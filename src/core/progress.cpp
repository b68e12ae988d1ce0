#include "core/progress.h"

#include <unistd.h>

#include <cstdio>

namespace mechscope {

Progress::Progress(std::string label, long long total)
    : label_(std::move(label)),
      total_(total),
      tty_(::isatty(2)),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

Progress::~Progress() {
  if (!tty_) return;
  draw(true);
  std::fputc('\n', stderr);
}

void Progress::set_note(const std::string& note) { note_ = note; }

void Progress::tick(long long n) {
  done_ += n;
  draw(false);
}

void Progress::draw(bool force) {
  if (!tty_) return;
  auto now = std::chrono::steady_clock::now();
  if (!force && now - last_ < std::chrono::milliseconds(100) && done_ < total_) return;
  last_ = now;
  double secs = std::chrono::duration<double>(now - start_).count();
  double rate = secs > 0 ? done_ / secs : 0;
  double left = rate > 0 ? (total_ - done_) / rate : 0;
  std::fprintf(stderr, "\r%s %lld/%lld  %.1f/s  %.0fs left  %s\x1b[K", label_.c_str(), done_, total_, rate, left,
               note_.c_str());
  std::fflush(stderr);
}

}  // namespace mechscope
