// What an idle TLS connection costs in heap, for the million-connection
// goal: 1,000 handshaken client (or server: the mock's side) streams,
// measured with mallinfo2. Prints the figures (docs/architecture.md and
// docs/mock.md quote them); asserts nothing about their size.
#include <malloc.h>
#include <sys/socket.h>

#include <cstdio>

#include <gtest/gtest.h>

#include "../support/heap.h"
#include "tls/client_context.h"
#include "tls/server_context.h"
#include "tls/tls_stream.h"
#include "tls_harness.h"

namespace millstone::tls {
namespace idle_memory_test {

using namespace testing;

constexpr int kConnections = 1000;

size_t heap_in_use() {
  return test::live_heap_bytes();
}

enum class Side { kClient, kServer };

void measure(TlsVersion version, bool resume, const char* label, Side side = Side::kClient) {
  TempFolder folder;
  TlsServerOptions server_options;
  server_options.max_version = version;
  TlsServerContext server_context(server_options);
  TlsClientOptions options;
  options.ca_file = folder.write("ca.pem", server_context.certificate_pem());
  options.resume_sessions = resume;
  TlsClientContext client_context(options);
  TlsTarget& target = client_context.target("localhost", 443);

  std::vector<std::unique_ptr<TlsStream>> kept;
  kept.reserve(kConnections);
  const size_t before = heap_in_use();
  for (int i = 0; i < kConnections; ++i) {
    int fds[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    auto client = TlsStream::client(client_context, target, fds[0]);
    auto server = TlsStream::server(server_context, fds[1]);
    ASSERT_EQ(handshake(*client, *server).client.status, StreamStatus::kOk) << client->error_text();
    // One exchange each way, as after a first request and its answer: TLS
    // 1.3 tickets are taken in.
    ASSERT_EQ(transfer(*client, *server, "x"), "x");
    ASSERT_EQ(transfer(*server, *client, "x"), "x");
    // Only one side is measured.
    kept.push_back(side == Side::kClient ? std::move(client) : std::move(server));
  }
  const size_t after = heap_in_use();
  const double per_connection =
      (static_cast<double>(after) - static_cast<double>(before)) / kConnections;
  std::printf("idle TLS %s connection (%s): %.0f heap bytes each over %d connections\n",
              side == Side::kClient ? "client" : "server", label, per_connection, kConnections);
  EXPECT_GT(after, before);
}

TEST(TlsIdleMemory, HeapBytesPerIdleClientConnection) {
  if (!test::kHeapIsCounted) GTEST_SKIP() << "the sanitizer's malloc is not counted";
  measure(TlsVersion::k1_3, true, "TLS 1.3, resumption on");
  measure(TlsVersion::k1_3, false, "TLS 1.3, resumption off");
  measure(TlsVersion::k1_2, true, "TLS 1.2, resumption on");
}

// The mock's side: a TlsStream in the server role, idle after one request.
TEST(TlsIdleMemory, HeapBytesPerIdleServerConnection) {
  if (!test::kHeapIsCounted) GTEST_SKIP() << "the sanitizer's malloc is not counted";
  measure(TlsVersion::k1_3, true, "TLS 1.3", Side::kServer);
  measure(TlsVersion::k1_2, true, "TLS 1.2", Side::kServer);
}

}  // namespace idle_memory_test
}  // namespace millstone::tls
