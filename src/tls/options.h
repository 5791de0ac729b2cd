#pragma once
// What a TLS client or server is configured with. Built once at start-up from
// flags or a scenario file, then immutable; the contexts check it and turn
// every bad file into one clear TlsSetupError.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace millstone::tls {

enum class TlsVersion : uint8_t { k1_2, k1_3 };

// A start-up failure (unreadable CA file, key that does not match its
// certificate...). Never thrown once streams exist.
class TlsSetupError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct TlsClientOptions {
  // Verification is on unless asked otherwise: the server's chain must lead
  // to a trusted CA and its certificate must name the host.
  bool insecure = false;
  std::string ca_file;  // PEM bundle; empty: the system's trust store
  // Client certificate for servers that ask for one; both or neither.
  std::string cert_file;
  std::string key_file;
  // The same as PEM text, used instead of reading the file when not empty
  // (a run plan carries the contents to workers and remote agents); the
  // *_file names then only name them in messages.
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
  TlsVersion min_version = TlsVersion::k1_2;
  TlsVersion max_version = TlsVersion::k1_3;
  // Offered in this order ("h2", "http/1.1"); empty: no ALPN extension.
  std::vector<std::string> alpn;
  // Resume with the last session (TLS 1.2 id or TLS 1.3 ticket) per target.
  bool resume_sessions = true;
};

struct TlsServerOptions {
  // Both or neither; neither: a self-signed certificate made at start-up
  // (EC P-256, names localhost, 127.0.0.1 and ::1).
  std::string cert_file;
  std::string key_file;
  // When set, clients must present a certificate signed by a CA in it.
  std::string client_ca_file;
  TlsVersion min_version = TlsVersion::k1_2;
  TlsVersion max_version = TlsVersion::k1_3;
  // Chosen in this (the server's) order from what the client offers; no
  // overlap means no ALPN answer, and the client falls back to its default.
  std::vector<std::string> alpn;
};

}  // namespace millstone::tls
