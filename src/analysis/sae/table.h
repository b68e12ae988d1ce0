// The per-feature statistics table (one row per feature of one or several SAEs), its CSV form, and the
// feature queries of the seed (filter, sort, head), as pandas would run them on SAELens's DataFrame.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace mechscope::analysis::sae {

struct StatsTable {
  std::vector<int64_t> feature;
  std::vector<int> layer;                                                   // stats_layer of the SAE's hook (-1: none)
  std::vector<int> sae;                                                     // index into sae_names
  std::vector<double> mean, std, skewness, kurtosis, log_feature_sparsity;  // NaN sparsity: not shipped
  std::vector<std::string> sae_names;                                       // hook name of each SAE
  size_t size() const { return feature.size(); }
  // Column by name: feature, mean, std, skewness, kurtosis, log_feature_sparsity, layer. Error listing them.
  double value(const std::string& column, size_t row) const;
};

// CSV with the header feature,mean,std,skewness,kurtosis,log_feature_sparsity (+ ",layer" when
// with_layer); values with 17 significant digits (round-trip exact); missing sparsity written as "nan".
std::string to_csv(const StatsTable& t, bool with_layer, const std::vector<size_t>& rows = {});

// Error naming `flag` when `name` is not a column.
void check_column(const std::string& name, const std::string& flag);

struct Condition {
  std::string column, op;  // op: > >= < <= == !=
  double value = 0;
};
// "skewness>3", "log_feature_sparsity >= -9"; Error naming option("where") and the text otherwise.
Condition parse_condition(const std::string& text);

struct Query {
  std::vector<Condition> where;  // all must hold
  std::string sort;              // column; empty: feature order
  bool ascending = false;        // the seed sorts descending
  int64_t top = -1;              // -1: all
};
// Row indices satisfying the query, sorted (stable, as pandas' default for a single key is not, ties
// keep feature order here) and cut to `top`.
std::vector<size_t> run_query(const StatsTable& t, const Query& q);

}  // namespace mechscope::analysis::sae
