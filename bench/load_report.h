// Number formats and machine figures the load generators (gateway_load,
// vitals_load) print in their reports.
#ifndef MEDVAULT_BENCH_LOAD_REPORT_H_
#define MEDVAULT_BENCH_LOAD_REPORT_H_

#include <string>

namespace medvault::bench {

// 12.345 -> "12.3" (with `decimals` 1).
std::string Fixed(double value, int decimals = 1);
// 12345.6 -> "12,346".
std::string Grouped(double value);
// The 1-minute load average (/proc/loadavg), "?" when unknown.
std::string LoadAverage();

}  // namespace medvault::bench

#endif  // MEDVAULT_BENCH_LOAD_REPORT_H_
