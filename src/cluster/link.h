#pragma once
// One coordinator <-> worker connection carrying framed messages
// (cluster/wire.h) both ways without ever blocking: the coordinator talks to
// links only, never to processes, so a local worker on a socketpair and a
// remote agent over TLS (docs/design/agents.md) are the same to it.
//
// `StreamLink` is the implementation over a `net::Stream`: a `PlainStream` on
// a socketpair for a local worker, a `TlsStream` for an agent once its TLS
// handshake and token check are done.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "cluster/outbox.h"
#include "cluster/wire.h"
#include "net/stream.h"

namespace millstone::cluster {

class WorkerLink {
 public:
  enum class Receive {
    kMessage,  // *type and *payload are filled
    kNothing,  // nothing complete yet; wait for the descriptor to be readable
    kClosed,   // the peer closed cleanly between messages
    kBroken,   // I/O error, garbage, or closed mid-message; see error()
  };

  virtual ~WorkerLink() = default;
  // For poll/epoll only; -1 once closed.
  virtual int fd() const = 0;
  // Names the peer in messages: "worker 3", "agent 10.0.0.7:40112".
  virtual const std::string& name() const = 0;
  // Queues a message and writes what the socket takes now. False if the link
  // has failed or its outbox would pass its limit (the message is not queued).
  virtual bool send(MessageType type, std::string_view payload) = 0;
  // Writes queued bytes until the socket would block. False if the link failed.
  virtual bool flush() = 0;
  virtual size_t queued_bytes() const = 0;
  virtual size_t peak_queued_bytes() const = 0;
  // Reads what has arrived (until the socket would block) and returns the next message.
  virtual Receive receive(MessageType* type, std::string* payload) = 0;
  // False once a send, flush or receive failed; error() says why.
  virtual bool ok() const = 0;
  virtual const std::string& error() const = 0;
  virtual void close() = 0;
  // Sends a keep-alive when one is due and returns when the next one is
  // (INT64_MAX: this link has none). A remote agent's link pings (AgentLink),
  // so an agent that is alive but has nothing to report is heard from.
  virtual int64_t heartbeat(int64_t now_ns) {
    (void)now_ns;
    return INT64_MAX;
  }
};

class StreamLink final : public WorkerLink {
 public:
  // Room for the largest frame and a backlog behind it.
  static constexpr size_t kDefaultOutboxLimit = kMaxPayloadSize + kFrameHeaderSize + (8u << 20);

  StreamLink(std::unique_ptr<net::Stream> stream, std::string name,
             size_t outbox_limit = kDefaultOutboxLimit);
  // A local worker's link: takes the socketpair end `fd` and makes it non-blocking.
  static std::unique_ptr<StreamLink> over_socket(int fd, std::string name);

  int fd() const override { return stream_ ? stream_->fd() : -1; }
  const std::string& name() const override { return name_; }
  bool send(MessageType type, std::string_view payload) override;
  bool flush() override;
  size_t queued_bytes() const override { return outbox_.size(); }
  size_t peak_queued_bytes() const override { return outbox_.peak(); }
  Receive receive(MessageType* type, std::string* payload) override;
  bool ok() const override { return error_.empty(); }
  const std::string& error() const override { return error_; }
  void close() override;

  const Outbox& outbox() const { return outbox_; }
  // Limits the frames accepted from the peer (FrameReader::set_max_payload).
  void set_max_payload(size_t limit) { reader_.set_max_payload(limit); }

 private:
  void fail(std::string why);

  std::unique_ptr<net::Stream> stream_;
  std::string name_;
  Outbox outbox_;
  FrameReader reader_;
  bool peer_closed_ = false;
  // After a failed write, what already arrived is still read.
  bool readable_after_error_ = false;
  std::string error_;
};

// Blocking helpers for the handshake and the final drain, outside any event
// loop (the worker before its loop starts and after it ends; tests). Each
// waits at most until `deadline_ns` (net::now_ns() clock).
// "1.5 s": a timeout in the words of the run's messages (millisecond precision).
std::string seconds_text(int64_t ns);

enum class WaitResult { kOk, kTimedOut, kClosed, kBroken };
WaitResult receive_until(WorkerLink& link, int64_t deadline_ns, MessageType* type,
                         std::string* payload);
WaitResult flush_until(WorkerLink& link, int64_t deadline_ns);

}  // namespace millstone::cluster
