#include "mock/h2_connection.h"

#include <nghttp2/nghttp2.h>
#include <sys/mman.h>

#include <strings.h>
#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "grpc/framing.h"
#include "grpc/reflection.h"
#include "grpc/session.h"
#include "grpc/status.h"
#include "mock/control.h"
#include "mock/counter.h"
#include "mock/response.h"
#include "mock/server.h"
#include "net/clock.h"

namespace millstone::mock {

namespace {

void raise_to(std::atomic<uint64_t>& counter, uint64_t value) {
  if (value > counter.load(std::memory_order_relaxed))
    counter.store(value, std::memory_order_relaxed);
}

bool bodiless_status(int status) {
  return status == 204 || status == 304 || (status >= 100 && status < 200);
}

// Fields HTTP/2 forbids (RFC 9113 8.2.2) or that the mock sets itself.
bool dropped_in_h2(std::string_view lower_name) {
  return lower_name == "connection" || lower_name == "keep-alive" ||
         lower_name == "proxy-connection" || lower_name == "transfer-encoding" ||
         lower_name == "upgrade" || lower_name == "content-length" || lower_name == "te";
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

void add_header(H2Response* r, std::string_view name, std::string_view value) {
  std::string n = lower(name);
  if (n.empty() || dropped_in_h2(n)) return;
  r->headers.emplace_back(std::move(n), std::string(value));
}

void finish_response(H2Response* r) {
  r->bodiless = bodiless_status(r->status);
  if (r->bodiless) {
    r->body.clear();
  } else {
    r->headers.emplace_back("content-length", std::to_string(r->body.size()));
  }
}

// The rendered HTTP/1.1 response of a templated route, back into parts.
// Header values have had their control characters replaced, so lines split cleanly.
void parse_rendered(std::string_view bytes, size_t header_bytes, H2Response* out) {
  std::string_view head = bytes.substr(0, header_bytes);
  size_t line_end = head.find("\r\n");
  size_t pos = line_end == std::string_view::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    line_end = head.find("\r\n", pos);
    if (line_end == std::string_view::npos || line_end == pos) break;
    std::string_view line = head.substr(pos, line_end - pos);
    pos = line_end + 2;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ')
      value.remove_prefix(1);
    add_header(out, line.substr(0, colon), value);
  }
  out->body.assign(bytes.substr(std::min(header_bytes, bytes.size())));
  finish_response(out);
}

}  // namespace

// ---------------------------------------------------------------- counters

SharedH2Counters::SharedH2Counters(uint32_t workers) : workers_(std::max<uint32_t>(workers, 1)) {
  bytes_ = sizeof(H2Counters) * workers_;
  void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  base_ = p == MAP_FAILED ? nullptr : static_cast<H2Counters*>(p);
  if (base_) {
    for (size_t i = 0; i < workers_; ++i)
      new (&base_[i]) H2Counters();
  }
}

SharedH2Counters::~SharedH2Counters() {
  if (base_) munmap(base_, bytes_);
}

uint64_t SharedH2Counters::sum(std::atomic<uint64_t> H2Counters::*field) const {
  uint64_t total = 0;
  for (uint32_t w = 0; w < workers_; ++w)
    total += (base_[w].*field).load(std::memory_order_relaxed);
  return total;
}

uint64_t SharedH2Counters::max(std::atomic<uint64_t> H2Counters::*field) const {
  uint64_t most = 0;
  for (uint32_t w = 0; w < workers_; ++w)
    most = std::max(most, (base_[w].*field).load(std::memory_order_relaxed));
  return most;
}

std::string SharedH2Counters::json() const {
  return fmt::format(
      ",\"connections\":{},\"open_connections\":{},\"refused_at_fd_limit\":{},\"http2\":{{"
      "\"connections\":{},\"requests\":{},"
      "\"max_concurrent_streams\":{},\"protocol_errors\":{},\"goaways_sent\":{},"
      "\"streams_reset\":{},\"reflection_calls\":{},\"reflection_requests\":{}}}",
      sum(&H2Counters::connections), sum(&H2Counters::open_connections),
      sum(&H2Counters::refused_at_fd_limit), sum(&H2Counters::h2_connections),
      sum(&H2Counters::h2_requests), max(&H2Counters::max_concurrent_streams),
      sum(&H2Counters::protocol_errors), sum(&H2Counters::goaways), sum(&H2Counters::streams_reset),
      sum(&H2Counters::reflection_calls), sum(&H2Counters::reflection_requests));
}

std::string SharedH2Counters::summary_line() const {
  std::string line = fmt::format(
      "millstone mock: {} connections, {} over HTTP/2 ({} requests, at most {} concurrent "
      "streams on one connection, {} protocol errors, {} streams reset)",
      sum(&H2Counters::connections), sum(&H2Counters::h2_connections),
      sum(&H2Counters::h2_requests), max(&H2Counters::max_concurrent_streams),
      sum(&H2Counters::protocol_errors), sum(&H2Counters::streams_reset));
  if (const uint64_t calls = sum(&H2Counters::reflection_calls); calls > 0) {
    line += fmt::format(", {} gRPC reflection calls ({} questions)", calls,
                        sum(&H2Counters::reflection_requests));
  }
  const uint64_t refused = sum(&H2Counters::refused_at_fd_limit);
  if (refused > 0) {
    line += fmt::format(", {} refused at once while every worker was out of descriptors", refused);
  }
  return line + "\n";
}

// ---------------------------------------------------------------- responses

H2Response make_h2_response(int status, const Headers& headers, std::string_view body) {
  H2Response r;
  r.status = status;
  for (const auto& [name, value] : headers)
    add_header(&r, name, value);
  r.body.assign(body);
  finish_response(&r);
  return r;
}

H2Response make_grpc_response(const GrpcAnswer& answer, std::string_view message) {
  H2Response r;
  r.status = 200;
  r.headers.emplace_back("content-type", "application/grpc");
  std::vector<std::pair<std::string, std::string>> status{
      {"grpc-status", std::to_string(answer.status)}};
  if (!answer.message.empty()) {
    status.emplace_back("grpc-message", grpc::encode_message_field(answer.message));
  }
  if (answer.status == grpc::kStatusOk) {
    for (uint32_t i = 0; i < answer.replies; ++i)
      r.body.append(message);
    r.trailers = std::move(status);
  } else {
    r.headers.insert(r.headers.end(), status.begin(), status.end());
    r.bodiless = true;
  }
  return r;
}

H2Responses::H2Responses(const MockConfig& config) {
  for (const Route& route : config.routes) {
    PerRoute r;
    if (route.grpc) {
      r.normal = make_grpc_response(*route.grpc, route.body);
    } else if (!route.templated) {
      r.normal = make_h2_response(route.status, route.headers, route.body);
    }
    for (const ErrorRule& rule : route.errors) {
      if (rule.grpc) {
        r.errors.push_back(make_grpc_response(*rule.grpc, {}));
        continue;
      }
      r.errors.push_back(rule.kind == ErrorRule::kStatus && !rule.templated
                             ? make_h2_response(rule.status, rule.headers, rule.body)
                             : H2Response{});
    }
    routes.push_back(std::move(r));
  }
  grpc_unsupported_media =
      make_h2_response(415, {{"Content-Type", "text/plain"}},
                       "this path speaks gRPC: content-type application/grpc\n");
  grpc_bad_message =
      make_grpc_response(GrpcAnswer{grpc::kStatusInternal, "malformed request message"}, {});
  const Headers text{{"Content-Type", "text/plain"}};
  not_found = make_h2_response(404, text, "no route matches\n");
  bad_request = make_h2_response(400, text, "malformed request\n");
  upgrade_required = make_h2_response(
      426, text, "this path speaks WebSocket, over HTTP/1.1 (no WebSocket over HTTP/2 here)\n");
}

// ---------------------------------------------------------------- streams

struct H2Connection::Stream {
  int32_t id = 0;
  std::string method;
  std::string path;  // :path, with the query
  std::string authority;
  std::vector<std::pair<std::string, std::string>> headers;  // regular fields, as received
  size_t header_bytes = 0;
  std::string body;
  bool malformed = false;   // over a limit: answered 400 at the end of the request
  bool dispatched = false;  // the request was complete (or cut short) and routed
  bool early = false;       // answered before the request ended: reset once answered
  size_t kept = 0;          // bytes counted in H2Connection::buffered_
  bool expects_continue = false;
  // The answer: prebuilt (points into H2Responses) or rendered (owned here).
  const H2Response* response = nullptr;
  H2Response rendered;
  TablePin pin;  // while `response` points into the worker's route table
  bool head = false;
  size_t body_offset = 0;
  // A reflection call: its answers so far (body_offset into them), and once
  // ended the status its trailers carry. The index stays alive while the
  // control API swaps the route table.
  bool reflection = false;
  bool reflection_ended = false;
  uint32_t reflection_status = 0;
  std::string reflection_message;
  std::string outbox;
  std::shared_ptr<const grpc::ReflectionIndex> reflection_index;
};

namespace {

bool reflection_path(std::string_view path) {
  return path == grpc::kReflectionV1Path || path == grpc::kReflectionV1AlphaPath;
}

}  // namespace

struct H2Connection::Callbacks {
  static H2Connection& self(void* user_data) { return *static_cast<H2Connection*>(user_data); }

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    H2Connection& c = self(user_data);
    auto stream = std::make_unique<Stream>();
    stream->id = frame->hd.stream_id;
    c.streams_[stream->id] = std::move(stream);
    raise_to(c.context_.counters.max_concurrent_streams, c.streams_.size());
    return 0;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                       size_t name_size, const uint8_t* value, size_t value_size, uint8_t,
                       void* user_data) {
    // Only the request's own header block: trailers (NGHTTP2_HCAT_HEADERS)
    // are not request fields (RFC 9110 6.5), so templates never see them and
    // an `expect` among them asks for nothing.
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    H2Connection& c = self(user_data);
    auto it = c.streams_.find(frame->hd.stream_id);
    if (it == c.streams_.end()) return 0;
    Stream& s = *it->second;
    if (s.dispatched) return 0;  // trailers after the request: ignored
    s.header_bytes += name_size + value_size + 32;
    if (s.header_bytes > c.context_.options.max_header_list_bytes) {
      s.malformed = true;
      std::vector<std::pair<std::string, std::string>>().swap(s.headers);
      c.release(s);
      return 0;
    }
    if (s.malformed) return 0;
    if (!c.keep(s, name_size + value_size)) return 0;
    std::string_view n(reinterpret_cast<const char*>(name), name_size);
    std::string_view v(reinterpret_cast<const char*>(value), value_size);
    if (n == ":method") {
      s.method.assign(v);
    } else if (n == ":path") {
      s.path.assign(v);
    } else if (n == ":authority") {
      s.authority.assign(v);
    } else if (!n.empty() && n.front() != ':') {
      if (n == "expect" && v.size() == 12 && strncasecmp(v.data(), "100-continue", 12) == 0) {
        s.expects_continue = true;
      }
      s.headers.emplace_back(n, v);
    }
    return 0;
  }

