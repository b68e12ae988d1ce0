// Axis ticks: 1-2-5 steps on linear axes, decades on log axes, labels formatted with the fewest
// digits that tell neighbouring ticks apart (and a real minus sign, as matplotlib does).
#pragma once
#include <string>
#include <vector>

namespace mechscope::report {

// Ticks inside [lo, hi] with a 1-2-5 × 10^k step, about `target` of them (at least 2 when lo < hi).
// integer: steps of at least 1, on whole numbers (layers, positions, counts).
std::vector<double> nice_ticks(double lo, double hi, int target, bool integer = false);
// True when every value is a whole number (layers, positions, counts): such axes get integer ticks.
bool all_whole(const std::vector<double>& v);
// Powers of ten inside [lo, hi] (lo > 0); when fewer than 2, falls back to 1-2-5 mantissas.
std::vector<double> log_ticks(double lo, double hi, int target);
// Labels for a tick sequence: same number of decimals for all, "−" for minus, 10ⁿ for log decades.
std::vector<std::string> tick_labels(const std::vector<double>& ticks, bool log);
// One number with `decimals` digits (< 0: up to 4 significant, trailing zeros dropped), "−" for minus.
std::string format_number(double v, int decimals = -1);

}  // namespace mechscope::report
