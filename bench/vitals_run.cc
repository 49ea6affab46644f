#include "bench/vitals_run.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/load_report.h"

namespace medvault::bench {
namespace {

using Seconds = std::chrono::duration<double>;

Clock::duration ToClock(double seconds) {
  return std::chrono::duration_cast<Clock::duration>(Seconds(seconds));
}

struct Point {
  int devices = 0;
  int watchers = 0;  // per device
};

struct PointResult {
  Point point;
  std::string load_before, load_after;
  // Baseline phase.
  Histogram baseline_ms, baseline_lag_ms;
  uint64_t baseline_calls = 0, baseline_skipped = 0, baseline_errors = 0;
  // Vitals phase.
  Histogram latency_ms, lag_ms;
  uint64_t sent = 0, expected = 0, received = 0, dropped = 0, acks = 0, messages = 0;
  uint64_t errors = 0;
  std::vector<std::string> error_texts;
  double window_s = 0;
  CpuSeconds cpu_before, cpu_after;
  int gateway_threads = 0;
  uint64_t switches = 0;  // the gateway's context switches in the window

  double Cpu(const std::string& role) const {
    auto a = cpu_after.find(role);
    auto b = cpu_before.find(role);
    if (a == cpu_after.end()) return 0;
    return a->second - (b == cpu_before.end() ? 0 : b->second);
  }
  bool Holds(double limit_ms) const {
    return errors == 0 && dropped == 0 && received == expected && expected > 0 &&
           latency_ms.Percentile(99) <= limit_ms;
  }
};

std::vector<Point> ParsePoints(const std::string& text) {
  std::vector<Point> points;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    Point p;
    char x = 0;
    std::stringstream one(item);
    if (!(one >> p.devices >> x >> p.watchers) || x != 'x' || p.devices < 1 || p.watchers < 1 ||
        p.devices > 100000 || p.watchers > 1000) {
      Fail("--points: \"" + item + "\" is not DEVICESxWATCHERS (e.g. 200x1)");
    }
    points.push_back(p);
  }
  if (points.empty()) Fail("--points: no point");
  return points;
}

class Sweep {
 public:
  explicit Sweep(const Options& o)
      : o_(o), fleet_(o), tick_(std::chrono::microseconds(1000000LL * o.batch / o.hz)) {}

  int Run() {
    const std::vector<Point> points = ParsePoints(o_.points);
    int max_devices = 0, max_watchers = 0;
    for (const Point& p : points) {
      max_devices = std::max(max_devices, p.devices);
      max_watchers = std::max(max_watchers, p.watchers);
    }
    load_at_start_ = LoadAverage();
    fleet_.Connect();
    fleet_.Setup(max_devices, max_watchers);
    for (int t = 0; t < o_.threads; ++t) workers_.push_back(std::make_unique<Worker>());
    PrintHeader();
    std::vector<PointResult> results;
    for (const Point& p : points) {
      results.push_back(RunPoint(p));
      const PointResult& r = results.back();
      Progress(Label(p) + ": p99 " + Fixed(r.latency_ms.Percentile(99)) + " ms, received " +
               Grouped(r.received) + " of " + Grouped(r.expected) + ", dropped " +
               Grouped(r.dropped) + (r.Holds(o_.limit_ms) ? ": holds" : ": does NOT hold"));
      PrintRow(r);
      if (!r.Holds(o_.limit_ms) && !o_.keep_going && &p != &points.back()) {
        Progress("the sweep stops at the first point that does not hold (--keep-going runs on)");
        break;
      }
    }
    PrintSummary(results);
    return 0;
  }

 private:
  static std::string Label(const Point& p) {
    return std::to_string(p.devices) + "x" + std::to_string(p.watchers);
  }

  void ResetWorkers() {
    for (auto& w : workers_) w->ResetPhase();
  }
  int Started() const {
    int n = 0;
    for (const auto& w : workers_) n += w->started.load();
    return n;
  }
  int Finished() const {
    int n = 0;
    for (const auto& w : workers_) n += w->finished.load(std::memory_order_acquire);
    return n;
  }
  uint64_t Sum(std::atomic<uint64_t> Worker::*counter) const {
    uint64_t n = 0;
    for (const auto& w : workers_) n += ((*w).*counter).load(std::memory_order_relaxed);
    return n;
  }
  Worker& WorkerFor(size_t i) { return *workers_[i % workers_.size()]; }

