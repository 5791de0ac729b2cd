#pragma once
// The join secret of remote agents (docs/design/agents.md): `mst1.` followed
// by 32 random bytes in base64url. Both ends derive from it, with HKDF-SHA256
// and distinct labels, everything the link needs: the coordinator's P-256 key
// (its certificate is self-signed with it; agents pin its public key) and the
// MAC key of the proofs exchanged after the TLS handshake. Start-up code:
// failures throw TokenError, one line naming the file and what is wrong.
#include <array>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "tls/openssl_ptr.h"

namespace millstone::cluster {

class TokenError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// HKDF-SHA256 (RFC 5869) through OpenSSL 3's EVP_KDF: `size` bytes of output
// keying material. Throws TokenError only if OpenSSL fails.
std::string hkdf_sha256(std::string_view key, std::string_view salt, std::string_view info,
                        size_t size);

class Token {
 public:
  static constexpr size_t kSecretSize = 32;
  static constexpr std::string_view kPrefix = "mst1.";
  // The HKDF salt: a later token format derives other keys from the same bytes.
  static constexpr std::string_view kSalt = "millstone join token mst1";

  // 32 bytes from OpenSSL's CSPRNG.
  static Token generate();
  // Exactly `mst1.` and 43 base64url characters (no padding, canonical last
  // character); whitespace around it (a file's newline) is ignored. nullopt
  // with *error saying what is wrong, never quoting the text (it may be a
  // secret with a typo).
  static std::optional<Token> parse(std::string_view text, std::string* error);
  // Reads a token file. Refuses, like ssh does with keys, a file that its
  // group or others may access (mode & 077), a missing or unreadable one, and
  // one that does not hold a token.
  static Token read_file(const std::string& path);

  std::string text() const;
  // HKDF-SHA256 of the secret under `label`.
  std::string derive(std::string_view label, size_t size) const;
  // The coordinator's P-256 key, a deterministic function of the secret
  // (label "coordinator-key").
  tls::EvpPkeyPtr coordinator_key() const;
  // Its public half as DER SubjectPublicKeyInfo: what an agent pins.
  std::string coordinator_spki() const;
  // The MAC key of the proofs (label "proof"), 32 bytes.
  std::string proof_key() const;

  friend bool operator==(const Token&, const Token&) = default;

 private:
  Token() = default;
  std::array<unsigned char, kSecretSize> secret_{};
};

// DER SubjectPublicKeyInfo of `key`; empty if OpenSSL fails.
std::string spki_der(EVP_PKEY* key);

}  // namespace millstone::cluster
