#pragma once
// Small WebSocket and TCP servers on 127.0.0.1 for the socket scenario tests,
// each on its own thread, and third-party servers started as child processes.
// Every one is bounded: stopped by its destructor, sockets with timeouts.
#include <sys/types.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace millstone::testing {

class SocketTestServer {
 public:
  enum class Mode {
    kWsEcho,             // echo; push {"type":"tick","sent_us":N} every 100 ms; ping every 250 ms
    kWsCloseAfter,       // close with 4001 after 300 ms
    kWsGarbage,          // a frame with reserved bits set right after the handshake
    kWsRefuse,           // answer the upgrade with 403
    kTcpLineEcho,        // echo each line back
    kTcpLength32,        // echo each 4-byte-length-prefixed message back
    kTcpGarbageClose,    // send "garbage" without a newline, then close
    kWsRefuseKeepAlive,  // answer the upgrade with a keep-alive 403, then count bytes received
    kTcpNoRead,          // accept and never read (the client's sends back up)
    kWsScripted,         // the answer given to the constructor below
  };
  // On 127.0.0.1, or on ::1 with ipv6 (port() 0 if that cannot listen).
  explicit SocketTestServer(Mode mode, bool ipv6 = false)
      : SocketTestServer(mode, ipv6, std::string()) {}
  // Answers every upgrade request with `answer`, in which "{accept}" becomes
  // the Sec-WebSocket-Accept value for the client's key (and at "{pause}" it
  // waits 200 ms before sending the rest), then counts what the
  // client sends for up to a second (bytes_after_answer()).
  explicit SocketTestServer(std::string answer)
      : SocketTestServer(Mode::kWsScripted, false, std::move(answer)) {}
  ~SocketTestServer();
  int port() const { return port_; }
  // Bytes a client sent after the answer to its upgrade (kWsRefuseKeepAlive).
  size_t bytes_after_answer() const { return bytes_after_answer_; }

 private:
  SocketTestServer(Mode mode, bool ipv6, std::string answer);
  void accept_loop();
  void serve(int fd);
  Mode mode_;
  std::string answer_;  // kWsScripted
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> bytes_after_answer_{0};
  std::thread thread_;
  std::vector<std::thread> connections_;
};

// A child process (websocketd, node); killed (SIGTERM, then SIGKILL) when destroyed.
class ChildProcess {
 public:
  explicit ChildProcess(const std::vector<std::string>& argv);
  ~ChildProcess();
  // First stdout line that starts with `prefix`, within timeout_s ("" if none).
  std::string wait_for_line(const std::string& prefix, double timeout_s);

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string buffered_;
};

int free_port();
// True once something accepts connections on 127.0.0.1:port (within timeout_s).
bool wait_for_port(int port, double timeout_s);

}  // namespace millstone::testing
