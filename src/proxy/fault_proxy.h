#pragma once
// millstone's fault proxy: named TCP proxies (one listener each, forwarding
// to one upstream) whose connections pass through toxics, all on one event
// loop. This is the C++ API; the HTTP API (api.h), compatible with
// Toxiproxy's, is a thin layer over it, and a drill running in the same
// process calls these methods directly. Every method runs on the loop's
// thread and returns at once: nothing blocks but the name look-ups of
// listen and upstream addresses when a proxy starts.
//
// Semantics follow Toxiproxy (README "Toxics" and "HTTP API"): toxics act on
// existing and new connections, the toxicity is drawn per connection and
// direction, a disabled proxy closes its listener and its connections, and
// `reset` enables every proxy and removes every toxic. Where millstone
// differs it is on purpose and documented in docs/proxy.md (half-closes are
// forwarded; reset_peer always sends RST; bad attribute values are refused).
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/event_loop.h"
#include "net/socket.h"
#include "proxy/toxic.h"
#include "random/randomness.h"

namespace millstone::proxy {

struct ProxyConfig {
  std::string name;
  std::string listen;    // HOST:PORT; port 0 picks a free one; empty = 127.0.0.1:0
  std::string upstream;  // HOST:PORT
  bool enabled = true;
};

// What GET /proxies/{name} shows.
struct ProxyState {
  std::string name;
  std::string listen;  // the bound address once started ("127.0.0.1:26379")
  std::string upstream;
  bool enabled = false;
  std::vector<ToxicSpec> toxics;  // upstream ones, then downstream, each in order added
  uint64_t connections = 0;       // open now
  uint64_t accepted = 0;          // since the proxy was created
};

// The outcome of a call: an HTTP status (the API answers with it) and, for
// an error, Toxiproxy's message ("proxy not found").
struct Status {
  int code = 200;
  std::string message;
  bool cannot_listen = false;  // the listen address is taken or cannot be bound

  bool ok() const { return code < 400; }
  static Status error(int code, std::string message) { return {code, std::move(message)}; }
};

// Opens a listening socket: the fd (-1 with errno on failure). Tests and the
// fuzzer replace it so that no real port is bound.
using ListenerOpener = std::function<int(const net::Endpoint&)>;

// Turns a host and port into an address (*error says why not).
using Resolver =
    std::function<std::optional<net::Endpoint>(const std::string&, uint16_t, std::string*)>;

struct FaultProxyOptions {
  uint64_t seed = 0;             // toxicity draws, jitter and slice sizes
  ListenerOpener open_listener;  // default: net::listen_socket
  Resolver resolve;              // default: net::resolve (names through getaddrinfo)
};

class Proxy;

class FaultProxy {
 public:
  FaultProxy(net::EventLoop& loop, FaultProxyOptions options = {});
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  // 201 created, 400 (missing field, bad address), 409 (name taken), 500 (cannot listen).
  Status create(const ProxyConfig& config, ProxyState* out);
  // Every field replaces the proxy's (the API merges a partial update first);
  // a new listen or upstream restarts the proxy and drops its connections.
  Status update(const std::string& name, const ProxyConfig& config, ProxyState* out);
  Status remove(const std::string& name);
  // Creates each proxy, or replaces one of the same name whose listen or
  // upstream differs (POST /populate); stops at the first failure, with
  // `out` holding those done.
  Status populate(const std::vector<ProxyConfig>& configs, std::vector<ProxyState>* out);
  Status get(const std::string& name, ProxyState* out) const;
  std::vector<ProxyState> list() const;  // by name

  // `spec.name` empty: "<type>_<stream>". 409 if the proxy has a toxic of
  // that name, 400 if validate_toxic() refuses it.
  Status add_toxic(const std::string& proxy, ToxicSpec spec, ToxicSpec* out);
  // New toxicity and attributes for the toxic named spec.name (its type and
  // stream stay).
  Status update_toxic(const std::string& proxy, const ToxicSpec& spec, ToxicSpec* out);
  Status get_toxic(const std::string& proxy, const std::string& toxic, ToxicSpec* out) const;
  Status remove_toxic(const std::string& proxy, const std::string& toxic);
  // Enables every proxy and removes every toxic (POST /reset).
  Status reset();

  net::EventLoop& loop() { return loop_; }

 private:
  friend class Proxy;
  Proxy* find(const std::string& name) const;

  net::EventLoop& loop_;
  ListenerOpener open_listener_;
  Resolver resolve_;
  random::Prng prng_;
  uint64_t next_toxic_id_ = 1;
  std::vector<char> read_buffer_;  // shared by every connection of the loop
  std::map<std::string, std::unique_ptr<Proxy>> proxies_;
};

}  // namespace millstone::proxy
