#pragma once
// gRPC status codes (grpc/doc/statuscodes.md), the grpc-status and
// grpc-timeout fields as they travel in HTTP/2 headers and trailers
// (PROTOCOL-HTTP2.md).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace millstone::grpc {

inline constexpr uint32_t kStatusOk = 0;
inline constexpr uint32_t kStatusDeadlineExceeded = 4;
inline constexpr uint32_t kStatusUnimplemented = 12;
inline constexpr uint32_t kStatusInternal = 13;
inline constexpr uint32_t kStatusUnavailable = 14;
inline constexpr uint32_t kLastStatus = 16;  // UNAUTHENTICATED

// "OK", "CANCELLED", ..., "UNAUTHENTICATED"; codes past the list as "CODE_17".
std::string status_name(uint32_t code);
// The code of a name as status_name() gives it ("UNAVAILABLE", case-insensitive)
// or as a number ("14"); nullopt for anything else.
std::optional<uint32_t> status_from_text(std::string_view text);
// The value of a grpc-status field: 1*DIGIT (at most 9 digits); nullopt when
// it is anything else (empty, a sign, a space, letters).
std::optional<uint32_t> parse_status_field(std::string_view value);
// grpc-timeout for a deadline in microseconds: at most 8 digits and a unit
// (u, m, S, M, H), the finest unit that fits, rounded up so the server never
// sees a shorter deadline than asked. Deadlines under 1 us are sent as 1u.
std::string timeout_field(int64_t us);
// The value of a grpc-message field, percent-decoded (PROTOCOL-HTTP2.md:
// "Percent-Encoded"); bytes that do not decode are kept as they came.
std::string decode_message_field(std::string_view value);
// The reverse, for the mock's answers: printable ASCII but '%' as is, the rest %XX.
std::string encode_message_field(std::string_view text);

}  // namespace millstone::grpc
