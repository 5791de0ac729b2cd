#include "proxy/fault_proxy.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "net/clock.h"
#include "proxy/connection.h"

namespace millstone::proxy {

namespace {

constexpr size_t kReadBufferBytes = 64 * 1024;

// "HOST:PORT", "[V6]:PORT" or ":PORT"; a name is resolved (once, here).
// An empty host is every IPv4 interface for a listener (as Go's ":PORT")
// and the loopback address for an upstream.
Status parse_address(const Resolver& resolve, const std::string& text, const char* field,
                     bool listen, net::Endpoint* out) {
  std::string host;
  std::string port_text;
  const auto bad = [&] {
    return Status::error(
        400, fmt::format("{}: expected HOST:PORT (such as 127.0.0.1:8080), got '{}'", field, text));
  };
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return bad();
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string::npos) return bad();
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port_text) > 65535) {
    return Status::error(
        400, fmt::format("{}: port '{}' is not a number from 0 to 65535", field, port_text));
  }
  const auto port = static_cast<uint16_t>(std::stoul(port_text));
  if (!listen && port == 0) {
    return Status::error(400, fmt::format("{}: port 0 cannot be connected to", field));
  }
  if (host.empty()) host = listen ? "0.0.0.0" : "127.0.0.1";
  std::string error;
  auto endpoint = resolve(host, port, &error);
  if (!endpoint) return Status::error(400, fmt::format("{}: {}", field, error));
  *out = *endpoint;
  return {};
}

}  // namespace

// One named proxy: its listener and its connections, which it owns.
class Proxy final : public net::IoHandler {
 public:
  Proxy(FaultProxy& owner, ProxyConfig config, net::Endpoint upstream)
      : owner_(owner),
        config_(std::move(config)),
        upstream_(upstream),
        reaper_(owner.loop_, [this] { graveyard_.clear(); }),
        accept_retry_(owner.loop_, [this] { accept_all(); }) {}
  ~Proxy() override { stop(); }

  const ProxyConfig& config() const { return config_; }
  bool enabled() const { return listen_fd_ >= 0; }

  Status start() {
    if (enabled()) return {};
    if (config_.listen.empty()) config_.listen = "127.0.0.1:0";
    net::Endpoint endpoint;
    Status status = parse_address(owner_.resolve_, config_.listen, "listen", true, &endpoint);
    if (!status.ok()) return status;
    const int fd = owner_.open_listener_(endpoint);
    if (fd < 0) {
      Status failed = Status::error(
          500, fmt::format("listen tcp {}: {}", endpoint.to_string(), std::strerror(errno)));
      failed.cannot_listen = true;
      return failed;
    }
    registration_ = owner_.loop_.add(fd, EPOLLIN, this);
    if (registration_ == 0) {
      Status failed = Status::error(500, fmt::format("listen tcp {}: cannot watch the socket: {}",
                                                     endpoint.to_string(), std::strerror(errno)));
      ::close(fd);
      return failed;
    }
    listen_fd_ = fd;
    // Show the bound address (the port that 0 picked), as Toxiproxy does.
    auto bound = net::local_endpoint(fd);
    config_.listen = (bound ? *bound : endpoint).to_string();
    return {};
  }

  void stop() {
    accept_retry_.cancel();
    if (listen_fd_ >= 0) {
      owner_.loop_.remove(registration_, listen_fd_);
      ::close(listen_fd_);
      listen_fd_ = -1;
    }
    for (Connection* connection : live())
      connection->close(false);
  }

  // Replaces listen and upstream (the proxy is stopped).
  void readdress(std::string listen, std::string upstream_text, net::Endpoint upstream) {
    config_.listen = std::move(listen);
    config_.upstream = std::move(upstream_text);
    upstream_ = upstream;
  }

  ProxyState state() const {
    ProxyState state;
    state.name = config_.name;
    state.listen = config_.listen;
    state.upstream = config_.upstream;
    state.enabled = enabled();
    for (Direction direction : {Direction::kUpstream, Direction::kDownstream}) {
      for (const Toxic& toxic : toxics_) {
        if (toxic.spec.stream == direction) state.toxics.push_back(toxic.spec);
      }
    }
    state.connections = connections_.size();
    state.accepted = accepted_;
    return state;
  }

  const ToxicSpec* find_toxic(const std::string& name) const {
    for (const Toxic& toxic : toxics_) {
      if (toxic.spec.name == name) return &toxic.spec;
    }
    return nullptr;
  }

  void add_toxic(const ToxicSpec& spec, uint64_t id) {
    toxics_.push_back({id, spec});
    const int64_t now = net::now_ns();
    for (Connection* connection : live()) {
      connection->link(spec.stream).add_toxic(id, spec, now);
      connection->pump();
    }
  }