  static int on_data_chunk(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                           size_t size, void* user_data) {
    H2Connection& c = self(user_data);
    auto it = c.streams_.find(stream_id);
    if (it == c.streams_.end()) return 0;
    Stream& s = *it->second;
    if (s.reflection) {
      if (s.reflection_ended) return 0;
      s.body.append(reinterpret_cast<const char*>(data), size);
      c.reflection_input(s);
      return 0;
    }
    if (s.malformed || s.dispatched) return 0;
    if (s.body.size() + size > c.context_.options.max_body_bytes) {
      // Answered 400 now; the rest of the body is not waited for (the stream
      // is reset with NO_ERROR once the answer is out, see on_frame_send).
      s.malformed = true;
      s.early = true;
      std::string().swap(s.body);
      c.release(s);
      c.dispatch(s);
      return 0;
    }
    if (!c.keep(s, size)) return 0;
    s.body.append(reinterpret_cast<const char*>(data), size);
    return 0;
  }

  static int on_frame_recv(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
    H2Connection& c = self(user_data);
    auto it = c.streams_.find(frame->hd.stream_id);
    if (it == c.streams_.end()) return 0;
    Stream& s = *it->second;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST &&
        !s.malformed && !s.dispatched && s.method == "POST" && reflection_path(s.path)) {
      c.start_reflection(s);
    }
    if (s.reflection) {
      // The client half-closed: the questions are over, and so is the call.
      if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) && !s.reflection_ended) {
        c.end_reflection(s, s.body.empty() ? grpc::kStatusOk : grpc::kStatusInternal,
                         s.body.empty() ? "" : "the call ended inside a message", true);
      }
      return 0;
    }
    if (s.dispatched) return 0;
    if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
      // "expect: 100-continue" before a body: say go ahead, as the HTTP/1.1 path does.
      if (frame->hd.type == NGHTTP2_HEADERS && s.expects_continue && !s.malformed) {
        static const nghttp2_nv kContinue{
            const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(":status")),
            const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>("100")), 7, 3,
            NGHTTP2_NV_FLAG_NONE};
        nghttp2_submit_headers(session, NGHTTP2_FLAG_NONE, s.id, nullptr, &kContinue, 1, nullptr);
      }
      return 0;
    }
    c.dispatch(s);
    return 0;
  }

  static int on_stream_close(nghttp2_session*, int32_t stream_id, uint32_t, void* user_data) {
    H2Connection& c = self(user_data);
    auto it = c.streams_.find(stream_id);
    if (it == c.streams_.end()) return 0;
    c.release(*it->second);
    c.streams_.erase(it);
    return 0;
  }

  // A request nghttp2 refused (a missing pseudo-header, a connection-specific
  // field...): it resets the stream itself; counted like a malformed HTTP/1.1 request.
  static int on_invalid_frame(nghttp2_session*, const nghttp2_frame* frame, int, void* user_data) {
    H2Connection& c = self(user_data);
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    auto it = c.streams_.find(frame->hd.stream_id);
    if (it == c.streams_.end() || it->second->dispatched) return 0;
    it->second->dispatched = true;
    bump(c.context_.counters.h2_requests);
    c.context_.host.count(H2Host::kMalformed, H2Host::Count::kRequest);
    return 0;
  }

  static int on_frame_send(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
    H2Connection& c = self(user_data);
    H2Counters& counters = c.context_.counters;
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
      // An answer sent before its request ended: the client may stop sending.
      auto it = c.streams_.find(frame->hd.stream_id);
      if (it != c.streams_.end() && it->second->early) {
        it->second->early = false;
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_NO_ERROR);
      }
    }
    if (frame->hd.type == NGHTTP2_RST_STREAM) bump(counters.streams_reset);
    if (frame->hd.type == NGHTTP2_GOAWAY) {
      bump(counters.goaways);
      if (frame->goaway.error_code != NGHTTP2_NO_ERROR) bump(counters.protocol_errors);
    }
    return 0;
  }

  // Trailers of a gRPC answer, copied by nghttp2.
  static void submit_trailers(nghttp2_session* session, int32_t id,
                              const std::vector<std::pair<std::string, std::string>>& trailers) {
    std::vector<nghttp2_nv> nv;
    for (const auto& [name, value] : trailers) {
      nv.push_back(nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                              reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())),
                              name.size(), value.size(), NGHTTP2_NV_FLAG_NONE});
    }
    nghttp2_submit_trailer(session, id, nv.data(), nv.size());
  }

  // A reflection call's answers as they are made; deferred while there is
  // none and the call goes on.
  static ssize_t read_reflection(nghttp2_session* session, int32_t, uint8_t* buf, size_t length,
                                 uint32_t* data_flags, nghttp2_data_source* source, void*) {
    Stream& s = *static_cast<Stream*>(source->ptr);
    const size_t n = std::min(length, s.outbox.size() - s.body_offset);
    if (n == 0 && !s.reflection_ended) return NGHTTP2_ERR_DEFERRED;
    std::memcpy(buf, s.outbox.data() + s.body_offset, n);
    s.body_offset += n;
    if (s.body_offset == s.outbox.size()) {
      s.outbox.clear();
      s.body_offset = 0;
      if (s.reflection_ended) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        std::vector<std::pair<std::string, std::string>> trailers{
            {"grpc-status", std::to_string(s.reflection_status)}};
        if (!s.reflection_message.empty()) {
          trailers.emplace_back("grpc-message", grpc::encode_message_field(s.reflection_message));
        }
        submit_trailers(session, s.id, trailers);
      }
    }
    return static_cast<ssize_t>(n);
  }

  static ssize_t read_body(nghttp2_session* session, int32_t, uint8_t* buf, size_t length,
                           uint32_t* data_flags, nghttp2_data_source* source, void*) {
    Stream& s = *static_cast<Stream*>(source->ptr);
    const std::string& body = s.response->body;
    const size_t n = std::min(length, body.size() - s.body_offset);
    std::memcpy(buf, body.data() + s.body_offset, n);
    s.body_offset += n;
    if (s.body_offset == body.size()) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
      if (!s.response->trailers.empty()) {
        // gRPC: the status follows the message, in trailers that end the stream.
        *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        submit_trailers(session, s.id, s.response->trailers);
      }
    }
    return static_cast<ssize_t>(n);
  }
};

