// VitalsHub: fan-out of a device's batches to its watchers, each watcher's
// bounded queue (oldest dropped, the loss reported), a publisher that never
// waits for a watcher, and watchers removed, rechecked and closed.
#include "daemon/gateway/vitals_hub.h"

#include <atomic>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace medvault::gateway {
namespace {

std::vector<v1::VitalSample> Samples(uint64_t from, uint64_t to) {
  std::vector<v1::VitalSample> samples;
  for (uint64_t seq = from; seq <= to; ++seq) {
    v1::VitalSample s;
    s.set_sequence(seq);
    s.set_channel("ECG lead II");
    s.set_value(0.001 * static_cast<double>(seq));
    s.set_unit("mV");
    samples.push_back(s);
  }
  return samples;
}

std::vector<uint64_t> Sequences(const VitalsWatcher::Wake& wake) {
  std::vector<uint64_t> out;
  for (const auto& batch : wake.batches) {
    for (const auto& s : batch->samples) out.push_back(s.sequence());
  }
  return out;
}

const absl::Time kNoWait = absl::InfinitePast();

// Every watcher of a device gets every batch, in order; watchers of another
// device get nothing.
TEST(VitalsHubTest, FansOutToEveryWatcherOfTheDevice) {
  VitalsHub hub(16);
  auto a = hub.AddWatcher("ecg-1", "patient-7");
  auto b = hub.AddWatcher("ecg-1", "patient-7");
  auto other = hub.AddWatcher("ecg-2", "patient-8");
  EXPECT_EQ(hub.Publish("ecg-1", Samples(1, 3)), 3u);
  EXPECT_EQ(hub.Publish("ecg-1", Samples(4, 5)), 2u);
  for (const auto& w : {a, b}) {
    VitalsWatcher::Wake wake = w->Wait(kNoWait);
    EXPECT_THAT(Sequences(wake), ::testing::ElementsAre(1, 2, 3, 4, 5));
    EXPECT_EQ(wake.batches.size(), 2u);
    EXPECT_EQ(wake.dropped_samples, 0u);
  }
  EXPECT_TRUE(Sequences(other->Wait(kNoWait)).empty());
  EXPECT_EQ(hub.watcher_count("ecg-1"), 2u);
}

// A resend after a reconnect (sequence numbers already published) is not
// shown twice; the new part of a batch is.
TEST(VitalsHubTest, LeavesOutWhatWasAlreadyPublished) {
  VitalsHub hub(16);
  auto w = hub.AddWatcher("ecg-1", "patient-7");
  hub.Publish("ecg-1", Samples(1, 10));
  EXPECT_EQ(hub.Publish("ecg-1", Samples(5, 10)), 0u);
  EXPECT_EQ(hub.Publish("ecg-1", Samples(8, 12)), 2u);
  std::vector<uint64_t> expected;
  for (uint64_t i = 1; i <= 12; ++i) expected.push_back(i);
  EXPECT_EQ(Sequences(w->Wait(kNoWait)), expected);
}

// A full queue loses its oldest batches, and the watcher is told how many
// samples it lost; a watcher that keeps up loses nothing.
TEST(VitalsHubTest, BoundedQueueDropsOldestAndReportsTheGap) {
  VitalsHub hub(3);
  auto slow = hub.AddWatcher("ecg-1", "patient-7");
  auto fast = hub.AddWatcher("ecg-1", "patient-7");
  std::vector<uint64_t> fast_seen;
  for (uint64_t i = 0; i < 10; ++i) {
    hub.Publish("ecg-1", Samples(i * 4 + 1, i * 4 + 4));
    for (uint64_t s : Sequences(fast->Wait(kNoWait))) fast_seen.push_back(s);
  }
  EXPECT_EQ(fast_seen.size(), 40u);
  VitalsWatcher::Wake wake = slow->Wait(kNoWait);
  ASSERT_EQ(wake.batches.size(), 3u);
  EXPECT_EQ(wake.batches.front()->samples.front().sequence(), 29u);
  EXPECT_EQ(wake.dropped_samples, 28u);
  // Reported once.
  hub.Publish("ecg-1", Samples(41, 41));
  EXPECT_EQ(slow->Wait(kNoWait).dropped_samples, 0u);
}

// A watcher that never reads does not hold up the publisher: thousands of
// batches are published at once while it sleeps, and another watcher
// reading concurrently gets every one of them.
TEST(VitalsHubTest, PublisherNeverBlocksOnAStuckWatcher) {
  VitalsHub hub(8);
  auto stuck = hub.AddWatcher("ecg-1", "patient-7");
  auto reader = hub.AddWatcher("ecg-1", "patient-7");
  constexpr uint64_t kBatches = 20000;
  std::atomic<bool> done{false};
  uint64_t read = 0, dropped = 0;
  std::thread consumer([&] {
    while (!done || read + dropped < kBatches) {
      VitalsWatcher::Wake wake = reader->Wait(absl::Now() + absl::Milliseconds(50));
      read += Sequences(wake).size();
      dropped += wake.dropped_samples;
    }
  });
  const absl::Time start = absl::Now();
  for (uint64_t i = 1; i <= kBatches; ++i) hub.Publish("ecg-1", Samples(i, i));
  const absl::Duration took = absl::Now() - start;
  done = true;
  consumer.join();
  EXPECT_LT(took, absl::Seconds(5));
  EXPECT_EQ(read + dropped, kBatches);
  VitalsWatcher::Wake wake = stuck->Wait(kNoWait);
  EXPECT_EQ(wake.batches.size(), 8u);
  EXPECT_EQ(wake.dropped_samples, kBatches - 8);
}

// A removed watcher receives nothing more; the others still do.
TEST(VitalsHubTest, RemovedWatcherReceivesNothing) {
  VitalsHub hub(16);
  auto a = hub.AddWatcher("ecg-1", "patient-7");
  auto b = hub.AddWatcher("ecg-1", "patient-7");
  hub.RemoveWatcher(a);
  hub.RemoveWatcher(a);  // harmless twice
  hub.Publish("ecg-1", Samples(1, 2));
  EXPECT_TRUE(a->Wait(kNoWait).batches.empty());
  EXPECT_EQ(Sequences(b->Wait(kNoWait)).size(), 2u);
  EXPECT_EQ(hub.watcher_count("ecg-1"), 1u);
}

// A revoked grant wakes every watcher of the patient's devices at once
// (and no one else's); a waiting watcher returns well before its deadline.
TEST(VitalsHubTest, RecheckWakesThePatientsWatchers) {
  VitalsHub hub(16);
  auto mine = hub.AddWatcher("ecg-1", "patient-7");
  auto theirs = hub.AddWatcher("ecg-2", "patient-8");
  absl::Duration waited;
  std::thread waiter([&] {
    const absl::Time start = absl::Now();
    VitalsWatcher::Wake wake = mine->Wait(absl::Now() + absl::Seconds(10));
    waited = absl::Now() - start;
    EXPECT_TRUE(wake.recheck);
  });
  absl::SleepFor(absl::Milliseconds(50));
  hub.RecheckPatient("patient-7");
  waiter.join();
  EXPECT_LT(waited, absl::Seconds(5));
  EXPECT_FALSE(theirs->Wait(kNoWait).recheck);
  EXPECT_FALSE(mine->Wait(kNoWait).recheck);  // cleared once seen
}

// A revoked device closes its watchers with the status given; what was
// queued before is still handed over, nothing after.
TEST(VitalsHubTest, ClosedDeviceEndsItsWatchers) {
  VitalsHub hub(16);
  auto w = hub.AddWatcher("ecg-1", "patient-7");
  hub.Publish("ecg-1", Samples(1, 1));
  hub.CloseDevice("ecg-1", absl::FailedPreconditionError("revoked"));
  hub.Publish("ecg-1", Samples(2, 2));
  VitalsWatcher::Wake wake = w->Wait(absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(wake.closed.has_value());
  EXPECT_EQ(wake.closed->code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Sequences(wake), ::testing::ElementsAre(1));
}

// Stopping the gateway ends every watch, and any watch started after.
TEST(VitalsHubTest, CloseAllEndsEveryWatch) {
  VitalsHub hub(16);
  auto a = hub.AddWatcher("ecg-1", "patient-7");
  auto b = hub.AddWatcher("ecg-2", "patient-8");
  hub.CloseAll(absl::UnavailableError("stopping"));
  auto late = hub.AddWatcher("ecg-3", "patient-9");
  for (const auto& w : {a, b, late}) {
    VitalsWatcher::Wake wake = w->Wait(absl::Now() + absl::Seconds(10));
    ASSERT_TRUE(wake.closed.has_value());
    EXPECT_EQ(wake.closed->code(), absl::StatusCode::kUnavailable);
  }
}

// Waiting with nothing to hand over ends at the deadline.
TEST(VitalsHubTest, WaitEndsAtTheDeadline) {
  VitalsHub hub(16);
  auto w = hub.AddWatcher("ecg-1", "patient-7");
  const absl::Time start = absl::Now();
  VitalsWatcher::Wake wake = w->Wait(start + absl::Milliseconds(100));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(90));
  EXPECT_TRUE(wake.batches.empty());
  EXPECT_FALSE(wake.recheck);
  EXPECT_FALSE(wake.closed.has_value());
}

}  // namespace
}  // namespace medvault::gateway
