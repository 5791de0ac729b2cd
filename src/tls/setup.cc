#include "tls/setup.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace millstone::tls {

[[noreturn]] void throw_openssl(const std::string& what) {
  const unsigned long err = ERR_get_error();
  ERR_clear_error();
  std::string text = what;
  if (err != 0 && ERR_reason_error_string(err) != nullptr) {
    text += std::string(" (") + ERR_reason_error_string(err) + ")";
  }
  throw TlsSetupError(text);
}

bool free_buffers_is_safe() {
  return free_buffers_is_safe(OpenSSL_version_num());
}

bool free_buffers_is_safe(unsigned long v) {
  const unsigned long major = v >> 28, minor = (v >> 20) & 0xff, patch = (v >> 4) & 0xff;
  if (major != 3 || minor >= 4) return major >= 3;
  static constexpr unsigned long kFixedPatch[] = {14, 6, 2, 1};  // 3.0.14, 3.1.6, 3.2.2, 3.3.1
  return patch >= kFixedPatch[minor];
}

int openssl_version(TlsVersion version) {
  return version == TlsVersion::k1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
}

std::string alpn_wire(const std::vector<std::string>& protocols, std::string_view what) {
  std::string wire;
  for (const std::string& protocol : protocols) {
    if (protocol.empty() || protocol.size() > 255) {
      throw TlsSetupError(std::string(what) + ": ALPN protocol names are 1 to 255 bytes, got '" +
                          protocol + "'");
    }
    wire.push_back(static_cast<char>(protocol.size()));
    wire += protocol;
  }
  return wire;
}

void check_readable(const std::string& path, std::string_view what) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    throw TlsSetupError(std::string(what) + " " + path + ": " + std::strerror(errno));
  }
  std::fclose(file);
}

void use_certificate_files(SSL_CTX* ctx, const std::string& cert_file, const std::string& key_file,
                           const std::string& what) {
  check_readable(cert_file, what + " certificate");
  check_readable(key_file, what + " key");
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    throw_openssl(what + " certificate " + cert_file + ": not a PEM certificate");
  }
  // Read apart from SSL_CTX_use_PrivateKey, which reports a key that does
  // not match as if it were unreadable.
  BioPtr file(BIO_new_file(key_file.c_str(), "r"));
  EvpPkeyPtr key(file ? PEM_read_bio_PrivateKey(file.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) throw_openssl(what + " key " + key_file + ": not a PEM private key");
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    throw_openssl(what + " key " + key_file + " does not match the certificate " + cert_file);
  }
}

void configure_context(SSL_CTX* ctx, TlsVersion min_version, TlsVersion max_version,
                       std::string_view what) {
  if (min_version > max_version) {
    throw TlsSetupError(std::string(what) + ": the minimum version is above the maximum version");
  }
  SSL_CTX_set_min_proto_version(ctx, openssl_version(min_version));
  SSL_CTX_set_max_proto_version(ctx, openssl_version(max_version));
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_read_ahead(ctx, 1);
}

}  // namespace millstone::tls
