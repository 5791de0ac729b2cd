#pragma once
// The state of one virtual user, shared by workload.cc (HTTP steps, the
// executors) and workload_sockets.cc (WebSocket and TCP steps).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "http/client_connection.h"
#include "http/session_connection.h"
#include "http2/session.h"
#include "net/event_loop.h"
#include "scenario/cookie_jar.h"
#include "scenario/workload.h"
#include "ws/frame.h"

namespace millstone::scenario {

// A VU's WebSocket or TCP connection, allocated once for VUs whose flow has
// socket steps. It reuses ClientConnection (connect, the shared read buffer,
// partial writes) in raw mode; idle, it owns no buffers: the connection keeps
// bytes only for an incomplete frame, the frame parser only for a fragmented
// message, and the handshake text lives only until the 101.
struct SocketSession {
  SocketSession(net::EventLoop& loop, ScenarioWorkload& owner, http::ClientContext& context,
                uint32_t index, size_t max_message_bytes)
      : connection(loop, owner, context, index), frames(ws::Role::kClient, max_message_bytes) {}

  enum class Wait : uint8_t {
    kNone,
    kConnect,  // TCP connect and, for WebSocket, the handshake
    kExpect,
    kHold,
    kClose,  // ws.close sent; waiting for the server's close
    kSend,   // ws.send/tcp.send: too many bytes unsent; waiting for the socket to take them
  };
  http::ClientConnection connection;
  ws::FrameParser frames;
  std::string handshake;  // Sec-WebSocket-Key + the upgrade request, until the 101
  int64_t connect_started_ns = 0;
  int64_t connected_ns = 0;  // TCP connected
  int64_t open_ns = 0;       // usable: connected (TCP) or upgraded (WebSocket)
  int64_t last_send_ns = 0;  // expect latency counts from the last send (or open)
  int64_t step_started_ns = 0;
  uint32_t generation = 0;  // changes at every connect and close
  Wait wait = Wait::kNone;
  bool websocket = false;
  bool open = false;           // counted in the open-sockets gauge
  bool first_message = false;  // a message has arrived on this connection
  bool close_sent = false;
  // WebSocket messages that arrived while no expect or hold waited (the VU
  // was busy with an HTTP request, say): kept, bounded, with their arrival
  // time, for the next ws.expect; dropped (unsolicited) when the socket ends.
  // A vector, at most kMaxEarlyMessages long: empty, it allocates nothing,
  // where a std::deque allocates about 600 bytes up front, for every
  // connection of a million.
  std::vector<std::pair<int64_t, std::string>> early;
  size_t early_bytes = 0;
};

// One virtual user: a flow's program counter, its variables, cookies and
// connection. Idle VUs cost the struct, its strings' small buffers and a
// closed or idle socket.
class VirtualUser {
 public:
  VirtualUser(net::EventLoop& loop, ScenarioWorkload& owner, http::ClientContext& context,
              uint32_t index)
      : connection(loop, owner, context, index),
        timer(loop, [this, &owner] { owner.on_vu_timer(*this); }) {}

  http::ClientConnection connection;
  net::Timer timer;  // think time, or back-off after a failure
  RunState* run = nullptr;
  uint64_t id = 0;  // unique across workers, from 1
  uint32_t flow = 0;
  uint32_t pc = 0;
  uint64_t iteration = 0;
  int64_t iteration_intended_ns = 0;
  bool first_request = false;
  bool in_iteration = false;
  bool waiting_connect = false;
  bool retired = false;
  bool stop_after_iteration = false;
  bool out_of_data = false;         // found no unique row left: stopped for good, never reused
  bool resume_after_timer = false;  // timer = think time (resume) or back-off (next iteration)
  // ScenarioWorkload::execute is running for this VU: a step that completes
  // synchronously asks it to continue (execute_again) instead of recursing.
  bool executing = false;
  bool execute_again = false;
  uint32_t failures = 0;
  uint32_t per_vu_row = 0;
  int64_t request_timeout_ns = 0;
  std::vector<uint32_t> loops;
  std::vector<std::string> variables;
  CookieJar cookies;
  std::string request;
  std::string body;
  std::unique_ptr<SocketSession> socket;  // flows with socket steps only
  // Steps with http: 2: the VU's own HTTP/2 connection (one stream in flight,
  // like its HTTP/1.1 one), made at its first such step, and the request.
  std::unique_ptr<http::SessionConnection> h2;
  std::unique_ptr<http2::Request> h2_request;
  bool h2_waiting = false;  // the request waits for the connection to be ready
  int64_t h2_intended_ns = 0;
  // amqp.* steps (workload_amqp.cc). An expect's latency counts from
  // `origin_ns`: when the flow's last request or publish was due.
  // kLink: a publish waits for the connection; kMessage: an expect for its
  // message; kConfirm: a publish with confirm: true for the broker's ack.
  enum class AmqpWait : uint8_t { kNone, kLink, kMessage, kConfirm };
  AmqpWait amqp_wait = AmqpWait::kNone;
  int64_t origin_ns = 0;
  // Due times of this iteration's steps that a from: names (0: not yet).
  std::vector<int64_t> origins;
  // A request step with until: (workload.cc): between two polls (the timer
  // is the interval), when the first was due, and how many went out.
  bool poll_wait = false;
  int64_t poll_started_ns = 0;
  uint32_t polls = 0;
  int64_t amqp_started_ns = 0;
  std::string amqp_key;   // the correlation value an expect waits for
  uint64_t amqp_tag = 0;  // kConfirm: the publish's confirm tag
};

}  // namespace millstone::scenario
