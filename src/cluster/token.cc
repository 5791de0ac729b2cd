#include "cluster/token.h"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "tls/openssl_ptr.h"

namespace millstone::cluster {
namespace {

// The OpenSSL owners the TLS layer has, for the types only the token uses.
template <auto Free>
using Freer = tls::OpenSslFree<Free>;
using BnPtr = std::unique_ptr<BIGNUM, Freer<BN_clear_free>>;
using BnCtxPtr = std::unique_ptr<BN_CTX, Freer<BN_CTX_free>>;
using EcGroupPtr = std::unique_ptr<EC_GROUP, Freer<EC_GROUP_free>>;
using EcPointPtr = std::unique_ptr<EC_POINT, Freer<EC_POINT_free>>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, Freer<OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, Freer<OSSL_PARAM_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Freer<EVP_PKEY_CTX_free>>;
using KdfPtr = std::unique_ptr<EVP_KDF, Freer<EVP_KDF_free>>;
using KdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, Freer<EVP_KDF_CTX_free>>;

[[noreturn]] void fail(const std::string& what) {
  const unsigned long err = ERR_get_error();
  ERR_clear_error();
  std::string text = "join token: " + what;
  if (err != 0) text += std::string(": ") + ERR_reason_error_string(err);
  throw TokenError(text);
}

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
// 32 bytes are 256 bits: 42 characters of 6 bits and a 43rd carrying 4.
constexpr size_t kTextSize = 43;

int alphabet_index(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

}  // namespace

std::string hkdf_sha256(std::string_view key, std::string_view salt, std::string_view info,
                        size_t size) {
  KdfPtr kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (!kdf) fail("HKDF is not available");
  KdfCtxPtr ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) fail("HKDF context");
  char digest[] = "SHA256";
  auto octets = [](const char* name, std::string_view bytes) {
    return OSSL_PARAM_construct_octet_string(name, const_cast<char*>(bytes.data()), bytes.size());
  };
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      octets(OSSL_KDF_PARAM_KEY, key),
      octets(OSSL_KDF_PARAM_SALT, salt),
      octets(OSSL_KDF_PARAM_INFO, info),
      OSSL_PARAM_construct_end(),
  };
  std::string out(size, '\0');
  if (EVP_KDF_derive(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), size, params) != 1) {
    fail("HKDF-SHA256");
  }
  return out;
}

Token Token::generate() {
  Token token;
  if (RAND_priv_bytes(token.secret_.data(), static_cast<int>(token.secret_.size())) != 1) {
    fail("no random bytes");
  }
  return token;
}

std::optional<Token> Token::parse(std::string_view text, std::string* error) {
  while (!text.empty() && is_space(text.front()))
    text.remove_prefix(1);
  while (!text.empty() && is_space(text.back()))
    text.remove_suffix(1);
  const std::string expected =
      fmt::format("expected {} followed by {} base64url characters, as `millstone token` prints",
                  kPrefix, kTextSize);
  if (!text.starts_with(kPrefix)) {
    *error = "not a millstone join token: " + expected;
    return std::nullopt;
  }
  text.remove_prefix(kPrefix.size());
  if (text.size() != kTextSize) {
    *error =
        fmt::format("a join token of {} characters after {}: {}", text.size(), kPrefix, expected);
    return std::nullopt;
  }
  Token token;
  uint32_t bits = 0;
  int held = 0;
  size_t out = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const int v = alphabet_index(text[i]);
    if (v < 0) {
      *error = fmt::format("a join token with a character outside base64url at position {}: {}",
                           kPrefix.size() + i + 1, expected);
      return std::nullopt;
    }
    bits = (bits << 6) | static_cast<uint32_t>(v);
    held += 6;
    if (held >= 8) {
      held -= 8;
      token.secret_[out++] = static_cast<unsigned char>(bits >> held);
      bits &= (1u << held) - 1;
    }
  }
  // The last character carries 2 unused bits: a canonical token has them 0,
  // so two texts never name one secret.
  if (bits != 0) {
    *error = "a join token whose last character is not canonical base64url: " + expected;
    return std::nullopt;
  }
  return token;
}

