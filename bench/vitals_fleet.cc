#include "bench/vitals_fleet.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/rand.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "bench/fleet_processes.h"
#include "bench/load_report.h"
#include "daemon/common/config.h"
#include "daemon/common/files.h"
#include "daemon/gateway/client_identity.h"
#include "google/protobuf/util/time_util.h"
#include "medvault/config/v1/config.pb.h"
#include "medvault/v1/access.grpc.pb.h"
#include "medvault/v1/consent.grpc.pb.h"
#include "medvault/v1/registry.grpc.pb.h"
#include "medvault/v1/system.grpc.pb.h"
#include "tests/integration/gateway_client.h"

extern char** environ;

namespace medvault::bench {
namespace {

using ::google::protobuf::util::TimeUtil;
using integration::Acting;
using integration::ActingAs;
using integration::StatusText;

// anvil's first development account: every patient of the run is
// registered with its address and signs with its key (as the tests do).
constexpr char kPatientKey[] = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
constexpr char kPatientAddress[] = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
constexpr int kSetupThreads = 4;

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs `argv` (no shell), its stdout and stderr captured together.
CommandResult RunCommand(const std::vector<std::string>& argv) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return {-1, "pipe failed"};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  CommandResult result;
  char buffer[4096];
  ssize_t n;
  while ((n = read(fds[0], buffer, sizeof buffer)) > 0) result.output.append(buffer, n);
  close(fds[0]);
  if (spawned != 0) return {-1, "cannot run " + argv[0]};
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string ReadFileOrDie(const std::string& path) {
  absl::StatusOr<std::string> text = ReadWholeFile(AT_FDCWD, path);
  if (!text.ok()) Fail(std::string(text.status().message()));
  return *std::move(text);
}

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    Fail("RAND_bytes failed");
  }
  return absl::BytesToHexString(raw);
}

// Runs fn(i) for i in [0, n) on `threads` threads; progress every 2 s.
void ParallelFor(const std::string& what, int n, int threads, const std::function<void(int)>& fn) {
  std::atomic<int> next{0}, done{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (int i; (i = next.fetch_add(1)) < n;) {
        fn(i);
        done.fetch_add(1);
      }
    });
  }
  const Clock::time_point begin = Clock::now();
  while (done.load() < n) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (Clock::now() - begin > std::chrono::seconds(2) && done.load() < n) {
      static Clock::time_point last;
      if (Clock::now() - last >= std::chrono::seconds(2)) {
        last = Clock::now();
        Progress(what + ": " + std::to_string(done.load()) + "/" + std::to_string(n));
      }
    }
  }
  for (auto& t : pool) t.join();
}

void WaitReady(grpc::Channel& channel, const std::string& what) {
  const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(20);
  grpc_connectivity_state state = channel.GetState(/*try_to_connect=*/true);
  while (state != GRPC_CHANNEL_READY) {
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN) {
      Fail("cannot connect " + what + " to the gateway (is the fleet running?)");
    }
    if (!channel.WaitForStateChange(state, deadline)) {
      Fail("no connection for " + what + " within 20 s");
    }
    state = channel.GetState(true);
  }
}

}  // namespace

void Fail(const std::string& what) {
  std::fprintf(stderr, "vitals_load: %s\n", what.c_str());
  std::exit(1);
}

void Progress(const std::string& what) { std::fprintf(stderr, "vitals_load: %s\n", what.c_str()); }

VitalsFleet::VitalsFleet(const Options& options) : o_(options) {}

