// The medvault.internal.v1.KeyVault service over a logged-in PKCS#11 token.
#ifndef MEDVAULT_KEYVAULT_KEYVAULT_SERVICE_H_
#define MEDVAULT_KEYVAULT_KEYVAULT_SERVICE_H_

#include "daemon/common/method_guard.h"
#include "keyvault/pkcs11_module.h"
#include "medvault/internal/v1/keyvault.grpc.pb.h"

namespace medvault::keyvault {

class KeyVaultService : public Guardable<internal::v1::KeyVault::Service> {
 public:
  // `module` must outlive the service.
  explicit KeyVaultService(const Pkcs11Module* module) : module_(module) {}

  grpc::Status GetTokenInfo(grpc::ServerContext* context,
                            const internal::v1::GetTokenInfoRequest* request,
                            internal::v1::GetTokenInfoResponse* response) override;

 private:
  const Pkcs11Module* module_;
};

}  // namespace medvault::keyvault

#endif  // MEDVAULT_KEYVAULT_KEYVAULT_SERVICE_H_
