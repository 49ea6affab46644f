#include "tests/integration/gateway_client.h"

#include <fstream>
#include <sstream>

namespace medvault::integration {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::shared_ptr<grpc::Channel> GatewayChannel(const std::string& address,
                                              const std::string& ca_file,
                                              const std::string& cert_prefix) {
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = ReadFile(ca_file);
  tls.pem_cert_chain = ReadFile(cert_prefix + ".pem");
  tls.pem_private_key = ReadFile(cert_prefix + ".key");
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, grpc::SslCredentials(tls), args);
}

std::unique_ptr<grpc::ClientContext> ActingAs(Acting who, const std::string& id,
                                              absl::Duration deadline) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  if (who == Acting::kPractitioner) context->AddMetadata("medvault-practitioner", id);
  if (who == Acting::kPatient) context->AddMetadata("medvault-patient", id);
  return context;
}

std::string StatusText(const grpc::Status& status) {
  // grpc::StatusCode's names, by value.
  static const char* const kNames[] = {"OK",
                                       "CANCELLED",
                                       "UNKNOWN",
                                       "INVALID_ARGUMENT",
                                       "DEADLINE_EXCEEDED",
                                       "NOT_FOUND",
                                       "ALREADY_EXISTS",
                                       "PERMISSION_DENIED",
                                       "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION",
                                       "ABORTED",
                                       "OUT_OF_RANGE",
                                       "UNIMPLEMENTED",
                                       "INTERNAL",
                                       "UNAVAILABLE",
                                       "DATA_LOSS",
                                       "UNAUTHENTICATED"};
  const int code = status.error_code();
  std::string name = code >= 0 && code <= 16 ? kNames[code] : std::to_string(code);
  return status.error_message().empty() ? name : name + ": " + status.error_message();
}

}  // namespace medvault::integration
