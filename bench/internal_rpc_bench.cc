// Cost of one internal call: a unary gRPC call over a Unix socket through the
// per-method allowlist guard, beside the same call without the guard and
// beside the floor, a bare 64-byte request/response over a Unix socket pair,
// all measured in the same run.
//
//   build/bench/bench/internal_rpc_bench
#include <benchmark/benchmark.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/server_posix.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

#include "daemon/common/internal_server.h"
#include "daemon/common/logging.h"
#include "daemon/common/method_guard.h"
#include "medvault/internal/v1/keyvault.grpc.pb.h"

namespace medvault {
namespace {

class FixedKeyVault : public Guardable<internal::v1::KeyVault::Service> {
 public:
  grpc::Status GetTokenInfo(grpc::ServerContext*, const internal::v1::GetTokenInfoRequest*,
                            internal::v1::GetTokenInfoResponse* response) override {
    response->set_token_label("bench-token");
    response->set_logged_in(true);
    return grpc::Status::OK;
  }
};

// A socket path in a fresh directory, removed with the object.
class TempSocket {
 public:
  explicit TempSocket(const char* name) {
    char tmpl[] = "/tmp/medvault-bench-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) std::abort();
    dir_ = tmpl;
    path_ = dir_ + "/" + name;
  }
  ~TempSocket() {
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string dir_;
  std::string path_;
};

void CallLoop(benchmark::State& state, const std::string& target) {
  auto stub = internal::v1::KeyVault::NewStub(
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  for (auto _ : state) {
    grpc::ClientContext context;
    internal::v1::GetTokenInfoResponse response;
    grpc::Status status = stub->GetTokenInfo(&context, {}, &response);
    if (!status.ok()) {
      state.SkipWithError(status.error_message().c_str());
      break;
    }
  }
}

// The floor: one 64-byte message each way over a connected Unix socket pair.
void BM_UnixSocketRoundTrip(benchmark::State& state) {
  int fds[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, fds);
  std::thread echo([fd = fds[1]] {
    char buf[64];
    while (read(fd, buf, sizeof(buf)) == sizeof(buf)) {
      if (write(fd, buf, sizeof(buf)) != sizeof(buf)) break;
    }
  });
  char buf[64] = {1};
  for (auto _ : state) {
    if (write(fds[0], buf, sizeof(buf)) != sizeof(buf) ||
        read(fds[0], buf, sizeof(buf)) != sizeof(buf)) {
      state.SkipWithError("socket pair failed");
      break;
    }
  }
  close(fds[0]);
  echo.join();
  close(fds[1]);
}
BENCHMARK(BM_UnixSocketRoundTrip)->UseRealTime();

// A unary gRPC call over a Unix socket with no allowlist guard.
void BM_UnguardedRpc(benchmark::State& state) {
  TempSocket socket_path("plain.sock");
  const std::string& path = socket_path.path();
  FixedKeyVault service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + path, grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  CallLoop(state, "unix:" + path);
  server->Shutdown();
}
BENCHMARK(BM_UnguardedRpc)->UseRealTime();

// The same call through InternalServer: SO_PEERCRED at accept, the guard on
// every call.
void BM_GuardedRpc(benchmark::State& state) {
  TempSocket socket_path("keyvault.sock");
  const std::string& path = socket_path.path();
  MethodAllowlist allowlist;
  allowlist.Allow("GetTokenInfo", geteuid());
  FixedKeyVault service;
  auto server = InternalServer::Bind(path, "", std::move(allowlist));
  if (!server.ok()) {
    state.SkipWithError(std::string(server.status().message()).c_str());
    return;
  }
  (*server)->AddService(
      &service,
      *internal::v1::GetTokenInfoRequest::descriptor()->file()->FindServiceByName("KeyVault"));
  if (!(*server)->Start().ok()) {
    state.SkipWithError("start failed");
    return;
  }
  CallLoop(state, "unix:" + path);
  (*server)->Shutdown();
}
BENCHMARK(BM_GuardedRpc)->UseRealTime();

// The ceiling for any per-call keyvault operation on this machine: the same
// empty guarded call from 1, 8 and 32 client threads at once, each thread
// with its own channel (its own connection), against one server that lives
// for the whole run.
void BM_GuardedRpcConcurrent(benchmark::State& state) {
  static TempSocket* socket_path = new TempSocket("concurrent.sock");
  static InternalServer* server = [] {
    MethodAllowlist allowlist;
    allowlist.Allow("GetTokenInfo", geteuid());
    static FixedKeyVault service;
    auto bound = InternalServer::Bind(socket_path->path(), "", std::move(allowlist));
    if (!bound.ok()) std::abort();
    (*bound)->AddService(
        &service,
        *internal::v1::GetTokenInfoRequest::descriptor()->file()->FindServiceByName("KeyVault"));
    if (!(*bound)->Start().ok()) std::abort();
    return bound->release();
  }();
  (void)server;
  CallLoop(state, "unix:" + socket_path->path());
  state.counters["calls"] = benchmark::Counter(static_cast<double>(state.iterations()),
                                               benchmark::Counter::kIsRate);
}
BENCHMARK(BM_GuardedRpcConcurrent)->UseRealTime()->Threads(1)->Threads(8)->Threads(32);

// The guard's own work per call: peer look-up and allowlist check.
void BM_GuardDecision(benchmark::State& state) {
  PeerRegistry peers;
  for (int fd = 3; fd < 200; ++fd)
    peers.Record(fd, {1000 + fd, 1000 + static_cast<uid_t>(fd), 1000});
  MethodAllowlist allowlist;
  allowlist.Allow("GetTokenInfo", 1100);
  for (auto _ : state) {
    auto creds = peers.Lookup("fd:100");
    benchmark::DoNotOptimize(creds.has_value() && allowlist.IsAllowed("GetTokenInfo", creds->uid));
  }
}
BENCHMARK(BM_GuardDecision);

}  // namespace
}  // namespace medvault

int main(int argc, char** argv) {
  medvault::log::Init("bench", medvault::log::Level::kWarning, medvault::log::Format::kLogfmt);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
