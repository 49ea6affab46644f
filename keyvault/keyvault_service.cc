#include "keyvault/keyvault_service.h"

#include "daemon/common/grpc_status.h"

namespace medvault::keyvault {

grpc::Status KeyVaultService::GetTokenInfo(grpc::ServerContext*,
                                           const internal::v1::GetTokenInfoRequest*,
                                           internal::v1::GetTokenInfoResponse* response) {
  auto token = token_->Describe();
  if (!token.ok()) return ToGrpcStatus(token.status());
  response->set_library_description(token->library_description);
  response->set_library_version(token->library_version);
  response->set_token_label(token->label);
  response->set_manufacturer(token->manufacturer);
  response->set_model(token->model);
  response->set_serial_number(token->serial_number);
  response->set_slot_id(token->slot_id);
  response->set_logged_in(token->logged_in);
  return grpc::Status::OK;
}

}  // namespace medvault::keyvault
