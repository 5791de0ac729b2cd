#pragma once
// TLS over a connected non-blocking socket, as a net::Stream. The handshake
// is driven by readiness like any read or write; its duration, whether the
// session was resumed, the ALPN protocol and the version are kept for the
// session above and its statistics. Errors are classified into the TLS
// causes of metrics::ErrorCause, with OpenSSL's words in error_text().
//
// Call handshake() until kOk before read() and write(): its time is what
// handshake_ns() reports.
//
// Idle cost: SSL_MODE_RELEASE_BUFFERS, and SSL_free_buffers after a drained
// read, free the record buffers, so an idle stream holds only OpenSSL's SSL
// object and session, the BIO and this object (docs/architecture.md,
// "Streams and TLS", has the measured bytes).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "net/stream.h"
#include "tls/client_context.h"
#include "tls/fd_bio.h"
#include "tls/server_context.h"

namespace millstone::tls {

class TlsStream final : public net::Stream {
 public:
  // Both take ownership of `fd` (connected, non-blocking) and return null,
  // with the socket closed, only when OpenSSL cannot allocate.
  static std::unique_ptr<TlsStream> client(TlsClientContext& context, TlsTarget& target, int fd);
  static std::unique_ptr<TlsStream> server(const TlsServerContext& context, int fd);
  ~TlsStream() override;
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  net::StreamResult handshake() override;
  net::StreamResult read(char* buffer, size_t size) override;
  net::StreamResult write(std::string_view data) override;
  void close(bool reset) override;
  int fd() const override { return bio_state_.fd; }
  std::string_view error_text() const override { return error_text_; }

  bool handshake_done() const { return handshake_done_; }
  // From the first handshake() call to its completion; 0 before.
  int64_t handshake_ns() const { return handshake_ns_; }
  // These three describe the open connection: false or empty after close().
  bool resumed() const;
  // Negotiated ALPN protocol ("h2"); empty when none was agreed.
  std::string_view alpn() const;
  // "TLSv1.3", "TLSv1.2"; empty before the handshake and after close().
  std::string_view version() const;
  // RFC 5705 / RFC 8446 7.5 keying material exported from this session under
  // `label` (no context): the same bytes on both ends of one session and
  // different on every other, which binds a proof to the connection. Empty
  // before the handshake, after close(), or if OpenSSL refuses.
  std::string export_keying_material(std::string_view label, size_t size) const;

 private:
  TlsStream(SslPtr ssl, const BIO_METHOD* method, int fd, bool free_buffers);
  // Turns a failed SSL_* call into a result: a wait, the end, or a cause.
  net::StreamResult outcome(int ret);
  net::StreamResult fail(metrics::ErrorCause cause, std::string text);
  void release_buffers();

  SslPtr ssl_;
  FdBioState bio_state_;
  net::StreamResult pending_end_{};  // kOk, or an end read() found behind data it returned
  bool handshake_done_ = false;
  bool failed_ = false;  // a fatal error: no close_notify
  bool free_buffers_;    // release_buffers() may call SSL_free_buffers
  int64_t handshake_started_ns_ = 0;
  int64_t handshake_ns_ = 0;
  std::string error_text_;  // empty (no heap) until an error
};

// The cause a certificate verification result (X509_V_ERR_*) counts as.
metrics::ErrorCause certificate_error_cause(long verify_result);

}  // namespace millstone::tls
