// The interactive side: one self-contained, offline index.html per run (plotly.js inlined once), with
// a table of contents linking every figure, the run's key numbers, and each Figure turned into
// plotly traces from the same model the PNGs are drawn from (hover: row label / column label / value).
//
//   HtmlReport page("Causal tracing: gpt2-xl", "1000 facts, noise 3σ");
//   page.add_number("facts", "1000");
//   page.add_figure(fig, {"trace_0.png", "trace_0.svg"});   // links to the static versions
//   page.write(out_dir + "/index.html");                   // atomic
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "report/figure.h"

namespace mechscope::report {

// plotly.min.js (plotly.js-dist-min), embedded into the library at build time.
std::string_view plotly_js();
std::string plotly_version();

// {"data": […], "layout": {…}, "frames": […]} for Plotly.newPlot.
nlohmann::json plotly_figure(const Figure& fig);

std::string html_escape(std::string_view s);

class HtmlReport {
 public:
  explicit HtmlReport(std::string title, std::string subtitle = "");

  void add_number(const std::string& name, const std::string& value);
  void add_number(const std::string& name, double value, int decimals = -1);
  // `files`: the static renderings (paths relative to index.html), linked under the figure.
  void add_figure(const Figure& fig, const std::vector<std::string>& files = {});
  void add_paragraph(const std::string& text);  // plain text, escaped
  // A titled table of plain-text cells (escaped), listed in the contents; `id`: letters, digits, '_', '-'.
  // Rows shorter than the header are padded with empty cells.
  void add_table(const std::string& id, const std::string& title, const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows, const std::string& caption = "");

  size_t figure_count() const { return figures_.size(); }
  std::string html() const;
  void write(const std::string& path) const;  // atomic

 private:
  struct Item {
    std::string id, title, caption, plot_json, paragraph;
    double height_px = 0;
    std::vector<std::string> files;
    std::vector<std::string> header;  // a table when non-empty
    std::vector<std::vector<std::string>> rows;
  };
  std::string title_, subtitle_;
  std::vector<std::pair<std::string, std::string>> numbers_;
  std::vector<Item> figures_;
};

}  // namespace mechscope::report
