// TlsStream against a real peer: `openssl s_server` on 127.0.0.1, bounded
// and killed at the end of each test.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include "tls/client_context.h"
#include "tls/tls_stream.h"
#include "tls_harness.h"

extern char** environ;

namespace millstone::tls {
namespace openssl_peer_test {

using metrics::ErrorCause;
using namespace testing;

uint16_t free_port() {
  auto any = net::make_endpoint("127.0.0.1", 0);
  const int fd = net::listen_socket(*any, 1);
  const uint16_t port = net::local_endpoint(fd)->port();
  ::close(fd);
  return port;
}

// `openssl s_server -www` with a localhost certificate from its own CA;
// answers "GET /" with a status page and closes.
class OpensslServer {
 public:
  OpensslServer(const TempFolder& folder, std::vector<std::string> extra) : pki_(folder) {
    const auto [cert, key] = pki_.localhost("s_server");
    port_ = free_port();
    std::vector<std::string> args = {
        "openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(port_),
        "-cert",   cert,       "-key",    key,
        "-www",    "-quiet"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (std::string& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    if (posix_spawnp(&pid_, "openssl", &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~OpensslServer() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  // Waits (at most 5 s) until the port accepts connections.
  bool ready() const {
    if (pid_ <= 0) return false;
    const auto endpoint = net::make_endpoint("127.0.0.1", port_);
    for (int i = 0; i < 100; ++i) {
      const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      const bool up = ::connect(fd, endpoint->addr(), endpoint->length) == 0;
      ::close(fd);
      if (up) return true;
      usleep(50'000);
    }
    return false;
  }
  // A connected non-blocking socket to it.
  int connect() const {
    const int fd = net::tcp_socket(AF_INET);
    EXPECT_GE(net::start_connect(fd, *net::make_endpoint("127.0.0.1", port_)), 0);
    pollfd p{fd, POLLOUT, 0};
    poll(&p, 1, 5000);
    EXPECT_EQ(net::connect_result(fd), 0);
    return fd;
  }
  const std::string& ca_file() const { return pki_.ca_file; }

 private:
  Pki pki_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

std::string https_get(TlsStream& stream) {
  EXPECT_EQ(stream.write("GET / HTTP/1.0\r\n\r\n").status, StreamStatus::kOk);
  std::string response;
  const StreamResult end = read_until_end(stream, &response);
  EXPECT_EQ(end.status, StreamStatus::kClosed) << stream.error_text();
  return response;
}

TEST(OpensslPeer, HttpsGetAlpnAndResumption) {
  TempFolder folder;
  OpensslServer server(folder, {"-alpn", "http/1.1"});
  ASSERT_TRUE(server.ready());
  TlsClientOptions options;
  options.ca_file = server.ca_file();
  options.alpn = {"h2", "http/1.1"};
  TlsClientContext context(options);
  for (int connection = 0; connection < 2; ++connection) {
    auto stream = TlsStream::client(context, context.target("localhost", 443), server.connect());
    ASSERT_EQ(handshake_alone(*stream).status, StreamStatus::kOk) << stream->error_text();
    EXPECT_EQ(stream->version(), "TLSv1.3");
    EXPECT_EQ(stream->alpn(), "http/1.1");
    EXPECT_EQ(stream->resumed(), connection == 1) << "connection " << connection;
    EXPECT_EQ(https_get(*stream).rfind("HTTP/1.0 200 ok", 0), 0u);
  }
}

TEST(OpensslPeer, Tls12Resumption) {
  TempFolder folder;
  OpensslServer server(folder, {"-tls1_2"});
  ASSERT_TRUE(server.ready());
  TlsClientOptions options;
  options.ca_file = server.ca_file();
  TlsClientContext context(options);
  for (int connection = 0; connection < 2; ++connection) {
    auto stream = TlsStream::client(context, context.target("localhost", 443), server.connect());
    ASSERT_EQ(handshake_alone(*stream).status, StreamStatus::kOk) << stream->error_text();
    EXPECT_EQ(stream->version(), "TLSv1.2");
    EXPECT_EQ(stream->resumed(), connection == 1) << "connection " << connection;
    EXPECT_EQ(https_get(*stream).rfind("HTTP/1.0 200 ok", 0), 0u);
  }
}

TEST(OpensslPeer, FailuresAreClassified) {
  TempFolder folder;
  OpensslServer server(folder, {"-tls1_2"});
  ASSERT_TRUE(server.ready());
  struct Case {
    std::string name;
    TlsClientOptions options;
    std::string target;
    ErrorCause cause;
  };
  Pki stranger(folder, "stranger");
  TlsClientOptions trusting;
  trusting.ca_file = server.ca_file();
  TlsClientOptions tls13_only = trusting;
  tls13_only.min_version = TlsVersion::k1_3;
  TlsClientOptions untrusting;
  untrusting.ca_file = stranger.ca_file;
  const Case cases[] = {
      {"no common version", tls13_only, "localhost", ErrorCause::kTlsProtocolVersion},
      {"unknown CA", untrusting, "localhost", ErrorCause::kTlsCertificateUntrusted},
      {"wrong host", trusting, "wrong.example", ErrorCause::kTlsCertificateHostname},
  };
  for (const Case& c : cases) {
    TlsClientContext context(c.options);
    auto stream = TlsStream::client(context, context.target(c.target, 443), server.connect());
    const StreamResult r = handshake_alone(*stream);
    ASSERT_EQ(r.status, StreamStatus::kError) << c.name;
    EXPECT_EQ(r.cause, c.cause) << c.name << ": " << stream->error_text();
  }
}

}  // namespace openssl_peer_test
}  // namespace millstone::tls
