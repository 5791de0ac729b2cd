#include "ws/handshake.h"

#include <gtest/gtest.h>

namespace millstone::ws {
namespace handshake_test {

using Headers = std::vector<std::pair<std::string_view, std::string_view>>;

constexpr std::string_view kRfcKey = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr std::string_view kRfcAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

TEST(Handshake, Rfc6455AcceptExample) {
  EXPECT_EQ(accept_for_key(kRfcKey), kRfcAccept);
}

TEST(Handshake, ClientKeyIsBase64Of16Bytes) {
  std::string a = make_client_key(1, 2);
  std::string b = make_client_key(1, 3);
  EXPECT_EQ(a.size(), 24u);
  EXPECT_EQ(a.substr(22), "==");
  EXPECT_NE(a, b);
  EXPECT_EQ(make_client_key(0, 0), "AAAAAAAAAAAAAAAAAAAAAA==");
}

TEST(Handshake, ClientRequest) {
  std::string req = build_client_request("example.com:8080", "/chat?x=1", kRfcKey, "chat.v1",
                                         {{"Origin", "http://example.com"}});
  EXPECT_EQ(req,
            "GET /chat?x=1 HTTP/1.1\r\nHost: example.com:8080\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat.v1\r\n"
            "Origin: http://example.com\r\n\r\n");
  std::string bare = build_client_request("h", "", kRfcKey, "", {});
  EXPECT_EQ(bare.find("Sec-WebSocket-Protocol"), std::string::npos);
  EXPECT_EQ(bare.substr(0, 19), "GET / HTTP/1.1\r\nHos");
}

std::string good_response(std::string extra = "") {
  return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" +
         extra + "\r\n";
}

TEST(Handshake, ServerResponseAccepted) {
  std::string sub = "stale", error;
  EXPECT_TRUE(check_server_response(good_response(), kRfcKey, &sub, &error)) << error;
  EXPECT_EQ(sub, "");
  // Case-insensitive names and values, Connection as a list, LF-only lines.
  std::string head =
      "HTTP/1.1 101 OK\nUPGRADE: WebSocket\nconnection: keep-alive, Upgrade\n"
      "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\nsec-websocket-protocol: chat.v1\n\n";
  EXPECT_TRUE(check_server_response(head, kRfcKey, "chat.v0, chat.v1", &sub, &error)) << error;
  EXPECT_EQ(sub, "chat.v1");
}

TEST(Handshake, ServerResponseRejected) {
  std::string sub, error;
  EXPECT_FALSE(check_server_response("HTTP/1.1 200 OK\r\n\r\n", kRfcKey, &sub, &error));
  EXPECT_EQ(error, "status 200, expected 101");
  EXPECT_FALSE(check_server_response("garbage", kRfcKey, &sub, &error));
  std::string wrong_accept =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: AAAAPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
  EXPECT_FALSE(check_server_response(wrong_accept, kRfcKey, &sub, &error));
  EXPECT_EQ(error, "Sec-WebSocket-Accept does not match");
  std::string no_upgrade =
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
  EXPECT_FALSE(check_server_response(no_upgrade, kRfcKey, &sub, &error));
  EXPECT_EQ(error, "Upgrade: websocket missing");
  std::string no_connection =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
  EXPECT_FALSE(check_server_response(no_connection, kRfcKey, &sub, &error));
  EXPECT_EQ(error, "Connection: Upgrade missing");
  std::string no_accept =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
  EXPECT_FALSE(check_server_response(no_accept, kRfcKey, &sub, &error));
  EXPECT_EQ(error, "Sec-WebSocket-Accept missing");
  // A subprotocol that was not asked for, or one when none was asked for.
  std::string with_sub = good_response("Sec-WebSocket-Protocol: other\r\n");
  EXPECT_FALSE(check_server_response(with_sub, kRfcKey, "chat.v1", &sub, &error));
  EXPECT_NE(error.find("not asked for"), std::string::npos);
  EXPECT_FALSE(check_server_response(with_sub, kRfcKey, "", &sub, &error));
  // An extension we never offered.
  EXPECT_FALSE(check_server_response(
      good_response("Sec-WebSocket-Extensions: permessage-deflate\r\n"), kRfcKey, &sub, &error));
}

Headers good_request() {
  return {{"Host", "server.example.com"},
          {"Upgrade", "websocket"},
          {"Connection", "Upgrade"},
          {"Sec-WebSocket-Key", kRfcKey},
          {"Sec-WebSocket-Version", "13"}};
}

TEST(Handshake, ServerAnswersRfcExample) {
  std::string response, error;
  ASSERT_TRUE(build_server_response("GET", good_request(), {}, &response, &error)) << error;
  EXPECT_EQ(response,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
  // And our client accepts what our server says.
  std::string sub;
  EXPECT_TRUE(check_server_response(response, kRfcKey, "", &sub, &error)) << error;
}

TEST(Handshake, ServerChoosesFirstRequestedOfferedSubprotocol) {
  Headers h = good_request();
  h.push_back({"sec-websocket-protocol", "a.v2 , ticker.v1, chat.v1"});
  std::string response, error;
  ASSERT_TRUE(build_server_response("GET", h, {"chat.v1", "ticker.v1"}, &response, &error));
  EXPECT_NE(response.find("Sec-WebSocket-Protocol: ticker.v1\r\n"), std::string::npos);
  ASSERT_TRUE(build_server_response("GET", h, {"none.v1"}, &response, &error));
  EXPECT_EQ(response.find("Sec-WebSocket-Protocol"), std::string::npos);
}

TEST(Handshake, ServerHeaderNamesAreCaseInsensitiveAndConnectionIsAList) {
  Headers h = {{"HOST", "x"},
               {"upgrade", "WebSocket"},
               {"CONNECTION", "keep-alive, Upgrade"},
               {"sec-websocket-key", kRfcKey},
               {"SEC-WEBSOCKET-VERSION", "13"}};
  std::string response, error;
  EXPECT_TRUE(build_server_response("GET", h, {}, &response, &error)) << error;
}

TEST(Handshake, ServerRejectsBadUpgrades) {
  std::string response, error;
  EXPECT_FALSE(build_server_response("POST", good_request(), {}, &response, &error));
  auto without = [](std::string_view name) {
    Headers h = good_request();
    std::erase_if(h, [&](const auto& p) { return p.first == name; });
    return h;
  };
  for (std::string_view name :
       {"Host", "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version"}) {
    EXPECT_FALSE(build_server_response("GET", without(name), {}, &response, &error)) << name;
  }
  Headers h = good_request();
  h[4].second = "8";
  EXPECT_FALSE(build_server_response("GET", h, {}, &response, &error));
  EXPECT_EQ(error, "Sec-WebSocket-Version must be 13");
  for (std::string_view key : {"short==", "dGhlIHNhbXBsZSBub25jZQ",
                               "dGhlIHNhbXBsZSBub25jZR==", "dGhlIHNhbXBsZSBub25j!Q=="}) {
    h = good_request();
    h[3].second = key;
    EXPECT_FALSE(build_server_response("GET", h, {}, &response, &error)) << key;
  }
  h = good_request();
  h.push_back({"Sec-WebSocket-Key", kRfcKey});
  EXPECT_FALSE(build_server_response("GET", h, {}, &response, &error));
}

}  // namespace handshake_test
}  // namespace millstone::ws
