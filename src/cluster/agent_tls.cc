#include "cluster/agent_tls.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls/certificate.h"

namespace millstone::cluster {

namespace {

tls::TlsServerOptions server_options() {
  tls::TlsServerOptions options;
  options.min_version = tls::TlsVersion::k1_3;
  options.max_version = tls::TlsVersion::k1_3;
  return options;
}

}  // namespace

std::unique_ptr<tls::TlsServerContext> coordinator_tls_context(const Token& token) {
  tls::CertificateSpec spec;
  spec.common_name = "millstone coordinator";
  const tls::Certificate certificate =
      tls::issue_certificate_for_key(spec, token.coordinator_key());
  auto context = std::make_unique<tls::TlsServerContext>(server_options(), certificate);
  SSL_CTX* ctx = context->native();
  // Every connection is a full handshake: nothing to resume, nothing replayable.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_max_early_data(ctx, 0);
  return context;
}

AgentClientTls::AgentClientTls(const Token& token) : pin_(token.coordinator_spki()) {
  tls::TlsClientOptions options;
  options.insecure = true;  // no CA store, no name: verify() below decides alone
  options.min_version = tls::TlsVersion::k1_3;
  options.max_version = tls::TlsVersion::k1_3;
  options.resume_sessions = false;
  context_ = std::make_unique<tls::TlsClientContext>(options);
  SSL_CTX* ctx = context_->native();
  // Replaces chain building: the leaf's key is the pin or the handshake fails.
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_cert_verify_callback(ctx, &AgentClientTls::verify, &pin_);
}

int AgentClientTls::verify(X509_STORE_CTX* store, void* pin) {
  X509* leaf = X509_STORE_CTX_get0_cert(store);
  EVP_PKEY* key = leaf != nullptr ? X509_get0_pubkey(leaf) : nullptr;
  if (key != nullptr && spki_der(key) == *static_cast<const std::string*>(pin)) return 1;
  X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
  return 0;
}

}  // namespace millstone::cluster