  void update_toxic(const ToxicSpec& spec) {
    for (Toxic& toxic : toxics_) {
      if (toxic.spec.name != spec.name) continue;
      toxic.spec.toxicity = spec.toxicity;
      toxic.spec.attributes = spec.attributes;
      const int64_t now = net::now_ns();
      for (Connection* connection : live()) {
        connection->link(toxic.spec.stream).update_toxic(toxic.id, toxic.spec, now);
        connection->pump();
      }
      return;
    }
  }

  void remove_toxic(const std::string& name) {
    for (auto it = toxics_.begin(); it != toxics_.end(); ++it) {
      if (it->spec.name != name) continue;
      const Toxic toxic = *it;
      toxics_.erase(it);
      const int64_t now = net::now_ns();
      for (Connection* connection : live()) {
        connection->link(toxic.spec.stream).remove_toxic(toxic.id, now);
        connection->pump();
      }
      return;
    }
  }

  void remove_all_toxics() {
    while (!toxics_.empty())
      remove_toxic(toxics_.front().spec.name);
  }

  void on_io(uint32_t) override { accept_all(); }

 private:
  struct Toxic {
    uint64_t id;
    ToxicSpec spec;
  };

  // A snapshot: pumping a connection may close it, which moves it to the
  // graveyard (alive until the next turn of the loop) and out of the map.
  std::vector<Connection*> live() const {
    std::vector<Connection*> out;
    out.reserve(connections_.size());
    for (const auto& [pointer, owned] : connections_)
      out.push_back(pointer);
    return out;
  }

  void accept_all() {
    while (listen_fd_ >= 0) {
      const int fd = net::accept_connection(listen_fd_);
      if (fd < 0) {
        // Out of descriptors: the pending connection stays queued, and
        // edge-triggered epoll will not say so again; look again soon.
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          accept_retry_.arm_after(100 * net::kNsPerMs);
        }
        return;
      }
      ++accepted_;
      auto connection = std::make_unique<Connection>(
          owner_.loop_, owner_.read_buffer_, owner_.prng_, fd, upstream_.family(),
          [this](Connection* closed) { retire(closed); });
      Connection* raw = connection.get();
      const int64_t now = net::now_ns();
      for (const Toxic& toxic : toxics_)
        raw->link(toxic.spec.stream).add_toxic(toxic.id, toxic.spec, now);
      connections_.emplace(raw, std::move(connection));
      raw->connect(upstream_);
    }
  }

  void retire(Connection* connection) {
    auto it = connections_.find(connection);
    if (it == connections_.end()) return;
    graveyard_.push_back(std::move(it->second));
    connections_.erase(it);
    if (!reaper_.armed()) reaper_.arm_after(0);
  }

  FaultProxy& owner_;
  ProxyConfig config_;
  net::Endpoint upstream_;
  int listen_fd_ = -1;
  uint64_t registration_ = 0;
  uint64_t accepted_ = 0;
  std::vector<Toxic> toxics_;  // in the order added
  std::unordered_map<Connection*, std::unique_ptr<Connection>> connections_;
  std::vector<std::unique_ptr<Connection>> graveyard_;
  net::Timer reaper_;
  net::Timer accept_retry_;
};

FaultProxy::FaultProxy(net::EventLoop& loop, FaultProxyOptions options)
    : loop_(loop),
      open_listener_(std::move(options.open_listener)),
      resolve_(std::move(options.resolve)),
      prng_(options.seed),
      read_buffer_(kReadBufferBytes) {
  if (!resolve_) resolve_ = net::resolve;
  if (!open_listener_) {
    open_listener_ = [](const net::Endpoint& endpoint) {
      return net::listen_socket(endpoint, 1024);
    };
  }
}

FaultProxy::~FaultProxy() = default;

Proxy* FaultProxy::find(const std::string& name) const {
  auto it = proxies_.find(name);
  return it == proxies_.end() ? nullptr : it->second.get();
}

Status FaultProxy::create(const ProxyConfig& config, ProxyState* out) {
  if (config.name.empty()) return Status::error(400, "missing required field: name");
  if (config.upstream.empty()) return Status::error(400, "missing required field: upstream");
  if (find(config.name)) return Status::error(409, "proxy already exists");
  net::Endpoint upstream;
  Status status = parse_address(resolve_, config.upstream, "upstream", false, &upstream);
  if (!status.ok()) return status;
  auto proxy = std::make_unique<Proxy>(*this, config, upstream);
  if (config.enabled) {
    status = proxy->start();
    if (!status.ok()) return status;
  }
  if (out) *out = proxy->state();
  proxies_.emplace(config.name, std::move(proxy));
  return {201, {}};
}

