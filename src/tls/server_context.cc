#include "tls/server_context.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tls/certificate.h"
#include "tls/fd_bio.h"
#include "tls/setup.h"

namespace millstone::tls {
namespace {

std::string pem_of(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) throw_openssl("TLS server certificate");
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

}  // namespace

TlsServerContext::TlsServerContext(const TlsServerOptions& options)
    : ctx_(SSL_CTX_new(TLS_server_method())),
      bio_method_(make_fd_bio_method()),
      free_buffers_is_safe_(tls::free_buffers_is_safe()) {
  if (!ctx_) throw_openssl("TLS server context");
  SSL_CTX* ctx = ctx_.get();
  configure_context(ctx, options.min_version, options.max_version, "TLS server");
  // TLS 1.2 session ids are looked up under this name (required once client
  // certificates are verified).
  static constexpr unsigned char kSessionContext[] = "millstone";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);

  if (options.cert_file.empty() != options.key_file.empty()) {
    throw TlsSetupError(
        "TLS server certificate: give both the certificate file and the key file, or neither");
  }
  if (options.cert_file.empty()) {
    const Certificate self_signed = self_signed_localhost();
    if (SSL_CTX_use_certificate(ctx, self_signed.x509.get()) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, self_signed.key.get()) != 1) {
      throw_openssl("TLS server: the self-signed certificate");
    }
    certificate_pem_ = self_signed.certificate_pem();
  } else {
    use_certificate_files(ctx, options.cert_file, options.key_file, "TLS server");
    certificate_pem_ = pem_of(SSL_CTX_get0_certificate(ctx));
  }

  if (!options.client_ca_file.empty()) {
    check_readable(options.client_ca_file, "TLS client CA file");
    if (SSL_CTX_load_verify_locations(ctx, options.client_ca_file.c_str(), nullptr) != 1) {
      throw_openssl("TLS client CA file " + options.client_ca_file +
                    ": no PEM certificate could be loaded");
    }
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options.client_ca_file.c_str());
    if (names != nullptr) SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }

  if (!options.alpn.empty()) {
    alpn_wire_ = alpn_wire(options.alpn, "TLS server");
    SSL_CTX_set_alpn_select_cb(ctx, &TlsServerContext::select_alpn, this);
  }
}

TlsServerContext::TlsServerContext(const TlsServerOptions& options, const Certificate& certificate)
    : ctx_(SSL_CTX_new(TLS_server_method())),
      bio_method_(make_fd_bio_method()),
      free_buffers_is_safe_(tls::free_buffers_is_safe()) {
  if (!ctx_) throw_openssl("TLS server context");
  SSL_CTX* ctx = ctx_.get();
  configure_context(ctx, options.min_version, options.max_version, "TLS server");
  if (SSL_CTX_use_certificate(ctx, certificate.x509.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx, certificate.key.get()) != 1) {
    throw_openssl("TLS server: the certificate made in memory");
  }
  certificate_pem_ = certificate.certificate_pem();
  if (!options.alpn.empty()) {
    alpn_wire_ = alpn_wire(options.alpn, "TLS server");
    SSL_CTX_set_alpn_select_cb(ctx, &TlsServerContext::select_alpn, this);
  }
}

std::string TlsServerContext::fingerprint_sha256() const {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned size = 0;
  const X509* cert = SSL_CTX_get0_certificate(ctx_.get());
  if (cert == nullptr || X509_digest(cert, EVP_sha256(), digest, &size) != 1) return {};
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned i = 0; i < size; ++i) {
    if (i) out += ':';
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xf];
  }
  return out;
}

int TlsServerContext::select_alpn(SSL*, const unsigned char** out, unsigned char* out_size,
                                  const unsigned char* offered, unsigned offered_size, void* self) {
  const std::string& ours = static_cast<TlsServerContext*>(self)->alpn_wire_;
  unsigned char* chosen = nullptr;
  // The first argument is the preference list: the server's.
  if (SSL_select_next_proto(&chosen, out_size, reinterpret_cast<const unsigned char*>(ours.data()),
                            static_cast<unsigned>(ours.size()), offered,
                            offered_size) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace millstone::tls
