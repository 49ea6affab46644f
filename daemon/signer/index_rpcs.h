// The event-index RPCs of the Signer service (signer.proto, "The event
// index"), answered from the indexer's database: SignerService in main.cc
// hands each call here and converts the status at its edge. Kept apart from
// main.cc so the service class stays a list of one-line methods.
//
// Errors: FAILED_PRECONDITION when the contract the call is about is not
// configured (`indexer` null, or that address empty); INVALID_ARGUMENT
// naming the field for a bad limit (above 1000), cursor or 32-byte id;
// NOT_FOUND from GetLicence for a key without events. Nothing here waits
// for the chain.
//
// The cursor of ListLicenceEvents is the decimal id of the last event
// returned (EventIndex: ids follow chain order and are never reused). An
// event the caller has read may later be dropped by a reorganisation; what
// replaces it comes after the cursor. Each answer's IndexStatus is read
// before the events, so the events are at least as fresh as it says.
#ifndef MEDVAULT_DAEMON_SIGNER_INDEX_RPCS_H_
#define MEDVAULT_DAEMON_SIGNER_INDEX_RPCS_H_

#include "absl/status/status.h"
#include "daemon/signer/indexer.h"
#include "medvault/internal/v1/signer.pb.h"

namespace medvault::signer {

absl::Status GetIndexStatus(const Indexer* indexer, internal::v1::IndexStatus* response);

absl::Status ListLicenceEvents(const Indexer* indexer,
                               const internal::v1::ListLicenceEventsRequest& request,
                               internal::v1::ListLicenceEventsResponse* response);

absl::Status GetLicence(const Indexer* indexer, const internal::v1::GetLicenceRequest& request,
                        internal::v1::GetLicenceResponse* response);

absl::Status ListPolicyPublications(const Indexer* indexer,
                                    const internal::v1::ListPolicyPublicationsRequest& request,
                                    internal::v1::ListPolicyPublicationsResponse* response);

absl::Status ListAnchorEvents(const Indexer* indexer,
                              const internal::v1::ListAnchorEventsRequest& request,
                              internal::v1::ListAnchorEventsResponse* response);

}  // namespace medvault::signer

#endif  // MEDVAULT_DAEMON_SIGNER_INDEX_RPCS_H_
