// The compliance report as data: what RenderTextReport and
// RenderHtmlReport (audit_report_render.cc) both lay out. Internal to
// audit_report; the contract of each section is in audit_report.h.
#ifndef MEDVAULT_DAEMON_CTL_AUDIT_REPORT_SECTIONS_H_
#define MEDVAULT_DAEMON_CTL_AUDIT_REPORT_SECTIONS_H_

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "daemon/ctl/audit_report.h"

namespace medvault::ctl::report_internal {

struct ReportRow {
  std::vector<std::string> cells;  // one per header, unescaped
  bool alert = false;              // shown highlighted (an overdue review)
};

struct ReportSection {
  std::string id;     // HTML id: emergency, denials, disputes, licences, policies
  std::string title;  // without the count
  std::string count;  // shown after the title in brackets, e.g. "3" or "5 steps, 2 disputes"
  std::vector<std::string> headers;
  std::vector<ReportRow> rows;
};

// The five sections, in order.
std::vector<ReportSection> BuildReportSections(const AuditReportInput& input);

// RFC 3339 UTC to the second ("2025-03-01T12:00:00Z"); "—" for an
// infinite time.
std::string FormatReportTime(absl::Time t);

}  // namespace medvault::ctl::report_internal

#endif  // MEDVAULT_DAEMON_CTL_AUDIT_REPORT_SECTIONS_H_
