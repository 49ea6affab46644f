// The sweep of the vitals load generator: for each point (devices x
// watchers per device), a baseline phase and a vitals phase on the same
// connections and client threads, and the table of what they measured.
#ifndef MEDVAULT_BENCH_VITALS_RUN_H_
#define MEDVAULT_BENCH_VITALS_RUN_H_

#include "bench/vitals_fleet.h"

namespace medvault::bench {

// Sets up the fleet for the largest point, runs every point of
// `options.points` and prints the table; returns the exit code.
int RunSweep(const Options& options);

}  // namespace medvault::bench

#endif  // MEDVAULT_BENCH_VITALS_RUN_H_
