#include "tls/tls_stream.h"

#include <openssl/err.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "net/clock.h"
#include "net/socket.h"

namespace millstone::tls {

using metrics::ErrorCause;
using net::Readiness;
using net::StreamResult;
using net::StreamStatus;

ErrorCause certificate_error_cause(long verify_result) {
  switch (verify_result) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return ErrorCause::kTlsCertificateExpired;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return ErrorCause::kTlsCertificateHostname;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
      return ErrorCause::kTlsCertificateUntrusted;
    default:
      return ErrorCause::kTlsCertificate;
  }
}

std::unique_ptr<TlsStream> TlsStream::client(TlsClientContext& context, TlsTarget& target, int fd) {
  SslPtr ssl(SSL_new(context.native()));
  if (!ssl) {
    ::close(fd);
    return nullptr;
  }
  // The constructor is private: make_unique cannot reach it.
  std::unique_ptr<TlsStream> stream(
      new TlsStream(std::move(ssl), context.bio_method(), fd, context.free_buffers_is_safe()));
  if (!stream->ssl_) return nullptr;
  SSL* s = stream->ssl_.get();
  SSL_set_connect_state(s);
  SSL_set_app_data(s, &target);  // for the new-session callback
  const std::string& name = target.server_name;
  bool ok = true;
  if (!name.empty() && !target.ip_literal) ok = SSL_set_tlsext_host_name(s, name.c_str()) == 1;
  if (ok && !name.empty() && !context.options().insecure) {
    ok = target.ip_literal ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), name.c_str()) == 1
                           : SSL_set1_host(s, name.c_str()) == 1;
  }
  if (ok && context.options().resume_sessions && target.last_session) {
    ok = SSL_set_session(s, target.last_session.get()) == 1;
  }
  if (!ok) {
    ERR_clear_error();
    return nullptr;  // out of memory; the destructor closes the socket
  }
  return stream;
}

std::unique_ptr<TlsStream> TlsStream::server(const TlsServerContext& context, int fd) {
  SslPtr ssl(SSL_new(context.native()));
  if (!ssl) {
    ::close(fd);
    return nullptr;
  }
  std::unique_ptr<TlsStream> stream(
      new TlsStream(std::move(ssl), context.bio_method(), fd, context.free_buffers_is_safe()));
  if (!stream->ssl_) return nullptr;
  SSL_set_accept_state(stream->ssl_.get());
  return stream;
}

TlsStream::TlsStream(SslPtr ssl, const BIO_METHOD* method, int fd, bool free_buffers)
    : ssl_(std::move(ssl)), free_buffers_(free_buffers) {
  bio_state_.fd = fd;
  BIO* bio = new_fd_bio(method, &bio_state_);
  if (bio == nullptr) {
    ssl_.reset();
    return;
  }
  SSL_set_bio(ssl_.get(), bio, bio);  // one reference for both directions, now the SSL's
}

TlsStream::~TlsStream() {
  close(false);
}

StreamResult TlsStream::handshake() {
  if (handshake_done_) return {};
  if (!ssl_) return fail(ErrorCause::kIoOther, "the stream is closed");
  if (handshake_started_ns_ == 0) handshake_started_ns_ = net::now_ns();
  const int ret = SSL_do_handshake(ssl_.get());
  if (ret == 1) {
    handshake_done_ = true;
    handshake_ns_ = net::now_ns() - handshake_started_ns_;
    return {};
  }
  return outcome(ret);
}

StreamResult TlsStream::read(char* buffer, size_t size) {
  if (pending_end_.status != StreamStatus::kOk) return pending_end_;
  if (!ssl_) return fail(ErrorCause::kIoOther, "the stream is closed");
  bio_state_.drained = false;
  size_t total = 0;
  while (total < size) {
    const int chunk = static_cast<int>(std::min<size_t>(size - total, INT_MAX));
    const int n = SSL_read(ssl_.get(), buffer + total, chunk);
    if (n > 0) {
      total += static_cast<size_t>(n);
      // The last recv came back short and OpenSSL holds no more record
      // bytes: the socket is drained, and asking again would only cost a
      // recv returning EAGAIN.
      if (bio_state_.drained && SSL_has_pending(ssl_.get()) == 0) {
        release_buffers();
        return {.status = StreamStatus::kOk, .bytes = total, .drained = true};
      }
      continue;
    }
    const StreamResult end = outcome(n);
    if (end.status == StreamStatus::kWouldBlock && end.wait == Readiness::kReadable) {
      release_buffers();
    }
    // An end is final: later calls repeat it rather than ask OpenSSL again,
    // which after a fatal error has nothing left to say.
    if (end.status == StreamStatus::kClosed || end.status == StreamStatus::kError) {
      pending_end_ = end;
    }
    if (total == 0) return end;
    if (end.status == StreamStatus::kWouldBlock) {
      return {
          .status = StreamStatus::kOk, .bytes = total, .drained = end.wait == Readiness::kReadable};
    }
    // The data first; the end of the stream or the failure with the next call.
    return {.status = StreamStatus::kOk, .bytes = total};
  }
  return {.status = StreamStatus::kOk, .bytes = total};
}

StreamResult TlsStream::write(std::string_view data) {
  if (!ssl_) return fail(ErrorCause::kIoOther, "the stream is closed");
  size_t total = 0;
  while (total < data.size()) {
    const int chunk = static_cast<int>(std::min<size_t>(data.size() - total, INT_MAX));
    // Partial-write mode: each record written counts, so a would-block
    // leaves `total` at a record boundary and the retry starts there.
    const int n = SSL_write(ssl_.get(), data.data() + total, chunk);
    if (n > 0) {
      total += static_cast<size_t>(n);
      continue;
    }
    StreamResult result = outcome(n);
    result.bytes = total;
    return result;
  }
  return {.status = StreamStatus::kOk, .bytes = total};
}