void VitalsFleet::Connect() {
  config_file_ = o_.env_dir + "/medvault.textproto";
  for (const char* file :
       {"ca.pem", "ca.key", "client.pem", "client.key", "regulator.pem", "regulator.key"}) {
    if (access(Pki(file).c_str(), R_OK) != 0) {
      Fail("cannot read " + Pki(file) + " (is " + o_.env_dir +
           " an environment made by scripts/run?)");
    }
  }
  for (const std::string& tool : {o_.ctl, o_.cast}) {
    if (access(tool.c_str(), X_OK) != 0) Fail("cannot run " + tool + " (see --ctl, --cast)");
  }
  address_ = o_.address;
  if (address_.empty()) {
    absl::StatusOr<config::v1::Config> config = LoadConfig(config_file_);
    if (!config.ok()) Fail(std::string(config.status().message()));
    address_ = config->gateway().listen_address();
    for (const std::string wildcard : {"0.0.0.0:", "[::]:"}) {
      if (address_.rfind(wildcard, 0) == 0) {
        address_ = "127.0.0.1:" + address_.substr(wildcard.size());
      }
    }
  }
  absl::StatusOr<gateway::ClientIdentity> identity =
      gateway::ParseClientIdentity(ReadFileOrDie(Pki("client.pem")));
  if (!identity.ok()) Fail(Pki("client.pem") + ": " + std::string(identity.status().message()));
  hospital_id_ = identity->organization_id;
  Progress("connecting to the gateway at " + address_);
  for (int i = 0; i < o_.hospital_connections; ++i) {
    hospital_.push_back(integration::GatewayChannel(address_, Pki("ca.pem"), Pki("client")));
    WaitReady(*hospital_.back(), "the hospital");
    hospital_vitals_.push_back(v1::VitalsService::NewStub(hospital_.back()));
  }
  auto system = v1::SystemService::NewStub(hospital_[0]);
  auto context = ActingAs(Acting::kOrganization, "", absl::Seconds(10));
  v1::GetSystemInfoResponse info;
  grpc::Status status = system->GetSystemInfo(context.get(), v1::GetSystemInfoRequest(), &info);
  if (!status.ok()) Fail("GetSystemInfo: " + StatusText(status));
  for (const auto& c : info.components()) {
    if (c.status() != v1::ComponentStatus::SERVING) {
      Fail("the gateway says " + c.name() + " is " + v1::ComponentStatus::Status_Name(c.status()) +
           ": " + c.detail());
    }
  }
  Progress("connected: " + info.caller_subject() + ", medvault " + info.version());
}

void VitalsFleet::Setup(int devices, int watchers) {
  tag_ = "vl" + std::to_string(std::time(nullptr) % 100000000) + RandomHex(2);
  cert_dir_ = o_.env_dir + "/vitals-load-pki";
  mkdir(cert_dir_.c_str(), 0700);
  const Clock::time_point begin = Clock::now();
  Progress("setup of run " + tag_ + ": " + std::to_string(devices) + " devices and patients, " +
           std::to_string(watchers) + " practitioners");
  RegisterHospital();
  AddPractitioners(watchers);
  AddPatients(devices);
  IssueAndEnrolDevices(devices);
  GrantAll();
  ConnectDevices();
  Progress("setup done in " +
           std::to_string(
               std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - begin).count()) +
           " s");
}

void VitalsFleet::RegisterHospital() {
  auto registry = v1::RegistryService::NewStub(
      integration::GatewayChannel(address_, Pki("ca.pem"), Pki("regulator")));
  v1::RegisterHospitalRequest request;
  request.set_organization_id(hospital_id_);
  request.set_display_name("Load test hospital " + hospital_id_);
  v1::Hospital hospital;
  auto context = ActingAs(Acting::kOrganization);
  grpc::Status status = registry->RegisterHospital(context.get(), request, &hospital);
  if (!status.ok() && status.error_code() != grpc::StatusCode::ALREADY_EXISTS) {
    Fail("RegisterHospital " + hospital_id_ + " (as the regulator): " + StatusText(status));
  }
}

