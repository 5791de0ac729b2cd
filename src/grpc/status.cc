#include "grpc/status.h"

#include <array>
#include <cctype>

#include <fmt/format.h>

namespace millstone::grpc {

namespace {

constexpr std::array<std::string_view, kLastStatus + 1> kNames = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string status_name(uint32_t code) {
  if (code < kNames.size()) return std::string(kNames[code]);
  return fmt::format("CODE_{}", code);
}

std::optional<uint32_t> status_from_text(std::string_view text) {
  if (auto number = parse_status_field(text)) return number;
  for (uint32_t code = 0; code < kNames.size(); ++code) {
    const std::string_view name = kNames[code];
    if (name.size() != text.size()) continue;
    bool same = true;
    for (size_t i = 0; i < name.size() && same; ++i) {
      same = std::toupper(static_cast<unsigned char>(text[i])) == name[i];
    }
    if (same) return code;
  }
  return std::nullopt;
}

std::optional<uint32_t> parse_status_field(std::string_view value) {
  if (value.empty() || value.size() > 9) return std::nullopt;
  uint32_t code = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return std::nullopt;
    code = code * 10 + static_cast<uint32_t>(c - '0');
  }
  return code;
}

std::string timeout_field(int64_t us) {
  if (us < 1) us = 1;
  constexpr int64_t kMax = 99'999'999;  // eight digits
  struct Unit {
    int64_t us;
    char name;
  };
  constexpr Unit kUnits[] = {
      {1, 'u'}, {1'000, 'm'}, {1'000'000, 'S'}, {60'000'000, 'M'}, {3'600'000'000, 'H'}};
  for (const Unit& unit : kUnits) {
    const int64_t value = (us + unit.us - 1) / unit.us;  // rounded up
    if (value <= kMax) return fmt::format("{}{}", value, unit.name);
  }
  return fmt::format("{}H", kMax);
}

std::string decode_message_field(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '%' && i + 2 < value.size()) {
      const int hi = hex_value(value[i + 1]);
      const int lo = hex_value(value[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += value[i];
  }
  return out;
}

std::string encode_message_field(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (c >= 0x20 && c <= 0x7e && c != '%') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

}  // namespace millstone::grpc
