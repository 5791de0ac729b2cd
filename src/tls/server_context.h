#pragma once
// The server side of TLS (for the mock server): an SSL_CTX built once from
// TlsServerOptions, with the configured certificate or a self-signed one
// made at start-up, and ALPN chosen from the server's list.
#include <string>

#include "tls/certificate.h"
#include "tls/openssl_ptr.h"
#include "tls/options.h"

namespace millstone::tls {

class TlsServerContext {
 public:
  // Throws TlsSetupError naming the file and what is wrong with it.
  explicit TlsServerContext(const TlsServerOptions& options);
  // Presents `certificate` (made in memory) instead of the options' files or
  // a self-signed one: the agent link's certificate (cluster/agent_tls.h).
  TlsServerContext(const TlsServerOptions& options, const Certificate& certificate);
  TlsServerContext(const TlsServerContext&) = delete;
  TlsServerContext& operator=(const TlsServerContext&) = delete;

  // The certificate presented, in PEM: clients that should trust a
  // self-signed one load it as their CA file.
  const std::string& certificate_pem() const { return certificate_pem_; }
  // SHA-256 of the certificate's DER form, as "AB:CD:...": what browsers and
  // `openssl x509 -fingerprint -sha256` show.
  std::string fingerprint_sha256() const;
  SSL_CTX* native() const { return ctx_.get(); }
  const BIO_METHOD* bio_method() const { return bio_method_.get(); }
  bool free_buffers_is_safe() const { return free_buffers_is_safe_; }

 private:
  static int select_alpn(SSL* ssl, const unsigned char** out, unsigned char* out_size,
                         const unsigned char* offered, unsigned offered_size, void* self);

  SslCtxPtr ctx_;
  BioMethodPtr bio_method_;
  bool free_buffers_is_safe_;  // see tls/setup.h
  std::string alpn_wire_;      // the server's preference order, wire format
  std::string certificate_pem_;
};

}  // namespace millstone::tls
