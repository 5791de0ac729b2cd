#include "config/quantity.h"

#include <charconv>
#include <cmath>

#include <fmt/format.h>

#include "config/yaml_fields.h"

namespace millstone::config {
namespace {

constexpr std::string_view kDurationHint =
    "expected a number and a unit, such as 20ms, 1.5s, 250us or 2m";

struct Unit {
  std::string_view name;
  double us;
};
// Longest names first: "ms" before "m" and "s".
constexpr Unit kUnits[] = {{"us", 1},  {"\xc2\xb5s", 1}, {"ms", 1e3},
                           {"s", 1e6}, {"m", 60e6},      {"h", 3600e6}};

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

// digits [ "." digits ] at the start of *text; consumed on success.
std::optional<double> take_number(std::string_view* text) {
  size_t end = 0;
  while (end < text->size() && is_digit((*text)[end]))
    ++end;
  if (end == 0) return std::nullopt;
  if (end < text->size() && (*text)[end] == '.') {
    size_t fraction = end + 1;
    while (fraction < text->size() && is_digit((*text)[fraction]))
      ++fraction;
    if (fraction == end + 1) return std::nullopt;
    end = fraction;
  }
  double value = 0;
  const auto [ptr, ec] = std::from_chars(text->data(), text->data() + end, value);
  if (ec != std::errc() || ptr != text->data() + end) return std::nullopt;
  text->remove_prefix(end);
  return value;
}

std::string hours(int64_t us) {
  return fmt::format("{:g}h", static_cast<double>(us) / 3600e6);
}

}  // namespace

std::optional<int64_t> parse_duration_us(std::string_view raw, std::string* problem,
                                         int64_t max_us) {
  auto fail = [&](std::string why) -> std::optional<int64_t> {
    if (problem != nullptr) *problem = std::move(why);
    return std::nullopt;
  };
  std::string_view text = trim(raw);
  if (!text.empty() && text.front() == '-') {
    std::string_view rest = text.substr(1);
    if (take_number(&rest)) return fail("is negative; expected a duration of 0 or more");
  }
  if (text.empty()) return fail(fmt::format("is empty; {}", kDurationHint));
  double us = 0;
  while (!text.empty()) {
    const std::optional<double> number = take_number(&text);
    if (!number) return fail(fmt::format("is not a duration; {}", kDurationHint));
    text = trim(text);
    if (text.empty()) return fail(fmt::format("has no unit; {}", kDurationHint));
    const Unit* unit = nullptr;
    for (const Unit& candidate : kUnits) {
      if (text.starts_with(candidate.name) &&
          (text.size() == candidate.name.size() ||
           !std::isalpha(static_cast<unsigned char>(text[candidate.name.size()])))) {
        unit = &candidate;
        break;
      }
    }
    if (unit == nullptr) {
      size_t letters = 0;
      while (letters < text.size() && !is_digit(text[letters]) && !is_blank(text[letters])) {
        ++letters;
      }
      return fail(fmt::format("has unknown unit \"{}\"; expected one of us, ms, s, m, h",
                              text.substr(0, letters)));
    }
    us += *number * unit->us;
    text = trim(text.substr(unit->name.size()));
  }
  if (!std::isfinite(us) || us > static_cast<double>(max_us)) {
    return fail(
        fmt::format("is longer than {}; expected at most {}", hours(max_us), hours(max_us)));
  }
  return std::llround(us);
}

std::optional<double> parse_rate_per_s(std::string_view raw, std::string_view counted,
                                       double min_per_s, double max_per_s, std::string* problem) {
  std::string_view text = trim(raw);
  double per = 1;
  for (const auto& [suffix, seconds] :
       {std::pair{std::string_view("/s"), 1.0}, {"/m", 60.0}, {"/h", 3600.0}}) {
    if (text.ends_with(suffix)) {
      text = trim(text.substr(0, text.size() - suffix.size()));
      per = seconds;
      break;
    }
  }
  std::string_view number_text = text;
  const std::optional<double> value = take_number(&number_text);
  auto bound = [](double v) {
    return v == std::floor(v) && v < 1e15 ? fmt::format("{:.0f}", v) : fmt::format("{:g}", v);
  };
  const std::string expected =
      fmt::format("expected {} per second from {} to {}, such as 100, 100/s or 6000/m", counted,
                  bound(min_per_s), bound(max_per_s));
  if (!value || !number_text.empty()) {
    if (problem != nullptr) *problem = fmt::format("is not a rate; {}", expected);
    return std::nullopt;
  }
  const double per_s = *value / per;
  if (per_s < min_per_s || per_s > max_per_s) {
    if (problem != nullptr) *problem = fmt::format("is out of range; {}", expected);
    return std::nullopt;
  }
  return per_s;
}

}  // namespace millstone::config
