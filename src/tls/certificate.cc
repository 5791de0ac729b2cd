#include "tls/certificate.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "tls/options.h"

namespace millstone::tls {
namespace {

[[noreturn]] void fail(const std::string& what) {
  const unsigned long err = ERR_get_error();
  ERR_clear_error();
  std::string text = "TLS certificate generation: " + what;
  if (err != 0) text += std::string(": ") + ERR_reason_error_string(err);
  throw TlsSetupError(text);
}

void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) fail("extension " + value);
  const int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (ok != 1) fail("extension " + value);
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(size));
}

}  // namespace

std::string Certificate::certificate_pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), x509.get()) != 1) fail("PEM encoding");
  return bio_text(bio.get());
}

std::string Certificate::key_pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    fail("PEM encoding");
  }
  return bio_text(bio.get());
}

Certificate issue_certificate(const CertificateSpec& spec, const Certificate* issuer) {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) fail("EC P-256 key");
  return issue_certificate_for_key(spec, std::move(key), issuer);
}

Certificate issue_certificate_for_key(const CertificateSpec& spec, EvpPkeyPtr key,
                                      const Certificate* issuer) {
  Certificate out;
  out.key = std::move(key);
  if (!out.key) fail("no key");
  out.x509.reset(X509_new());
  X509* cert = out.x509.get();
  if (cert == nullptr) fail("X509_new");

  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) fail("serial number");
  serial[0] &= 0x7f;  // a positive INTEGER
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  const bool serial_set = bn != nullptr && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
  BN_free(bn);
  if (!serial_set) fail("serial number");

  X509_set_version(cert, X509_VERSION_3);
  X509_gmtime_adj(X509_getm_notBefore(cert), static_cast<long>(spec.valid_from_s));
  X509_gmtime_adj(X509_getm_notAfter(cert), static_cast<long>(spec.valid_until_s));
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(spec.common_name.c_str()), -1,
                             -1, 0);
  X509* signer = issuer != nullptr ? issuer->x509.get() : cert;
  if (X509_set_issuer_name(cert, X509_get_subject_name(signer)) != 1) fail("issuer name");
  if (X509_set_pubkey(cert, out.key.get()) != 1) fail("public key");

  add_extension(cert, signer, NID_subject_key_identifier, "hash");
  if (issuer != nullptr) add_extension(cert, signer, NID_authority_key_identifier, "keyid:always");
  if (spec.is_ca) {
    add_extension(cert, signer, NID_basic_constraints, "critical,CA:TRUE");
    add_extension(cert, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  }
  std::string names;
  for (const std::string& dns : spec.dns_names)
    names += (names.empty() ? "DNS:" : ",DNS:") + dns;
  for (const std::string& ip : spec.ip_addresses)
    names += (names.empty() ? "IP:" : ",IP:") + ip;
  if (!names.empty()) add_extension(cert, signer, NID_subject_alt_name, names);

  EVP_PKEY* signing_key = issuer != nullptr ? issuer->key.get() : out.key.get();
  if (X509_sign(cert, signing_key, EVP_sha256()) == 0) fail("signature");
  return out;
}

Certificate self_signed_localhost() {
  CertificateSpec spec;
  spec.common_name = "localhost";
  spec.dns_names = {"localhost"};
  spec.ip_addresses = {"127.0.0.1", "::1"};
  return issue_certificate(spec);
}

}  // namespace millstone::tls
