#include "daemon/gateway/vitals_hub.h"

#include <algorithm>

namespace medvault::gateway {

VitalsBatch::VitalsBatch(std::vector<v1::VitalSample> s) : samples(std::move(s)) {
  for (const v1::VitalSample& sample : samples) bytes += sample.ByteSizeLong();
}

bool VitalsWatcher::Woken() const { return recheck_ || closed_.has_value(); }

VitalsWatcher::Wake VitalsWatcher::Wait(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithDeadline(absl::Condition(this, &VitalsWatcher::Woken), deadline);
  Wake wake;
  wake.recheck = recheck_;
  recheck_ = false;
  wake.closed = closed_;
  return wake;
}

VitalsWatcher::Delivery VitalsWatcher::TakeQueued() {
  Delivery delivery;
  delivery.batches.assign(std::make_move_iterator(queue_.begin()),
                          std::make_move_iterator(queue_.end()));
  queue_.clear();
  delivery.dropped_samples = dropped_samples_;
  dropped_samples_ = 0;
  return delivery;
}

void VitalsWatcher::Push(const VitalsBatchPtr& batch) {
  Delivery delivery;
  {
    absl::MutexLock lock(&mu_);
    if (closed_.has_value()) return;
    queue_.push_back(batch);
    while (queue_.size() > max_queue_) {
      dropped_samples_ += queue_.front()->samples.size();
      queue_.pop_front();
    }
    if (delivering_) return;
    delivering_ = true;
    delivery = TakeQueued();
    ++calls_in_progress_;
  }
  CallDeliver(std::move(delivery));
}

void VitalsWatcher::CallDeliver(Delivery delivery) {
  deliver_(std::move(delivery));
  absl::MutexLock lock(&mu_);
  --calls_in_progress_;
}

void VitalsWatcher::Delivered() {
  Delivery delivery;
  {
    absl::MutexLock lock(&mu_);
    if (closed_.has_value() || (queue_.empty() && dropped_samples_ == 0)) {
      delivering_ = false;
      return;
    }
    delivery = TakeQueued();
    ++calls_in_progress_;
  }
  CallDeliver(std::move(delivery));
}

void VitalsWatcher::RequestRecheck() {
  absl::MutexLock lock(&mu_);
  recheck_ = true;
}

void VitalsWatcher::Close(absl::Status status) {
  absl::MutexLock lock(&mu_);
  if (!closed_.has_value()) closed_ = std::move(status);
  queue_.clear();
  // A DeliverFn already called (on another thread) may still be running.
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return calls_in_progress_ == 0; };
  mu_.Await(absl::Condition(&idle));
}

std::shared_ptr<VitalsWatcher> VitalsHub::AddWatcher(const std::string& device_id,
                                                     const std::string& patient_id,
                                                     VitalsWatcher::DeliverFn deliver) {
  auto watcher =
      std::make_shared<VitalsWatcher>(device_id, patient_id, max_queue_, std::move(deliver));
  absl::MutexLock lock(&mu_);
  if (closed_all_.has_value()) watcher->Close(*closed_all_);
  channels_[device_id].watchers.push_back(watcher);
  return watcher;
}

void VitalsHub::RemoveWatcher(const std::shared_ptr<VitalsWatcher>& watcher) {
  absl::MutexLock lock(&mu_);
  auto it = channels_.find(watcher->device_id());
  if (it == channels_.end()) return;
  auto& watchers = it->second.watchers;
  watchers.erase(std::remove(watchers.begin(), watchers.end(), watcher), watchers.end());
}

size_t VitalsHub::Publish(const std::string& device_id, VitalsBatchPtr batch) {
  std::vector<std::shared_ptr<VitalsWatcher>> watchers;
  {
    absl::MutexLock lock(&mu_);
    Channel& channel = channels_[device_id];
    const std::vector<v1::VitalSample>& all = batch->samples;
    auto fresh = std::find_if(all.begin(), all.end(), [&](const v1::VitalSample& s) {
      return s.sequence() > channel.published_through;
    });
    if (fresh == all.end()) return 0;
    channel.published_through = all.back().sequence();
    // Only a resend that overlaps what was published is copied (`all` is
    // not used after this).
    if (fresh != all.begin()) {
      batch = std::make_shared<const VitalsBatch>(std::vector<v1::VitalSample>(fresh, all.end()));
    }
    watchers = channel.watchers;
  }
  // Outside the hub's lock: handing over starts gRPC writes, and other
  // devices publish meanwhile.
  for (const auto& watcher : watchers) watcher->Push(batch);
  return batch->samples.size();
}

void VitalsHub::RecheckPatient(const std::string& patient_id) {
  absl::MutexLock lock(&mu_);
  for (auto& [device, channel] : channels_) {
    for (const auto& watcher : channel.watchers) {
      if (watcher->patient_id() == patient_id) watcher->RequestRecheck();
    }
  }
}

void VitalsHub::CloseDevice(const std::string& device_id, const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  auto it = channels_.find(device_id);
  if (it == channels_.end()) return;
  for (const auto& watcher : it->second.watchers) watcher->Close(status);
}

void VitalsHub::CloseAll(const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  closed_all_ = status;
  for (auto& [device, channel] : channels_) {
    for (const auto& watcher : channel.watchers) watcher->Close(status);
  }
}

size_t VitalsHub::watcher_count(const std::string& device_id) const {
  absl::MutexLock lock(&mu_);
  auto it = channels_.find(device_id);
  return it == channels_.end() ? 0 : it->second.watchers.size();
}

}  // namespace medvault::gateway
