#pragma once
// The client side of TLS for one worker: an SSL_CTX built once from
// TlsClientOptions, and per target the name to send and check and the last
// session to resume. Streams are made from it (tls/tls_stream.h).
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "tls/openssl_ptr.h"
#include "tls/options.h"

namespace millstone::tls {

// One server a worker talks to. Stable address for the context's lifetime.
struct TlsTarget {
  std::string server_name;  // SNI (unless an IP literal) and the name the certificate must carry
  uint16_t port = 0;        // two servers on one host keep their own sessions
  bool ip_literal = false;  // then the certificate must carry it as an IP address
  // Replaced by every new session the server issues (TLS 1.2 id or 1.3 ticket).
  SslSessionPtr last_session;
};

class TlsClientContext {
 public:
  // Throws TlsSetupError naming the file and what is wrong with it.
  explicit TlsClientContext(const TlsClientOptions& options);
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;

  // The target for `server_name` (a host name or IP literal) and port; made
  // at start-up, one per distinct pair. An empty name sends no SNI and
  // checks no name (only the chain).
  TlsTarget& target(std::string_view server_name, uint16_t port);

  const TlsClientOptions& options() const { return options_; }
  SSL_CTX* native() const { return ctx_.get(); }
  const BIO_METHOD* bio_method() const { return bio_method_.get(); }
  bool free_buffers_is_safe() const { return free_buffers_is_safe_; }

 private:
  TlsClientOptions options_;
  SslCtxPtr ctx_;
  BioMethodPtr bio_method_;
  bool free_buffers_is_safe_;      // see tls/setup.h
  std::deque<TlsTarget> targets_;  // deque: references stay valid as it grows
};

}  // namespace millstone::tls
