#include "grpc/reflection_client.h"

#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string_view>

#include <fmt/format.h>

#include "grpc/framing.h"
#include "grpc/reflection.h"
#include "grpc/session.h"
#include "grpc/status.h"
#include "net/clock.h"
#include "net/socket.h"
#include "net/stream.h"
#include "tls/client_context.h"
#include "tls/tls_stream.h"

namespace millstone::grpc {

namespace {

// Answers carry whole files; a large API's descriptors are some MiB.
constexpr uint32_t kMaxAnswerBytes = 64u << 20;

int64_t left_ms(int64_t deadline_ns) {
  const int64_t left = (deadline_ns - net::now_ns()) / 1'000'000;
  return left < 0 ? 0 : left;
}

// One blocking connect within the timeout: the socket, or -1 and *error.
int connect_to(const ReflectionTarget& target, std::string* error) {
  const auto endpoint = net::resolve(target.host, target.port, error);
  if (!endpoint) return -1;
  const int fd = net::tcp_socket(endpoint->family());
  if (fd < 0) {
    *error = fmt::format("cannot create a socket: {}", strerror(errno));
    return -1;
  }
  const int rc = net::start_connect(fd, *endpoint);
  int err = rc < 0 ? errno : 0;
  if (rc > 0) {
    pollfd p{fd, POLLOUT, 0};
    const int n = poll(&p, 1, static_cast<int>(target.connect_timeout_us / 1000));
    err = n == 0 ? ETIMEDOUT : net::connect_result(fd);
  }
  if (err != 0) {
    close(fd);
    *error = fmt::format("cannot connect to {}: {}", endpoint->to_string(),
                         err == ETIMEDOUT ? "connection timed out" : strerror(err));
    return -1;
  }
  net::set_no_delay(fd);
  return fd;
}

// The connection and its one HTTP/2 session; a call at a time.
class Conversation {
 public:
  explicit Conversation(std::unique_ptr<net::Stream> stream) : stream_(std::move(stream)) {}
  ~Conversation() {
    if (session_) nghttp2_session_del(session_);
    if (stream_) stream_->close(false);
  }

  bool start(std::string* error);
  // One ServerReflectionInfo call on `path`, until `resolver` is done or
  // fails, or the call ends. Returns false with *error on a failure;
  // *unimplemented when the server has no such service.
  bool converse(const ReflectionTarget& target, std::string_view path, ReflectionResolver& resolver,
                int64_t deadline_ns, size_t* questions, bool* unimplemented, std::string* error);

 private:
  struct Call {
    int32_t id = -1;
    int http_status = 0;
    bool grpc_type = false;
    int64_t grpc_status = -1;
    std::string grpc_message;
    std::string inbox;  // DATA not yet split into messages
    std::string outbox;
    size_t sent = 0;
    bool half_close = false;
    bool closed = false;
    uint32_t reset_code = 0;
  };

