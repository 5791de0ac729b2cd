#pragma once
// X.509 certificates made in memory: the mock's self-signed certificate when
// none is given, and the CAs and leaves of the TLS tests. Start-up only;
// failures throw TlsSetupError.
#include <cstdint>
#include <string>
#include <vector>

#include "tls/openssl_ptr.h"

namespace millstone::tls {

struct CertificateSpec {
  std::string common_name = "millstone";
  std::vector<std::string> dns_names;     // subjectAltName DNS entries
  std::vector<std::string> ip_addresses;  // subjectAltName IP entries ("127.0.0.1", "::1")
  // Validity relative to now, in seconds (negative: in the past).
  int64_t valid_from_s = -3600;
  int64_t valid_until_s = int64_t{365} * 24 * 3600;
  bool is_ca = false;
};

// An EC P-256 key and its certificate.
struct Certificate {
  X509Ptr x509;
  EvpPkeyPtr key;
  std::string certificate_pem() const;
  std::string key_pem() const;
};

// Signed by `issuer`, or self-signed when it is null.
Certificate issue_certificate(const CertificateSpec& spec, const Certificate* issuer = nullptr);
// The same for a key the caller made (the agent link's coordinator key,
// derived from the join token: cluster/token.h).
Certificate issue_certificate_for_key(const CertificateSpec& spec, EvpPkeyPtr key,
                                      const Certificate* issuer = nullptr);
// What a TLS server without configured files presents: self-signed, valid for
// a year, naming localhost, 127.0.0.1 and ::1.
Certificate self_signed_localhost();

}  // namespace millstone::tls
