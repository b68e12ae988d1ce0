// Progress on stderr for long work, only when stderr is a terminal: items done, rate, time left.
#pragma once
#include <chrono>
#include <string>

namespace mechscope {

class Progress {
 public:
  Progress(std::string label, long long total);
  ~Progress();  // finishes the line
  void tick(long long n = 1);
  void set_note(const std::string& note);  // e.g. "loss 2.31"

 private:
  void draw(bool force);
  std::string label_, note_;
  long long total_, done_ = 0;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace mechscope
