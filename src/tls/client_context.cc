#include "tls/client_context.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>

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

BioPtr memory_bio(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) throw_openssl("TLS: out of memory");
  return bio;
}

// Every certificate of a PEM bundle becomes a trusted CA.
void load_ca_pem(SSL_CTX* ctx, const std::string& pem, const std::string& name) {
  BioPtr bio = memory_bio(pem);
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  int loaded = 0;
  while (X509Ptr cert{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)}) {
    if (X509_STORE_add_cert(store, cert.get()) != 1) {
      throw_openssl("TLS CA file " + name + ": cannot add a certificate");
    }
    ++loaded;
  }
  ERR_clear_error();  // the end of the bundle reads as a "no start line" error
  if (loaded == 0) throw TlsSetupError("TLS CA file " + name + ": no PEM certificate in it");
}

// The leaf first, then its chain, as SSL_CTX_use_certificate_chain_file reads a file.
void use_certificate_pem(SSL_CTX* ctx, const TlsClientOptions& options) {
  const std::string& cert_name = options.cert_file;
  const std::string& key_name = options.key_file;
  BioPtr bio = memory_bio(options.cert_pem);
  X509Ptr leaf(PEM_read_bio_X509_AUX(bio.get(), nullptr, nullptr, nullptr));
  if (!leaf || SSL_CTX_use_certificate(ctx, leaf.get()) != 1) {
    throw_openssl("TLS client certificate " + cert_name + ": not a PEM certificate");
  }
  while (X509Ptr issuer{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)}) {
    if (SSL_CTX_add1_chain_cert(ctx, issuer.get()) != 1) {
      throw_openssl("TLS client certificate " + cert_name + ": cannot use its chain");
    }
  }
  ERR_clear_error();
  BioPtr key_bio = memory_bio(options.key_pem);
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!key) throw_openssl("TLS client key " + key_name + ": not a PEM private key");
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    throw_openssl("TLS client key " + key_name + " does not match the certificate " + cert_name);
  }
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
  configure_context(ctx, options.min_version, options.max_version, "TLS");

  if (options.insecure) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    if (!options.ca_pem.empty()) {
      load_ca_pem(ctx, options.ca_pem, options.ca_file);
    } else if (options.ca_file.empty()) {
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

  const bool has_cert = !options.cert_file.empty() || !options.cert_pem.empty();
  const bool has_key = !options.key_file.empty() || !options.key_pem.empty();
  if (has_cert != has_key) {
    throw TlsSetupError(
        "TLS client certificate: give both the certificate file and the key file, or neither");
  }
  if (!options.cert_pem.empty() && !options.key_pem.empty()) {
    use_certificate_pem(ctx, options);
  } else if (has_cert) {
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
