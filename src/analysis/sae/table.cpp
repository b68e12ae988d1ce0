#include "analysis/sae/table.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>

#include "core/error.h"

namespace mechscope::analysis::sae {

double StatsTable::value(const std::string& c, size_t r) const {
  if (c == "feature") return static_cast<double>(feature[r]);
  if (c == "mean") return mean[r];
  if (c == "std") return std[r];
  if (c == "skewness") return skewness[r];
  if (c == "kurtosis") return kurtosis[r];
  if (c == "log_feature_sparsity" || c == "sparsity") return log_feature_sparsity[r];
  if (c == "layer") return layer[r];
  fail("unknown column '", c, "' (feature, mean, std, skewness, kurtosis, log_feature_sparsity, layer)");
}

void check_column(const std::string& name, const std::string& flag) {
  for (const char* c : {"feature", "mean", "std", "skewness", "kurtosis", "log_feature_sparsity", "sparsity", "layer"})
    if (name == c) return;
  fail(flag, ": unknown column '", name, "' (feature, mean, std, skewness, kurtosis, log_feature_sparsity, layer)");
}

namespace {
std::string num(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}
}  // namespace

std::string to_csv(const StatsTable& t, bool with_layer, const std::vector<size_t>& rows) {
  std::string out = "feature,mean,std,skewness,kurtosis,log_feature_sparsity";
  out += with_layer ? ",layer\n" : "\n";
  auto row = [&](size_t r) {
    out += std::to_string(t.feature[r]) + "," + num(t.mean[r]) + "," + num(t.std[r]) + "," + num(t.skewness[r]) + "," +
           num(t.kurtosis[r]) + "," + num(t.log_feature_sparsity[r]);
    out += with_layer ? "," + std::to_string(t.layer[r]) + "\n" : "\n";
  };
  if (rows.empty())
    for (size_t r = 0; r < t.size(); ++r) row(r);
  else
    for (size_t r : rows) row(r);
  return out;
}

Condition parse_condition(const std::string& text) {
  std::string s;
  for (char c : text)
    if (!std::isspace(static_cast<unsigned char>(c))) s += c;
  for (const char* op : {">=", "<=", "==", "!=", ">", "<"}) {
    size_t p = s.find(op);
    if (p == std::string::npos || p == 0) continue;
    Condition c;
    c.column = s.substr(0, p);
    c.op = op;
    std::string v = s.substr(p + std::string(op).size());
    char* end = nullptr;
    c.value = std::strtod(v.c_str(), &end);
    if (v.empty() || *end) fail(option("where"), " '", text, "': '", v, "' is not a number");
    check_column(c.column, option("where") + " '" + text + "'");
    return c;
  }
  fail(option("where"), " '", text, "' is not COLUMN OP NUMBER with OP one of > >= < <= == != (e.g. \"skewness>3\")");
}

std::vector<size_t> run_query(const StatsTable& t, const Query& q) {
  std::vector<size_t> rows;
  for (size_t r = 0; r < t.size(); ++r) {
    bool ok = true;
    for (const auto& c : q.where) {
      double v = t.value(c.column, r);
      ok = c.op == ">"    ? v > c.value
           : c.op == ">=" ? v >= c.value
           : c.op == "<"  ? v < c.value
           : c.op == "<=" ? v <= c.value
           : c.op == "==" ? v == c.value
                          : v != c.value;
      if (!ok) break;
    }
    if (ok) rows.push_back(r);
  }
  if (!q.sort.empty()) {
    check_column(q.sort, option("sort"));
    std::stable_sort(rows.begin(), rows.end(), [&](size_t a, size_t b) {
      double va = t.value(q.sort, a), vb = t.value(q.sort, b);
      // NaN last, as pandas' na_position="last"
      if (std::isnan(va) || std::isnan(vb)) return !std::isnan(va) && std::isnan(vb);
      return q.ascending ? va < vb : va > vb;
    });
  }
  if (q.top >= 0 && static_cast<size_t>(q.top) < rows.size()) rows.resize(q.top);
  return rows;
}

}  // namespace mechscope::analysis::sae
