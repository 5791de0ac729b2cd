#pragma once
// Start-up helpers shared by the client and server contexts.
#include <string>
#include <string_view>
#include <vector>

#include "tls/openssl_ptr.h"
#include "tls/options.h"

namespace millstone::tls {

// The OpenSSL constant (TLS1_2_VERSION...).
int openssl_version(TlsVersion version);
// What every context of millstone's sets, client or server: the version
// range (throws "WHAT: the minimum version is above the maximum version"),
// buffers released while a connection is idle (a million idle connections
// must not hold 34 KiB each), partial writes so write() reports progress
// record by record, a moving buffer so the caller may resend from a
// reallocated string, and read-ahead so one recv takes every record that has
// arrived rather than a 5-byte header first.
void configure_context(SSL_CTX* ctx, TlsVersion min_version, TlsVersion max_version,
                       std::string_view what);
// ALPN names in wire format, each prefixed by its length; throws on a bad name.
std::string alpn_wire(const std::vector<std::string>& protocols, std::string_view what);
// Throws "WHAT PATH: No such file or directory" (or whatever errno says).
void check_readable(const std::string& path, std::string_view what);
// Loads a PEM certificate chain and its private key into `ctx`; `what` is
// "TLS client" or "TLS server". Throws naming the file that is wrong.
void use_certificate_files(SSL_CTX* ctx, const std::string& cert_file, const std::string& key_file,
                           const std::string& what);
// SSL_free_buffers may free a buffer still in use before OpenSSL 3.0.14,
// 3.1.6, 3.2.2 and 3.3.1 (CVE-2024-4741): only call it on a fixed library.
// `version` as OpenSSL_version_num() gives it (0xMNN00PP0); default: the
// library in use, not the headers built against.
bool free_buffers_is_safe(unsigned long version);
bool free_buffers_is_safe();
// Throws `what` followed by the reason of OpenSSL's first queued error.
[[noreturn]] void throw_openssl(const std::string& what);

}  // namespace millstone::tls
