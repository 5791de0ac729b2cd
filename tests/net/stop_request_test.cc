#include "net/stop_request.h"

#include <poll.h>

#include <thread>

#include <gtest/gtest.h>

namespace millstone::net {
namespace stop_request_test {

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

TEST(StopRequest, TheFirstReasonWinsAndTheDescriptorBecomesReadable) {
  StopRequest stop;
  ASSERT_GE(stop.fd(), 0);
  EXPECT_FALSE(stop.requested());
  EXPECT_FALSE(readable(stop.fd()));
  std::thread other([&] { EXPECT_TRUE(stop.request("abort guard tripped")); });
  other.join();
  EXPECT_TRUE(stop.requested());
  EXPECT_TRUE(readable(stop.fd()));
  EXPECT_FALSE(stop.request("a later reason"));
  EXPECT_EQ(stop.reason(), "abort guard tripped");
}

}  // namespace stop_request_test
}  // namespace millstone::net
