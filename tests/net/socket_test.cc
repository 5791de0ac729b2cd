#include "net/socket.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <gtest/gtest.h>

namespace millstone::net {
namespace socket_test {

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

// The mock's addresses are its own: a listening socket does not set
// SO_REUSEPORT, so a second one on the same port is refused (EADDRINUSE)
// rather than the kernel splitting connections between two processes.
TEST(ListenSocket, ASecondSocketOnTheSamePortIsRefused) {
  auto any = make_endpoint("127.0.0.1", 0);
  int first = listen_socket(*any, 16);
  ASSERT_GE(first, 0);
  auto bound = local_endpoint(first);
  ASSERT_TRUE(bound);
  EXPECT_NE(bound->port(), 0);
  int second = listen_socket(*bound, 16);
  EXPECT_LT(second, 0);
  EXPECT_EQ(errno, EADDRINUSE);
  close(first);
  if (second >= 0) close(second);
}

TEST(Loopback, RecognisesTheWholeLoopbackNetOnly) {
  EXPECT_TRUE(is_loopback(*make_endpoint("127.0.0.1", 80)));
  EXPECT_TRUE(is_loopback(*make_endpoint("127.3.4.5", 80)));
  EXPECT_TRUE(is_loopback(*make_endpoint("::1", 80)));
  EXPECT_TRUE(is_loopback(*make_endpoint("::ffff:127.0.0.2", 80)));
  EXPECT_FALSE(is_loopback(*make_endpoint("10.0.0.1", 80)));
  EXPECT_FALSE(is_loopback(*make_endpoint("::ffff:10.0.0.1", 80)));
  EXPECT_FALSE(is_loopback(*make_endpoint("2001:db8::1", 80)));
}

TEST(BindSource, TheConnectionComesFromTheSourceAddress) {
  int listener = listen_socket(*make_endpoint("127.0.0.1", 0), 16);
  ASSERT_GE(listener, 0);
  auto target = local_endpoint(listener);
  int fd = tcp_socket(AF_INET);
  ASSERT_EQ(bind_source(fd, *make_endpoint("127.0.0.7", 0)), 0) << strerror(errno);
  ASSERT_GE(start_connect(fd, *target), 0);
  auto local = local_endpoint(fd);
  ASSERT_TRUE(local);
  EXPECT_EQ(numeric_host(*local), "127.0.0.7");
  EXPECT_NE(local->port(), 0);
  close(fd);
  close(listener);
}

TEST(ParseSources, NumericAndOfTheTargetsFamily) {
  std::vector<Endpoint> out;
  std::string error;
  EXPECT_TRUE(parse_sources({"127.0.0.2", "127.0.0.3"}, AF_INET, &out, &error));
  EXPECT_EQ(out.size(), 2u);
  EXPECT_FALSE(parse_sources({"::1"}, AF_INET, &out, &error));
  EXPECT_NE(error.find("::1"), std::string::npos);
  EXPECT_FALSE(parse_sources({"localhost"}, AF_INET, &out, &error));
}

}  // namespace socket_test
}  // namespace millstone::net