// ---------------------------------------------------------------- connection

H2Connection::H2Connection(H2Context& context, H2Owner& owner)
    : context_(context), owner_(owner), timer_(context.loop, [this] { on_timer(); }) {
  bump(context_.counters.h2_connections);
  nghttp2_session_callbacks* callbacks = nullptr;
  if (nghttp2_session_callbacks_new(&callbacks) != 0) {
    failed_ = true;
    return;
  }
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, &Callbacks::on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, &Callbacks::on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &Callbacks::on_data_chunk);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &Callbacks::on_frame_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &Callbacks::on_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, &Callbacks::on_frame_send);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(callbacks,
                                                               &Callbacks::on_invalid_frame);
  // nghttp2's defaults keep its flood limits (SETTINGS, PING, RST_STREAM,
  // CONTINUATION) on. Closed streams are not kept for the priority tree
  // (RFC 9113 deprecates it): less memory per connection.
  nghttp2_option* option = nullptr;
  if (nghttp2_option_new(&option) != 0) {
    nghttp2_session_callbacks_del(callbacks);
    failed_ = true;
    return;
  }
  nghttp2_option_set_no_closed_streams(option, 1);
  const int rv = nghttp2_session_server_new2(&session_, callbacks, this, option);
  nghttp2_option_del(option);
  nghttp2_session_callbacks_del(callbacks);
  if (rv != 0) {
    session_ = nullptr;
    failed_ = true;
    return;
  }
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, context_.options.max_concurrent_streams},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, context_.options.max_header_list_bytes},
  };
  if (nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 2) != 0) failed_ = true;
}

