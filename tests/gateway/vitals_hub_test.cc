// VitalsHub: fan-out of a device's batches to its watchers (one shared batch,
// handed over on the publisher's thread), one delivery at a time with what
// queued meanwhile handed over together, each watcher's bounded queue (oldest
// dropped, the loss reported), a publisher that never waits for a watcher,
// and watchers removed, rechecked and closed.
#include "daemon/gateway/vitals_hub.h"

#include <atomic>
#include <deque>
#include <optional>
#include <thread>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace medvault::gateway {
namespace {

using Delivery = VitalsWatcher::Delivery;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

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

VitalsBatchPtr Batch(uint64_t from, uint64_t to) {
  return std::make_shared<const VitalsBatch>(Samples(from, to));
}

std::vector<uint64_t> Range(uint64_t from, uint64_t to) {
  std::vector<uint64_t> out;
  for (uint64_t seq = from; seq <= to; ++seq) out.push_back(seq);
  return out;
}

std::vector<uint64_t> Sequences(const VitalsBatch& batch) {
  std::vector<uint64_t> out;
  for (const auto& s : batch.samples) out.push_back(s.sequence());
  return out;
}

std::vector<uint64_t> Sequences(const Delivery& delivery) {
  std::vector<uint64_t> out;
  for (const auto& batch : delivery.batches) {
    for (uint64_t seq : Sequences(*batch)) out.push_back(seq);
  }
  return out;
}

// What a watcher was handed, in order. The publisher's thread hands over,
// so it is guarded; a watch session's DeliverFn would start a write here.
class Inbox {
 public:
  VitalsWatcher::DeliverFn Fn() {
    return [this](Delivery delivery) {
      absl::MutexLock lock(&mu_);
      deliveries_.push_back(std::move(delivery));
    };
  }

  // Everything handed over since the previous Take.
  std::vector<Delivery> Take() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    std::vector<Delivery> out(std::make_move_iterator(deliveries_.begin()),
                              std::make_move_iterator(deliveries_.end()));
    deliveries_.clear();
    return out;
  }

  // The oldest delivery not yet taken, waiting up to `timeout` for one.
  std::optional<Delivery> Pop(absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(
                             +[](std::deque<Delivery>* d) { return !d->empty(); }, &deliveries_),
                         timeout);
    if (deliveries_.empty()) return std::nullopt;
    Delivery delivery = std::move(deliveries_.front());
    deliveries_.pop_front();
    return delivery;
  }

 private:
  absl::Mutex mu_;
  std::deque<Delivery> deliveries_ ABSL_GUARDED_BY(mu_);
};

const absl::Time kNoWait = absl::InfinitePast();

// Every watcher of a device is handed every batch, in order, on the
// publisher's thread; the same batch is shared by all of them (not copied).
// Watchers of another device get nothing.
TEST(VitalsHubTest, FansOutToEveryWatcherOfTheDevice) {
  Inbox a_in, b_in, other_in;
  VitalsHub hub(16);
  auto a = hub.AddWatcher("ecg-1", "patient-7", a_in.Fn());
  auto b = hub.AddWatcher("ecg-1", "patient-7", b_in.Fn());
  auto other = hub.AddWatcher("ecg-2", "patient-8", other_in.Fn());

  const VitalsBatchPtr first = Batch(1, 3);
  EXPECT_EQ(hub.Publish("ecg-1", first), 3u);
  for (auto [w, in] : {std::pair{a, &a_in}, std::pair{b, &b_in}}) {
    std::vector<Delivery> got = in->Take();
    ASSERT_THAT(got, SizeIs(1));
    ASSERT_THAT(got[0].batches, SizeIs(1));
    EXPECT_EQ(got[0].batches[0], first);  // the very same batch
    EXPECT_EQ(got[0].dropped_samples, 0u);
    w->Delivered();
  }

  const VitalsBatchPtr second = Batch(4, 5);
  EXPECT_EQ(hub.Publish("ecg-1", second), 2u);
  std::vector<Delivery> got_a = a_in.Take();
  std::vector<Delivery> got_b = b_in.Take();
  ASSERT_THAT(got_a, SizeIs(1));
  ASSERT_THAT(got_b, SizeIs(1));
  ASSERT_THAT(got_a[0].batches, SizeIs(1));
  ASSERT_THAT(got_b[0].batches, SizeIs(1));
  EXPECT_EQ(got_a[0].batches[0], second);
  EXPECT_EQ(got_a[0].batches[0].get(), got_b[0].batches[0].get());
  EXPECT_THAT(Sequences(got_a[0]), ElementsAre(4, 5));

  EXPECT_THAT(other_in.Take(), IsEmpty());
  EXPECT_EQ(hub.watcher_count("ecg-1"), 2u);
  EXPECT_EQ(hub.watcher_count("ecg-2"), 1u);
}

