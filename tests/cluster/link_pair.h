#pragma once
// The two ends of one socketpair as StreamLinks, for tests that play one side
// of the coordinator <-> worker (or agent) protocol in process.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>

#include "cluster/link.h"
#include "net/clock.h"

namespace millstone::cluster {

struct LinkPair {
  std::unique_ptr<StreamLink> coordinator_side;  // named after the peer
  std::unique_ptr<StreamLink> peer_side;         // a worker's or an agent's, named "coordinator"
};

inline LinkPair make_pair(const std::string& peer_name) {
  int fds[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  return {StreamLink::over_socket(fds[0], peer_name),
          StreamLink::over_socket(fds[1], "coordinator")};
}

inline int64_t in_seconds(int s) {
  return net::now_ns() + s * net::kNsPerSec;
}

}  // namespace millstone::cluster
