#include "tls/client_context.h"

#include <arpa/inet.h>

#include "tls/fd_bio.h"
#include "tls/setup.h"

namespace millstone::tls {
namespace {

// New sessions arrive here (after the handshake for TLS 1.2, with the
// tickets the server sends after it for TLS 1.3); the SSL's app data is its
// target. Returning 1 keeps the reference.
int on_new_session(SSL* ssl, SSL_SESSION* session) {
  auto* target = static_cast<TlsTarget*>(SSL_get_app_data(ssl));
  if (target == nullptr) return 0;
  target->last_session.reset(session);
  return 1;
}

bool is_ip_literal(std::string_view name) {
  const std::string text(name);
  unsigned char address[sizeof(in6_addr)];
  return inet_pton(AF_INET, text.c_str(), address) == 1 ||
         inet_pton(AF_INET6, text.c_str(), address) == 1;
}

}  // namespace

TlsClientContext::TlsClientContext(const TlsClientOptions& options)
    : options_(options),
      ctx_(SSL_CTX_new(TLS_client_method())),
      bio_method_(make_fd_bio_method()),
      free_buffers_is_safe_(tls::free_buffers_is_safe()) {
  if (!ctx_) throw_openssl("TLS client context");
  SSL_CTX* ctx = ctx_.get();
  if (options.min_version > options.max_version) {
    throw TlsSetupError("TLS: the minimum version is above the maximum version");
  }
  SSL_CTX_set_min_proto_version(ctx, openssl_version(options.min_version));
  SSL_CTX_set_max_proto_version(ctx, openssl_version(options.max_version));
  // Buffers are freed while a connection is idle (a million idle connections
  // must not hold 34 KiB each); partial writes let write() report progress
  // record by record, and a moving buffer lets the caller resend from a
  // reallocated string.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // One recv takes every record that has arrived, not a 5-byte header first.
  SSL_CTX_set_read_ahead(ctx, 1);

  if (options.insecure) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    if (options.ca_file.empty()) {
      if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        throw_openssl("TLS: cannot load the system's trusted CA certificates");
      }
    } else {
      check_readable(options.ca_file, "TLS CA file");
      if (SSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr) != 1) {
        throw_openssl("TLS CA file " + options.ca_file + ": no PEM certificate could be loaded");
      }
    }
  }

  if (options.cert_file.empty() != options.key_file.empty()) {
    throw TlsSetupError(
        "TLS client certificate: give both the certificate file and the key file, or neither");
  }
  if (!options.cert_file.empty()) {
    use_certificate_files(ctx, options.cert_file, options.key_file, "TLS client");
  }

  if (!options.alpn.empty()) {
    const std::string wire = alpn_wire(options.alpn, "TLS client");
    // Unlike most of OpenSSL, 0 means success here.
    if (SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(wire.data()),
                                static_cast<unsigned>(wire.size())) != 0) {
      throw_openssl("TLS client ALPN list");
    }
  }

  if (options.resume_sessions) {
    // Sessions live in the targets, not in OpenSSL's internal cache.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
  } else {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  }
}

TlsTarget& TlsClientContext::target(std::string_view server_name, uint16_t port) {
  for (TlsTarget& target : targets_) {
    if (target.server_name == server_name && target.port == port) return target;
  }
  TlsTarget& target = targets_.emplace_back();
  target.server_name = std::string(server_name);
  target.port = port;
  target.ip_literal = is_ip_literal(server_name);
  return target;
}

}  // namespace millstone::tls
