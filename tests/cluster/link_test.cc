// WorkerLink over a socketpair in one process, and the outboxes that keep the
// worker's event loop from ever blocking on it.
#include "cluster/link.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "cluster/outbox.h"
#include "cluster/wire.h"
#include "net/clock.h"

namespace millstone::cluster {
namespace link_test {

struct Pair {
  std::unique_ptr<StreamLink> a;
  std::unique_ptr<StreamLink> b;
};

Pair make_pair(int send_buffer = 0) {
  int fds[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  if (send_buffer > 0) {
    setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &send_buffer, sizeof send_buffer);
    setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &send_buffer, sizeof send_buffer);
  }
  return {StreamLink::over_socket(fds[0], "worker 0"), StreamLink::over_socket(fds[1], "peer")};
}

int64_t soon() {
  return net::now_ns() + 2 * net::kNsPerSec;
}

TEST(LinkTest, MessagesCrossBothWaysInOrder) {
  Pair p = make_pair();
  ASSERT_TRUE(p.a->send(MessageType::kHello, encode_hello(local_hello(0))));
  ASSERT_TRUE(p.a->send(MessageType::kStop, {}));
  MessageType type;
  std::string payload;
  ASSERT_EQ(receive_until(*p.b, soon(), &type, &payload), WaitResult::kOk);
  EXPECT_EQ(type, MessageType::kHello);
  Hello hello;
  EXPECT_TRUE(decode_hello(payload, &hello));
  ASSERT_EQ(receive_until(*p.b, soon(), &type, &payload), WaitResult::kOk);
  EXPECT_EQ(type, MessageType::kStop);
  ASSERT_TRUE(p.b->send(MessageType::kError, encode_error("bye")));
  ASSERT_EQ(receive_until(*p.a, soon(), &type, &payload), WaitResult::kOk);
  EXPECT_EQ(type, MessageType::kError);
  EXPECT_EQ(p.a->receive(&type, &payload), WorkerLink::Receive::kNothing);
  p.b->close();
  EXPECT_EQ(p.a->receive(&type, &payload), WorkerLink::Receive::kClosed);
  EXPECT_TRUE(p.a->ok());
}

TEST(LinkTest, GarbageBreaksTheLinkAndSaysWhy) {
  Pair p = make_pair();
  const int raw = p.b->fd();
  ASSERT_EQ(write(raw, "GET / HTTP/1.1\r\n\r\n", 18), 18);
  MessageType type;
  std::string payload;
  EXPECT_EQ(receive_until(*p.a, soon(), &type, &payload), WaitResult::kBroken);
  EXPECT_FALSE(p.a->ok());
  EXPECT_NE(p.a->error().find("worker 0 broke the protocol"), std::string::npos) << p.a->error();
  EXPECT_FALSE(p.a->send(MessageType::kStop, {}));
}

TEST(LinkTest, APeerThatClosesMidMessageIsBroken) {
  Pair p = make_pair();
  const std::string frame = encode_frame(MessageType::kError, encode_error("cut short"));
  ASSERT_EQ(write(p.b->fd(), frame.data(), frame.size() - 2),
            static_cast<ssize_t>(frame.size() - 2));
  p.b->close();
  MessageType type;
  std::string payload;
  EXPECT_EQ(receive_until(*p.a, soon(), &type, &payload), WaitResult::kBroken);
  EXPECT_NE(p.a->error().find("in the middle of a message"), std::string::npos) << p.a->error();
}

// A worker that sent Done and exited while the coordinator still had a Stop
// for it: the write fails, and the Done already in the socket still counts
// (it used to be lost, and the finished worker reported as dead).
TEST(LinkTest, WhatArrivedIsReadAfterAWriteFails) {
  Pair p = make_pair();
  ASSERT_TRUE(p.b->send(MessageType::kDone, encode_done(Done{})));
  p.b->close();
  EXPECT_FALSE(p.a->send(MessageType::kStop, {}));
  EXPECT_NE(p.a->error().find("cannot write to worker 0"), std::string::npos) << p.a->error();
  EXPECT_EQ(p.a->queued_bytes(), 0u);
  MessageType type;
  std::string payload;
  ASSERT_EQ(p.a->receive(&type, &payload), WorkerLink::Receive::kMessage);
  EXPECT_EQ(type, MessageType::kDone);
  EXPECT_EQ(p.a->receive(&type, &payload), WorkerLink::Receive::kClosed);
}

TEST(LinkTest, APeerThatNeverAnswersTimesOut) {
  Pair p = make_pair();
  MessageType type;
  std::string payload;
  const int64_t started = net::now_ns();
  EXPECT_EQ(receive_until(*p.a, started + 50 * net::kNsPerMs, &type, &payload),
            WaitResult::kTimedOut);
  EXPECT_GE(net::now_ns() - started, 50 * net::kNsPerMs);
}

TEST(OutboxTest, RefusesWholeFramesPastItsLimitAndCountsThem) {
  Outbox box(10);
  EXPECT_TRUE(box.push("abcdef"));
  EXPECT_FALSE(box.push("ghijk"));  // 11 > 10: refused whole, never cut
  EXPECT_EQ(box.refused(), 1u);
  EXPECT_EQ(box.pending(), "abcdef");
  box.consume(4);
  EXPECT_EQ(box.pending(), "ef");
  EXPECT_TRUE(box.push("ghijk"));
  EXPECT_EQ(box.pending(), "efghijk");
  EXPECT_EQ(box.peak(), 7u);
  box.consume(100);
  EXPECT_TRUE(box.empty());
}

TEST(OutboxTest, ASendNeverBlocksOnAFullSocket) {
  Pair p = make_pair(4096);
  const std::string big(64 * 1024, 'x');
  size_t accepted = 0;
  // Nobody reads: the socket fills, and sends queue instead of waiting.
  for (int i = 0; i < 16; ++i)
    accepted += p.a->send(MessageType::kError, encode_error(big)) ? 1 : 0;
  EXPECT_EQ(accepted, 16u);
  EXPECT_GT(p.a->queued_bytes(), 0u);
  // Drained from the other side, everything arrives in order.
  int received = 0;
  MessageType type;
  std::string payload;
  while (received < 16) {
    ASSERT_NE(flush_until(*p.a, net::now_ns()), WaitResult::kBroken);
    const WorkerLink::Receive r = p.b->receive(&type, &payload);
    if (r == WorkerLink::Receive::kMessage) {
      ++received;
      continue;
    }
    ASSERT_EQ(r, WorkerLink::Receive::kNothing);
  }
  EXPECT_EQ(p.a->queued_bytes(), 0u);
}

metrics::Snapshot second(uint64_t index, uint64_t requests, uint64_t peak_vus) {
  metrics::Snapshot s;
  s.interval_index = index;
  s.requests = requests;
  s.vus = peak_vus;
  s.peak_vus = peak_vus;
  s.latency.record(1000 + index);
  return s;
}

// A coordinator that does not read: snapshots wait, the oldest merge once
// more than the bound wait, and every request still arrives once it reads.
TEST(OutboxTest, SnapshotsWaitThenCoalesceButNoCountIsLost) {
  Pair p = make_pair(4096);
  SnapshotOutbox outbox(*p.a, /*max_pending=*/4, /*high_water=*/1);
  uint64_t sent = 0;
  for (uint64_t i = 0; i < 40; ++i) {
    ASSERT_TRUE(outbox.push(second(i, i + 1, 2)));
    sent += i + 1;
  }
  // The first went into the link (it was below the high-water mark); the rest waited.
  EXPECT_LE(outbox.pending(), 4u);
  EXPECT_GT(outbox.coalesced(), 0u);
  uint64_t received = 0;
  uint64_t last_index = 0;
  size_t messages = 0;
  MessageType type;
  std::string payload;
  const int64_t deadline = soon();
  while ((outbox.pending() > 0 || p.a->queued_bytes() > 0 || messages == 0) &&
         net::now_ns() < deadline) {
    ASSERT_TRUE(outbox.pump());
    while (p.b->receive(&type, &payload) == WorkerLink::Receive::kMessage) {
      ASSERT_EQ(type, MessageType::kSnapshot);
      metrics::Snapshot s;
      ASSERT_TRUE(decode_snapshot(payload, &s));
      EXPECT_GE(s.interval_index, last_index);  // in order, merged under the later second
      EXPECT_EQ(s.peak_vus, 2u);                // a peak, not a sum
      last_index = s.interval_index;
      received += s.requests;
      ++messages;
    }
  }
  EXPECT_EQ(received, sent);
  EXPECT_EQ(last_index, 39u);
  EXPECT_EQ(messages + outbox.coalesced(), 40u);
}

}  // namespace link_test
}  // namespace millstone::cluster