H2Connection::~H2Connection() {
  // Streams are freed by their own destructors; nghttp2 must not call back into us now.
  if (session_) nghttp2_session_del(session_);
}

void H2Connection::fail(int error_code) {
  if (failed_ || session_ == nullptr) return;
  // Queues GOAWAY; want_read() turns false, and once it is sent so does want_write().
  if (nghttp2_session_terminate_session(session_, static_cast<uint32_t>(error_code)) != 0) {
    failed_ = true;
  }
}

bool H2Connection::keep(Stream& s, size_t bytes) {
  if (buffered_ + bytes <= context_.options.max_buffered_bytes) {
    buffered_ += bytes;
    s.kept += bytes;
    return true;
  }
  // Over the connection's budget: this stream is refused, the others go on.
  s.dispatched = true;
  std::string().swap(s.body);
  std::vector<std::pair<std::string, std::string>>().swap(s.headers);
  release(s);
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_REFUSED_STREAM);
  return false;
}

void H2Connection::release(Stream& s) {
  buffered_ -= s.kept;
  s.kept = 0;
}

void H2Connection::receive(std::string_view bytes) {
  if (failed_) return;
  while (!bytes.empty() && nghttp2_session_want_read(session_)) {
    const ssize_t n = nghttp2_session_mem_recv(
        session_, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    if (n < 0) {
      // A bad preface or a fatal error; frame-level errors were answered by
      // nghttp2 itself (GOAWAY queued) and do not get here.
      fail(n == NGHTTP2_ERR_BAD_CLIENT_MAGIC || n == NGHTTP2_ERR_PROTO ? NGHTTP2_PROTOCOL_ERROR
                                                                       : NGHTTP2_INTERNAL_ERROR);
      return;
    }
    if (n == 0) break;  // nothing consumed: do not spin
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

void H2Connection::send(std::string* out, size_t limit) {
  if (failed_) return;
  while (out->size() < limit) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      failed_ = true;
      return;
    }
    if (n == 0) return;
    out->append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
}

bool H2Connection::finished() const {
  return failed_ || (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_));
}

void H2Connection::goaway() {
  if (failed_) return;
  const int32_t last = nghttp2_session_get_last_proc_stream_id(session_);
  if (nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR, nullptr, 0) != 0) {
    failed_ = true;
  }
}

