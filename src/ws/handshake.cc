#include "ws/handshake.h"

#include <openssl/evp.h>

#include <cstring>

#include "http/syntax.h"

namespace millstone::ws {

namespace {

constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

std::string base64(const unsigned char* data, size_t size) {
  std::string out(4 * ((size + 2) / 3) + 1, '\0');
  const int written =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(written > 0 ? static_cast<size_t>(written) : 0);
  return out;
}

using http::syntax::iequals;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// Calls fn(token) for each comma-separated, trimmed, non-empty token.
template <typename Fn>
void for_each_token(std::string_view list, Fn&& fn) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view token = trim(list.substr(0, comma));
    if (!token.empty() && fn(token)) return;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

bool list_has_token(std::string_view list, std::string_view token) {
  bool found = false;
  for_each_token(list, [&](std::string_view t) { return found = iequals(t, token); });
  return found;
}

// A valid Sec-WebSocket-Key is the base64 of exactly 16 bytes: 22 characters
// of the base64 alphabet and "==" (RFC 6455 4.2.1 item 5).
bool valid_client_key(std::string_view key) {
  if (key.size() != 24 || key.substr(22) != "==") return false;
  for (size_t i = 0; i < 22; ++i) {
    const char c = key[i];
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '+' || c == '/';
    if (!ok) return false;
  }
  // 16 bytes end on a 4-bit boundary inside the 22nd character: its low 4
  // bits must be zero in canonical base64.
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  return (kAlphabet.find(key[21]) & 0xF) == 0;
}

}  // namespace

std::string make_client_key(uint64_t random_a, uint64_t random_b) {
  unsigned char bytes[16];
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<unsigned char>(random_a >> (8 * i));
    bytes[8 + i] = static_cast<unsigned char>(random_b >> (8 * i));
  }
  return base64(bytes, sizeof bytes);
}

std::string accept_for_key(std::string_view key) {
  std::string input;
  input.reserve(key.size() + kGuid.size());
  input.append(key);
  input.append(kGuid);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  if (EVP_Digest(input.data(), input.size(), digest, &digest_size, EVP_sha1(), nullptr) != 1) {
    return {};
  }
  return base64(digest, digest_size);
}

std::string build_client_request(std::string_view host_header, std::string_view target,
                                 std::string_view key, std::string_view subprotocol,
                                 const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string out;
  out.reserve(256);
  out.append("GET ").append(target.empty() ? "/" : target).append(" HTTP/1.1\r\n");
  out.append("Host: ").append(host_header).append("\r\n");
  out.append("Upgrade: websocket\r\nConnection: Upgrade\r\n");
  out.append("Sec-WebSocket-Key: ").append(key).append("\r\n");
  out.append("Sec-WebSocket-Version: 13\r\n");
  if (!subprotocol.empty())
    out.append("Sec-WebSocket-Protocol: ").append(subprotocol).append("\r\n");
  for (const auto& [name, value] : headers)
    out.append(name).append(": ").append(value).append("\r\n");
  out.append("\r\n");
  return out;
}

bool check_server_response(std::string_view head, std::string_view key, std::string* subprotocol,
                           std::string* error) {
  return check_server_response(head, key, std::string_view(), subprotocol, error, false);
}