  // Moves bytes until `ready()` or the deadline; false with *error when the
  // connection fails or the deadline passes first.
  template <typename Ready>
  bool pump(Ready ready, int64_t deadline_ns, std::string* error);
  // A complete message at the front of the call's inbox: true and *message;
  // false when none is complete yet; *bad when the framing is broken.
  bool take_message(std::string* message, std::string* bad);

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                       size_t name_size, const uint8_t* value, size_t value_size, uint8_t,
                       void* user) {
    Call& call = static_cast<Conversation*>(user)->call_;
    if (frame->hd.stream_id != call.id) return 0;
    const std::string_view n(reinterpret_cast<const char*>(name), name_size);
    const std::string_view v(reinterpret_cast<const char*>(value), value_size);
    if (n == ":status") {
      call.http_status = std::atoi(std::string(v).c_str());
    } else if (n == "content-type") {
      call.grpc_type = grpc_content_type(v);
    } else if (n == "grpc-status") {
      const auto code = parse_status_field(v);
      call.grpc_status = code ? static_cast<int64_t>(*code) : -2;
    } else if (n == "grpc-message") {
      call.grpc_message = decode_message_field(v);
    }
    return 0;
  }
  static int on_data(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data, size_t size,
                     void* user) {
    Call& call = static_cast<Conversation*>(user)->call_;
    if (stream_id == call.id) call.inbox.append(reinterpret_cast<const char*>(data), size);
    return 0;
  }
  static int on_close(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* user) {
    Call& call = static_cast<Conversation*>(user)->call_;
    if (stream_id == call.id) {
      call.closed = true;
      call.reset_code = error_code;
    }
    return 0;
  }
  static ssize_t read_body(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                           nghttp2_data_source* source, void*) {
    Call& call = *static_cast<Call*>(source->ptr);
    const size_t n = std::min(length, call.outbox.size() - call.sent);
    if (n == 0 && !call.half_close) return NGHTTP2_ERR_DEFERRED;
    std::memcpy(buf, call.outbox.data() + call.sent, n);
    call.sent += n;
    if (call.sent == call.outbox.size() && call.half_close) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  std::unique_ptr<net::Stream> stream_;
  nghttp2_session* session_ = nullptr;
  std::string wbuf_;
  net::Readiness read_wait_ = net::Readiness::kReadable;
  Call call_;
};

bool Conversation::start(std::string* error) {
  nghttp2_session_callbacks* callbacks = nullptr;
  if (nghttp2_session_callbacks_new(&callbacks) != 0) {
    *error = "out of memory";
    return false;
  }
  nghttp2_session_callbacks_set_on_header_callback(callbacks, &Conversation::on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &Conversation::on_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &Conversation::on_close);
  const int rv = nghttp2_session_client_new(&session_, callbacks, this);
  nghttp2_session_callbacks_del(callbacks);
  if (rv != 0) {
    session_ = nullptr;
    *error = "out of memory";
    return false;
  }
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1u << 20},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 2);
  return true;
}

template <typename Ready>
bool Conversation::pump(Ready ready, int64_t deadline_ns, std::string* error) {
  char buffer[16384];
  for (;;) {
    // What nghttp2 has to send, then as much of it as the socket takes.
    while (wbuf_.size() < 65536) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) {
        *error = fmt::format("HTTP/2: {}", nghttp2_strerror(static_cast<int>(n)));
        return false;
      }
      if (n == 0) break;
      wbuf_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    net::Readiness write_wait = net::Readiness::kNone;
    if (!wbuf_.empty()) {
      const net::StreamResult w = stream_->write(wbuf_);
      if (w.status == net::StreamStatus::kOk) {
        wbuf_.clear();
      } else if (w.status == net::StreamStatus::kWouldBlock) {
        wbuf_.erase(0, w.bytes);
        write_wait = w.wait;
      } else {
        *error = fmt::format("the connection failed: {}", stream_->error_text());
        return false;
      }
    }
    if (ready()) return true;
    if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) {
      *error = "the server ended the HTTP/2 connection (GOAWAY)";
      return false;
    }
    if (wbuf_.empty() && nghttp2_session_want_write(session_)) continue;
    short events = 0;
    for (const net::Readiness wait : {read_wait_, write_wait}) {
      if (wait == net::Readiness::kReadable) events |= POLLIN;
      if (wait == net::Readiness::kWritable) events |= POLLOUT;
    }
    pollfd p{stream_->fd(), events, 0};
    const int64_t wait_ms = left_ms(deadline_ns);
    if (wait_ms == 0 || poll(&p, 1, static_cast<int>(wait_ms)) == 0) {
      *error = "no answer in time (--timeout)";
      return false;
    }
    // Read whatever is there, whichever readiness came.
    for (;;) {
      const net::StreamResult r = stream_->read(buffer, sizeof buffer);
      if (r.status == net::StreamStatus::kOk) {
        const ssize_t n =
            nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(buffer), r.bytes);
        if (n < 0) {
          *error = fmt::format("HTTP/2: {}", nghttp2_strerror(static_cast<int>(n)));
          return false;
        }
        read_wait_ = net::Readiness::kReadable;
        if (r.drained) break;
        continue;
      }
      if (r.status == net::StreamStatus::kWouldBlock) {
        read_wait_ = r.wait;
        break;
      }
      if (r.status == net::StreamStatus::kClosed) {
        if (ready()) return true;
        *error = "the server closed the connection";
        return false;
      }
      *error = fmt::format("the connection failed: {}", stream_->error_text());
      return false;
    }
  }
}

