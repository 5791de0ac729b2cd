#pragma once
// Asks a gRPC server's reflection service for the descriptors of services,
// before a run (`millstone grpc --reflect`, a scenario's grpc: {reflection:
// true}): one connection (h2c, or h2 over TLS), one
// ServerReflectionInfo call kept open while each question is asked and its
// answer read, one at a time (grpc/reflection.h says which). The call goes to
// grpc.reflection.v1 first, to v1alpha when v1 is UNIMPLEMENTED (or 404).
// Blocking, with its own poll loop: it runs once, on the coordinator, before
// any worker starts, and is not part of the run's measurement.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tls/options.h"

namespace millstone::grpc {

struct ReflectionTarget {
  std::string host;  // a name or an address, resolved here
  uint16_t port = 0;
  std::string authority;                     // :authority, "host:port"
  std::optional<tls::TlsClientOptions> tls;  // set: h2 over TLS (ALPN h2 is offered)
  std::string server_name;                   // TLS: SNI and the name checked
  // Sent with the call (authorization a server may want for reflection too).
  std::vector<std::pair<std::string, std::string>> metadata;
  int64_t connect_timeout_us = 5'000'000;  // TCP connect and TLS handshake
  int64_t timeout_us = 10'000'000;         // the conversation, from its first question
};

enum class ReflectionFailure : uint8_t {
  kNone,
  kUnreachable,  // does not resolve, refuses or times out the connect (exit 4)
  kTls,          // the TLS handshake failed, or no h2 was agreed (exit 8)
  kReflection,   // no reflection service, a symbol not found, a broken answer (exit 3)
};

struct ReflectionResult {
  ReflectionFailure failure = ReflectionFailure::kNone;
  std::string error;                  // one line, without the target's name
  std::string descriptor_set;         // serialized FileDescriptorSet: every file received
  std::vector<std::string> services;  // list_services' answer (no symbols given)
  std::string version;                // "v1" or "v1alpha": which one answered
  size_t files = 0;
  size_t questions = 0;
};

// `symbols`: the services (full names) to resolve; empty: list_services,
// then every service it names. Never throws.
ReflectionResult reflect(const ReflectionTarget& target, const std::vector<std::string>& symbols);

}  // namespace millstone::grpc
