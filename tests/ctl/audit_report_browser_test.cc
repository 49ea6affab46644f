// The HTML compliance report as a browser shows it: Debian's chromium
// (scripts/install-deps) loads the page headless from a temporary
// directory, and the test reads back the DOM it built (--dump-dom) and the
// picture it drew (--screenshot).
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "daemon/ctl/audit_report.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/ctl/audit_test_events.h"

namespace medvault::ctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kChromium[] = "/usr/bin/chromium";
constexpr absl::Duration kChromiumTimeout = absl::Seconds(90);

using testing::EmergencyOpen;
using testing::Event;
using testing::T;

// Two emergency accesses (one overdue, one with a hostile id), three
// denials under two rules, a dispute in two steps, one licence change,
// two policy versions; the disputes section has a hostile id too.
AuditReportInput KnownInput() {
  AuditReportInput in;
  in.generated_at = T("2025-03-10T00:00:00Z");
  in.log_summary = "9 events; latest signed tree head: size 9 at 2025-03-09T12:00:00Z";
  uint64_t index = 0;
  auto add = [&](v1::AuditEvent e) { in.events.emplace_back(index++, std::move(e)); };
  add(EmergencyOpen("2025-03-01T08:00:00Z", "emg-1", "2025-03-08T08:00:00Z"));
  add(EmergencyOpen("2025-03-09T08:00:00Z", "<script>document.title='pwned'</script>",
                    "2025-03-16T08:00:00Z"));
  for (const char* rule : {"deny-unlicensed", "deny-unlicensed", ""}) {
    v1::AuditEvent d = Event("2025-03-02T10:00:00Z", "record.read", v1::AuditEvent::DENIED);
    if (*rule) d.add_rule_ids(rule);
    add(d);
  }
  v1::AuditEvent file = Event("2025-03-04T09:00:00Z", "dispute.file");
  file.set_dispute_id("d-1<b>");
  file.set_dispute_to_state("FILED");
  add(file);
  v1::AuditEvent start = Event("2025-03-05T09:00:00Z", "dispute.start_review");
  start.set_dispute_id("d-1<b>");
  start.set_dispute_from_state("FILED");
  start.set_dispute_to_state("UNDER_REVIEW");
  start.set_policy_version(4);
  add(start);
  in.licence_changes.push_back(
      {"0xaaaa", "SUSPENDED", T("2026-01-01T00:00:00Z"), T("2025-03-02T00:00:00Z"), 150});
  in.policy_publications.push_back({3, "0x3333", T("2025-01-01T00:00:00Z")});
  return in;
}

