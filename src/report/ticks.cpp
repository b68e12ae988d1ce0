#include "report/ticks.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace mechscope::report {

bool all_whole(const std::vector<double>& v) {
  return std::all_of(v.begin(), v.end(), [](double x) { return x == std::round(x); });
}

std::vector<double> nice_ticks(double lo, double hi, int target, bool integer) {
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi)) return {lo};
  target = std::max(target, 2);
  // The smallest 1-2-5 step that gives at most target + 1 ticks (and is whole, for integer axes).
  double mag = std::pow(10.0, std::floor(std::log10((hi - lo) / target)) - 1);
  if (integer) mag = std::max(mag, 1.0);
  double step = mag;
  for (int i = 0; i < 12; i++) {
    double m = i % 3 == 0 ? 1 : i % 3 == 1 ? 2 : 5;
    step = m * mag * std::pow(10.0, i / 3);
    double n = std::floor(hi / step + 1e-9) - std::ceil(lo / step - 1e-9) + 1;
    if (n <= target + 1) break;
  }
  std::vector<double> out;
  double first = std::ceil(lo / step - 1e-9) * step;
  for (double v = first; v <= hi + step * 1e-9; v += step) {
    double t = std::abs(v) < step * 1e-9 ? 0.0 : v;  // no "-0"
    out.push_back(t);
    if (out.size() > 1000) break;
  }
  if (out.size() < 2 && !(integer && hi - lo < 1)) return nice_ticks(lo, hi, target * 2, integer);
  return out;
}

std::vector<double> log_ticks(double lo, double hi, int target) {
  std::vector<double> out;
  if (!(lo > 0) || !(hi > lo)) return {lo};
  int a = (int)std::ceil(std::log10(lo) - 1e-9), b = (int)std::floor(std::log10(hi) + 1e-9);
  int n = b - a + 1;
  if (n >= 2) {
    int stride = std::max(1, (n + target - 1) / target);
    for (int e = a; e <= b; e++)
      if ((e - a) % stride == 0) out.push_back(std::pow(10.0, e));
    return out;
  }
  for (int e = a - 1; e <= b; e++)
    for (double m : {1.0, 2.0, 5.0}) {
      double v = m * std::pow(10.0, e);
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push_back(v);
    }
  if (out.size() < 2) return nice_ticks(lo, hi, target);
  return out;
}

static std::string minus(std::string s) {
  if (!s.empty() && s[0] == '-') s = "−" + s.substr(1);
  return s;
}

std::string format_number(double v, int decimals) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "∞" : "−∞";
  char buf[64];
  if (decimals >= 0) {
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    std::string s = buf;
    if (s.find_first_not_of("-0.") == std::string::npos) s = decimals > 0 ? "0." + std::string(decimals, '0') : "0";
    return minus(s);
  }
  double a = std::abs(v);
  if (a != 0 && (a >= 1e5 || a < 1e-3)) std::snprintf(buf, sizeof buf, "%.3g", v);
  else std::snprintf(buf, sizeof buf, "%.4g", v);
  return minus(buf);
}

static std::string superscript(int e) {
  static const char* digits[] = {"⁰", "¹", "²", "³", "⁴", "⁵", "⁶", "⁷", "⁸", "⁹"};
  std::string s = e < 0 ? "⁻" : "";
  std::string d = std::to_string(std::abs(e));
  for (char c : d) s += digits[c - '0'];
  return s;
}

std::vector<std::string> tick_labels(const std::vector<double>& ticks, bool log) {
  std::vector<std::string> out;
  if (log) {
    bool decades = std::all_of(ticks.begin(), ticks.end(), [](double v) {
      double e = std::log10(v);
      return std::abs(e - std::round(e)) < 1e-9;
    });
    // One style per axis: plain numbers while all decades are between 0.01 and 1000, else 10ⁿ for all.
    bool powers = false;
    for (double v : ticks) {
      int e = (int)std::round(std::log10(v));
      powers = powers || (decades && (e < -2 || e > 3));
    }
    for (double v : ticks) {
      int e = (int)std::round(std::log10(v));
      if (powers) out.push_back("10" + superscript(e));
      else out.push_back(format_number(v, -1));
    }
    return out;
  }
  double step = 0;
  for (size_t i = 1; i < ticks.size(); i++) step = std::max(step, std::abs(ticks[i] - ticks[i - 1]));
  double big = 0;
  for (double v : ticks) big = std::max(big, std::abs(v));
  if (big >= 1e5 || (big > 0 && big < 1e-3)) {
    for (double v : ticks) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.2g", v);
      out.push_back(minus(buf));
    }
    return out;
  }
  int decimals = 0;
  if (step > 0) {
    // Enough decimals that step is represented exactly: 0.25 → 2, 0.5 → 1, 2 → 0.
    while (decimals < 8 &&
           std::abs(step * std::pow(10.0, decimals) - std::round(step * std::pow(10.0, decimals))) > 1e-6)
      decimals++;
  }
  for (double v : ticks) out.push_back(format_number(v, decimals));
  return out;
}

}  // namespace mechscope::report
