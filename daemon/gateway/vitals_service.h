// medvault.v1.VitalsService: devices enrolled to patients publish samples
// (Publish), practitioners watch them live (Watch), and every sample is
// stored in encrypted segments that read like any VITALS record.
//
// EnrollDevice and RevokeDevice are ordinary synchronous RPCs. Publish and
// Watch use gRPC's callback API, so that a sample goes from the device's
// read to each watcher's write on the thread that read it: no thread per
// message, and no thread hop. Each stream has one worker thread of its own
// for the blocking steps (deciding, storing segments, rechecking access).
//
// The RPCs are split over vitals_service.cc (enrolment, the table of open
// Publish streams), vitals_publish.cc (Publish) and vitals_watch.cc
// (Watch). Live fan-out is the VitalsHub's (vitals_hub.h), segments are
// vitals_segments.h's, rows vitals_store.h's.
//
// Thread safety: the table of open Publish streams is guarded by mu_; each
// stream guards its own state. Lock order: mu_, then a stream's lock.
#ifndef MEDVAULT_DAEMON_GATEWAY_VITALS_SERVICE_H_
#define MEDVAULT_DAEMON_GATEWAY_VITALS_SERVICE_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "daemon/gateway/core.h"
#include "daemon/gateway/vitals_hub.h"
#include "medvault/v1/vitals.grpc.pb.h"

namespace medvault::gateway {

class VitalsService final
    : public v1::VitalsService::WithCallbackMethod_Publish<
          v1::VitalsService::WithCallbackMethod_Watch<v1::VitalsService::Service>> {
 public:
  // `hub` outlives the service.
  VitalsService(GatewayCore& core, VitalsHub& hub) : core_(core), hub_(hub) {}

  grpc::Status EnrollDevice(grpc::ServerContext* context, const v1::EnrollDeviceRequest* request,
                            v1::Device* response) override;
  grpc::Status RevokeDevice(grpc::ServerContext* context, const v1::RevokeDeviceRequest* request,
                            v1::Device* response) override;
  // In vitals_publish.cc.
  grpc::ServerBidiReactor<v1::PublishRequest, v1::PublishResponse>* Publish(
      grpc::CallbackServerContext* context) override;
  // In vitals_watch.cc.
  grpc::ServerWriteReactor<v1::WatchResponse>* Watch(grpc::CallbackServerContext* context,
                                                     const v1::WatchRequest* request) override;

  // The gateway is stopping: ends every open Publish stream UNAVAILABLE
  // (each stores what it received first) and refuses new ones, so that
  // shutdown does not wait for devices to hang up.
  void StopPublishing() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  class PublishStream;
  class WatchSession;

  absl::Status DoEnroll(const Caller& caller, const v1::EnrollDeviceRequest& request,
                        v1::Device& response);
  absl::Status DoRevoke(const Caller& caller, const v1::RevokeDeviceRequest& request,
                        v1::Device& response);

  // Makes `stream` the device's one Publish stream: an open one is ended
  // (ABORTED), and this waits (up to 30 s, UNAVAILABLE after) until it has
  // stored what it received, so that the new stream resumes after it.
  absl::Status TakePublishSlot(const std::string& device_id, PublishStream* stream)
      ABSL_LOCKS_EXCLUDED(mu_);
  // `stream` stored everything: another stream of the device may start.
  void ReleasePublishSlot(const std::string& device_id, PublishStream* stream)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Ends the device's open Publish stream, if any, with `status` once it
  // has stored what it received.
  void EndPublishing(const std::string& device_id, const absl::Status& status)
      ABSL_LOCKS_EXCLUDED(mu_);

  GatewayCore& core_;
  VitalsHub& hub_;

  absl::Mutex mu_;
  // The open Publish stream of each device (each removes itself, under
  // mu_, before it ends, so a pointer here is always to a live stream).
  absl::flat_hash_map<std::string, PublishStream*> publishing_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_VITALS_SERVICE_H_