// A resend after a reconnect (sequence numbers already published) is not
// shown twice: a full overlap publishes and hands over nothing; a partial
// overlap hands over a copy with only the new samples, the device's batch
// left as it was.
TEST(VitalsHubTest, LeavesOutWhatWasAlreadyPublished) {
  Inbox in;
  VitalsHub hub(16);
  auto w = hub.AddWatcher("ecg-1", "patient-7", in.Fn());
  EXPECT_EQ(hub.Publish("ecg-1", Batch(1, 10)), 10u);
  std::vector<Delivery> got = in.Take();
  ASSERT_THAT(got, SizeIs(1));
  EXPECT_EQ(Sequences(got[0]), Range(1, 10));
  w->Delivered();

  EXPECT_EQ(hub.Publish("ecg-1", Batch(5, 10)), 0u);
  EXPECT_EQ(hub.Publish("ecg-1", std::make_shared<const VitalsBatch>(Samples(1, 0))), 0u);
  EXPECT_THAT(in.Take(), IsEmpty());

  const VitalsBatchPtr overlap = Batch(8, 12);
  EXPECT_EQ(hub.Publish("ecg-1", overlap), 2u);
  got = in.Take();
  ASSERT_THAT(got, SizeIs(1));
  ASSERT_THAT(got[0].batches, SizeIs(1));
  const VitalsBatchPtr& copy = got[0].batches[0];
  EXPECT_NE(copy, overlap);
  EXPECT_THAT(Sequences(*copy), ElementsAre(11, 12));
  EXPECT_EQ(copy->bytes, VitalsBatch(Samples(11, 12)).bytes);
  EXPECT_EQ(Sequences(*overlap), Range(8, 12));  // the device's batch is untouched
  EXPECT_EQ(got[0].dropped_samples, 0u);
}

// A watcher whose delivery is still being written queues at most max_queue
// batches, loses the oldest beyond that, and is told with its next delivery
// how many samples it lost (once). A watcher that keeps up loses nothing.
TEST(VitalsHubTest, BoundedQueueDropsOldestAndReportsTheGap) {
  Inbox slow_in, fast_in;
  VitalsHub hub(8);
  auto slow = hub.AddWatcher("ecg-1", "patient-7", slow_in.Fn());
  auto fast = hub.AddWatcher("ecg-1", "patient-7", fast_in.Fn());
  std::vector<uint64_t> fast_seen;
  uint64_t fast_dropped = 0;
  // 20 batches of 4 samples: 1-4, 5-8, ..., 77-80.
  for (uint64_t i = 0; i < 20; ++i) {
    hub.Publish("ecg-1", Batch(i * 4 + 1, i * 4 + 4));
    for (const Delivery& d : fast_in.Take()) {
      for (uint64_t seq : Sequences(d)) fast_seen.push_back(seq);
      fast_dropped += d.dropped_samples;
    }
    fast->Delivered();
  }
  EXPECT_EQ(fast_seen, Range(1, 80));
  EXPECT_EQ(fast_dropped, 0u);

  // The first batch was handed over at once; the rest waited.
  std::vector<Delivery> got = slow_in.Take();
  ASSERT_THAT(got, SizeIs(1));
  EXPECT_THAT(Sequences(got[0]), ElementsAre(1, 2, 3, 4));
  EXPECT_EQ(got[0].dropped_samples, 0u);

  // The newest 8 batches, as one delivery; batches 2-12 (samples 5-48) lost.
  slow->Delivered();
  got = slow_in.Take();
  ASSERT_THAT(got, SizeIs(1));
  ASSERT_THAT(got[0].batches, SizeIs(8));
  EXPECT_EQ(Sequences(got[0]), Range(49, 80));
  EXPECT_EQ(got[0].dropped_samples, 44u);

  // Nothing queued meanwhile: nothing handed over, and the watcher is free,
  // so the next batch goes at once, with the loss not reported again.
  slow->Delivered();
  EXPECT_THAT(slow_in.Take(), IsEmpty());
  hub.Publish("ecg-1", Batch(81, 81));
  got = slow_in.Take();
  ASSERT_THAT(got, SizeIs(1));
  EXPECT_THAT(Sequences(got[0]), ElementsAre(81));
  EXPECT_EQ(got[0].dropped_samples, 0u);
}