  // Waits until `n` streams of the phase have ended; exits if they do not
  // within `timeout`.
  bool WaitFinished(int n, double timeout_s, const std::string& what, bool fail = true) {
    const Clock::time_point deadline = Clock::now() + ToClock(timeout_s);
    while (Finished() < n) {
      if (Clock::now() > deadline) {
        if (!fail) return false;
        Fail(what + ": " + std::to_string(n - Finished()) + " of " + std::to_string(n) +
             " streams did not end within " + Fixed(timeout_s, 0) + " s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  }

  // Sleeps until `until`, printing progress every 5 s.
  void SleepWithProgress(Clock::time_point until, const std::string& what,
                         Clock::time_point window_start) {
    Clock::time_point next = Clock::now() + std::chrono::seconds(5);
    while (Clock::now() < until) {
      std::this_thread::sleep_until(std::min(until, next));
      if (Clock::now() < next) continue;
      next += std::chrono::seconds(5);
      const double in = Seconds(Clock::now() - window_start).count();
      std::string line = what + (in < 0 ? ": warming up" : ": " + Fixed(in, 0) + " s");
      const uint64_t sent = Sum(&Worker::progress_sent);
      if (sent > 0) {
        line += ", sent " + Grouped(sent) + ", received " +
                Grouped(Sum(&Worker::progress_received)) + ", later than " + Fixed(o_.limit_ms, 0) +
                " ms " + Grouped(Sum(&Worker::progress_late)) + ", load " + LoadAverage();
      }
      Progress(line);
    }
  }

  // Sets the window to [now + warmup, + seconds) and returns its bounds.
  std::pair<Clock::time_point, Clock::time_point> OpenWindow(double seconds) {
    const Clock::time_point start = Clock::now() + ToClock(o_.warmup_s);
    const int64_t start_us = UnixMicrosNow() + static_cast<int64_t>(o_.warmup_s * 1e6);
    window_.start_us = start_us;
    window_.end_us = start_us + static_cast<int64_t>(seconds * 1e6);
    return {start, start + std::chrono::duration_cast<Clock::duration>(Seconds(seconds))};
  }

  void CloseWindow() {
    window_.start_us = INT64_MAX;
    window_.end_us = INT64_MAX;
  }

  // The first tick of device i: the devices spread evenly over a tick, as
  // unsynchronised devices would be.
  Clock::time_point FirstTick(Clock::time_point base, int i, int devices) const {
    return base + tick_ * i / devices;
  }

  void Baseline(const Point& p, PointResult& r) {
    if (o_.baseline_s <= 0) return;
    ResetWorkers();
    std::vector<std::unique_ptr<DeviceStream>> devices;
    for (int i = 0; i < p.devices; ++i) {
      devices.push_back(std::make_unique<DeviceStream>(fleet_.devices()[i], WorkerFor(i), window_,
                                                       DeviceStream::Mode::kBaseline, tick_,
                                                       o_.batch));
    }
    const Clock::time_point base = Clock::now() + std::chrono::milliseconds(100);
    const auto [start, end] = OpenWindow(o_.baseline_s);
    Progress(Label(p) + " baseline: " + std::to_string(p.devices) +
             " device connections, a Health.Check each every " + Fixed(tick_.count() / 1e3, 0) +
             " ms");
    for (int i = 0; i < p.devices; ++i) devices[i]->Start(FirstTick(base, i, p.devices));
    SleepWithProgress(end, Label(p) + " baseline", start);
    for (auto& d : devices) d->Stop();
    WaitFinished(p.devices, 30, "baseline");
    CloseWindow();
    for (const auto& w : workers_) {
      r.baseline_ms.Merge(w->stats.baseline_ms);
      r.baseline_lag_ms.Merge(w->stats.sender_lag_ms);
      r.baseline_calls += w->stats.baseline_calls;
      r.baseline_skipped += w->stats.baseline_skipped;
      r.baseline_errors += w->stats.errors_total;
      for (const auto& e : w->stats.errors) r.error_texts.push_back("baseline: " + e);
    }
  }

  void Vitals(const Point& p, PointResult& r) {
    ResetWorkers();
    const int watch_count = p.devices * p.watchers;
    std::vector<std::unique_ptr<WatchStream>> watchers;
    for (int i = 0; i < p.devices; ++i) {
      for (int k = 0; k < p.watchers; ++k) {
        const size_t n = watchers.size();
        watchers.push_back(std::make_unique<WatchStream>(
            fleet_.hospital_vitals(n), WorkerFor(n), window_, fleet_.practitioners()[k],
            fleet_.patients()[i], fleet_.devices()[i].device_id, o_.limit_ms));
      }
    }
    Progress(Label(p) + ": starting " + std::to_string(watch_count) + " watch streams");
    for (auto& w : watchers) w->Start();
    auto wait_started = [&](int n, const char* what) {
      const Clock::time_point deadline = Clock::now() + std::chrono::seconds(60);
      while (Started() < n) {
        if (Clock::now() > deadline || Finished() > 0) {
          for (auto& w : watchers) w->Stop();
          std::this_thread::sleep_for(std::chrono::seconds(1));
          std::string why;
          for (const auto& w : workers_) {
            for (const auto& e : w->stats.errors) why += "\n  " + e;
          }
          Fail(Label(p) + ": " + std::to_string(Started()) + " of " + std::to_string(n) + " " +
               what + " started" + why);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    };
    wait_started(watch_count, "watch streams");
    std::vector<std::unique_ptr<DeviceStream>> devices;
    for (int i = 0; i < p.devices; ++i) {
      devices.push_back(std::make_unique<DeviceStream>(fleet_.devices()[i], WorkerFor(i), window_,
                                                       DeviceStream::Mode::kPublish, tick_,
                                                       o_.batch));
    }
    const Clock::time_point base = Clock::now() + std::chrono::milliseconds(200);
    const auto [start, end] = OpenWindow(o_.seconds);
    Progress(Label(p) + ": " + std::to_string(p.devices) + " devices publishing " +
             std::to_string(o_.hz) + " samples/s each, " + std::to_string(o_.batch) + " a message");
    for (int i = 0; i < p.devices; ++i) devices[i]->Start(FirstTick(base, i, p.devices));
    wait_started(watch_count + p.devices, "streams (watchers and devices)");
    SleepWithProgress(start, Label(p), start);
    r.cpu_before = CpuSnapshot(fleet_.config_file());
    const uint64_t switches_before = GatewaySwitches(fleet_.config_file());
    const Clock::time_point measured_from = Clock::now();
    SleepWithProgress(end, Label(p), start);
    r.cpu_after = CpuSnapshot(fleet_.config_file());
    r.window_s = Seconds(Clock::now() - measured_from).count();
    r.gateway_threads = GatewayThreads(fleet_.config_file());
    r.switches = GatewaySwitches(fleet_.config_file()) - switches_before;
    SleepWithProgress(end + ToClock(o_.drain_s), Label(p) + " drain", start);
    // Devices first (each stores its last segment and ends), then the
    // watchers, which have seen everything by then.
    for (auto& d : devices) d->Stop();
    if (!WaitFinished(p.devices, 60, Label(p) + " devices", /*fail=*/false)) {
      // The gateway is still working through a backlog: give up on it.
      Progress(Label(p) + ": devices still storing after 60 s; cancelling their streams");
      for (auto& d : devices) d->Cancel();
      WaitFinished(p.devices, 60, Label(p) + " devices");
    }
    for (auto& w : watchers) w->Stop();
    WaitFinished(p.devices + watch_count, 60, Label(p) + " watchers");
    CloseWindow();
    for (const auto& w : workers_) {
      const Stats& s = w->stats;
      r.latency_ms.Merge(s.latency_ms);
      r.lag_ms.Merge(s.sender_lag_ms);
      r.sent += s.sent_in_window;
      r.received += s.received_in_window;
      r.dropped += s.dropped;
      r.acks += s.acks;
      r.messages += s.messages_sent;
      r.errors += s.errors_total;
      for (const auto& e : s.errors) r.error_texts.push_back(e);
    }
    r.expected = r.sent * p.watchers;
  }

  PointResult RunPoint(const Point& p) {
    PointResult r;
    r.point = p;
    r.load_before = LoadAverage();
    Baseline(p, r);
    Vitals(p, r);
    r.load_after = LoadAverage();
    for (const auto& e : r.error_texts) Progress(Label(p) + ": " + e);
    return r;
  }

  void PrintHeader() const {
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    std::printf(
        "\nvitals_load: gateway %s, run %s, %u cores shared by the fleet and this client "
        "(%d client threads, gRPC async API), load average %s at the start\n",
        fleet_.address().c_str(), fleet_.tag().c_str(), cores, o_.threads, load_at_start_.c_str());
    std::printf(
        "Each device: its own certificate, TLS connection and patient; %d samples/s as one "
        "PublishRequest of %d samples every %s ms (ECG leads I, II, III in turn), each sample "
        "stamped when its tick fired. Latency = a watcher's receive time - the sample's time "
        "(same clock), over a %s s window after %s s of warm-up (%s s drain). Baseline, the "
        "limit, measured just before each point on the same device connections and client "
        "threads: one plain grpc.health.v1.Health/Check round trip per device every %s ms "
        "(no vitals logic). Generator lag: how late this client's ticks fired. Gateway CPU "
        "in %% of one core, per sample delivered, its threads and context switches.\n\n",
        o_.hz, o_.batch, Fixed(tick_.count() / 1e3, 0).c_str(), Fixed(o_.seconds, 0).c_str(),
        Fixed(o_.warmup_s, 0).c_str(), Fixed(o_.drain_s, 0).c_str(),
        Fixed(tick_.count() / 1e3, 0).c_str());
    std::printf(
        "| devices x watchers | samples/s in / out | e2e latency p50 / p99 / max | baseline "
        "Health.Check p50 / p99 (skipped) | generator lag p99 | received / expected, dropped | "
        "acks | gateway CPU, per sample out, threads, switches/s | other CPU | load avg | p99 "
        "<= %s ms, nothing lost |\n",
        Fixed(o_.limit_ms, 0).c_str());
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
    std::fflush(stdout);
  }

  void PrintRow(const PointResult& r) const {
    const double w = std::max(r.window_s, 1e-9);
    const double gateway = r.Cpu("gateway");
    std::string others;
    for (const auto& [role, seconds] : r.cpu_after) {
      if (role == "gateway") continue;
      const double pct = r.Cpu(role) / w * 100;
      if (pct < 0.5) continue;
      others += (others.empty() ? "" : ", ") + role + " " + Fixed(pct, 0) + "%";
    }
    const bool holds = r.Holds(o_.limit_ms);
    std::printf(
        "| %d x %d | %s / %s | %s / %s / %s ms | %s / %s ms (%s) | %s ms | %s / %s, %s | %s | "
        "%s%%, %s µs, %d threads, %s/s | %s | %s-%s | %s |\n",
        r.point.devices, r.point.watchers, Grouped(r.sent / o_.seconds).c_str(),
        Grouped(r.received / o_.seconds).c_str(), Fixed(r.latency_ms.Percentile(50)).c_str(),
        Fixed(r.latency_ms.Percentile(99)).c_str(), Fixed(r.latency_ms.max()).c_str(),
        Fixed(r.baseline_ms.Percentile(50)).c_str(), Fixed(r.baseline_ms.Percentile(99)).c_str(),
        Grouped(r.baseline_skipped).c_str(), Fixed(r.lag_ms.Percentile(99)).c_str(),
        Grouped(r.received).c_str(), Grouped(r.expected).c_str(), Grouped(r.dropped).c_str(),
        Grouped(r.acks).c_str(), Fixed(gateway / w * 100, 0).c_str(),
        Fixed(r.received > 0 ? gateway * 1e6 / r.received : 0, 1).c_str(), r.gateway_threads,
        Grouped(r.switches / w).c_str(), others.c_str(), r.load_before.c_str(),
        r.load_after.c_str(), holds ? "yes" : (r.errors > 0 ? "NO (errors)" : "NO"));
    std::fflush(stdout);
  }

  void PrintSummary(const std::vector<PointResult>& results) const {
    const PointResult* best = nullptr;
    for (const PointResult& r : results) {
      if (r.Holds(o_.limit_ms) &&
          (best == nullptr ||
           r.point.devices * r.point.watchers > best->point.devices * best->point.watchers)) {
        best = &r;
      }
    }
    if (best != nullptr) {
      std::printf(
          "\nLargest point that holds: %d devices x %d watchers (%s samples/s out); load "
          "average %s at the end.\n",
          best->point.devices, best->point.watchers, Grouped(best->received / o_.seconds).c_str(),
          LoadAverage().c_str());
    } else {
      std::printf("\nNo point holds; load average %s at the end.\n", LoadAverage().c_str());
    }
    std::fflush(stdout);
  }

  const Options& o_;
  VitalsFleet fleet_;
  const std::chrono::microseconds tick_;
  Window window_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::string load_at_start_;
};

}  // namespace

int RunSweep(const Options& options) { return Sweep(options).Run(); }

}  // namespace medvault::bench