Token Token::read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw TokenError(fmt::format("token file {}: {}", path, std::strerror(errno)));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    throw TokenError(fmt::format("token file {}: {}", path, std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    throw TokenError(fmt::format("token file {}: not a regular file", path));
  }
  if ((st.st_mode & 077) != 0) {
    throw TokenError(fmt::format(
        "token file {} may be read by its group or others (mode {:04o}); the token is a secret: "
        "chmod 600 {} (ssh refuses such key files too)",
        path, st.st_mode & 07777, path));
  }
  char buffer[512];
  std::string text;
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw TokenError(fmt::format("token file {}: {}", path, std::strerror(errno)));
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > 4096) throw TokenError(fmt::format("token file {}: too long", path));
  }
  std::string error;
  std::optional<Token> token = parse(text, &error);
  if (!token) throw TokenError(fmt::format("token file {}: {}", path, error));
  return *token;
}

std::string Token::text() const {
  std::string out(kPrefix);
  uint32_t bits = 0;
  int held = 0;
  for (unsigned char byte : secret_) {
    bits = (bits << 8) | byte;
    held += 8;
    while (held >= 6) {
      held -= 6;
      out += kAlphabet[(bits >> held) & 63];
    }
    bits &= (1u << held) - 1;
  }
  if (held > 0) out += kAlphabet[(bits << (6 - held)) & 63];
  return out;
}

std::string Token::derive(std::string_view label, size_t size) const {
  return hkdf_sha256(
      std::string_view(reinterpret_cast<const char*>(secret_.data()), secret_.size()), kSalt, label,
      size);
}

tls::EvpPkeyPtr Token::coordinator_key() const {
  // 48 bytes reduced modulo n - 1, plus 1: a scalar in [1, n - 1] with a
  // bias below 2^-128 (FIPS 186-5 A.2.1, key pair generation from extra bits).
  const std::string seed = derive("coordinator-key", 48);
  BnCtxPtr bn_ctx(BN_CTX_new());
  EcGroupPtr group(EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1));
  if (!bn_ctx || !group) fail("P-256");
  BnPtr c(BN_bin2bn(reinterpret_cast<const unsigned char*>(seed.data()),
                    static_cast<int>(seed.size()), nullptr));
  BnPtr n_minus_1(BN_dup(EC_GROUP_get0_order(group.get())));
  BnPtr d(BN_secure_new());
  if (!c || !n_minus_1 || !d || BN_sub_word(n_minus_1.get(), 1) != 1 ||
      BN_mod(d.get(), c.get(), n_minus_1.get(), bn_ctx.get()) != 1 ||
      BN_add_word(d.get(), 1) != 1) {
    fail("the coordinator key's scalar");
  }
  EcPointPtr point(EC_POINT_new(group.get()));
  unsigned char public_key[65];
  size_t public_size = 0;
  if (!point ||
      EC_POINT_mul(group.get(), point.get(), d.get(), nullptr, nullptr, bn_ctx.get()) != 1 ||
      (public_size = EC_POINT_point2oct(group.get(), point.get(), POINT_CONVERSION_UNCOMPRESSED,
                                        public_key, sizeof public_key, bn_ctx.get())) == 0) {
    fail("the coordinator key's public point");
  }
  ParamBldPtr build(OSSL_PARAM_BLD_new());
  if (!build ||
      OSSL_PARAM_BLD_push_utf8_string(build.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) !=
          1 ||
      OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_PRIV_KEY, d.get()) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(build.get(), OSSL_PKEY_PARAM_PUB_KEY, public_key,
                                       public_size) != 1) {
    fail("the coordinator key's parameters");
  }
  ParamPtr params(OSSL_PARAM_BLD_to_param(build.get()));
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* key = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_KEYPAIR, params.get()) != 1) {
    fail("the coordinator key");
  }
  return tls::EvpPkeyPtr(key);
}

std::string Token::coordinator_spki() const {
  tls::EvpPkeyPtr key = coordinator_key();
  std::string der = spki_der(key.get());
  if (der.empty()) fail("the coordinator key's public half");
  return der;
}

std::string Token::proof_key() const {
  return derive("proof", 32);
}

std::string spki_der(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int size = i2d_PUBKEY(key, &der);
  if (size <= 0) {
    ERR_clear_error();
    return {};
  }
  std::string out(reinterpret_cast<const char*>(der), static_cast<size_t>(size));
  OPENSSL_free(der);
  return out;
}

}  // namespace millstone::cluster
