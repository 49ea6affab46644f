// medvault.v1.VitalsService: devices enrolled to patients publish samples
// (Publish), practitioners watch them live (Watch), and every sample is
// stored in encrypted segments that read like any VITALS record.
//
// The RPCs are split over vitals_service.cc (enrolment, Publish) and
// vitals_watch.cc (Watch). Live fan-out is the VitalsHub's (vitals_hub.h),
// storage the SegmentWriter's (vitals_segments.h), rows vitals_store.h's.
//
// Thread safety: each RPC runs on its own gRPC thread; a Publish also runs
// a SegmentWriter thread for its stream. The table of open Publish streams
// is guarded by mu_; everything else is the hub's, the database's or the
// call's own.
#ifndef MEDVAULT_DAEMON_GATEWAY_VITALS_SERVICE_H_
#define MEDVAULT_DAEMON_GATEWAY_VITALS_SERVICE_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "daemon/gateway/core.h"
#include "daemon/gateway/vitals_hub.h"
#include "medvault/v1/vitals.grpc.pb.h"

namespace medvault::gateway {

class VitalsService final : public v1::VitalsService::Service {
 public:
  // `hub` outlives the service.
  VitalsService(GatewayCore& core, VitalsHub& hub) : core_(core), hub_(hub) {}

  grpc::Status EnrollDevice(grpc::ServerContext* context, const v1::EnrollDeviceRequest* request,
                            v1::Device* response) override;
  grpc::Status RevokeDevice(grpc::ServerContext* context, const v1::RevokeDeviceRequest* request,
                            v1::Device* response) override;
  grpc::Status Publish(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::PublishResponse, v1::PublishRequest>* stream) override;
  grpc::Status Watch(grpc::ServerContext* context, const v1::WatchRequest* request,
                     grpc::ServerWriter<v1::WatchResponse>* writer) override;

  // The gateway is stopping: cancels every open Publish stream (each
  // stores what it received before it ends), so that shutdown does not
  // wait for devices to hang up.
  void CancelPublishing() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // The open Publish stream of a device: at most one per device.
  struct PublishSlot {
    grpc::ServerContext* context;
    // Set by RevokeDevice: the stream ends with PERMISSION_DENIED.
    std::atomic<bool> revoked{false};
    std::atomic<int64_t> revoked_at_ms{0};
  };

  absl::Status DoEnroll(const Caller& caller, const v1::EnrollDeviceRequest& request,
                        v1::Device& response);
  absl::Status DoRevoke(const Caller& caller, const v1::RevokeDeviceRequest& request,
                        v1::Device& response);
  absl::Status DoPublish(grpc::ServerContext& context, const Caller& caller,
                         grpc::ServerReaderWriter<v1::PublishResponse, v1::PublishRequest>& stream);
  // In vitals_watch.cc.
  absl::Status DoWatch(grpc::ServerContext& context, const Caller& caller,
                       const v1::WatchRequest& request,
                       grpc::ServerWriter<v1::WatchResponse>& writer);

  // Makes `context` the device's one Publish stream: an open one is
  // cancelled, and this waits (up to 30 s, UNAVAILABLE after) until it has
  // stored what it received, so that the new stream resumes after it.
  absl::StatusOr<std::shared_ptr<PublishSlot>> TakePublishSlot(const std::string& device_id,
                                                               grpc::ServerContext* context)
      ABSL_LOCKS_EXCLUDED(mu_);
  void ReleasePublishSlot(const std::string& device_id, const std::shared_ptr<PublishSlot>& slot)
      ABSL_LOCKS_EXCLUDED(mu_);

  GatewayCore& core_;
  VitalsHub& hub_;

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<PublishSlot>> publishing_ ABSL_GUARDED_BY(mu_);
};

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_VITALS_SERVICE_H_
