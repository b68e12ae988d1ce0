#include "report/html.h"

#include <cctype>

#include "core/error.h"
#include "core/fs.h"
#include "report/label.h"
#include "report/ticks.h"

namespace mechscope::report {

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

HtmlReport::HtmlReport(std::string title, std::string subtitle)
    : title_(std::move(title)), subtitle_(std::move(subtitle)) {}

void HtmlReport::add_number(const std::string& name, const std::string& value) { numbers_.push_back({name, value}); }

void HtmlReport::add_number(const std::string& name, double value, int decimals) {
  add_number(name, format_number(value, decimals));
}

void HtmlReport::add_figure(const Figure& fig, const std::vector<std::string>& files) {
  Item it;
  it.id = fig.id;
  it.title = fig.title.empty() ? fig.id : fig.title;
  it.caption = fig.caption;
  std::string js = plotly_figure(fig).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  // Inside <script>, "</" could close the element: token text like "</s>" is escaped as "<\/".
  std::string safe;
  for (size_t i = 0; i < js.size(); i++) {
    if (js[i] == '<' && i + 1 < js.size() && js[i + 1] == '/') safe += "<\\/", i++;
    else safe += js[i];
  }
  it.plot_json = safe;
  it.files = files;
  figures_.push_back(std::move(it));
}

void HtmlReport::add_paragraph(const std::string& text) {
  Item it;
  it.paragraph = text;
  figures_.push_back(std::move(it));
}

void HtmlReport::add_table(const std::string& id, const std::string& title, const std::vector<std::string>& header,
                           const std::vector<std::vector<std::string>>& rows, const std::string& caption) {
  for (char c : id)
    if (!std::isalnum((unsigned char)c) && c != '_' && c != '-')
      fail("table id '", id, "' may hold letters, digits, '_' and '-' only");
  if (header.empty()) fail("table '", id, "' has no columns");
  Item it;
  it.id = id;
  it.title = title.empty() ? id : title;
  it.caption = caption;
  it.header = header;
  it.rows = rows;
  for (auto& r : it.rows)
    if (r.size() > header.size())
      fail("table '", id, "' has a row of ", r.size(), " cells for ", header.size(), " columns");
  figures_.push_back(std::move(it));
}

std::string HtmlReport::html() const {
  std::string h;
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  h += "<title>" + html_escape(valid_utf8(title_)) + "</title>\n";
  h += R"(<style>
body { font-family: "DejaVu Sans", "Noto Sans CJK JP", "Noto Color Emoji", sans-serif; margin: 0; color: #222; background: #fafafa; }
header { background: #fff; border-bottom: 1px solid #ddd; padding: 18px 32px; }
header h1 { margin: 0 0 4px 0; font-size: 22px; }
header p { margin: 0; color: #555; font-size: 14px; }
main { max-width: 1100px; margin: 0 auto; padding: 16px 32px 48px; }
nav, section { background: #fff; border: 1px solid #e2e2e2; border-radius: 6px; padding: 12px 20px; margin: 16px 0; }
nav h2, section h2 { font-size: 17px; margin: 4px 0 10px; }
nav ol { margin: 0; padding-left: 22px; columns: 2; }
nav li { margin: 2px 0; }
a { color: #1f5fa8; text-decoration: none; } a:hover { text-decoration: underline; }
table.numbers { border-collapse: collapse; font-size: 14px; }
table.numbers td { padding: 4px 16px 4px 0; border-bottom: 1px solid #eee; }
table.numbers td.v { font-family: "DejaVu Sans Mono", monospace; text-align: right; }
.plot { width: 100%; }
p.caption { color: #444; font-size: 14px; margin: 6px 0; }
p.files { font-size: 13px; color: #666; margin: 4px 0 0; }
.tablewrap { overflow-x: auto; }
table.data { border-collapse: collapse; font-size: 13px; width: 100%; }
table.data th { text-align: left; background: #f0f0f0; position: sticky; top: 0; }
table.data th, table.data td { padding: 4px 8px; border-bottom: 1px solid #e6e6e6; vertical-align: top; }
table.data tr:nth-child(even) td { background: #fbfbfb; }
</style>
)";
  h += "<script>\n";
  std::string_view js = plotly_js();
  // The bundle contains no "</script"; keep it that way if a future version did.
  size_t pos = 0;
  while (true) {
    size_t q = js.find("</script", pos);
    if (q == std::string_view::npos) {
      h.append(js.substr(pos));
      break;
    }
    h.append(js.substr(pos, q - pos));
    h += "<\\/script";
    pos = q + 8;
  }
  h += "\n</script>\n</head>\n<body>\n<header><h1>" + html_escape(valid_utf8(title_)) + "</h1>";
  if (!subtitle_.empty()) h += "<p>" + html_escape(valid_utf8(subtitle_)) + "</p>";
  h += "</header>\n<main>\n<nav id=\"toc\"><h2>Contents</h2><ol>\n";
  if (!numbers_.empty()) h += "<li><a href=\"#key-numbers\">Key numbers</a></li>\n";
  for (auto& f : figures_)
    if (!f.header.empty())
      h += "<li><a href=\"#table-" + f.id + "\">" + html_escape(valid_utf8(f.title)) + "</a></li>\n";
    else if (f.paragraph.empty())
      h += "<li><a href=\"#fig-" + f.id + "\">" + html_escape(valid_utf8(f.title)) + "</a></li>\n";
  h += "</ol></nav>\n";
  if (!numbers_.empty()) {
    h += "<section id=\"key-numbers\"><h2>Key numbers</h2><table class=\"numbers\">\n";
    for (auto& [k, v] : numbers_)
      h += "<tr><td>" + html_escape(valid_utf8(k)) + "</td><td class=\"v\">" + html_escape(valid_utf8(v)) +
           "</td></tr>\n";
    h += "</table></section>\n";
  }
  for (auto& f : figures_) {
    if (!f.header.empty()) {
      h += "<section class=\"table\" id=\"table-" + f.id + "\"><h2>" + html_escape(valid_utf8(f.title)) + "</h2>\n";
      if (!f.caption.empty()) h += "<p class=\"caption\">" + html_escape(valid_utf8(f.caption)) + "</p>\n";
      h += "<div class=\"tablewrap\"><table class=\"data\"><thead><tr>";
      for (auto& c : f.header) h += "<th>" + html_escape(valid_utf8(c)) + "</th>";
      h += "</tr></thead><tbody>\n";
      for (auto& r : f.rows) {
        h += "<tr>";
        for (size_t i = 0; i < f.header.size(); i++)
          h += "<td>" + (i < r.size() ? html_escape(valid_utf8(r[i])) : "") + "</td>";
        h += "</tr>\n";
      }
      h += "</tbody></table></div></section>\n";
      continue;
    }
    if (!f.paragraph.empty()) {
      h += "<section><p>" + html_escape(valid_utf8(f.paragraph)) + "</p></section>\n";
      continue;
    }
    h += "<section class=\"figure\" id=\"fig-" + f.id + "\"><h2>" + html_escape(valid_utf8(f.title)) + "</h2>\n";
    h += "<div class=\"plot\" id=\"plot-" + f.id + "\"></div>\n";
    if (!f.caption.empty()) h += "<p class=\"caption\">" + html_escape(valid_utf8(f.caption)) + "</p>\n";
    if (!f.files.empty()) {
      h += "<p class=\"files\">Static:";
      for (auto& file : f.files) h += " <a href=\"" + html_escape(file) + "\">" + html_escape(file) + "</a>";
      h += "</p>\n";
    }
    h += "<script>(function(){var f=" + f.plot_json +
         ";f.config={responsive:true,displaylogo:false};Plotly.newPlot(\"plot-" + f.id + "\",f);})();</script>\n";
    h += "</section>\n";
  }
  h += "</main>\n</body>\n</html>\n";
  return h;
}

void HtmlReport::write(const std::string& path) const { write_file_atomic(path, html()); }

}  // namespace mechscope::report