bool Conversation::take_message(std::string* message, std::string* bad) {
  std::string& in = call_.inbox;
  if (in.size() < kPrefixBytes) return false;
  const auto byte = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(in[i])); };
  const uint32_t length = byte(1) << 24 | byte(2) << 16 | byte(3) << 8 | byte(4);
  if (byte(0) != 0) {
    *bad = "sent a compressed message, which was not asked for";
    return false;
  }
  if (length > kMaxAnswerBytes) {
    *bad = fmt::format("sent a message of {} bytes; expected at most {} MiB", length,
                       kMaxAnswerBytes >> 20);
    return false;
  }
  if (in.size() < kPrefixBytes + length) return false;
  message->assign(in, kPrefixBytes, length);
  in.erase(0, kPrefixBytes + length);
  return true;
}

bool Conversation::converse(const ReflectionTarget& target, std::string_view path,
                            ReflectionResolver& resolver, int64_t deadline_ns, size_t* questions,
                            bool* unimplemented, std::string* error) {
  *unimplemented = false;
  call_ = Call{};
  const std::string scheme = target.tls ? "https" : "http";
  const std::string user_agent = std::string("millstone/") + MILLSTONE_VERSION;
  std::vector<std::pair<std::string_view, std::string_view>> fields = {
      {":method", "POST"},
      {":scheme", scheme},
      {":path", path},
      {":authority", target.authority},
      {"content-type", "application/grpc"},
      {"te", "trailers"},
      {"user-agent", user_agent}};
  for (const auto& [name, value] : target.metadata)
    fields.emplace_back(name, value);
  std::vector<nghttp2_nv> nv;
  for (const auto& [name, value] : fields) {
    nv.push_back(nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                            reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())),
                            name.size(), value.size(), NGHTTP2_NV_FLAG_NONE});
  }
  nghttp2_data_provider provider{};
  provider.source.ptr = &call_;
  provider.read_callback = &Conversation::read_body;
  call_.id = nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(), &provider, nullptr);
  if (call_.id < 0) {
    *error = fmt::format("HTTP/2: {}", nghttp2_strerror(call_.id));
    return false;
  }
  std::string message;
  std::string bad;
  for (;;) {
    if (const auto request = resolver.next()) {
      append_message(&call_.outbox, encode_reflection_request(*request));
      ++*questions;
      nghttp2_session_resume_data(session_, call_.id);
    } else if (resolver.done() || resolver.failed()) {
      // Half-close and let the server end the call, briefly: what was asked
      // is known already.
      call_.half_close = true;
      nghttp2_session_resume_data(session_, call_.id);
      std::string ignored;
      pump([&] { return call_.closed; }, std::min(deadline_ns, net::now_ns() + 1'000'000'000),
           &ignored);
      if (resolver.failed()) {
        *error = resolver.error();
        return false;
      }
      return true;
    }
    bool got = false;
    const bool ok = pump(
        [&] {
          if (!got && bad.empty()) got = take_message(&message, &bad);
          return got || !bad.empty() || call_.closed;
        },
        deadline_ns, error);
    if (!ok) return false;
    if (!bad.empty()) {
      *error = fmt::format("{} {}", path.substr(1), bad);
      return false;
    }
    if (got) {
      ReflectionResponse response;
      if (!decode_reflection_response(message, &response)) {
        *error = fmt::format("{} answered with a message that is not a ServerReflectionResponse",
                             path.substr(1));
        return false;
      }
      resolver.take(response);  // failed() is read at the top of the loop
      continue;
    }
    // The call ended before the questions did.
    if (call_.http_status == 404 || call_.grpc_status == kStatusUnimplemented) {
      *unimplemented = true;
      *error = call_.http_status == 404
                   ? "HTTP 404"
                   : fmt::format("UNIMPLEMENTED{}{}", call_.grpc_message.empty() ? "" : ": ",
                                 call_.grpc_message);
      return false;
    }
    if (call_.http_status != 200) {
      *error = call_.http_status == 0 ? fmt::format("{}: the stream was reset ({})", path.substr(1),
                                                    nghttp2_http2_strerror(call_.reset_code))
                                      : fmt::format("{} answered HTTP status {}; expected 200",
                                                    path.substr(1), call_.http_status);
      return false;
    }
    if (!call_.grpc_type) {
      *error = fmt::format("{} answered without content-type application/grpc", path.substr(1));
      return false;
    }
    if (call_.grpc_status > 0) {
      *error = fmt::format("{} answered {}{}{}", path.substr(1),
                           status_name(static_cast<uint32_t>(call_.grpc_status)),
                           call_.grpc_message.empty() ? "" : ": ", call_.grpc_message);
      return false;
    }
    *error = fmt::format("{} ended the call before answering every question{}", path.substr(1),
                         call_.inbox.empty() ? "" : " (inside a message)");
    return false;
  }
}

}  // namespace