void VitalsFleet::AddPractitioners(int n) {
  auto registry = v1::RegistryService::NewStub(hospital_[0]);
  for (int k = 0; k < n; ++k) {
    const std::string id = tag_ + "-dr" + std::to_string(k);
    v1::RegisterPractitionerRequest request;
    request.set_practitioner_id(id);
    request.set_licence_number("VL-" + tag_ + "-" + std::to_string(k));
    request.add_specialties("EMERGENCY_MEDICINE");
    v1::Practitioner out;
    auto context = ActingAs(Acting::kOrganization);
    grpc::Status s = registry->RegisterPractitioner(context.get(), request, &out);
    if (!s.ok()) Fail("RegisterPractitioner " + id + ": " + StatusText(s));
    const std::string key = "0x" + absl::BytesToHexString(out.licence_key());
    const std::string until = std::to_string(std::time(nullptr) + 7 * 86400);
    CommandResult set = RunCommand({o_.ctl, "-c", config_file_, "chain", "set-licence",
                                    "--practitioner", key, "--status", "active", "--valid-until",
                                    until, "--evidence", "0x" + std::string(64, 'e')});
    if (set.exit_code != 0) Fail("medvaultctl chain set-licence: " + set.output);
    // The signer's index shows it once the transaction is mined.
    Progress("licence of " + id + " set on chain; waiting for the signer's index");
    for (const Clock::time_point deadline = Clock::now() + std::chrono::seconds(60);;) {
      CommandResult shown =
          RunCommand({o_.ctl, "-c", config_file_, "chain", "licence", "--practitioner", key});
      if (shown.exit_code == 0 && shown.output.find(" active ") != std::string::npos) break;
      if (Clock::now() > deadline) Fail("licence of " + id + " never active: " + shown.output);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    practitioners_.push_back(id);
  }
}

void VitalsFleet::AddPatients(int n) {
  patients_.resize(n);
  ParallelFor("patients", n, kSetupThreads, [&](int i) {
    auto registry = v1::RegistryService::NewStub(hospital_[i % hospital_.size()]);
    v1::RegisterPatientRequest request;
    request.set_patient_id(tag_ + "-p" + std::to_string(i));
    request.set_address(kPatientAddress);
    v1::Patient patient;
    auto context = ActingAs(Acting::kOrganization);
    grpc::Status s = registry->RegisterPatient(context.get(), request, &patient);
    if (!s.ok()) Fail("RegisterPatient " + request.patient_id() + ": " + StatusText(s));
    patients_[i] = request.patient_id();
  });
}

void VitalsFleet::IssueAndEnrolDevices(int n) {
  devices_ = std::vector<DeviceIdentity>(n);
  // medvaultctl ca issue appends to the CA's issued.txt: one at a time.
  for (int i = 0; i < n; ++i) {
    devices_[i].device_id = tag_ + "-d" + std::to_string(i);
    CommandResult r = RunCommand({o_.ctl, "ca", "issue", "--dir", o_.env_dir + "/pki", "--org",
                                  devices_[i].device_id, "--role", "device", "--out",
                                  cert_dir_ + "/" + devices_[i].device_id});
    if (r.exit_code != 0) Fail("medvaultctl ca issue: " + r.output);
    if (i % 50 == 49)
      Progress("device certificates: " + std::to_string(i + 1) + "/" + std::to_string(n));
  }
  ParallelFor("enrolments", n, kSetupThreads, [&](int i) {
    v1::EnrollDeviceRequest request;
    request.set_device_id(devices_[i].device_id);
    request.set_patient_id(patients_[i]);
    v1::Device device;
    auto context = ActingAs(Acting::kOrganization);
    grpc::Status s = hospital_vitals(i).EnrollDevice(context.get(), request, &device);
    if (!s.ok()) Fail("EnrollDevice " + request.device_id() + ": " + StatusText(s));
  });
}

void VitalsFleet::GrantAll() {
  const int n = static_cast<int>(patients_.size() * practitioners_.size());
  std::atomic<uint64_t> nonce{std::random_device{}() * uint64_t{1000003}};
  ParallelFor("grants", n, kSetupThreads, [&](int job) {
    const std::string& patient = patients_[job / practitioners_.size()];
    const std::string& practitioner = practitioners_[job % practitioners_.size()];
    auto channel = hospital_[job % hospital_.size()];
    v1::PrepareConsentRequest prepare;
    v1::GrantAccessRequest* grant = prepare.mutable_grant_access();
    grant->set_patient_id(patient);
    grant->set_grantee_id(practitioner);
    grant->mutable_scope()->set_scope(v1::CATEGORIES);
    grant->mutable_scope()->add_categories(v1::VITALS);
    grant->add_purposes(v1::TREATMENT);
    *grant->mutable_not_after() = TimeUtil::SecondsToTimestamp(std::time(nullptr) + 86400);
    prepare.set_nonce(nonce.fetch_add(1));
    *prepare.mutable_expires_at() = TimeUtil::SecondsToTimestamp(std::time(nullptr) + 3600);
    v1::PrepareConsentResponse prepared;
    auto context = ActingAs(Acting::kPatient, patient);
    grpc::Status s =
        v1::ConsentService::NewStub(channel)->PrepareConsent(context.get(), prepare, &prepared);
    if (!s.ok()) Fail("PrepareConsent for " + patient + ": " + StatusText(s));
    CommandResult signed_data = RunCommand({o_.cast, "wallet", "sign", "--data", "--private-key",
                                            kPatientKey, prepared.typed_data_json()});
    const size_t at = signed_data.output.rfind("0x");
    if (signed_data.exit_code != 0 || at == std::string::npos) {
      Fail("cast wallet sign: " + signed_data.output);
    }
    std::string hex = signed_data.output.substr(at + 2);
    hex.erase(hex.find_last_not_of(" \r\n") + 1);
    v1::GrantAccessRequest request = prepare.grant_access();
    v1::PatientConsent* consent = request.mutable_consent();
    consent->mutable_signature()->set_nonce(prepare.nonce());
    *consent->mutable_signature()->mutable_expires_at() = prepare.expires_at();
    consent->mutable_signature()->set_signature(absl::HexStringToBytes(hex));
    v1::Grant granted;
    context = ActingAs(Acting::kPatient, patient);
    s = v1::AccessService::NewStub(channel)->GrantAccess(context.get(), request, &granted);
    if (!s.ok()) Fail("GrantAccess " + patient + " -> " + practitioner + ": " + StatusText(s));
  });
}

void VitalsFleet::ConnectDevices() {
  Progress("connecting " + std::to_string(devices_.size()) + " devices (one TLS connection each)");
  for (DeviceIdentity& d : devices_) {
    d.channel = integration::GatewayChannel(address_, Pki("ca.pem"), cert_dir_ + "/" + d.device_id);
    d.vitals = v1::VitalsService::NewStub(d.channel);
    d.generic = std::make_unique<grpc::GenericStub>(d.channel);
  }
  for (DeviceIdentity& d : devices_) WaitReady(*d.channel, "device " + d.device_id);
}

// --- /proc ------------------------------------------------------------------

CpuSeconds CpuSnapshot(const std::string& config_file) {
  CpuSeconds cpu;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  struct rusage self {};
  getrusage(RUSAGE_SELF, &self);
  cpu["client"] = self.ru_utime.tv_sec + self.ru_utime.tv_usec / 1e6 + self.ru_stime.tv_sec +
                  self.ru_stime.tv_usec / 1e6;
  for (const auto& [pid, role] : FleetProcesses(config_file)) {
    std::ifstream in("/proc/" + pid + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // After the command name in parentheses: state is field 3, utime and
    // stime fields 14 and 15.
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(stat.substr(close + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
      if (i == 14) utime = std::stod(field);
      if (i == 15) stime = std::stod(field);
    }
    cpu[role] += (utime + stime) / tick;
  }
  return cpu;
}

int GatewayThreads(const std::string& config_file) {
  for (const auto& [pid, role] : FleetProcesses(config_file)) {
    if (role != "gateway") continue;
    std::ifstream in("/proc/" + pid + "/status");
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("Threads:", 0) == 0) return std::atoi(line.c_str() + 8);
    }
  }
  return 0;
}

uint64_t GatewaySwitches(const std::string& config_file) {
  uint64_t switches = 0;
  for (const auto& [pid, role] : FleetProcesses(config_file)) {
    if (role != "gateway") continue;
    DIR* tasks = opendir(("/proc/" + pid + "/task").c_str());
    if (tasks == nullptr) continue;
    while (dirent* entry = readdir(tasks)) {
      if (entry->d_name[0] == '.') continue;
      std::ifstream in("/proc/" + pid + "/task/" + entry->d_name + "/status");
      for (std::string line; std::getline(in, line);) {
        if (line.rfind("voluntary_ctxt_switches:", 0) == 0 ||
            line.rfind("nonvoluntary_ctxt_switches:", 0) == 0) {
          switches += std::strtoull(line.c_str() + line.find(':') + 1, nullptr, 10);
        }
      }
    }
    closedir(tasks);
  }
  return switches;
}

}  // namespace medvault::bench