// Batches published while a delivery is being written are handed over
// together, in order, as one delivery, when it was written.
TEST(VitalsHubTest, ADeliveryInProgressCombinesWhatQueued) {
  Inbox in;
  VitalsHub hub(16);
  auto w = hub.AddWatcher("ecg-1", "patient-7", in.Fn());
  hub.Publish("ecg-1", Batch(1, 1));
  ASSERT_THAT(in.Take(), SizeIs(1));

  const VitalsBatchPtr b2 = Batch(2, 3), b3 = Batch(4, 4), b4 = Batch(5, 6);
  for (const auto& b : {b2, b3, b4}) hub.Publish("ecg-1", b);
  EXPECT_THAT(in.Take(), IsEmpty());  // still busy with the first

  w->Delivered();
  std::vector<Delivery> got = in.Take();
  ASSERT_THAT(got, SizeIs(1));
  EXPECT_THAT(got[0].batches, ElementsAre(b2, b3, b4));
  EXPECT_EQ(Sequences(got[0]), Range(2, 6));
  EXPECT_EQ(got[0].dropped_samples, 0u);
}

// A watcher that never finishes a delivery does not hold up the publisher:
// thousands of batches are published at once while it is stuck, and another
// watcher, finishing its deliveries on a thread of its own, is told of every
// sample, each either handed over (in order) or reported lost.
TEST(VitalsHubTest, PublisherNeverBlocksOnAStuckWatcher) {
  constexpr uint64_t kBatches = 20000;
  std::vector<VitalsBatchPtr> batches;
  batches.reserve(kBatches);
  for (uint64_t i = 1; i <= kBatches; ++i) batches.push_back(Batch(i, i));

  Inbox stuck_in, reader_in;
  VitalsHub hub(8);
  auto stuck = hub.AddWatcher("ecg-1", "patient-7", stuck_in.Fn());
  auto reader = hub.AddWatcher("ecg-1", "patient-7", reader_in.Fn());

  // Written by the consumer only; read after it is joined.
  uint64_t read = 0, dropped = 0, last_seq = 0;
  bool in_order = true;
  std::thread consumer([&] {
    const absl::Time give_up = absl::Now() + absl::Seconds(60);
    while (read + dropped < kBatches && absl::Now() < give_up) {
      std::optional<Delivery> d = reader_in.Pop(absl::Milliseconds(50));
      if (!d.has_value()) continue;
      for (uint64_t seq : Sequences(*d)) {
        in_order = in_order && seq > last_seq;
        last_seq = seq;
        ++read;
      }
      dropped += d->dropped_samples;
      // May hand over the next delivery on this thread, into reader_in.
      reader->Delivered();
    }
  });

  const absl::Time start = absl::Now();
  for (const VitalsBatchPtr& batch : batches) hub.Publish("ecg-1", batch);
  const absl::Duration took = absl::Now() - start;
  consumer.join();

  EXPECT_LT(took, absl::Seconds(5));
  EXPECT_EQ(read + dropped, kBatches);
  EXPECT_TRUE(in_order);
  EXPECT_EQ(last_seq, kBatches);

  std::vector<Delivery> got = stuck_in.Take();
  ASSERT_THAT(got, SizeIs(1));
  EXPECT_THAT(Sequences(got[0]), ElementsAre(1));
  stuck->Delivered();
  got = stuck_in.Take();
  ASSERT_THAT(got, SizeIs(1));
  EXPECT_EQ(Sequences(got[0]), Range(kBatches - 7, kBatches));
  EXPECT_EQ(got[0].dropped_samples, kBatches - 9);
}

