// A client of the gateway's public API as an organisation runs it: a gRPC
// channel over mutual TLS with one of the certificates of the fleet's CA,
// and the metadata naming the person who acts.
#ifndef MEDVAULT_TESTS_INTEGRATION_GATEWAY_CLIENT_H_
#define MEDVAULT_TESTS_INTEGRATION_GATEWAY_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/time/time.h"

namespace medvault::integration {

// A fresh channel (own subchannel pool: no connection shared with another
// channel, so each one makes its own TLS handshake) to `address`, trusting
// `ca_file` and presenting `<prefix>.pem` / `<prefix>.key`.
std::shared_ptr<grpc::Channel> GatewayChannel(const std::string& address,
                                              const std::string& ca_file,
                                              const std::string& cert_prefix);

// A client context with a deadline, acting as the practitioner or patient
// named (empty: the organisation itself).
enum class Acting { kOrganization, kPractitioner, kPatient };
std::unique_ptr<grpc::ClientContext> ActingAs(Acting who, const std::string& id = "",
                                              absl::Duration deadline = absl::Seconds(20));

// "CODE: message", with the code's name (e.g. "PERMISSION_DENIED: ...").
std::string StatusText(const grpc::Status& status);

}  // namespace medvault::integration

#endif  // MEDVAULT_TESTS_INTEGRATION_GATEWAY_CLIENT_H_
