// LoopInbox: tasks posted from other threads run on the loop's thread, in
// the order posted, none lost.
#include "net/loop_inbox.h"

#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace millstone::net {
namespace loop_inbox_test {

TEST(LoopInbox, TasksFromAnotherThreadRunOnTheLoopInOrder) {
  EventLoop loop;
  LoopInbox inbox(loop);
  ASSERT_TRUE(inbox.ready());
  std::vector<int> ran;  // touched by the loop's thread only
  std::thread::id loop_thread;
  std::thread poster([&] {
    for (int i = 0; i < 1000; ++i)
      inbox.post([&ran, i] { ran.push_back(i); });
    inbox.post([&] {
      loop_thread = std::this_thread::get_id();
      loop.stop();
    });
  });
  ASSERT_TRUE(loop.run());
  poster.join();
  EXPECT_EQ(loop_thread, std::this_thread::get_id());
  ASSERT_EQ(ran.size(), 1000u);
  for (int i = 0; i < 1000; ++i)
    ASSERT_EQ(ran[i], i);
}

}  // namespace loop_inbox_test
}  // namespace millstone::net
