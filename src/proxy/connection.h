#pragma once
// One proxied connection: the client's socket, the upstream socket, and a
// Link per direction (upstream: client -> server, downstream: server ->
// client). Edge-triggered: each socket remembers whether it may be readable
// or writable, and pump() moves bytes until a socket would block, a link is
// full (kLinkBufferLimit) or a toxic holds them; a timer wakes it for the
// next piece a toxic releases.
#include <cstdint>
#include <functional>
#include <vector>

#include "net/event_loop.h"
#include "net/socket.h"
#include "net/stream.h"
#include "proxy/link.h"

namespace millstone::proxy {

class Connection {
 public:
  // Called once when the connection has closed both sockets; the owner may
  // destroy the object after the current event (not inside the callback's
  // caller's stack frame).
  using OnClosed = std::function<void(Connection*)>;

  // Takes the accepted client socket; opens the upstream socket (of the
  // upstream's family), not yet connected.
  Connection(net::EventLoop& loop, std::vector<char>& read_buffer, random::Prng& prng,
             int client_fd, int upstream_family, OnClosed on_closed);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Starts connecting to the upstream; false (and closed) if that fails at once.
  bool connect(const net::Endpoint& upstream);
  Link& link(Direction direction) { return direction == Direction::kUpstream ? up_ : down_; }
  // Moves what can move now (after a toxic changed, or on an event).
  void pump();
  // Closes both sockets (FIN, or RST if `reset`), as a stopped proxy does.
  void close(bool reset);
  bool closed() const { return closed_; }

 private:
  struct Side final : net::IoHandler {
    Side(Connection* owner, int fd) : connection(owner), stream(fd) {}
    Connection* connection;
    net::PlainStream stream;
    uint64_t registration = 0;
    bool readable = true;
    bool writable = false;
    bool read_ended = false;  // FIN read, or no longer read
    // EPOLLRDHUP seen: the FIN may sit behind the data of the same edge, so
    // a short read does not mean drained (no further edge would come).
    bool peer_closing = false;
    void on_io(uint32_t events) override;
  };

  void on_io(Side& side, uint32_t events);
  // Moves bytes of one direction; false once the connection is gone.
  bool flow(Link& link, Side& from, Side& to, bool& done, Link& other, int64_t now);
  bool write_out(Link& link, Side& from, Side& to, bool& done, Link& other, int64_t now);
  void arm_timer();

  net::EventLoop& loop_;
  std::vector<char>& read_buffer_;
  OnClosed on_closed_;
  Side client_;
  Side upstream_;
  Link up_;
  Link down_;
  net::Timer timer_;
  bool connecting_ = false;
  bool up_done_ = false;    // the upstream socket got its FIN (or close)
  bool down_done_ = false;  // the client socket got its FIN (or close)
  bool closed_ = false;
  bool again_ = false;  // a close in one direction ended the other's input: pump again
};

}  // namespace millstone::proxy