// The same decisions as the HTTP/1.1 path in server.cc (Connection::handle_request).
void H2Connection::dispatch(Stream& s) {
  s.dispatched = true;
  // The request's fields and body are not needed once it is answered (or its
  // answer rendered): freed on every way out, and no longer count as kept.
  struct Forget {
    H2Connection& c;
    Stream& s;
    ~Forget() {
      std::string().swap(s.body);
      std::vector<std::pair<std::string, std::string>>().swap(s.headers);
      c.release(s);
    }
  } forget{*this, s};
  if (s.malformed || s.method.empty() || s.path.empty()) {
    bump(context_.counters.h2_requests);
    context_.host.count(H2Host::kMalformed, H2Host::Count::kRequest);
    answer(s, context_.responses->bad_request);
    return;
  }
  const bool head = s.method == "HEAD";
  s.head = head;
  if (s.method == "GET" && s.path == kStatsPath) {
    s.rendered =
        make_h2_response(200, {{"Content-Type", "application/json"}}, context_.host.stats_json());
    answer(s, s.rendered);
    return;
  }
  if (s.path.starts_with(kControlPrefix)) {
    std::string_view authorization;
    for (const auto& [name, value] : s.headers)
      if (name == "authorization") authorization = value;
    int status = 0;
    std::string body;
    if (context_.host.control(s.method, s.path, authorization, s.body, &status, &body)) {
      s.rendered = make_h2_response(status, {{"Content-Type", "application/json"}}, body);
      answer(s, s.rendered);
      return;
    }
  }
  // Counted like the route rows count: every request but the stats page.
  bump(context_.counters.h2_requests);
  PathParams params;
  int index = context_.router.match(head ? std::string_view("GET") : std::string_view(s.method),
                                    s.path, &params);
  if (index < 0 && head) index = context_.router.match(s.method, s.path, &params);
  if (index < 0) {
    if (context_.host.websocket_path(s.path)) {
      answer(s, context_.responses->upgrade_required);
      return;
    }
    context_.host.count(H2Host::kUnmatched, H2Host::Count::kRequest);
    answer(s, context_.responses->not_found);
    return;
  }
  const Route& route = context_.config->routes[static_cast<size_t>(index)];
  const H2Responses::PerRoute& prebuilt = context_.responses->routes[static_cast<size_t>(index)];
  context_.host.count(index, H2Host::Count::kRequest);
  uint64_t grpc_requests = 0;  // request messages of a gRPC call
  if (route.grpc) {
    // A gRPC call: application/grpc, and a body of length-prefixed messages.
    bool grpc_type = false;
    for (const auto& [name, value] : s.headers) {
      if (name == "content-type") grpc_type = grpc::grpc_content_type(value);
    }
    if (!grpc_type) {
      answer(s, context_.responses->grpc_unsupported_media);
      return;
    }
    grpc::MessageReader reader(context_.options.max_body_bytes);
    if (!reader.feed(s.body) || !reader.finish()) {
      answer(s, context_.responses->grpc_bad_message);
      return;
    }
    grpc_requests = reader.messages();
  }

  const H2Response* response = &prebuilt.normal;
  if (route.grpc && route.grpc->per_message && route.grpc->status == grpc::kStatusOk) {
    // A bidirectional call: one response message per request message.
    s.rendered = prebuilt.normal;
    s.rendered.body.clear();
    for (uint64_t i = 0; i < grpc_requests; ++i)
      s.rendered.body.append(route.body);
    response = &s.rendered;
  }
  const ResponseTemplate* templated = route.templated ? &*route.templated : nullptr;
  int64_t delay_us = route.latency.sample_us(context_.prng);
  bool status_error = false;
  if (const ErrorRule* rule = pick_error(route, context_.prng)) {
    const size_t rule_index = static_cast<size_t>(rule - route.errors.data());
    switch (rule->kind) {
      case ErrorRule::kStatus:
        status_error = true;
        context_.host.count(index, H2Host::Count::kErrorStatus);
        response = &prebuilt.errors[rule_index];
        templated = rule->templated ? &*rule->templated : nullptr;
        break;
      case ErrorRule::kReset:
        // HTTP/1.1 resets the connection; HTTP/2 resets just this stream.
        context_.host.count(index, H2Host::Count::kErrorReset);
        nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_INTERNAL_ERROR);
        return;
      case ErrorRule::kStall:
        context_.host.count(index, H2Host::Count::kErrorStall);
        if (rule->stall_us == kStallForever) return;  // the client gives up and resets
        delay_us += rule->stall_us;
        break;
    }
  }
  if (templated) {
    answer_templated(s, *templated, index, params);
  } else {
    s.response = response;
    s.pin = TablePin(context_.table_pins);
  }
  // The route's publish, as over HTTP/1.1 (server.cc): same request values
  // as the answer, none after an error status.
  if (route.publish && !status_error) {
    if (!templated) {
      context_.renderer.begin(RenderRequest{as_http1(s), params, static_cast<size_t>(index)});
    }
    context_.host.publish(*route.publish, delay_us);
  }
  if (delay_us <= 0) {
    submit(s);
  } else {
    schedule(s, delay_us);
  }
}

