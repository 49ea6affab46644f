// The vitals load generator's side of a running fleet: its options, the
// setup of a run's people and devices through the public API (as
// tests/integration/vitals_test.cc does it), and the CPU of the fleet's
// processes read from /proc. Used by the main thread only.
#ifndef MEDVAULT_BENCH_VITALS_FLEET_H_
#define MEDVAULT_BENCH_VITALS_FLEET_H_

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench/vitals_streams.h"
#include "medvault/v1/vitals.grpc.pb.h"

#ifndef MEDVAULT_BENCH_SOURCE_DIR
#define MEDVAULT_BENCH_SOURCE_DIR "."
#endif

namespace medvault::bench {

struct Options {
  std::string env_dir = ".medvault-dev";
  std::string address;  // default: gateway.listen_address of the environment
  std::string points = "10x1,25x1,50x1,100x1,200x1,200x2";
  double warmup_s = 5;
  double seconds = 20;
  double baseline_s = 10;
  double drain_s = 2;
  int hz = 250;
  int batch = 5;
  double limit_ms = 100;
  int threads = 2;
  int hospital_connections = 4;
  bool keep_going = false;
  std::string ctl = MEDVAULT_BENCH_SOURCE_DIR "/build/release/bin/medvaultctl";
  std::string cast =
      MEDVAULT_BENCH_SOURCE_DIR "/contracts/node_modules/@foundry-rs/cast-linux-amd64/bin/cast";
};

[[noreturn]] void Fail(const std::string& what);
void Progress(const std::string& what);

class VitalsFleet {
 public:
  explicit VitalsFleet(const Options& options);

  // Checks the environment's files, connects the hospital and asks the
  // gateway whether every component is SERVING; exits on failure.
  void Connect();
  // Registers (as the regulator) the hospital of pki/client, then through
  // it `watchers` practitioners licensed on chain and `devices` patients,
  // issues each device a `device` certificate, enrols it to its patient,
  // has every patient grant every practitioner VITALS for TREATMENT, and
  // connects every device. Ids are unique to this run. Exits on failure.
  void Setup(int devices, int watchers);

  const std::string& address() const { return address_; }
  const std::string& config_file() const { return config_file_; }
  const std::string& tag() const { return tag_; }
  std::vector<DeviceIdentity>& devices() { return devices_; }
  const std::vector<std::string>& patients() const { return patients_; }
  const std::vector<std::string>& practitioners() const { return practitioners_; }
  v1::VitalsService::Stub& hospital_vitals(size_t i) {
    return *hospital_vitals_[i % hospital_vitals_.size()];
  }

 private:
  std::string Pki(const std::string& name) const { return o_.env_dir + "/pki/" + name; }
  void RegisterHospital();
  void AddPractitioners(int n);
  void AddPatients(int n);
  void IssueAndEnrolDevices(int n);
  void GrantAll();
  void ConnectDevices();

  const Options& o_;
  std::string address_, config_file_, tag_, cert_dir_, hospital_id_;
  std::vector<std::shared_ptr<grpc::Channel>> hospital_;
  std::vector<std::unique_ptr<v1::VitalsService::Stub>> hospital_vitals_;
  std::vector<std::string> practitioners_, patients_;
  std::vector<DeviceIdentity> devices_;
};

// CPU seconds used so far by each process of the fleet of `config_file`
// (a medvault* program started with it), by role ("gateway", ...), and by
// this client ("client").
using CpuSeconds = std::map<std::string, double>;
CpuSeconds CpuSnapshot(const std::string& config_file);
// Threads of the fleet's medvault-gateway process (0 if not found).
int GatewayThreads(const std::string& config_file);
// Context switches (voluntary and not) of the gateway's threads so far.
uint64_t GatewaySwitches(const std::string& config_file);

}  // namespace medvault::bench

#endif  // MEDVAULT_BENCH_VITALS_FLEET_H_
