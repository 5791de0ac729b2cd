#include "net/socket.h"

#include <unistd.h>

#include <gtest/gtest.h>

namespace millstone::net {
namespace {

TEST(Endpoint, NumericV4AndV6) {
  auto v4 = make_endpoint("127.0.0.1", 8080);
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->to_string(), "127.0.0.1:8080");
  auto v6 = make_endpoint("::1", 443);
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->to_string(), "[::1]:443");
  EXPECT_FALSE(make_endpoint("localhost", 80));
}

TEST(ListenAddress, ParsesAndExplains) {
  std::string error;
  auto a = parse_listen_address("127.0.0.1:0", &error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->port(), 0);
  ASSERT_TRUE(parse_listen_address("[::1]:9000", &error));
  ASSERT_TRUE(parse_listen_address("localhost:9000", &error));
  EXPECT_FALSE(parse_listen_address("127.0.0.1", &error));
  EXPECT_NE(error.find("HOST:PORT"), std::string::npos);
  EXPECT_FALSE(parse_listen_address("127.0.0.1:70000", &error));
  EXPECT_NE(error.find("70000"), std::string::npos);
  EXPECT_FALSE(parse_listen_address("example.com:80", &error));
  EXPECT_NE(error.find("numeric"), std::string::npos);
}

TEST(Resolve, NumericAndFailure) {
  std::string error;
  auto e = resolve("127.0.0.1", 80, &error);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->port(), 80);
  EXPECT_FALSE(resolve("no-such-host.invalid", 80, &error));
  EXPECT_NE(error.find("no-such-host.invalid"), std::string::npos);
}

TEST(ListenSocket, TwoSocketsShareAPortWithReusePort) {
  auto any = make_endpoint("127.0.0.1", 0);
  int first = listen_socket(*any, 16);
  ASSERT_GE(first, 0);
  auto bound = local_endpoint(first);
  ASSERT_TRUE(bound);
  EXPECT_NE(bound->port(), 0);
  int second = listen_socket(*bound, 16);
  EXPECT_GE(second, 0);
  close(first);
  if (second >= 0) close(second);
}

}  // namespace
}  // namespace millstone::net
