#pragma once
// TLS for the agent link (docs/design/agents.md): TLS 1.3 only, no session
// resumption, no 0-RTT, both ends configured from the join token alone.
//
// The coordinator presents a certificate self-signed with the key the token
// derives; the agent accepts a server only if the certificate's public key
// (SPKI) is that key: no CA, no host name, nothing else to copy or expire.
// TLS 1.3's CertificateVerify proves the server holds the private half.
#include <memory>
#include <string>

#include "cluster/token.h"
#include "tls/client_context.h"
#include "tls/server_context.h"

namespace millstone::cluster {

// Throws TokenError or tls::TlsSetupError (start-up only).
std::unique_ptr<tls::TlsServerContext> coordinator_tls_context(const Token& token);

class AgentClientTls {
 public:
  explicit AgentClientTls(const Token& token);
  AgentClientTls(const AgentClientTls&) = delete;
  AgentClientTls& operator=(const AgentClientTls&) = delete;

  tls::TlsClientContext& context() { return *context_; }
  // The target streams are made for: no name sent, none checked.
  tls::TlsTarget& target() { return target_; }
  const std::string& pinned_spki() const { return pin_; }

 private:
  static int verify(X509_STORE_CTX* store, void* pin);

  std::string pin_;
  std::unique_ptr<tls::TlsClientContext> context_;
  tls::TlsTarget target_;
};

}  // namespace millstone::cluster
