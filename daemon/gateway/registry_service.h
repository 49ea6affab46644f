// medvault.v1.RegistryService: hospitals, insurers and research institutes,
// practitioners, patients.
#ifndef MEDVAULT_DAEMON_GATEWAY_REGISTRY_SERVICE_H_
#define MEDVAULT_DAEMON_GATEWAY_REGISTRY_SERVICE_H_

#include "daemon/gateway/core.h"
#include "medvault/v1/registry.grpc.pb.h"

namespace medvault::gateway {

class RegistryService final : public v1::RegistryService::Service {
 public:
  explicit RegistryService(GatewayCore& core) : core_(core) {}

  grpc::Status RegisterHospital(grpc::ServerContext* context,
                                const v1::RegisterHospitalRequest* request,
                                v1::Hospital* response) override;
  grpc::Status RegisterOrganization(grpc::ServerContext* context,
                                    const v1::RegisterOrganizationRequest* request,
                                    v1::Organization* response) override;
  grpc::Status RegisterPractitioner(grpc::ServerContext* context,
                                    const v1::RegisterPractitionerRequest* request,
                                    v1::Practitioner* response) override;
  grpc::Status RegisterPatient(grpc::ServerContext* context,
                               const v1::RegisterPatientRequest* request,
                               v1::Patient* response) override;
  grpc::Status GetPractitioner(grpc::ServerContext* context,
                               const v1::GetPractitionerRequest* request,
                               v1::Practitioner* response) override;

 private:
  absl::Status DoRegisterHospital(const Caller& caller, const v1::RegisterHospitalRequest& request,
                                  v1::Hospital& response);
  absl::Status DoRegisterOrganization(const Caller& caller,
                                      const v1::RegisterOrganizationRequest& request,
                                      v1::Organization& response);
  // The regulator's registration of any organisation: checks, asks policy
  // for `action`, inserts the row with its audit event; returns the time.
  absl::StatusOr<absl::Time> InsertOrganization(const Caller& caller, absl::string_view method,
                                                absl::string_view action, const std::string& id,
                                                const std::string& display_name,
                                                absl::string_view role);
  absl::Status DoRegisterPractitioner(const Caller& caller,
                                      const v1::RegisterPractitionerRequest& request,
                                      v1::Practitioner& response);
  absl::Status DoRegisterPatient(const Caller& caller, const v1::RegisterPatientRequest& request,
                                 v1::Patient& response);
  absl::Status DoGetPractitioner(const Caller& caller, const v1::GetPractitionerRequest& request,
                                 v1::Practitioner& response);

  GatewayCore& core_;
};

// Reads a patient's row and care organisations; NOT_FOUND naming `field`.
absl::StatusOr<v1::Patient> LoadPatient(sqlite3* db, const std::string& patient_id);

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_REGISTRY_SERVICE_H_