Status FaultProxy::update(const std::string& name, const ProxyConfig& config, ProxyState* out) {
  Proxy* proxy = find(name);
  if (!proxy) return Status::error(404, "proxy not found");
  const ProxyConfig& current = proxy->config();
  bool differs = config.upstream != current.upstream;
  if (config.listen != current.listen) {
    // Toxiproxy compares the resolved address with the bound one: the same
    // address written differently ("localhost:26379") is no change.
    net::Endpoint wanted;
    Status status = parse_address(resolve_, config.listen, "listen", true, &wanted);
    if (!status.ok()) return status;
    differs = differs || wanted.to_string() != current.listen || wanted.port() == 0;
  }
  if (differs) {
    net::Endpoint upstream;
    Status status = parse_address(resolve_, config.upstream, "upstream", false, &upstream);
    if (!status.ok()) return status;
    proxy->stop();
    proxy->readdress(config.listen, config.upstream, upstream);
  }
  if (config.enabled) {
    Status status = proxy->start();
    if (!status.ok()) return status;
  } else {
    proxy->stop();
  }
  if (out) *out = proxy->state();
  return {};
}

Status FaultProxy::remove(const std::string& name) {
  auto it = proxies_.find(name);
  if (it == proxies_.end()) return Status::error(404, "proxy not found");
  proxies_.erase(it);
  return {204, {}};
}

Status FaultProxy::populate(const std::vector<ProxyConfig>& configs, std::vector<ProxyState>* out) {
  // Everything is checked before anything changes, as Toxiproxy does.
  for (size_t i = 0; i < configs.size(); ++i) {
    if (configs[i].name.empty()) {
      return Status::error(400, fmt::format("missing required field: name at proxy {}", i + 1));
    }
    if (configs[i].upstream.empty()) {
      return Status::error(400, fmt::format("missing required field: upstream at proxy {}", i + 1));
    }
  }
  for (const ProxyConfig& config : configs) {
    if (Proxy* existing = find(config.name)) {
      const ProxyConfig& current = existing->config();
      net::Endpoint wanted;
      const bool same_listen =
          parse_address(resolve_, config.listen.empty() ? "127.0.0.1:0" : config.listen, "listen",
                        true, &wanted)
              .ok() &&
          wanted.port() != 0 && wanted.to_string() == current.listen;
      if (same_listen && config.upstream == current.upstream) {
        if (out) out->push_back(existing->state());
        continue;
      }
      proxies_.erase(config.name);
    }
    ProxyState state;
    Status status = create(config, &state);
    if (!status.ok()) return status;
    if (out) out->push_back(std::move(state));
  }
  return {201, {}};
}

Status FaultProxy::get(const std::string& name, ProxyState* out) const {
  Proxy* proxy = find(name);
  if (!proxy) return Status::error(404, "proxy not found");
  if (out) *out = proxy->state();
  return {};
}

std::vector<ProxyState> FaultProxy::list() const {
  std::vector<ProxyState> out;
  for (const auto& [name, proxy] : proxies_)
    out.push_back(proxy->state());
  return out;
}

Status FaultProxy::add_toxic(const std::string& proxy_name, ToxicSpec spec, ToxicSpec* out) {
  Proxy* proxy = find(proxy_name);
  if (!proxy) return Status::error(404, "proxy not found");
  if (spec.name.empty()) {
    spec.name = fmt::format("{}_{}", toxic_type_name(spec.type), direction_name(spec.stream));
  }
  if (proxy->find_toxic(spec.name)) return Status::error(409, "toxic already exists");
  std::string error = validate_toxic(spec);
  if (!error.empty()) return Status::error(400, "bad request body: " + error);
  proxy->add_toxic(spec, next_toxic_id_++);
  if (out) *out = spec;
  return {};
}

Status FaultProxy::update_toxic(const std::string& proxy_name, const ToxicSpec& spec,
                                ToxicSpec* out) {
  Proxy* proxy = find(proxy_name);
  if (!proxy) return Status::error(404, "proxy not found");
  const ToxicSpec* current = proxy->find_toxic(spec.name);
  if (!current) return Status::error(404, "toxic not found");
  ToxicSpec updated = *current;
  updated.toxicity = spec.toxicity;
  updated.attributes = spec.attributes;
  std::string error = validate_toxic(updated);
  if (!error.empty()) return Status::error(400, "bad request body: " + error);
  proxy->update_toxic(updated);
  if (out) *out = updated;
  return {};
}

Status FaultProxy::get_toxic(const std::string& proxy_name, const std::string& toxic,
                             ToxicSpec* out) const {
  Proxy* proxy = find(proxy_name);
  if (!proxy) return Status::error(404, "proxy not found");
  const ToxicSpec* spec = proxy->find_toxic(toxic);
  if (!spec) return Status::error(404, "toxic not found");
  if (out) *out = *spec;
  return {};
}

Status FaultProxy::remove_toxic(const std::string& proxy_name, const std::string& toxic) {
  Proxy* proxy = find(proxy_name);
  if (!proxy) return Status::error(404, "proxy not found");
  if (!proxy->find_toxic(toxic)) return Status::error(404, "toxic not found");
  proxy->remove_toxic(toxic);
  return {204, {}};
}

Status FaultProxy::reset() {
  for (auto& [name, proxy] : proxies_) {
    Status status = proxy->start();
    if (!status.ok()) return status;
    proxy->remove_all_toxics();
  }
  return {204, {}};
}

}  // namespace millstone::proxy