void H2Connection::start_reflection(Stream& s) {
  s.dispatched = true;
  bump(context_.counters.h2_requests);
  bump(context_.counters.reflection_calls);
  bool grpc_type = false;
  for (const auto& [name, value] : s.headers)
    if (name == "content-type") grpc_type = grpc::grpc_content_type(value);
  std::vector<std::pair<std::string, std::string>>().swap(s.headers);
  release(s);
  s.early = true;  // answered before the request ends: reset (NO_ERROR) once answered
  if (!grpc_type) {
    answer(s, context_.responses->grpc_unsupported_media);
    return;
  }
  if (!context_.config->grpc_reflection) {
    // As gRPC servers answer a service they do not have: at once, trailers-only.
    s.rendered = make_grpc_response(
        GrpcAnswer{grpc::kStatusUnimplemented, "server reflection is off (grpc_reflection: false)"},
        {});
    answer(s, s.rendered);
    return;
  }
  s.early = false;
  s.reflection = true;
  s.reflection_index = context_.config->grpc_reflection;
  static const std::pair<std::string_view, std::string_view> kFields[] = {
      {":status", "200"}, {"content-type", "application/grpc"}};
  nghttp2_nv nv[2];
  for (size_t i = 0; i < 2; ++i) {
    nv[i] = nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(kFields[i].first.data())),
                       reinterpret_cast<uint8_t*>(const_cast<char*>(kFields[i].second.data())),
                       kFields[i].first.size(), kFields[i].second.size(), NGHTTP2_NV_FLAG_NONE};
  }
  nghttp2_data_provider provider{};
  provider.source.ptr = &s;
  provider.read_callback = &Callbacks::read_reflection;
  s.body_offset = 0;
  nghttp2_submit_response(session_, s.id, nv, 2, &provider);
}