ReflectionResult reflect(const ReflectionTarget& target, const std::vector<std::string>& symbols) {
  ReflectionResult result;
  const auto failed = [&](ReflectionFailure failure, std::string error) {
    result.failure = failure;
    result.error = std::move(error);
    return result;
  };
  std::string error;
  const int fd = connect_to(target, &error);
  if (fd < 0) return failed(ReflectionFailure::kUnreachable, error);
  std::unique_ptr<net::Stream> stream;
  std::unique_ptr<tls::TlsClientContext> context;
  if (target.tls) {
    tls::TlsClientOptions options = *target.tls;
    options.alpn = {"h2"};
    options.resume_sessions = false;
    try {
      context = std::make_unique<tls::TlsClientContext>(options);
    } catch (const tls::TlsSetupError& e) {
      close(fd);
      return failed(ReflectionFailure::kTls, e.what());
    }
    auto tls_stream =
        tls::TlsStream::client(*context, context->target(target.server_name, target.port), fd);
    if (!tls_stream) return failed(ReflectionFailure::kTls, "out of memory");
    const int64_t deadline = net::now_ns() + target.connect_timeout_us * net::kNsPerUs;
    for (;;) {
      const net::StreamResult r = tls_stream->handshake();
      if (r.status == net::StreamStatus::kOk) break;
      if (r.status != net::StreamStatus::kWouldBlock) {
        return failed(ReflectionFailure::kTls,
                      fmt::format("TLS handshake failed: {}", tls_stream->error_text()));
      }
      pollfd p{tls_stream->fd(),
               static_cast<short>(r.wait == net::Readiness::kWritable ? POLLOUT : POLLIN), 0};
      const int64_t wait_ms = left_ms(deadline);
      if (wait_ms == 0 || poll(&p, 1, static_cast<int>(wait_ms)) == 0) {
        return failed(ReflectionFailure::kTls, "TLS handshake timed out (--connect-timeout)");
      }
    }
    if (tls_stream->alpn() != "h2") {
      return failed(ReflectionFailure::kTls,
                    "the server did not select ALPN h2 (it does not offer HTTP/2 over TLS)");
    }
    stream = std::move(tls_stream);
  } else {
    stream = std::make_unique<net::PlainStream>(fd);
  }
  Conversation conversation(std::move(stream));
  if (!conversation.start(&error)) return failed(ReflectionFailure::kReflection, error);
  const int64_t deadline = net::now_ns() + target.timeout_us * net::kNsPerUs;
  std::string first_answer;
  for (const std::string_view path : {kReflectionV1Path, kReflectionV1AlphaPath}) {
    ReflectionResolver resolver(symbols);
    bool unimplemented = false;
    if (conversation.converse(target, path, resolver, deadline, &result.questions, &unimplemented,
                              &error)) {
      result.version = path == kReflectionV1Path ? "v1" : "v1alpha";
      result.descriptor_set = resolver.descriptor_set();
      result.services = resolver.services();
      result.files = resolver.file_count();
      return result;
    }
    if (!unimplemented) return failed(ReflectionFailure::kReflection, error);
    if (first_answer.empty()) first_answer = error;
  }
  return failed(ReflectionFailure::kReflection,
                fmt::format("no reflection service: grpc.reflection.v1 answered {}, v1alpha {}",
                            first_answer, error));
}

}  // namespace millstone::grpc