// A removed watcher receives nothing more, not even once its delivery was
// written; the others still do.
TEST(VitalsHubTest, RemovedWatcherReceivesNothing) {
  Inbox a_in, b_in;
  VitalsHub hub(16);
  auto a = hub.AddWatcher("ecg-1", "patient-7", a_in.Fn());
  auto b = hub.AddWatcher("ecg-1", "patient-7", b_in.Fn());
  hub.Publish("ecg-1", Batch(1, 2));
  ASSERT_THAT(a_in.Take(), SizeIs(1));
  ASSERT_THAT(b_in.Take(), SizeIs(1));

  hub.RemoveWatcher(a);
  hub.RemoveWatcher(a);  // harmless twice
  hub.Publish("ecg-1", Batch(3, 4));
  a->Delivered();
  b->Delivered();
  EXPECT_THAT(a_in.Take(), IsEmpty());
  std::vector<Delivery> got = b_in.Take();
  ASSERT_THAT(got, SizeIs(1));
  EXPECT_THAT(Sequences(got[0]), ElementsAre(3, 4));
  EXPECT_EQ(hub.watcher_count("ecg-1"), 1u);
}

// A revoked grant wakes every watcher of the patient's devices at once (and
// no one else's); a waiting watcher returns well before its deadline, and
// the recheck is cleared once seen.
TEST(VitalsHubTest, RecheckWakesThePatientsWatchers) {
  Inbox in;
  VitalsHub hub(16);
  auto mine = hub.AddWatcher("ecg-1", "patient-7", in.Fn());
  auto mine_too = hub.AddWatcher("spo2-1", "patient-7", in.Fn());
  auto theirs = hub.AddWatcher("ecg-2", "patient-8", in.Fn());
  absl::Duration waited;
  VitalsWatcher::Wake wake;
  std::thread waiter([&] {
    const absl::Time start = absl::Now();
    wake = mine->Wait(absl::Now() + absl::Seconds(10));
    waited = absl::Now() - start;
  });
  absl::SleepFor(absl::Milliseconds(50));
  hub.RecheckPatient("patient-7");
  waiter.join();
  EXPECT_TRUE(wake.recheck);
  EXPECT_FALSE(wake.closed.has_value());
  EXPECT_LT(waited, absl::Seconds(5));
  EXPECT_TRUE(mine_too->Wait(kNoWait).recheck);
  EXPECT_FALSE(theirs->Wait(kNoWait).recheck);
  EXPECT_FALSE(mine->Wait(kNoWait).recheck);  // cleared once seen
  EXPECT_THAT(in.Take(), IsEmpty());          // nothing to hand over
}

