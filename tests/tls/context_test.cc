// Start-up errors: every bad option is one TlsSetupError naming the file and the problem.
#include <openssl/x509v3.h>

#include <gtest/gtest.h>

#include "tls/client_context.h"
#include "tls/server_context.h"
#include "tls/setup.h"
#include "tls_harness.h"

namespace millstone::tls {
namespace context_test {

using namespace testing;

std::string setup_error(const TlsClientOptions& options) {
  try {
    TlsClientContext context(options);
  } catch (const TlsSetupError& e) {
    return e.what();
  }
  return "";
}

std::string setup_error(const TlsServerOptions& options) {
  try {
    TlsServerContext context(options);
  } catch (const TlsSetupError& e) {
    return e.what();
  }
  return "";
}

TEST(TlsClientContext, DefaultsVerifyAgainstTheSystemStore) {
  TlsClientContext context({});
  EXPECT_EQ(SSL_CTX_get_verify_mode(context.native()), SSL_VERIFY_PEER);
  EXPECT_FALSE(context.options().insecure);
}

TEST(TlsClientContext, MissingCaFileNamesIt) {
  TlsClientOptions options;
  options.ca_file = "/nonexistent/ca.pem";
  const std::string error = setup_error(options);
  EXPECT_NE(error.find("TLS CA file /nonexistent/ca.pem"), std::string::npos) << error;
  EXPECT_NE(error.find("No such file"), std::string::npos) << error;
}

TEST(TlsClientContext, CaFileWithoutCertificates) {
  TempFolder folder;
  TlsClientOptions options;
  options.ca_file = folder.write("empty.pem", "not a certificate\n");
  const std::string error = setup_error(options);
  EXPECT_NE(error.find(options.ca_file), std::string::npos) << error;
  EXPECT_NE(error.find("no PEM certificate"), std::string::npos) << error;
}

TEST(TlsClientContext, CertificateWithoutKey) {
  TempFolder folder;
  Pki pki(folder);
  TlsClientOptions options;
  options.cert_file = pki.localhost("c").first;
  EXPECT_NE(setup_error(options).find("both the certificate file and the key file"),
            std::string::npos);
}

TEST(TlsClientContext, KeyThatDoesNotMatchTheCertificate) {
  TempFolder folder;
  Pki pki(folder);
  TlsClientOptions options;
  options.cert_file = pki.localhost("one").first;
  options.key_file = pki.localhost("two").second;
  const std::string error = setup_error(options);
  EXPECT_NE(error.find("does not match the certificate " + options.cert_file), std::string::npos)
      << error;
}

TEST(TlsClientContext, KeyFileThatIsNotAKey) {
  TempFolder folder;
  Pki pki(folder);
  TlsClientOptions options;
  options.cert_file = pki.localhost("one").first;
  options.key_file = folder.write("bad.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n");
  const std::string error = setup_error(options);
  EXPECT_NE(error.find("TLS client key " + options.key_file + ": not a PEM private key"),
            std::string::npos)
      << error;
}

TEST(TlsClientContext, BadAlpnNameAndVersionRange) {
  TlsClientOptions options;
  options.alpn = {"h2", ""};
  EXPECT_NE(setup_error(options).find("ALPN protocol names are 1 to 255 bytes"), std::string::npos);
  TlsClientOptions versions;
  versions.min_version = TlsVersion::k1_3;
  versions.max_version = TlsVersion::k1_2;
  EXPECT_NE(setup_error(versions).find("minimum version is above the maximum"), std::string::npos);
}

TEST(TlsClientContext, TargetsAreStableAndKnowIpLiterals) {
  TlsClientContext context({});
  TlsTarget& a = context.target("example.test", 443);
  TlsTarget& b = context.target("127.0.0.1", 443);
  TlsTarget& c = context.target("::1", 443);
  for (int i = 0; i < 100; ++i)
    context.target("host" + std::to_string(i), 443);
  EXPECT_EQ(&context.target("example.test", 443), &a);
  EXPECT_NE(&context.target("example.test", 8443), &a);  // its own sessions
  EXPECT_FALSE(a.ip_literal);
  EXPECT_TRUE(b.ip_literal);
  EXPECT_TRUE(c.ip_literal);
}

TEST(TlsServerContext, SelfSignedWhenNoFilesAreGiven) {
  TlsServerContext context({});
  X509* cert = SSL_CTX_get0_certificate(context.native());
  ASSERT_NE(cert, nullptr);
  EXPECT_EQ(X509_check_host(cert, "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(cert, "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert, "::1", 0), 1);
  EXPECT_NE(X509_check_host(cert, "example.com", 0, 0, nullptr), 1);
  EVP_PKEY* key = X509_get0_pubkey(cert);
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(EVP_PKEY_get_base_id(key), EVP_PKEY_EC);
  EXPECT_NE(context.certificate_pem().find("BEGIN CERTIFICATE"), std::string::npos);
}

TEST(TlsServerContext, FilesAreCheckedAndNamed) {
  TempFolder folder;
  Pki pki(folder);
  TlsServerOptions options;
  options.cert_file = "/nonexistent/server.crt";
  options.key_file = "/nonexistent/server.key";
  EXPECT_NE(setup_error(options).find("TLS server certificate /nonexistent/server.crt"),
            std::string::npos);
  std::tie(options.cert_file, std::ignore) = pki.localhost("one");
  options.key_file = pki.localhost("two").second;
  EXPECT_NE(setup_error(options).find("does not match"), std::string::npos);
  TlsServerOptions client_ca;
  client_ca.client_ca_file = "/nonexistent/clients.pem";
  EXPECT_NE(setup_error(client_ca).find("TLS client CA file /nonexistent/clients.pem"),
            std::string::npos);
}

TEST(TlsSetup, FreeBuffersOnlyOnLibrariesWithTheUseAfterFreeFixed) {
  EXPECT_FALSE(free_buffers_is_safe(0x300000d0UL));  // 3.0.13
  EXPECT_TRUE(free_buffers_is_safe(0x300000e0UL));   // 3.0.14
  EXPECT_FALSE(free_buffers_is_safe(0x30100050UL));  // 3.1.5
  EXPECT_TRUE(free_buffers_is_safe(0x30100060UL));   // 3.1.6
  EXPECT_FALSE(free_buffers_is_safe(0x30200010UL));  // 3.2.1
  EXPECT_TRUE(free_buffers_is_safe(0x30300010UL));   // 3.3.1
  EXPECT_TRUE(free_buffers_is_safe(0x30400000UL));   // 3.4.0
  EXPECT_FALSE(free_buffers_is_safe(0x1010117fUL));  // 1.1.1w
}

}  // namespace context_test
}  // namespace millstone::tls
