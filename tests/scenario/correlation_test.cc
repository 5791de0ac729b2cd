// The amqp.expect demultiplexer: deliveries reach the VU waiting for their
// correlation value; early ones are held within bounds; the rest is counted.
#include "scenario/correlation.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace millstone::scenario {
namespace correlation_test {

constexpr int64_t kHold = 1000;

TEST(CorrelationTable, DeliveryGoesToTheWaiterOnce) {
  CorrelationTable table(16, kHold);
  EXPECT_EQ(table.wait("a", 7), 0);
  EXPECT_EQ(table.wait("b", 8), 0);
  EXPECT_EQ(table.waiting(), 2u);
  auto d = table.deliver("b", 10);
  EXPECT_EQ(d.waiter, 8u);
  EXPECT_FALSE(d.held);
  EXPECT_FALSE(d.unmatched);
  d = table.deliver("a", 11);
  EXPECT_EQ(d.waiter, 7u);
  EXPECT_EQ(table.waiting(), 0u);
  // A second copy of "a" finds nobody: a duplicate, not held.
  d = table.deliver("a", 12);
  EXPECT_EQ(d.waiter, CorrelationTable::kNoWaiter);
  EXPECT_FALSE(d.held);
  EXPECT_TRUE(d.unmatched);
  EXPECT_TRUE(d.duplicate);
  EXPECT_EQ(table.held(), 0u);
  // A value nobody matched is held, then unmatched (not a duplicate) when
  // the hold ends.
  d = table.deliver("c", 12);
  EXPECT_TRUE(d.held);
  EXPECT_FALSE(d.duplicate);
  EXPECT_EQ(table.expire(12 + kHold - 1), 0u);
  EXPECT_EQ(table.expire(12 + kHold), 1u);
  EXPECT_EQ(table.held(), 0u);
}

TEST(CorrelationTable, EarlyMessageIsClaimedByALaterWait) {
  CorrelationTable table(16, kHold);
  EXPECT_TRUE(table.deliver("x", 100).held);
  EXPECT_EQ(table.wait("x", 3), 100);  // the arrival time: the latency is measured from it
  EXPECT_EQ(table.waiting(), 0u);
  EXPECT_EQ(table.expire(100 + kHold), 0u);  // claimed, so not counted
  // A second copy of a held message is a duplicate at once.
  EXPECT_TRUE(table.deliver("y", 200).held);
  EXPECT_TRUE(table.deliver("y", 201).unmatched);
  EXPECT_TRUE(table.deliver("y", 202).duplicate);
  // So is a copy of one claimed from the hold.
  EXPECT_EQ(table.deliver("x", 300).duplicate, true);
}

TEST(CorrelationTable, CancelledWaitLeavesNothingAndLateMessageIsCounted) {
  CorrelationTable table(16, kHold);
  EXPECT_EQ(table.wait("k", 1), 0);
  table.cancel("k", 2);  // not its wait: ignored
  EXPECT_EQ(table.waiting(), 1u);
  table.cancel("k", 1);  // timed out
  EXPECT_EQ(table.waiting(), 0u);
  auto d = table.deliver("k", 50);  // late: nobody waits any more
  EXPECT_EQ(d.waiter, CorrelationTable::kNoWaiter);
  EXPECT_EQ(table.expire(50 + kHold), 1u);
}

TEST(CorrelationTable, SecondWaiterForTheSameKeyIsRefused) {
  CorrelationTable table(16, kHold);
  EXPECT_EQ(table.wait("same", 1), 0);
  EXPECT_EQ(table.wait("same", 2), -1);
  EXPECT_EQ(table.deliver("same", 5).waiter, 1u);
}

TEST(CorrelationTable, HeldMessagesAreBounded) {
  CorrelationTable table(4, kHold);
  for (int i = 0; i < 4; ++i)
    EXPECT_TRUE(table.deliver("m" + std::to_string(i), i).held);
  EXPECT_TRUE(table.deliver("m4", 4).unmatched);  // full: dropped, counted
  EXPECT_EQ(table.held(), 4u);
  // After the hold, room again; a flood of unknown ids never grows the table.
  EXPECT_EQ(table.expire(kHold + 3), 4u);
  for (int i = 0; i < 1000; ++i)
    table.deliver("n" + std::to_string(i), 2 * kHold + i);
  EXPECT_LE(table.held(), 4u);
  EXPECT_EQ(table.clear_held(), 4u);
  EXPECT_EQ(table.held(), 0u);
}

// Manual acks: a held message keeps its delivery tag for the wait that
// claims it, and expiry hands back the tags of what nobody claimed.
TEST(CorrelationTable, HeldMessagesKeepTheirDeliveryTags) {
  CorrelationTable table(16, kHold);
  EXPECT_TRUE(table.deliver("a", 10, 41).held);
  EXPECT_TRUE(table.deliver("b", 11, 42).held);
  uint64_t tag = 0;
  EXPECT_EQ(table.wait("b", 3, &tag), 11);
  EXPECT_EQ(tag, 42u);
  std::vector<uint64_t> tags;
  EXPECT_EQ(table.expire(10 + kHold, &tags), 1u);
  EXPECT_EQ(tags, std::vector<uint64_t>{41});
}

// A late message (its VU gave up) is unmatched, not a duplicate: nothing
// was matched for it.
TEST(CorrelationTable, LateIsNotDuplicate) {
  CorrelationTable table(16, kHold);
  EXPECT_EQ(table.wait("late", 1), 0);
  table.cancel("late", 1);
  const auto d = table.deliver("late", 10);
  EXPECT_TRUE(d.held);
  EXPECT_FALSE(d.duplicate);
}

// The values remembered for duplicates are bounded like the held ones: the
// oldest are forgotten, and a copy of a forgotten one is merely unmatched.
TEST(CorrelationTable, RememberedValuesAreBounded) {
  CorrelationTable table(4, kHold);
  for (int i = 0; i < 100; ++i) {
    const std::string key = "k" + std::to_string(i);
    EXPECT_EQ(table.wait(key, 1), 0);
    EXPECT_EQ(table.deliver(key, i).waiter, 1u);
  }
  EXPECT_EQ(table.remembered(), 4u);
  EXPECT_TRUE(table.deliver("k99", 200).duplicate);
  const auto forgotten = table.deliver("k0", 201);
  EXPECT_FALSE(forgotten.duplicate);
  EXPECT_TRUE(forgotten.held);
}

// A value waited for again (keys not unique per iteration) is the new
// wait's when it comes, not a duplicate of the first.
TEST(CorrelationTable, ReusedValueIsMatchedAgain) {
  CorrelationTable table(16, kHold);
  EXPECT_EQ(table.wait("r", 1), 0);
  EXPECT_EQ(table.deliver("r", 5).waiter, 1u);
  EXPECT_EQ(table.wait("r", 2), 0);
  EXPECT_EQ(table.deliver("r", 6).waiter, 2u);
}

TEST(CorrelationTable, OutOfOrderIsAnOriginOlderThanOneMatchedBefore) {
  CorrelationTable table(16, kHold);
  EXPECT_FALSE(table.out_of_order(100));
  EXPECT_FALSE(table.out_of_order(100));  // the same due time: in order
  EXPECT_FALSE(table.out_of_order(300));
  EXPECT_TRUE(table.out_of_order(200));  // answered after the one due at 300
  EXPECT_FALSE(table.out_of_order(301));
}

}  // namespace correlation_test
}  // namespace millstone::scenario
