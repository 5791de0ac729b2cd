// The join token: its text form, the file it is read from, and what both
// ends derive from it.
#include "cluster/token.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace millstone::cluster {
namespace token_test {

std::string hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string unhex(std::string_view text) {
  std::string out;
  for (size_t i = 0; i + 1 < text.size(); i += 2)
    out += static_cast<char>(std::stoi(std::string(text.substr(i, 2)), nullptr, 16));
  return out;
}

TEST(Token, HkdfMatchesRfc5869TestCase1) {
  const std::string okm = hkdf_sha256(std::string(22, '\x0b'), unhex("000102030405060708090a0b0c"),
                                      unhex("f0f1f2f3f4f5f6f7f8f9"), 42);
  EXPECT_EQ(hex(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST(Token, TextRoundTripsThroughParse) {
  const Token token = Token::generate();
  const std::string text = token.text();
  EXPECT_EQ(text.size(), 5u + 43u);
  EXPECT_EQ(text.substr(0, 5), "mst1.");
  std::string error;
  const std::optional<Token> parsed = Token::parse("  " + text + "\n", &error);
  ASSERT_TRUE(parsed) << error;
  EXPECT_EQ(*parsed, token);
  EXPECT_NE(Token::generate(), token);
}

TEST(Token, ParseRefusesWhatIsNotAToken) {
  const std::string good = Token::generate().text();
  std::string error;
  EXPECT_FALSE(Token::parse("mst2." + good.substr(5), &error));
  EXPECT_NE(error.find("not a millstone join token"), std::string::npos) << error;
  EXPECT_FALSE(Token::parse(good.substr(0, good.size() - 1), &error));
  EXPECT_NE(error.find("42 characters"), std::string::npos) << error;
  std::string bad_char = good;
  bad_char[10] = '+';  // base64, not base64url
  EXPECT_FALSE(Token::parse(bad_char, &error));
  EXPECT_NE(error.find("position 11"), std::string::npos) << error;
  // The last character holds 4 bits of the secret and 2 that must be 0.
  std::string not_canonical = "mst1." + std::string(42, 'A') + "B";
  EXPECT_FALSE(Token::parse(not_canonical, &error));
  EXPECT_NE(error.find("canonical"), std::string::npos) << error;
  EXPECT_TRUE(Token::parse("mst1." + std::string(42, 'A') + "E", &error)) << error;
  // The text is never quoted back: it may be a secret with a typo.
  EXPECT_EQ(error.find(good.substr(5, 10)), std::string::npos);
}

TEST(Token, DerivationsAreDeterministicDistinctAndAValidP256Key) {
  const Token a = Token::generate();
  std::string error;
  const Token a_again = *Token::parse(a.text(), &error);
  const Token b = Token::generate();
  EXPECT_EQ(a.coordinator_spki(), a_again.coordinator_spki());
  EXPECT_NE(a.coordinator_spki(), b.coordinator_spki());
  EXPECT_EQ(a.proof_key(), a_again.proof_key());
  EXPECT_NE(a.proof_key(), b.proof_key());
  EXPECT_EQ(a.proof_key().size(), 32u);
  // Distinct labels: the MAC key is not the key's seed.
  EXPECT_NE(a.proof_key(), a.derive("coordinator-key", 32));
  tls::EvpPkeyPtr key = a.coordinator_key();
  ASSERT_TRUE(key);
  EXPECT_EQ(EVP_PKEY_get_bits(key.get()), 256);
  EXPECT_TRUE(EVP_PKEY_is_a(key.get(), "EC"));
  EVP_PKEY_CTX* check = EVP_PKEY_CTX_new(key.get(), nullptr);
  EXPECT_EQ(EVP_PKEY_pairwise_check(check), 1);  // the public point is d * G
  EVP_PKEY_CTX_free(check);
  EXPECT_EQ(spki_der(key.get()), a.coordinator_spki());
}

class TokenFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/millstone-token-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override {
    std::remove(path().c_str());
    rmdir(dir_.c_str());
  }
  std::string path() const { return dir_ + "/join.token"; }
  void write(const std::string& text, mode_t mode) {
    std::ofstream(path()) << text;
    ASSERT_EQ(chmod(path().c_str(), mode), 0);
  }
  std::string error_of() {
    try {
      Token::read_file(path());
    } catch (const TokenError& e) {
      return e.what();
    }
    return "";
  }
  std::string dir_;
};

TEST_F(TokenFile, APrivateFileIsRead) {
  const Token token = Token::generate();
  write(token.text() + "\n", 0600);
  EXPECT_EQ(Token::read_file(path()), token);
  write(token.text(), 0400);
  EXPECT_EQ(Token::read_file(path()), token);
}

TEST_F(TokenFile, AGroupOrWorldReadableFileIsRefusedLikeSsh) {
  write(Token::generate().text(), 0644);
  EXPECT_EQ(error_of(), "token file " + path() +
                            " may be read by its group or others (mode 0644); the token is a "
                            "secret: chmod 600 " +
                            path() + " (ssh refuses such key files too)");
  write(Token::generate().text(), 0640);
  EXPECT_NE(error_of().find("(mode 0640)"), std::string::npos);
}

TEST_F(TokenFile, MissingOrWrongContentSaysWhich) {
  EXPECT_EQ(error_of(), "token file " + path() + ": No such file or directory");
  write("hunter2\n", 0600);
  EXPECT_NE(error_of().find("token file " + path() + ": not a millstone join token"),
            std::string::npos)
      << error_of();
}

}  // namespace token_test
}  // namespace millstone::cluster