void H2Connection::reflection_input(Stream& s) {
  // Each complete request message is answered at once, in order.
  for (;;) {
    if (s.outbox.size() - s.body_offset > context_.options.max_buffered_bytes) {
      // A client that asks faster than it reads the answers: not buffered without end.
      end_reflection(s, 8 /* RESOURCE_EXHAUSTED */, "the answers are not being read");
      return;
    }
    if (s.body.size() < grpc::kPrefixBytes) break;
    const auto byte = [&](size_t i) {
      return static_cast<uint32_t>(static_cast<uint8_t>(s.body[i]));
    };
    const uint32_t length = byte(1) << 24 | byte(2) << 16 | byte(3) << 8 | byte(4);
    if (byte(0) != 0 || length > context_.options.max_body_bytes) {
      end_reflection(s, grpc::kStatusInternal, "malformed request message");
      return;
    }
    if (s.body.size() < grpc::kPrefixBytes + length) break;
    grpc::ReflectionRequest request;
    const bool ok = grpc::decode_reflection_request(
        std::string_view(s.body).substr(grpc::kPrefixBytes, length), &request);
    s.body.erase(0, grpc::kPrefixBytes + length);
    if (!ok) {
      end_reflection(s, grpc::kStatusInternal, "not a ServerReflectionRequest");
      return;
    }
    bump(context_.counters.reflection_requests);
    grpc::append_message(&s.outbox,
                         grpc::encode_reflection_response(s.reflection_index->answer(request)));
  }
  if (s.body.size() > context_.options.max_body_bytes) {
    end_reflection(s, grpc::kStatusInternal, "request message too large");
    return;
  }
  nghttp2_session_resume_data(session_, s.id);
}

void H2Connection::end_reflection(Stream& s, uint32_t status, std::string_view message,
                                  bool client_ended) {
  s.reflection_ended = true;
  s.reflection_status = status;
  s.reflection_message.assign(message);
  std::string().swap(s.body);
  // Ended by us before the client half-closed: reset once the trailers are out.
  s.early = !client_ended;
  nghttp2_session_resume_data(session_, s.id);
}

