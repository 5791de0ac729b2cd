#include "cluster/agent_listener.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "cluster/agent_tls.h"
#include "cluster/link.h"
#include "net/socket.h"
#include "tls/tls_stream.h"

namespace millstone::cluster {

struct AgentListener::Pending {
  std::string peer;
  int64_t deadline_ns = 0;
  std::unique_ptr<tls::TlsStream> tls;  // during the TLS handshake
  net::Readiness tls_wait = net::Readiness::kReadable;
  std::unique_ptr<StreamLink> link;  // after it
  std::unique_ptr<AdmitHandshake> admit;
  bool finished = false;  // admitted or refused: to be removed

  int fd() const { return tls ? tls->fd() : link ? link->fd() : -1; }
};

AgentListener::AgentListener(const Token& token, AgentListenerOptions options, Log log)
    : options_(std::move(options)),
      log_(std::move(log)),
      proof_key_(token.proof_key()),
      tls_(coordinator_tls_context(token)) {
  std::string error;
  const std::optional<net::Endpoint> endpoint = net::parse_listen_address(options_.listen, &error);
  if (!endpoint) throw AgentListenError("--agent-listen " + options_.listen + ": " + error);
  listen_fd_ = net::listen_socket(*endpoint, 128);
  if (listen_fd_ < 0) {
    throw AgentListenError(
        fmt::format("cannot listen for agents on {}: {}", options_.listen, std::strerror(errno)));
  }
  const std::optional<net::Endpoint> local = net::local_endpoint(listen_fd_);
  address_ = local ? local->to_string() : options_.listen;
  port_ = local ? local->port() : endpoint->port();
}

AgentListener::~AgentListener() {
  pending_.clear();  // closes their streams
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

void AgentListener::refuse(Pending& p, const std::string& cause) {
  log_(fmt::format("refused {}: {}", p.peer, cause));
  ++refused_;
  p.finished = true;
  if (p.tls) p.tls->close(false);
  if (p.link) p.link->close();
}

void AgentListener::accept_all(int64_t now_ns) {
  for (;;) {
    const int fd = net::accept_connection(listen_fd_);
    if (fd < 0) return;  // EAGAIN; or EMFILE and the like: try again on the next pass
    const std::optional<net::Endpoint> peer = net::peer_endpoint(fd);
    const std::string name = peer ? peer->to_string() : std::string("an unknown peer");
    if (pending_.size() >= options_.max_handshakes) {
      ::close(fd);
      ++dropped_;
      // One line a second at most: a flood must not become a flood of lines.
      if (dropped_ == 1 || now_ns - last_drop_log_ns_ >= net::kNsPerSec) {
        last_drop_log_ns_ = now_ns;
        log_(
            fmt::format("refused {}: {} handshakes already in progress ({} connection{} closed "
                        "so far)",
                        name, options_.max_handshakes, dropped_, dropped_ == 1 ? "" : "s"));
      }
      continue;
    }
    auto p = std::make_unique<Pending>();
    p->peer = name;
    p->deadline_ns = now_ns + options_.handshake_timeout_ns;
    p->tls = tls::TlsStream::server(*tls_, fd);
    if (!p->tls) continue;  // out of memory; the socket is closed
    pending_.push_back(std::move(p));
    advance(*pending_.back(), now_ns);
  }
}

void AgentListener::send_all(Pending& p, std::vector<OutFrame>& frames) {
  for (OutFrame& frame : frames)
    p.link->send(frame.type, frame.payload);
  frames.clear();
}

void AgentListener::advance(Pending& p, int64_t now_ns) {
  if (p.finished) return;
  if (p.tls) {
    const net::StreamResult r = p.tls->handshake();
    if (r.status == net::StreamStatus::kWouldBlock) {
      p.tls_wait = r.wait;
      return;
    }
    if (r.status != net::StreamStatus::kOk) {
      const std::string words(p.tls->error_text());
      const char* cause = metrics::error_cause_name(r.cause);
      if (r.cause == metrics::ErrorCause::kTlsAlertReceived) {
        // What an agent whose token differs does: its pin rejects our key.
        refuse(p, fmt::format("TLS handshake failed ({}: {}); an agent with another token "
                              "rejects this coordinator's key",
                              cause, words));
      } else if (r.cause == metrics::ErrorCause::kTlsProtocolVersion) {
        refuse(p, fmt::format("not TLS 1.3 ({}: {})", cause, words));
      } else {
        refuse(p, fmt::format("not TLS ({}: {})", cause, words));
      }
      return;
    }
    const std::string exporter = p.tls->export_keying_material(kExporterLabel, kExporterSize);
    if (exporter.size() != kExporterSize) {
      refuse(p, "TLS handshake failed (no keying material could be exported)");
      return;
    }
    p.link = std::make_unique<StreamLink>(std::move(p.tls), "agent " + p.peer);
    p.link->set_max_payload(kMaxHandshakePayload);
    p.admit = std::make_unique<AdmitHandshake>(proof_key_, exporter, "agent", options_.clock);
  }
  drive_admission(p, now_ns);
}

void AgentListener::drive_admission(Pending& p, int64_t now_ns) {
  std::vector<OutFrame> out;
  MessageType type;
  std::string payload;
  AdmitHandshake& admit = *p.admit;
  while (admit.state() != AdmitHandshake::State::kAdmitted &&
         admit.state() != AdmitHandshake::State::kRefused) {
    const WorkerLink::Receive r = p.link->receive(&type, &payload);
    if (r == WorkerLink::Receive::kNothing) break;
    const bool proving = admit.state() == AdmitHandshake::State::kAwaitProof;
    if (r == WorkerLink::Receive::kClosed) {
      refuse(p, proving ? "wrong token (it closed the connection without a proof)"
                        : "closed the connection during the handshake");
      return;
    }
    if (r == WorkerLink::Receive::kBroken) {
      refuse(p, proving ? "wrong token (no proof: " + p.link->error() + ")" : p.link->error());
      return;
    }
    admit.on_frame(type, payload, net::now_ns(), &out);
    send_all(p, out);
  }
  admit.on_time(now_ns, &out);
  send_all(p, out);
  if (admit.state() == AdmitHandshake::State::kRefused) {
    if (admit.refusal() != AdmitHandshake::Refusal::kWrongToken) {
      // Proven by the token: it may be told why.
      p.link->send(MessageType::kError, encode_error(admit.reason()));
      p.link->flush();
    }
    refuse(p, admit.reason());
    return;
  }
  if (!p.link->flush()) {
    refuse(p, p.link->error());
    return;
  }
  if (admit.state() != AdmitHandshake::State::kAdmitted) return;
  p.link->set_max_payload(kMaxPayloadSize);
  JoinedAgent agent;
  agent.peer = p.peer;
  agent.hello = admit.hello();
  agent.clock = admit.clock().best();
  agent.link =
      std::make_unique<AgentLink>(std::move(p.link), AgentLink::Role::kCoordinator, agent.clock);
  agent.link->replay_first(MessageType::kHello, admit.hello_payload());
  ready_.push_back(std::move(agent));
  p.finished = true;
}

std::optional<JoinedAgent> AgentListener::next(int64_t deadline_ns) {
  std::vector<pollfd> fds;
  std::vector<Pending*> owners;
  for (;;) {
    const int64_t now = net::now_ns();
    for (auto& p : pending_) {
      if (p->finished) continue;
      if (now >= p->deadline_ns) {
        refuse(*p, "no handshake within " + seconds_text(options_.handshake_timeout_ns));
      } else if (p->admit && p->admit->wake_ns() <= now) {
        drive_admission(*p, now);
      }
    }
    std::erase_if(pending_, [](const std::unique_ptr<Pending>& p) { return p->finished; });
    if (!ready_.empty()) {
      JoinedAgent agent = std::move(ready_.front());
      ready_.pop_front();
      return agent;
    }
    if (now >= deadline_ns && !fds.empty()) return std::nullopt;  // one pass made

    int64_t wake = deadline_ns;
    fds.clear();
    owners.clear();
    fds.push_back({listen_fd_, POLLIN, 0});
    for (auto& p : pending_) {
      short events = POLLIN;
      if (p->tls) {
        events = p->tls_wait == net::Readiness::kWritable ? POLLOUT : POLLIN;
      } else if (p->link->queued_bytes() > 0) {
        events |= POLLOUT;
      }
      fds.push_back({p->fd(), events, 0});
      owners.push_back(p.get());
      wake = std::min(wake, p->deadline_ns);
      if (p->admit) wake = std::min(wake, p->admit->wake_ns());
    }
    const int64_t left_ns = std::max<int64_t>(0, wake - now);
    const int timeout_ms =
        static_cast<int>(std::min<int64_t>((left_ns + net::kNsPerMs - 1) / net::kNsPerMs, 1000));
    const int n = poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) return std::nullopt;
    if (n <= 0) continue;
    const int64_t after = net::now_ns();
    for (size_t i = 0; i < owners.size(); ++i) {
      if (fds[i + 1].revents != 0) advance(*owners[i], after);
    }
    if (fds[0].revents & POLLIN) accept_all(after);
  }
}

}  // namespace millstone::cluster
