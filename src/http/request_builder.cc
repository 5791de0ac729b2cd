#include "http/request_builder.h"

#include <cstdio>

#include "http/syntax.h"

#ifndef MILLSTONE_VERSION
#define MILLSTONE_VERSION "dev"
#endif

namespace millstone::http {

namespace {

bool has_header(const HeaderList& headers, std::string_view name) {
  for (const auto& [n, v] : headers) {
    if (syntax::iequals(n, name)) return true;
  }
  return false;
}

void append_header(std::string* out, std::string_view name, std::string_view value) {
  out->append(name).append(": ").append(value).append("\r\n");
}

}  // namespace

std::string build_request(std::string_view method, const Url& url, const HeaderList& headers,
                          std::string_view body) {
  static constexpr std::string_view kUserAgent = "millstone/" MILLSTONE_VERSION;
  std::string host = has_header(headers, "host") ? std::string() : url.host_header();
  bool add_length = !has_header(headers, "content-length") &&
                    !has_header(headers, "transfer-encoding") &&
                    (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH");
  std::string length = add_length ? std::to_string(body.size()) : std::string();

  size_t size = method.size() + url.target.size() + 16 + host.size() + 8 + kUserAgent.size() + 16 +
                length.size() + 20 + body.size();
  for (const auto& [n, v] : headers)
    size += n.size() + v.size() + 4;
  std::string out;
  out.reserve(size);
  out.append(method).append(" ").append(url.target).append(" HTTP/1.1\r\n");
  if (!host.empty()) append_header(&out, "Host", host);
  if (!has_header(headers, "user-agent")) append_header(&out, "User-Agent", kUserAgent);
  for (const auto& [n, v] : headers)
    append_header(&out, n, v);
  if (add_length) append_header(&out, "Content-Length", length);
  out.append("\r\n").append(body);
  return out;
}

std::optional<std::string> method_problem(std::string_view method) {
  if (!syntax::is_token(method)) {
    return std::string("is not an HTTP method; expected e.g. GET, POST or PURGE");
  }
  std::string upper(method);
  for (char& c : upper) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  if (upper != method) {
    return "has lowercase letters, and HTTP methods are case-sensitive; expected " + upper;
  }
  return std::nullopt;
}

bool is_framing_header(std::string_view name) {
  return syntax::iequals(name, "content-length") || syntax::iequals(name, "transfer-encoding") ||
         syntax::iequals(name, "connection");
}

bool parse_header_arg(std::string_view arg, std::pair<std::string, std::string>* out,
                      std::string* error) {
  auto fail = [&](std::string message) {
    if (error != nullptr) *error = std::move(message);
    return false;
  };
  size_t colon = arg.find(':');
  if (colon == std::string_view::npos) {
    return fail("missing ':' in header '" + std::string(arg) + "': expected 'Name: value'");
  }
  std::string_view name = syntax::trim_ows(arg.substr(0, colon));
  std::string_view value = syntax::trim_ows(arg.substr(colon + 1));
  if (name.empty()) {
    return fail("empty header name in '" + std::string(arg) + "': expected 'Name: value'");
  }
  for (char c : name) {
    if (!syntax::is_token_char(c)) {
      char shown[16];
      auto u = static_cast<unsigned char>(c);
      if (u > 0x20 && u < 0x7f) {
        std::snprintf(shown, sizeof shown, "'%c'", c);
      } else {
        std::snprintf(shown, sizeof shown, "byte 0x%02x", u);
      }
      return fail("bad character " + std::string(shown) + " in header name '" + std::string(name) +
                  "': names are letters, digits and !#$%&'*+-.^_`|~");
    }
  }
  for (char c : value) {
    if (c == '\r' || c == '\n') {
      return fail("header '" + std::string(name) + "' has a line break (CR or LF) in its value");
    }
    if (!syntax::is_field_char(c)) {
      char shown[16];
      std::snprintf(shown, sizeof shown, "0x%02x", static_cast<unsigned char>(c));
      return fail("header '" + std::string(name) + "' has control character " + shown +
                  " in its value");
    }
  }
  out->first = std::string(name);
  out->second = std::string(value);
  return true;
}

}  // namespace millstone::http
