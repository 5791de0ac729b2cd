#pragma once
// The WebSocket opening handshake (RFC 6455 section 4), both sides.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace millstone::ws {

// base64 of 16 random bytes from `random` (two draws).
std::string make_client_key(uint64_t random_a, uint64_t random_b);
// base64(SHA-1(key + 258EAFA5-E914-47DA-95CA-C5AB0DC85B11)).
std::string accept_for_key(std::string_view key);

// "GET PATH HTTP/1.1" with Host, Upgrade, Connection, Sec-WebSocket-Key,
// Sec-WebSocket-Version: 13, optional Sec-WebSocket-Protocol, extra headers.
std::string build_client_request(std::string_view host_header, std::string_view target,
                                 std::string_view key, std::string_view subprotocol,
                                 const std::vector<std::pair<std::string, std::string>>& headers);

// Checks a server's response head (status line + headers, as received up to
// and including the blank line). On success sets *subprotocol to the chosen
// one ("" when none) and returns true; otherwise *error says what was wrong
// ("status 200, expected 101", "Sec-WebSocket-Accept does not match").
// This form accepts any single subprotocol the server names; use the one
// below to also check that it is one the client asked for.
bool check_server_response(std::string_view head, std::string_view key, std::string* subprotocol,
                           std::string* error);
// `requested_subprotocols` is the Sec-WebSocket-Protocol value the client
// sent (one name or a comma-separated list; "" when none). With
// `check_requested`, a subprotocol in the response must be one of them (RFC
// 6455 4.1: the client fails the connection otherwise), so a response naming
// one when none was asked for is an error.
bool check_server_response(std::string_view head, std::string_view key,
                           std::string_view requested_subprotocols, std::string* subprotocol,
                           std::string* error, bool check_requested = true);

// Server side: given a parsed request's headers, the 101 response, or an
// error describing why the request is not a valid upgrade (answer 400).
// `offered` lists subprotocols the server accepts; the first the client asks
// for that is in the list is chosen.
bool build_server_response(
    std::string_view method,
    const std::vector<std::pair<std::string_view, std::string_view>>& headers,
    const std::vector<std::string>& offered, std::string* response, std::string* error);

}  // namespace millstone::ws