// A revoked device closes its watchers with the status given: what was
// queued is discarded and nothing published after is handed over. Other
// devices' watchers go on.
TEST(VitalsHubTest, ClosedDeviceEndsItsWatchers) {
  Inbox in, other_in;
  VitalsHub hub(16);
  auto w = hub.AddWatcher("ecg-1", "patient-7", in.Fn());
  auto other = hub.AddWatcher("ecg-2", "patient-7", other_in.Fn());
  hub.Publish("ecg-1", Batch(1, 1));
  hub.Publish("ecg-1", Batch(2, 2));  // queued behind the first
  std::vector<Delivery> got = in.Take();
  ASSERT_THAT(got, SizeIs(1));
  EXPECT_THAT(Sequences(got[0]), ElementsAre(1));

  hub.CloseDevice("ecg-1", absl::FailedPreconditionError("revoked"));
  hub.Publish("ecg-1", Batch(3, 3));
  w->Delivered();
  EXPECT_THAT(in.Take(), IsEmpty());
  VitalsWatcher::Wake wake = w->Wait(absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(wake.closed.has_value());
  EXPECT_EQ(wake.closed->code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(wake.closed->message(), "revoked");

  EXPECT_FALSE(other->Wait(kNoWait).closed.has_value());
  hub.Publish("ecg-2", Batch(1, 1));
  EXPECT_THAT(other_in.Take(), SizeIs(1));
}

// A session that ends closes its watcher itself: nothing more is handed
// over, and the first status given is the one Wait returns.
TEST(VitalsHubTest, ClosedWatcherKeepsTheFirstStatus) {
  Inbox in;
  VitalsHub hub(16);
  auto w = hub.AddWatcher("ecg-1", "patient-7", in.Fn());
  w->Close(absl::CancelledError("session ended"));
  hub.CloseDevice("ecg-1", absl::FailedPreconditionError("revoked"));
  hub.Publish("ecg-1", Batch(1, 1));
  EXPECT_THAT(in.Take(), IsEmpty());
  VitalsWatcher::Wake wake = w->Wait(kNoWait);
  ASSERT_TRUE(wake.closed.has_value());
  EXPECT_EQ(wake.closed->code(), absl::StatusCode::kCancelled);
}

// Close returns only once a delivery already handed to the session (on
// the publisher's thread) has returned, so that the session may go away
// right after Close; nothing is handed over after it.
TEST(VitalsHubTest, CloseWaitsForADeliveryInProgress) {
  VitalsHub hub(16);
  absl::Notification entered, release;
  std::atomic<int> calls{0};
  auto w = hub.AddWatcher("ecg-1", "patient-7", [&](Delivery) {
    ++calls;
    entered.Notify();
    release.WaitForNotification();
  });
  std::thread publisher([&] { hub.Publish("ecg-1", Batch(1, 1)); });
  entered.WaitForNotification();
  std::atomic<bool> closed{false};
  std::thread closer([&] {
    w->Close(absl::CancelledError("the watcher went away"));
    closed = true;
  });
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_FALSE(closed) << "Close returned while the delivery was still running";
  release.Notify();
  closer.join();
  publisher.join();
  EXPECT_TRUE(closed);
  w->Delivered();
  hub.Publish("ecg-1", Batch(2, 2));
  EXPECT_EQ(calls, 1);
}

// Stopping the gateway ends every watch, and any watch started after;
// none of them is handed anything more.
TEST(VitalsHubTest, CloseAllEndsEveryWatch) {
  Inbox in;
  VitalsHub hub(16);
  auto a = hub.AddWatcher("ecg-1", "patient-7", in.Fn());
  auto b = hub.AddWatcher("ecg-2", "patient-8", in.Fn());
  hub.CloseAll(absl::UnavailableError("stopping"));
  auto late = hub.AddWatcher("ecg-3", "patient-9", in.Fn());
  for (const auto& w : {a, b, late}) {
    VitalsWatcher::Wake wake = w->Wait(absl::Now() + absl::Seconds(10));
    ASSERT_TRUE(wake.closed.has_value());
    EXPECT_EQ(wake.closed->code(), absl::StatusCode::kUnavailable);
  }
  hub.Publish("ecg-1", Batch(1, 1));
  hub.Publish("ecg-3", Batch(1, 1));
  EXPECT_THAT(in.Take(), IsEmpty());
}

// Waiting ends at the deadline when nothing calls for a decision: a batch
// published meanwhile goes to DeliverFn and does not wake the waiter.
TEST(VitalsHubTest, WaitEndsAtTheDeadline) {
  Inbox in;
  VitalsHub hub(16);
  auto w = hub.AddWatcher("ecg-1", "patient-7", in.Fn());
  std::thread publisher([&] {
    absl::SleepFor(absl::Milliseconds(20));
    hub.Publish("ecg-1", Batch(1, 1));
  });
  const absl::Time start = absl::Now();
  VitalsWatcher::Wake wake = w->Wait(start + absl::Milliseconds(200));
  const absl::Duration waited = absl::Now() - start;
  publisher.join();
  EXPECT_GE(waited, absl::Milliseconds(190));
  EXPECT_FALSE(wake.recheck);
  EXPECT_FALSE(wake.closed.has_value());
  EXPECT_THAT(in.Take(), SizeIs(1));
}

// A batch's size is the sum of its samples' encoded sizes (what a watch
// session reports), and nothing for no samples.
TEST(VitalsHubTest, BatchBytesIsTheSumOfItsSamplesSizes) {
  std::vector<v1::VitalSample> samples = Samples(1, 3);
  samples[1].set_channel("SpO2 (finger probe, left index)");
  samples[2].set_sequence(1ull << 40);
  uint64_t expected = 0;
  for (const auto& s : samples) expected += s.ByteSizeLong();
  ASSERT_NE(samples[0].ByteSizeLong(), samples[1].ByteSizeLong());
  EXPECT_EQ(VitalsBatch(samples).bytes, expected);
  EXPECT_EQ(VitalsBatch(std::vector<v1::VitalSample>{}).bytes, 0u);
}

}  // namespace
}  // namespace medvault::gateway
