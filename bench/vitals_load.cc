// The vitals load generator: how many devices x watchers the gateway's live
// vitals (medvault.v1.VitalsService) sustain at 250 Hz, with the end-to-end
// latency of every sample, beside the limits measured in the same run.
//
// Each simulated device has its own `device` certificate, its own TLS
// connection and its own enrolled patient, and publishes 250 samples a
// second: a PublishRequest of 5 samples every 20 ms (one tick), the
// channels "ECG lead I", "II", "III" in turn by sequence number, every
// sample's time the moment its tick fired (wall clock). Each of W
// practitioners (licensed on chain, granted VITALS for TREATMENT by every
// patient) watches every device through the hospital's connections. A
// sample's latency is the watcher's receive time minus its time: the same
// host's clock, so no skew. Samples are counted in a window (by their
// time) after a warm-up; the run goes on for a drain period so that late
// samples of the window are still seen; expected = sent in the window x W.
//
// The limits, measured in the same run, before each point's vitals phase:
//   - baseline: the same D device connections each make a plain unary
//     grpc.health.v1.Health/Check call every 20 ms (the same message rate,
//     the same mutual-TLS connections and client threads, none of the
//     vitals logic: no policy, no fan-out, no storage); its round trip is
//     two hops of the transport, as a sample's path is (device -> gateway
//     -> watcher). Its p99 is what the transport and the 2 cores give at
//     that rate.
//   - the generator's own scheduling delay (a tick's firing minus its
//     schedule): latency the client adds, which the figures include.
// During the window: CPU of every process of the fleet (from /proc, by
// its configuration file) and of this client, the gateway's thread count,
// and acks (one per stored segment).
//
// The client uses gRPC's asynchronous API on --threads threads (default
// 2: this machine has 2 vCPUs, shared by the whole fleet and this
// client), not a thread per stream. Markdown table on standard output;
// progress on standard error. Setup goes through the public API as
// tests/integration/vitals_test.cc does; the practitioners' licences with
// `medvaultctl chain set-licence` and the patients' consents signed with
// `cast wallet sign` (anvil's first development key, the address every
// patient of the run is registered with).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/vitals_fleet.h"
#include "bench/vitals_run.h"

int main(int argc, char** argv) {
  medvault::bench::Options o;
  CLI::App app(
      "vitals_load: devices publishing 250 Hz vitals and practitioners watching them, through "
      "the gateway's public API over mutual TLS against a running fleet; prints, for each "
      "point of the sweep, the end-to-end latency of the samples (watcher receive time - "
      "device send time) beside a plain gRPC health check at the same rate on the same "
      "connections, measured in the same run. bench/vitals-load starts the fleet "
      "(scripts/run), runs this and stops the fleet.");
  app.add_option("--env", o.env_dir,
                 "development environment as scripts/run makes it: DIR/medvault.textproto, "
                 "DIR/pki (the CA issues the devices' certificates)")
      ->capture_default_str();
  app.add_option("--address", o.address,
                 "host:port of the gateway (default: gateway.listen_address of --env)");
  app.add_option("--points", o.points,
                 "the sweep: DEVICESxWATCHERS,... (watchers per device); setup is done once for "
                 "the largest of each")
      ->capture_default_str();
  app.add_option("--warmup", o.warmup_s, "seconds of each phase before the window")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 600.0));
  app.add_option("--seconds", o.seconds, "seconds of the measurement window of each point")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 3600.0));
  app.add_option("--baseline-seconds", o.baseline_s,
                 "seconds of the baseline window (health checks) before each point")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--drain", o.drain_s,
                 "seconds the devices go on after the window, so its late samples arrive")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 600.0));
  app.add_option("--hz", o.hz, "samples per second per device")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("--batch", o.batch, "samples per PublishRequest (one message per tick)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_option("--limit-ms", o.limit_ms, "the target p99, ms (a point holds if p99 <= this)")
      ->capture_default_str();
  app.add_option("--threads", o.threads, "client threads (one completion queue each)")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--hospital-connections", o.hospital_connections,
                 "TLS connections of the hospital the watch streams are spread over")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_flag("--keep-going", o.keep_going,
               "run every point, not only up to the first that does not hold");
  app.add_option("--ctl", o.ctl, "medvaultctl (certificates, licences)")->capture_default_str();
  app.add_option("--cast", o.cast, "Foundry's cast (the patients' signatures)")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return medvault::bench::RunSweep(o);
}
