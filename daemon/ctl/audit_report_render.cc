// The compliance report laid out for a terminal (aligned columns) and as
// a self-contained HTML page. Every value may come from a caller of the
// gateway: HTML gets each one escaped, the terminal gets control
// characters replaced (an id holding ESC [ ... must not drive it).
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/ctl/audit_report.h"
#include "daemon/ctl/audit_report_sections.h"

namespace medvault::ctl {
namespace {

using report_internal::BuildReportSections;
using report_internal::FormatReportTime;
using report_internal::ReportRow;
using report_internal::ReportSection;

constexpr char kTitle[] = "medvault compliance report";

// --- Text --------------------------------------------------------------------

// C0 controls and DEL become '?', and so do C1 controls (U+0080..U+009F,
// UTF-8 C2 80..C2 9F: 0x9B is a CSI on some terminals).
std::string TerminalSafe(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      out.push_back('?');
    } else if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(s[i + 1]) <= 0x9f) {
      out.push_back('?');
      ++i;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Columns on screen: code points (every character here is one column
// wide; the report writes no wide or combining characters of its own).
size_t Width(absl::string_view s) {
  return std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xc0) != 0x80; });
}

void AppendTextRow(const std::vector<std::string>& cells, const std::vector<size_t>& widths,
                   std::string& out) {
  std::string line = "  ";
  for (size_t i = 0; i < cells.size(); ++i) {
    absl::StrAppend(&line, cells[i]);
    if (i + 1 < cells.size()) line.append(widths[i] - Width(cells[i]) + 2, ' ');
  }
  absl::StrAppend(&out, line, "\n");
}

void AppendTextSection(const ReportSection& section, std::string& out) {
  absl::StrAppend(&out, "\n", section.title, " (", section.count, ")\n");
  absl::StrAppend(&out, std::string(Width(section.title) + Width(section.count) + 3, '='), "\n");
  if (section.rows.empty()) {
    absl::StrAppend(&out, "  None.\n");
    return;
  }
  std::vector<std::vector<std::string>> lines;
  lines.push_back(section.headers);
  for (const ReportRow& row : section.rows) {
    std::vector<std::string> cells;
    for (const std::string& cell : row.cells) cells.push_back(TerminalSafe(cell));
    lines.push_back(std::move(cells));
  }
  std::vector<size_t> widths(section.headers.size(), 0);
  for (const auto& cells : lines) {
    for (size_t i = 0; i < cells.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], Width(cells[i]));
    }
  }
  for (const auto& cells : lines) AppendTextRow(cells, widths, out);
}

// --- HTML --------------------------------------------------------------------

std::string Html(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

constexpr char kStyle[] = R"css(
body { font-family: system-ui, sans-serif; margin: 2em; color: #1b1b1b; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
p.meta { color: #555; margin-top: 0; }
h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { text-align: left; padding: 0.3em 0.8em; border-bottom: 1px solid #e3e3e3;
         vertical-align: top; }
th { background: #f2f2f2; }
td { font-family: ui-monospace, monospace; overflow-wrap: break-word; }
tr.alert td { background: #fde8e8; color: #8a1111; font-weight: bold; }
p.none { color: #555; font-style: italic; }
@media print { tr { break-inside: avoid; } }
)css";

void AppendHtmlSection(const ReportSection& section, std::string& out) {
  absl::StrAppend(&out, "<section id=\"", Html(section.id), "\">\n<h2>", Html(section.title), " (",
                  Html(section.count), ")</h2>\n");
  if (section.rows.empty()) {
    absl::StrAppend(&out, "<p class=\"none\">None.</p>\n</section>\n");
    return;
  }
  absl::StrAppend(&out, "<table>\n<thead><tr>");
  for (const std::string& h : section.headers) absl::StrAppend(&out, "<th>", Html(h), "</th>");
  absl::StrAppend(&out, "</tr></thead>\n<tbody>\n");
  for (const ReportRow& row : section.rows) {
    absl::StrAppend(&out, row.alert ? "<tr class=\"alert\">" : "<tr>");
    for (const std::string& cell : row.cells) absl::StrAppend(&out, "<td>", Html(cell), "</td>");
    absl::StrAppend(&out, "</tr>\n");
  }
  absl::StrAppend(&out, "</tbody>\n</table>\n</section>\n");
}

}  // namespace

std::string RenderTextReport(const AuditReportInput& input) {
  std::string out = absl::StrCat(kTitle, "\n");
  absl::StrAppend(&out, "Generated: ", FormatReportTime(input.generated_at), "\n");
  if (!input.log_summary.empty()) {
    absl::StrAppend(&out, "Log: ", TerminalSafe(input.log_summary), "\n");
  }
  for (const ReportSection& section : BuildReportSections(input)) {
    AppendTextSection(section, out);
  }
  return out;
}

std::string RenderHtmlReport(const AuditReportInput& input) {
  // The policy forbids scripts, frames, images and any fetch: the page
  // needs nothing but its own inline style, and should escaping ever fail
  // an injected element could still do nothing.
  std::string out = absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
      "style-src 'unsafe-inline'\">\n",
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n", "<title>",
      kTitle, "</title>\n<style>", kStyle, "</style>\n</head>\n<body>\n<h1>", kTitle, "</h1>\n",
      "<p class=\"meta\">Generated ", Html(FormatReportTime(input.generated_at)));
  if (!input.log_summary.empty()) absl::StrAppend(&out, " · ", Html(input.log_summary));
  absl::StrAppend(&out, "</p>\n");
  for (const ReportSection& section : BuildReportSections(input)) {
    AppendHtmlSection(section, out);
  }
  absl::StrAppend(&out, "</body>\n</html>\n");
  return out;
}

}  // namespace medvault::ctl
