// The seed's figures of the logit-weight statistics (SAELens logit-lens tutorial), as report::Figures.
#pragma once
#include <string>
#include <vector>

#include "analysis/sae/table.h"
#include "report/figure.h"

namespace mechscope::analysis::sae {

// rows: the table rows to draw (empty: all).
report::Figure skewness_histogram(const StatsTable& t, const std::vector<size_t>& rows, const std::string& id,
                                  const std::string& title);
report::Figure log_kurtosis_histogram(const StatsTable& t, const std::vector<size_t>& rows, const std::string& id,
                                      const std::string& title);
// Skewness × kurtosis (log y), coloured by std on the Portland scale, hover = feature.
report::Figure skew_kurtosis_scatter(const StatsTable& t, const std::vector<size_t>& rows, const std::string& id,
                                     const std::string& title);

// Quantiles with linear interpolation (numpy's default, which pandas' describe uses); p in [0, 1].
double quantile(std::vector<double> v, double p);

// All layers: the 1, 5, 10, 25, 50, 75, 90, 95, 99 % percentiles of `column` by layer, each band
// between successive percentiles shaded in the first nine colours of plotly's 13-colour Turbo.
report::Figure percentiles_by_layer(const StatsTable& t, const std::string& column, bool log_y, const std::string& id,
                                    const std::string& title);
// Box plots of `column` by layer as the seed's px.box draws them (report::BoxPlot: plotly's quartiles,
// whiskers to the furthest values within 1.5 IQR, outliers as points; with log_y the non-positive values
// are left out), layer i coloured with colour i of the seed's n_colors(rgb(5, 200, 200), rgb(200, 10, 10), 13).
report::Figure box_by_layer(const StatsTable& t, const std::string& column, bool log_y, const std::string& id,
                            const std::string& title);
// The skewness × kurtosis scatter animated by layer, features with log sparsity >= min_log_sparsity
// (features without a shipped sparsity are kept).
report::Figure scatter_by_layer(const StatsTable& t, double min_log_sparsity, const std::string& id,
                                const std::string& title);

}  // namespace mechscope::analysis::sae
