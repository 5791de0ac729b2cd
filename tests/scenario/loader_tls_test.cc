// defaults: tls:, https targets, wss:// and tcp.connect with tls: what the
// loader compiles, and every error with its FILE:LINE:COL and what was
// expected. PEM files are made by the test (tls/certificate.h) in a temporary
// folder and named relative to the scenario file.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scenario/loader.h"
#include "tls/certificate.h"

namespace millstone::scenario {
namespace loader_tls_test {

tls::CertificateSpec ca_spec() {
  tls::CertificateSpec spec;
  spec.common_name = "test CA";
  spec.is_ca = true;
  return spec;
}

class LoaderTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/millstone-loader-tls-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    const tls::Certificate ca = tls::issue_certificate(ca_spec());
    const tls::Certificate client = tls::issue_certificate(tls::CertificateSpec{}, &ca);
    write("ca.pem", ca.certificate_pem());
    write("client.pem", client.certificate_pem());
    write("client.key", client.key_pem());
    write("other.key", ca.key_pem());  // does not match client.pem
    write("empty.pem", "");
    write("garbage.pem", "not a certificate\n");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void write(const std::string& name, const std::string& content) {
    std::ofstream(dir_ + "/" + name, std::ios::binary) << content;
  }
  // Loads `yaml` as DIR/s.yaml; "" when it loads, else the error message
  // with the folder replaced by DIR.
  std::string error_of(const std::string& yaml) {
    write("s.yaml", yaml);
    try {
      plan_ = load_scenario_file(dir_ + "/s.yaml");
      return "";
    } catch (const ScenarioError& e) {
      std::string message = e.what();
      for (size_t at; (at = message.find(dir_)) != std::string::npos;)
        message.replace(at, dir_.size(), "DIR");
      return message;
    }
  }

  std::string dir_;
  std::unique_ptr<Plan> plan_;
};

constexpr const char* kFlows = R"(flows:
  a:
    steps:
      - get: /
)";

