// ChainAdmin: the signer's interactive transactions, each answered once it
// is mined (TransactionSender, transaction_sender.h):
//   - deploying the three contracts with the operator key;
//   - the regulator's LicenceRegistry.setLicence and PolicyRegistry.publish
//     with the regulator key (held by a development keyvault only).
//
// Every call is simulated first (eth_call from the signing key): a call the
// contract would refuse is FAILED_PRECONDITION with the contract's reason
// (registry_abi.h DescribeRevert), and costs no gas or nonce. A transaction
// that is mined but reverted (the state changed in between) is reported the
// same way, with its hash.
//
// The operator key must not be used here while the anchoring outbox runs
// (they would compete for nonces): the signer only deploys while no
// AuditAnchor is configured.
//
// Thread-safe. Everything passed in must outlive the ChainAdmin.
#ifndef MEDVAULT_DAEMON_SIGNER_CHAIN_ADMIN_H_
#define MEDVAULT_DAEMON_SIGNER_CHAIN_ADMIN_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/signer/chain_key.h"
#include "daemon/signer/json_rpc_client.h"
#include "daemon/signer/transaction_sender.h"

namespace medvault::signer {

// Creation code of each contract (init code without constructor arguments).
struct ContractCode {
  std::string audit_anchor;
  std::string licence_registry;
  std::string policy_registry;
};

struct Deployment {
  std::string audit_anchor;  // 20 bytes each
  std::string licence_registry;
  std::string policy_registry;
  std::string operator_address;  // the AuditAnchor's admin and first operator
  std::string regulator;         // owner of the two registries
  uint64_t first_block = 0;      // block of the first deployment
};

class ChainAdmin {
 public:
  ChainAdmin(ChainClient* chain, ChainKey* operator_key, ChainKey* regulator_key,
             const TransactionSenderOptions& options)
      : chain_(chain),
        operators_(chain, operator_key, options),
        regulators_(chain, regulator_key, options) {}

  // AuditAnchor(admin: operator key), addOperator(operator key),
  // LicenceRegistry(regulator), PolicyRegistry(regulator), in that order,
  // each confirmed before the next. `regulator` empty: the regulator key's
  // address. INVALID_ARGUMENT naming the field for empty code or a
  // regulator that is not 20 bytes. A failure half-way leaves the contracts
  // already deployed unused (the message says which were).
  absl::StatusOr<Deployment> Deploy(const ContractCode& code, absl::string_view regulator);

  // LicenceRegistry.setLicence at `registry`, from the regulator key.
  // INVALID_ARGUMENT naming the field for sizes and a status out of range.
  absl::StatusOr<MinedTransaction> SetLicence(absl::string_view registry,
                                              absl::string_view practitioner, uint8_t status,
                                              uint64_t valid_until,
                                              absl::string_view evidence_hash);

  // PolicyRegistry.publish at `registry`, from the regulator key.
  absl::StatusOr<MinedTransaction> PublishPolicy(absl::string_view registry, uint64_t version,
                                                 absl::string_view bundle_hash);

 private:
  // Simulates, sends and checks one call; `what` names it in messages
  // ("LicenceRegistry.setLicence"). A creation when `to` is empty.
  absl::StatusOr<MinedTransaction> Transact(TransactionSender& sender, absl::string_view what,
                                            absl::string_view to, absl::string_view data);

  ChainClient* const chain_;
  TransactionSender operators_;
  TransactionSender regulators_;
};

}  // namespace medvault::signer

#endif  // MEDVAULT_DAEMON_SIGNER_CHAIN_ADMIN_H_
