#pragma once
// AMQP URIs (RabbitMQ's "URI Specification"):
//   amqp://[USER[:PASSWORD]@]HOST[:PORT][/VHOST]
// with percent-encoding in every part. No path means the vhost "/"; a path
// of "/" alone means the empty vhost name, as the spec says, which no broker
// has, so we take it as "/" too (what users mean by amqp://host/). amqps://
// is AMQP over TLS, port 5671 by default.
#include <cstdint>
#include <optional>
#include <string>

namespace millstone::amqp {

struct AmqpUrl {
  bool tls = false;
  std::string user = "guest";
  std::string password = "guest";
  std::string host;
  uint16_t port = 5672;
  std::string vhost = "/";
  // Without the password, for summaries and the history.
  std::string display() const;
};

// Nullopt with *error saying what was expected.
std::optional<AmqpUrl> parse_amqp_url(const std::string& text, std::string* error);

}  // namespace millstone::amqp