bool check_server_response(std::string_view head, std::string_view key,
                           std::string_view requested_subprotocols, std::string* subprotocol,
                           std::string* error, bool check_requested) {
  auto fail = [&](std::string message) {
    if (error) *error = std::move(message);
    return false;
  };
  if (subprotocol) subprotocol->clear();
  size_t eol = head.find('\n');
  if (eol == std::string_view::npos) return fail("response head has no status line");
  std::string_view status_line = trim(head.substr(0, eol));
  head.remove_prefix(eol + 1);
  if (status_line.size() < 12 || status_line.substr(0, 5) != "HTTP/" ||
      status_line.find(' ') == std::string_view::npos) {
    return fail("malformed status line");
  }
  std::string_view rest = status_line.substr(status_line.find(' ') + 1);
  std::string_view code = rest.substr(0, rest.find(' '));
  if (code != "101") return fail("status " + std::string(code) + ", expected 101");

  bool upgrade_ok = false, connection_ok = false, have_accept = false, have_protocol = false;
  std::string_view accept, protocol;
  while (!head.empty()) {
    eol = head.find('\n');
    std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol == std::string_view::npos ? head.size() : eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return fail("malformed header line in the response");
    }
    std::string_view name = line.substr(0, colon);
    std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "upgrade")) {
      upgrade_ok = upgrade_ok || list_has_token(value, "websocket");
    } else if (iequals(name, "connection")) {
      connection_ok = connection_ok || list_has_token(value, "upgrade");
    } else if (iequals(name, "sec-websocket-accept")) {
      if (have_accept) return fail("more than one Sec-WebSocket-Accept");
      have_accept = true;
      accept = value;
    } else if (iequals(name, "sec-websocket-protocol")) {
      if (have_protocol) return fail("more than one Sec-WebSocket-Protocol");
      have_protocol = true;
      protocol = value;
    } else if (iequals(name, "sec-websocket-extensions")) {
      return fail("server chose an extension that was not offered");
    }
  }
  if (!upgrade_ok) return fail("Upgrade: websocket missing");
  if (!connection_ok) return fail("Connection: Upgrade missing");
  if (!have_accept) return fail("Sec-WebSocket-Accept missing");
  if (accept != accept_for_key(key)) return fail("Sec-WebSocket-Accept does not match");
  if (have_protocol) {
    if (protocol.empty() || protocol.find(',') != std::string_view::npos) {
      return fail("Sec-WebSocket-Protocol must name exactly one subprotocol");
    }
    if (check_requested && !list_has_token(requested_subprotocols, protocol)) {
      return fail("server chose subprotocol " + std::string(protocol) +
                  ", which was not asked for");
    }
    if (subprotocol) subprotocol->assign(protocol);
  }
  return true;
}

bool build_server_response(
    std::string_view method,
    const std::vector<std::pair<std::string_view, std::string_view>>& headers,
    const std::vector<std::string>& offered, std::string* response, std::string* error) {
  auto fail = [&](const char* message) {
    if (error) *error = message;
    return false;
  };
  if (method != "GET") return fail("WebSocket upgrade must use GET");
  bool have_host = false, upgrade_ok = false, connection_ok = false, version_ok = false;
  bool have_version = false;
  std::string_view key;
  int keys = 0;
  std::string chosen;
  for (const auto& [name, raw] : headers) {
    std::string_view value = trim(raw);
    if (iequals(name, "host")) {
      have_host = true;
    } else if (iequals(name, "upgrade")) {
      upgrade_ok = upgrade_ok || list_has_token(value, "websocket");
    } else if (iequals(name, "connection")) {
      connection_ok = connection_ok || list_has_token(value, "upgrade");
    } else if (iequals(name, "sec-websocket-key")) {
      key = value;
      ++keys;
    } else if (iequals(name, "sec-websocket-version")) {
      have_version = true;
      version_ok = value == "13";
    } else if (iequals(name, "sec-websocket-protocol") && chosen.empty()) {
      for_each_token(value, [&](std::string_view asked) {
        for (const auto& o : offered) {
          if (o == asked) {
            chosen = o;
            return true;
          }
        }
        return false;
      });
    }
  }
  if (!have_host) return fail("Host header missing");
  if (!upgrade_ok) return fail("Upgrade: websocket missing");
  if (!connection_ok) return fail("Connection: Upgrade missing");
  if (!have_version) return fail("Sec-WebSocket-Version missing");
  if (!version_ok) return fail("Sec-WebSocket-Version must be 13");
  if (keys != 1)
    return fail(keys == 0 ? "Sec-WebSocket-Key missing" : "more than one Sec-WebSocket-Key");
  if (!valid_client_key(key)) return fail("Sec-WebSocket-Key is not base64 of 16 bytes");
  response->clear();
  response->append(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: ");
  response->append(accept_for_key(key));
  response->append("\r\n");
  if (!chosen.empty()) response->append("Sec-WebSocket-Protocol: ").append(chosen).append("\r\n");
  response->append("\r\n");
  return true;
}

}  // namespace millstone::ws