absl::Status Errno(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// Runs argv in a process group of its own with stdout to `stdout_path`
// and stderr to `stderr_path`; waits at most `timeout`. On the way out,
// however it went, the whole group is killed: chromium leaves helper
// processes (zygote, GPU, utility) behind it. Returns the exit status.
absl::StatusOr<int> RunChromium(const std::vector<std::string>& argv,
                                const std::string& stdout_path, const std::string& stderr_path,
                                absl::Duration timeout) {
  const pid_t pid = fork();
  if (pid < 0) return Errno("fork");
  if (pid == 0) {
    setpgid(0, 0);
    const int out = open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    const int err = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    const int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (out < 0 || err < 0 || in < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) {
      _exit(126);
    }
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  setpgid(pid, pid);  // also here, so the group exists before we might kill it
  struct GroupKiller {
    pid_t pgid;
    ~GroupKiller() { kill(-pgid, SIGKILL); }
  } killer{pid};

  const absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (true) {
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) return Errno("waitpid");
    if (absl::Now() > deadline) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      return absl::DeadlineExceededError(
          absl::StrCat("chromium did not finish within ", absl::FormatDuration(timeout)));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  if (!WIFEXITED(status)) return absl::InternalError("chromium was killed by a signal");
  return WEXITSTATUS(status);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The part of the DOM in <section id="id">...</section>.
std::string Section(const std::string& dom, const std::string& id) {
  const size_t start = dom.find("<section id=\"" + id + "\">");
  if (start == std::string::npos) return "";
  return dom.substr(start, dom.find("</section>", start) - start);
}

int CountOf(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

class AuditReportBrowserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Never skipped: without a browser the report is untested.
    ASSERT_EQ(access(kChromium, X_OK), 0)
        << kChromium
        << " is missing (or not executable): run scripts/install-deps (it installs chromium for "
        << "the compliance report's browser test)";
    std::string pattern =
        (std::filesystem::temp_directory_path() / "medvault-report-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << std::strerror(errno);
    dir_ = pattern;
    report_ = dir_ + "/report.html";
    std::ofstream(report_) << RenderHtmlReport(KnownInput());
  }

  void TearDown() override {
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }

  // chromium on the report with `extra` flags; stdout's contents.
  std::string Chromium(const std::vector<std::string>& extra) {
    // --no-sandbox: chromium refuses to start as root with its sandbox on,
    // and tests run as root here. The page is our own file, loads nothing
    // else (its Content-Security-Policy forbids it) and runs no script.
    std::vector<std::string> argv = {
        kChromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        // Small /dev/shm in containers.
        "--disable-dev-shm-usage", "--user-data-dir=" + dir_ + "/profile"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back("file://" + report_);
    absl::StatusOr<int> exit =
        RunChromium(argv, dir_ + "/stdout", dir_ + "/stderr", kChromiumTimeout);
    if (!exit.ok()) {
      ADD_FAILURE() << exit.status() << "\n" << ReadFile(dir_ + "/stderr");
    } else {
      EXPECT_EQ(*exit, 0) << ReadFile(dir_ + "/stderr");
    }
    return ReadFile(dir_ + "/stdout");
  }

  std::string dir_;
  std::string report_;
};

// The DOM chromium builds has each section's table with a header row and
// one row per item, the expected texts, and the hostile ids as text.
TEST_F(AuditReportBrowserTest, RendersSectionsAndRows) {
  const std::string dom = Chromium({"--dump-dom"});
  ASSERT_THAT(dom, HasSubstr("</html>")) << ReadFile(dir_ + "/stderr");

  const std::string emergency = Section(dom, "emergency");
  EXPECT_THAT(emergency, HasSubstr("<table>"));
  EXPECT_THAT(emergency, HasSubstr("Emergency accesses awaiting review (2)"));
  EXPECT_EQ(CountOf(emergency, "<tr"), 3);
  EXPECT_EQ(CountOf(emergency, "<th>"), 8);
  EXPECT_THAT(emergency, HasSubstr("<td>emg-1</td>"));
  EXPECT_THAT(emergency, HasSubstr("<td>OVERDUE</td>"));
  EXPECT_THAT(emergency, HasSubstr("<td>awaiting review</td>"));
  // The script is text in a cell, not an element; it never ran.
  EXPECT_THAT(emergency, HasSubstr("&lt;script&gt;document.title='pwned'&lt;/script&gt;"));
  EXPECT_THAT(dom, Not(HasSubstr("<script")));
  EXPECT_THAT(dom, HasSubstr("<title>medvault compliance report</title>"));

  const std::string denials = Section(dom, "denials");
  EXPECT_EQ(CountOf(denials, "<tr"), 3);
  EXPECT_THAT(denials, HasSubstr("<td>deny-unlicensed</td><td>2</td>"));
  EXPECT_THAT(denials, HasSubstr("<td>(no rule matched: default deny)</td><td>1</td>"));

  const std::string disputes = Section(dom, "disputes");
  EXPECT_EQ(CountOf(disputes, "<tr"), 3);
  EXPECT_THAT(disputes, HasSubstr("<td>d-1&lt;b&gt;</td>"));
  EXPECT_THAT(disputes, Not(HasSubstr("<b>")));
  EXPECT_THAT(disputes, HasSubstr("<td>FILED → UNDER_REVIEW</td>"));

  const std::string licences = Section(dom, "licences");
  EXPECT_EQ(CountOf(licences, "<tr"), 2);
  EXPECT_THAT(licences, HasSubstr("<td>SUSPENDED</td>"));

  const std::string policies = Section(dom, "policies");
  EXPECT_EQ(CountOf(policies, "<tr"), 3);
  EXPECT_THAT(policies, HasSubstr("<td>not on chain</td>"));
}

// chromium draws the page: a PNG of the window's size with real content.
TEST_F(AuditReportBrowserTest, Screenshot) {
  const std::string png = dir_ + "/report.png";
  Chromium({"--screenshot=" + png, "--window-size=1280,1600", "--hide-scrollbars"});
  const std::string bytes = ReadFile(png);
  ASSERT_GE(bytes.size(), 24u) << "no screenshot at " << png << "\n" << ReadFile(dir_ + "/stderr");
  EXPECT_EQ(bytes.substr(0, 8), "\x89PNG\r\n\x1a\n");
  auto be32 = [&](size_t at) {
    return (uint32_t{static_cast<unsigned char>(bytes[at])} << 24) |
           (uint32_t{static_cast<unsigned char>(bytes[at + 1])} << 16) |
           (uint32_t{static_cast<unsigned char>(bytes[at + 2])} << 8) |
           uint32_t{static_cast<unsigned char>(bytes[at + 3])};
  };
  EXPECT_EQ(be32(16), 1280u);  // IHDR width
  EXPECT_EQ(be32(20), 1600u);  // IHDR height
  // A blank 1280x1600 PNG compresses to a few kilobytes; tables of text
  // take several times that.
  EXPECT_GT(bytes.size(), 30000u);
}

}  // namespace
}  // namespace medvault::ctl
