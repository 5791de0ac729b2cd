#include "cli/flag_values.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include <fmt/format.h>

#include "config/quantity.h"
#include "config/yaml_text.h"

namespace millstone::cli {

using config::shown;

std::optional<uint64_t> parse_whole_flag(std::string_view flag, std::string_view text, uint64_t min,
                                         uint64_t max, std::string* error) {
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec == std::errc::invalid_argument || end != text.data() + text.size()) {
    *error =
        fmt::format("{} {} is not a whole number; expected {} to {}", flag, shown(text), min, max);
    return std::nullopt;
  }
  if (ec == std::errc::result_out_of_range || value < min || value > max) {
    *error = fmt::format("{} {} is out of range; expected {} to {}", flag, shown(text), min, max);
    return std::nullopt;
  }
  return value;
}

std::optional<int64_t> parse_duration_flag(std::string_view flag, std::string_view text,
                                           std::string* error) {
  std::string problem;
  const std::optional<int64_t> us = config::parse_duration_us(text, &problem);
  if (!us) {
    *error = fmt::format("{} {} {}", flag, shown(text), problem);
    return std::nullopt;
  }
  if (*us <= 0) {
    *error = fmt::format("{} {} is zero; expected a duration above 0, such as 10s or 1m30s", flag,
                         shown(text));
    return std::nullopt;
  }
  return us;
}

std::optional<double> parse_rate_flag(std::string_view flag, std::string_view text,
                                      std::string* error) {
  std::string problem;
  const std::optional<double> per_s =
      config::parse_rate_per_s(text, "requests", 0, kMaxRatePerS, &problem);
  if (!per_s) {
    *error = fmt::format("{} {} {}", flag, shown(text), problem);
    return std::nullopt;
  }
  if (*per_s <= 0) {
    *error = fmt::format(
        "{} {} is zero; expected a rate above 0 such as 100 or 100/s (without "
        "--rate a URL run uses the closed model)",
        flag, shown(text));
    return std::nullopt;
  }
  return per_s;
}

std::optional<std::vector<double>> parse_percentiles_flag(std::string_view flag,
                                                          std::string_view text,
                                                          std::string* error) {
  std::vector<double> percentiles;
  std::string_view rest = text;
  while (true) {
    const size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    while (!item.empty() && item.front() == ' ')
      item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ')
      item.remove_suffix(1);
    if (!item.empty() && item.front() == 'p') item.remove_prefix(1);  // "p99" as k6 writes it
    double value = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size() ||
        !std::isfinite(value) || value <= 0 || value > 100 ||
        std::fabs(std::round(value * 1e4) / 1e4 - value) > 1e-9) {
      *error = fmt::format(
          "{} {}: {} is not a percentile; expected numbers above 0 and at most 100 (up to 4 "
          "decimals), separated by commas, such as 50,90,95,99,99.9",
          flag, shown(text), shown(rest.substr(0, comma)));
      return std::nullopt;
    }
    percentiles.push_back(value);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  std::sort(percentiles.begin(), percentiles.end());
  percentiles.erase(std::unique(percentiles.begin(), percentiles.end()), percentiles.end());
  return percentiles;
}

std::optional<tls::TlsVersion> parse_tls_version_flag(std::string_view flag, std::string_view text,
                                                      std::string* error) {
  if (text == "1.2") return tls::TlsVersion::k1_2;
  if (text == "1.3") return tls::TlsVersion::k1_3;
  *error = fmt::format("{} {} is not a TLS version millstone speaks; expected 1.2 or 1.3", flag,
                       config::shown(text));
  return std::nullopt;
}

std::optional<std::vector<std::string>> parse_alpn_flag(std::string_view flag,
                                                        std::string_view text, std::string* error) {
  std::vector<std::string> protocols;
  size_t start = 0;
  for (;;) {
    const size_t comma = text.find(',', start);
    const std::string_view name = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    const bool printable =
        std::all_of(name.begin(), name.end(), [](char c) { return c > ' ' && c < 0x7f; });
    if (name.empty() || name.size() > 255 || !printable) {
      *error = fmt::format(
          "{} {}: expected protocol names separated by commas, such as http/1.1 or h2,http/1.1",
          flag, config::shown(text));
      return std::nullopt;
    }
    protocols.emplace_back(name);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return protocols;
}

}  // namespace millstone::cli