TEST_F(LoaderTlsTest, HttpsTargetWithEveryOption) {
  ASSERT_EQ(error_of(std::string(R"(target: https://api.example.com:8443
defaults:
  tls:
    ca: ca.pem
    cert: client.pem
    key: client.key
    min_version: "1.3"
    max_version: "1.3"
    resumption: false
    server_name: api.internal
)") + kFlows),
            "");
  EXPECT_TRUE(plan_->target.tls());
  EXPECT_EQ(plan_->target.port, 8443);
  EXPECT_TRUE(plan_->uses_tls());
  EXPECT_FALSE(plan_->tls.insecure);
  EXPECT_EQ(plan_->tls.ca_file, "ca.pem");
  EXPECT_THAT(plan_->tls.ca_pem, ::testing::HasSubstr("BEGIN CERTIFICATE"));
  EXPECT_THAT(plan_->tls.cert_pem, ::testing::HasSubstr("BEGIN CERTIFICATE"));
  EXPECT_THAT(plan_->tls.key_pem, ::testing::HasSubstr("PRIVATE KEY"));
  EXPECT_EQ(plan_->tls.min_version, tls::TlsVersion::k1_3);
  EXPECT_EQ(plan_->tls.max_version, tls::TlsVersion::k1_3);
  EXPECT_FALSE(plan_->tls.resume_sessions);
  EXPECT_EQ(plan_->tls_server_name, "api.internal");
}

TEST_F(LoaderTlsTest, DefaultsVerifyAndResume) {
  ASSERT_EQ(error_of(std::string("target: https://localhost\n") + kFlows), "");
  EXPECT_EQ(plan_->target.port, 443);
  EXPECT_FALSE(plan_->tls.insecure);
  EXPECT_TRUE(plan_->tls.resume_sessions);
  EXPECT_TRUE(plan_->tls.ca_pem.empty());  // the system's trust store
  EXPECT_EQ(plan_->tls.min_version, tls::TlsVersion::k1_2);
  EXPECT_EQ(plan_->tls.max_version, tls::TlsVersion::k1_3);
}

TEST_F(LoaderTlsTest, PlainTargetUsesNoTls) {
  ASSERT_EQ(
      error_of(std::string("target: http://localhost:9\ndefaults: {tls: {insecure: true}}\n") +
               kFlows),
      "");
  EXPECT_FALSE(plan_->uses_tls());
  EXPECT_TRUE(plan_->tls.insecure);
}

TEST_F(LoaderTlsTest, SocketStepsChooseTls) {
  ASSERT_EQ(error_of(R"(target: https://127.0.0.1:9443
flows:
  a:
    steps:
      - ws.connect: /follows-target
      - ws.connect: ws://127.0.0.1:9000/plain
      - ws.connect: wss://chat.example.com/secure
      - ws.connect: wss://127.0.0.1:9444/x
      - tcp.connect: :9100
      - tcp.connect: 127.0.0.1:9101
        tls: true
)"),
            "");
  const std::vector<SocketStep>& steps = plan_->flows[0].socket_steps;
  ASSERT_EQ(steps.size(), 6u);
  EXPECT_TRUE(steps[0].uses_tls(plan_->target.tls()));  // a path on an https target
  EXPECT_FALSE(steps[0].uses_tls(false));               // ... that --target made http://
  EXPECT_FALSE(steps[1].uses_tls(true));
  EXPECT_TRUE(steps[2].tls);
  EXPECT_EQ(steps[2].port, 443);
  EXPECT_EQ(steps[2].host_header, "chat.example.com");  // the default port is left out
  EXPECT_TRUE(steps[3].tls);
  EXPECT_EQ(steps[3].host_header, "127.0.0.1:9444");
  EXPECT_FALSE(steps[4].tls);
  EXPECT_TRUE(steps[5].tls);
}

TEST_F(LoaderTlsTest, WssAloneMakesThePlanUseTls) {
  ASSERT_EQ(error_of(R"(target: http://127.0.0.1:9
flows:
  a:
    steps:
      - ws.connect: /plain
      - ws.connect: wss://127.0.0.1:9444/x
)"),
            "");
  EXPECT_FALSE(plan_->flows[0].socket_steps[0].uses_tls(plan_->target.tls()));
  EXPECT_TRUE(plan_->uses_tls());
  plan_->flows[0].socket_steps.pop_back();
  EXPECT_FALSE(plan_->uses_tls());
  plan_->target.scheme = "https";  // as --target https://... does
  EXPECT_TRUE(plan_->uses_tls());
}

struct TlsErrorCase {
  const char* name;
  const char* tls;      // the value of defaults: tls:, on line 3
  const char* message;  // exact
};

// clang-format off
const TlsErrorCase kErrors[] = {
    {"UnknownKey", "{cafile: ca.pem}",
     "DIR/s.yaml:3:9: unknown key \"cafile\" in tls; expected one of: insecure, ca, cert, key, min_version, max_version, resumption, server_name"},
    {"NotAMap", "yes",
     "DIR/s.yaml:3:8: tls is a single value; expected a map"},
    {"MissingCa", "{ca: missing.pem}",
     "DIR/s.yaml:3:13: tls ca file \"DIR/missing.pem\" cannot be read: No such file or directory; expected a PEM file relative to the scenario file"},
    {"EmptyCa", "{ca: empty.pem}",
     "DIR/s.yaml:3:13: tls ca file \"DIR/empty.pem\" cannot be read: the file is empty; expected a PEM file relative to the scenario file"},
    {"DeviceCa", "{ca: /dev/zero}",
     "DIR/s.yaml:3:13: tls ca file \"/dev/zero\" cannot be read: Invalid argument; expected a PEM file relative to the scenario file"},
    {"GarbageCa", "{ca: garbage.pem}",
     ""},  // OpenSSL's words: checked by prefix
    {"CertWithoutKey", "{cert: client.pem}",
     "DIR/s.yaml:3:9: tls has cert but no key; expected key: with the client certificate's private key"},
    {"KeyWithoutCert", "{key: client.key}",
     "DIR/s.yaml:3:9: tls has key but no cert; expected cert: with the client certificate"},
    {"KeyNotMatching", "{cert: client.pem, key: other.key}",
     ""},
    {"BadVersion", "{min_version: \"1.1\"}",
     "DIR/s.yaml:3:22: min_version \"1.1\" is not a TLS version millstone speaks; expected 1.2 or 1.3"},
    {"MinAboveMax", "{min_version: \"1.3\", max_version: \"1.2\"}",
     "DIR/s.yaml:3:22: min_version 1.3 is above max_version 1.2; expected min_version <= max_version"},
    {"InsecureNotBoolean", "{insecure: sometimes}",
     ""},
    {"BadServerName", "{server_name: \"a b\"}",
     "DIR/s.yaml:3:22: server_name \"a b\" is not a host name; expected e.g. api.example.com (sent as SNI and verified)"},
};
// clang-format on

class LoaderTlsErrors : public LoaderTlsTest, public ::testing::WithParamInterface<TlsErrorCase> {};

TEST_P(LoaderTlsErrors, Message) {
  const TlsErrorCase& c = GetParam();
  const std::string error = error_of(
      std::string("target: https://127.0.0.1:9443\ndefaults:\n  tls: ") + c.tls + "\n" + kFlows);
  ASSERT_NE(error, "");
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  if (*c.message != '\0') {
    EXPECT_EQ(error, c.message);
  } else {
    EXPECT_TRUE(error.starts_with("DIR/s.yaml:3:")) << error;
  }
}

INSTANTIATE_TEST_SUITE_P(All, LoaderTlsErrors, ::testing::ValuesIn(kErrors),
                         [](const auto& info) { return std::string(info.param.name); });

TEST_F(LoaderTlsTest, BadKeyNamesTheFile) {
  const std::string error = error_of(
      std::string("target: https://127.0.0.1:9443\ndefaults:\n  tls: {cert: client.pem, key: "
                  "other.key}\n") +
      kFlows);
  EXPECT_THAT(error, ::testing::StartsWith("DIR/s.yaml:3:8: tls: "));
  EXPECT_THAT(error, ::testing::HasSubstr("other.key")) << error;
}

}  // namespace loader_tls_test
}  // namespace millstone::scenario
