// The medvault.internal.v1.KeyVault service over a logged-in PKCS#11 token.
#ifndef MEDVAULT_KEYVAULT_KEYVAULT_SERVICE_H_
#define MEDVAULT_KEYVAULT_KEYVAULT_SERVICE_H_

#include "daemon/common/method_guard.h"
#include "keyvault/pkcs11_token.h"
#include "medvault/internal/v1/keyvault.grpc.pb.h"

namespace medvault::keyvault {

class KeyVaultService : public Guardable<internal::v1::KeyVault::Service> {
 public:
  // `module` must outlive the service.
  explicit KeyVaultService(Pkcs11Token* token) : token_(token) {}

  grpc::Status GetTokenInfo(grpc::ServerContext* context,
                            const internal::v1::GetTokenInfoRequest* request,
                            internal::v1::GetTokenInfoResponse* response) override;

 private:
  Pkcs11Token* token_;
};

}  // namespace medvault::keyvault

#endif  // MEDVAULT_KEYVAULT_KEYVAULT_SERVICE_H_