void TlsStream::close(bool reset) {
  if (bio_state_.fd < 0) return;
  // A close_notify costs one send and lets the server tell our close from a
  // truncation; OpenSSL forbids it after a fatal error.
  if (!reset && handshake_done_ && !failed_ && ssl_) {
    SSL_shutdown(ssl_.get());
    ERR_clear_error();
  }
  if (reset) {
    net::close_with_reset(bio_state_.fd);
  } else {
    ::close(bio_state_.fd);
  }
  bio_state_.fd = -1;
  ssl_.reset();  // a closed stream holds no OpenSSL memory
}

void TlsStream::release_buffers() {
  // SSL_MODE_RELEASE_BUFFERS misses one case: the read buffer that took
  // TLS 1.3 session tickets stays allocated (16.7 KiB per idle connection,
  // measured by tests/tls/idle_memory_test.cc). Freeing it here costs
  // nothing when OpenSSL already has, and is refused while bytes are pending.
  if (free_buffers_) SSL_free_buffers(ssl_.get());
}

bool TlsStream::resumed() const {
  return ssl_ && SSL_session_reused(ssl_.get()) == 1;
}

std::string_view TlsStream::alpn() const {
  if (!ssl_) return {};
  const unsigned char* data = nullptr;
  unsigned size = 0;
  SSL_get0_alpn_selected(ssl_.get(), &data, &size);
  return {reinterpret_cast<const char*>(data), size};
}

std::string_view TlsStream::version() const {
  if (!ssl_ || !handshake_done_) return {};
  return SSL_get_version(ssl_.get());
}

std::string TlsStream::export_keying_material(std::string_view label, size_t size) const {
  if (!ssl_ || !handshake_done_) return {};
  std::string out(size, '\0');
  const std::string name(label);
  if (SSL_export_keying_material(ssl_.get(), reinterpret_cast<unsigned char*>(out.data()), size,
                                 name.c_str(), name.size(), nullptr, 0, 0) != 1) {
    ERR_clear_error();
    return {};
  }
  return out;
}

StreamResult TlsStream::outcome(int ret) {
  const int code = SSL_get_error(ssl_.get(), ret);
  switch (code) {
    case SSL_ERROR_WANT_READ:
      return {.status = StreamStatus::kWouldBlock, .wait = Readiness::kReadable};
    case SSL_ERROR_WANT_WRITE:
      return {.status = StreamStatus::kWouldBlock, .wait = Readiness::kWritable};
    case SSL_ERROR_ZERO_RETURN:  // the peer's close_notify
      if (handshake_done_) return {.status = StreamStatus::kClosed};
      return fail(ErrorCause::kTlsHandshake,
                  "the peer closed the connection during the TLS handshake");
    case SSL_ERROR_SYSCALL:
    case SSL_ERROR_SSL:
      break;
    default:
      return fail(ErrorCause::kIoOther, "unexpected OpenSSL state " + std::to_string(code));
  }
  const unsigned long err = ERR_peek_error();
  const int reason = err != 0 ? ERR_GET_REASON(err) : 0;

  // The socket ended (FIN without close_notify, reset, another errno).
  if (code == SSL_ERROR_SYSCALL || reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
    const int socket_error = bio_state_.error;
    if (handshake_done_) {
      if (socket_error == 0) {
        // Servers often close without a close_notify; at a message boundary
        // that is an ordinary end, and the session above judges truncation.
        // OpenSSL counts it as fatal: no close_notify back.
        ERR_clear_error();
        failed_ = true;
        return {.status = StreamStatus::kClosed};
      }
      return fail(net::io_error_cause(socket_error), std::strerror(socket_error));
    }
    if (socket_error != 0) {
      return fail(ErrorCause::kTlsHandshake,
                  std::string(std::strerror(socket_error)) + " during the TLS handshake");
    }
    return fail(ErrorCause::kTlsHandshake,
                "the peer closed the connection during the TLS handshake");
  }

  if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    const long verify = SSL_get_verify_result(ssl_.get());
    return fail(certificate_error_cause(verify),
                std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify));
  }
  if (reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256) {
    const int alert = reason - SSL_AD_REASON_OFFSET;
    // OpenSSL's reason names alerts its alert table does not (certificate_required).
    const char* words = ERR_reason_error_string(err);
    std::string text = "the peer sent an alert: " +
                       (words != nullptr ? std::string(words) : std::to_string(alert));
    return fail(alert == SSL_AD_PROTOCOL_VERSION ? ErrorCause::kTlsProtocolVersion
                                                 : ErrorCause::kTlsAlertReceived,
                std::move(text));
  }
  const char* words = ERR_reason_error_string(err);
  std::string text = words != nullptr ? words : "TLS error " + std::to_string(reason);
  switch (reason) {
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_UNSUPPORTED_SSL_VERSION:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_VERSION_TOO_HIGH:
      return fail(ErrorCause::kTlsProtocolVersion, std::move(text));
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
      // What the first bytes of a plaintext answer ("HTTP/1.1 400...") or
      // random bytes look like to a record parser.
      if (!handshake_done_) text += " (the server does not speak TLS here?)";
      break;
    default:
      break;
  }
  return fail(handshake_done_ ? ErrorCause::kProtocolError : ErrorCause::kTlsHandshake,
              std::move(text));
}

StreamResult TlsStream::fail(ErrorCause cause, std::string text) {
  // The thread's error queue is shared by every stream of the worker: leave
  // it empty for the next SSL_get_error.
  ERR_clear_error();
  failed_ = true;
  error_text_ = std::move(text);
  return {.status = StreamStatus::kError, .cause = cause};
}

}  // namespace millstone::tls