void H2Connection::answer(Stream& s, const H2Response& response) {
  s.response = &response;
  s.pin = TablePin(context_.table_pins);
  submit(s);
}

const http::RequestParser* H2Connection::as_http1(Stream& s) {
  std::string& text = context_.scratch_request;
  text.clear();
  text.append(s.method).append(" ").append(s.path).append(" HTTP/1.1\r\n");
  // host: from :authority, or the host field a request without one carries
  // (RFC 9113 8.3.1). Several cookie fields are one cookie header joined
  // with "; " (RFC 9113 8.2.3).
  std::string_view host = s.authority;
  std::string cookie;
  bool cookies = false;
  for (const auto& [name, value] : s.headers) {
    if (name == "host" && host.empty()) host = value;
    if (name == "cookie") {
      if (cookies) cookie.append("; ");
      cookie.append(value);
      cookies = true;
    }
  }
  if (!host.empty()) text.append("host: ").append(host).append("\r\n");
  if (cookies) text.append("cookie: ").append(cookie).append("\r\n");
  for (const auto& [name, value] : s.headers) {
    if (name == "content-length" || name == "transfer-encoding" || name == "host" ||
        name == "cookie") {
      continue;
    }
    text.append(name).append(": ").append(value).append("\r\n");
  }
  text.append("content-length: ").append(std::to_string(s.body.size())).append("\r\n\r\n");
  text.append(s.body);
  http::RequestParser& parser = context_.scratch_parser;
  parser.reset();
  const http::RequestParser::Result r = parser.feed(text.data(), text.size());
  // The parser refuses what nghttp2 let through only at its own limits; then
  // the template sees no request values, as a missing value renders as "".
  return r.state == http::RequestParser::State::kComplete ? &parser : nullptr;
}

// Templates read the request through an HTTP/1.1 parser (request.header.X,
// request.json...): the HTTP/2 request is written out as HTTP/1.1 once and
// parsed, then the rendered response is taken apart again.
void H2Connection::answer_templated(Stream& s, const ResponseTemplate& response, int route,
                                    const PathParams& params) {
  std::string bytes;
  size_t header_bytes = 0;
  context_.renderer.begin(RenderRequest{as_http1(s), params, static_cast<size_t>(route)});
  context_.renderer.render_response(response, true, &bytes, &header_bytes);
  s.rendered = H2Response{};
  s.rendered.status = response.status;
  parse_rendered(bytes, header_bytes, &s.rendered);
  s.response = &s.rendered;
}

void H2Connection::submit(Stream& s) {
  const H2Response& r = *s.response;
  char status[4];
  const int status_size =
      std::snprintf(status, sizeof status, "%03d", std::clamp(r.status, 100, 999));
  std::vector<nghttp2_nv> nv;
  nv.reserve(r.headers.size() + 1);
  auto add = [&nv](std::string_view name, std::string_view value) {
    nv.push_back(nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                            reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())),
                            name.size(), value.size(), NGHTTP2_NV_FLAG_NONE});
  };
  add(":status", std::string_view(status, static_cast<size_t>(status_size)));
  for (const auto& [name, value] : r.headers)
    add(name, value);
  nghttp2_data_provider provider{};
  provider.source.ptr = &s;
  provider.read_callback = &Callbacks::read_body;
  const bool with_body = !s.head && !r.bodiless;
  s.body_offset = 0;
  if (nghttp2_submit_response(session_, s.id, nv.data(), nv.size(),
                              with_body ? &provider : nullptr) != 0) {
    // The stream was closed meanwhile (client reset): nothing to answer.
    return;
  }
}

void H2Connection::schedule(Stream& s, int64_t delay_us) {
  const int64_t due = net::now_ns() + delay_us * net::kNsPerUs;
  due_.emplace(due, s.id);
  if (!timer_.armed() || due < timer_.deadline()) timer_.arm_at(due);
}

void H2Connection::on_timer() {
  const int64_t now = net::now_ns();
  bool answered = false;
  while (!due_.empty() && due_.top().first <= now) {
    const int32_t id = due_.top().second;
    due_.pop();
    auto it = streams_.find(id);
    if (it == streams_.end() || failed_) continue;  // reset by the client meanwhile
    submit(*it->second);
    answered = true;
  }
  if (!due_.empty()) timer_.arm_at(due_.top().first);
  if (answered) owner_.h2_wants_write();
}

}  // namespace millstone::mock
