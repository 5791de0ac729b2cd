#include "http2/session.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "net/clock.h"

namespace millstone::http2 {

using metrics::ErrorCause;

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Connection-specific headers are forbidden in HTTP/2 (RFC 9113 8.2.2);
// -H with one of them would make every stream a protocol error.
bool connection_specific(std::string_view name) {
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
         name == "transfer-encoding" || name == "upgrade";
}

// Settings::capture: every response's fields and the start of its body, per slot.
class ResponseCapture final : public StreamHook {
 public:
  ResponseCapture(uint32_t slots, size_t body_limit) : slots_(slots), body_limit_(body_limit) {}

  void on_submit(uint32_t slot) override {
    slots_[slot].headers.clear();
    slots_[slot].body.clear();
  }
  bool on_header(uint32_t slot, bool, std::string_view name, std::string_view value) override {
    slots_[slot].headers.emplace_back(name, value);
    return true;
  }
  void on_data(uint32_t slot, std::string_view data) override {
    std::string& body = slots_[slot].body;
    if (body.size() < body_limit_) body.append(data.substr(0, body_limit_ - body.size()));
  }
  std::optional<ErrorCause> on_complete(uint32_t slot, http::ResponseInfo& response) override {
    if (response.status == 0) return ErrorCause::kProtocolError;
    response.content = &slots_[slot];
    return std::nullopt;
  }

 private:
  std::vector<http::ResponseContent> slots_;
  size_t body_limit_;
};

}  // namespace

Request::Request(const http::RequestSpec& spec) : body_(spec.body) {
  auto add = [this](std::string name, std::string value) {
    names_.push_back(std::move(name));
    values_.push_back(std::move(value));
  };
  add(":method", spec.method);
  add(":scheme", spec.scheme);
  add(":authority", spec.authority);
  add(":path", spec.path);
  for (const auto& [name, value] : spec.headers) {
    std::string key = lower(name);
    if (key == "host") {
      values_[2] = value;  // -H 'Host: x' names the authority, as it does over HTTP/1.1
      continue;
    }
    if (connection_specific(key)) continue;
    add(std::move(key), value);
  }
  if (!spec.body.empty()) add("content-length", std::to_string(spec.body.size()));
  nv_.reserve(names_.size());
  for (size_t i = 0; i < names_.size(); ++i) {
    nv_.push_back({reinterpret_cast<uint8_t*>(names_[i].data()),
                   reinterpret_cast<uint8_t*>(values_[i].data()), names_[i].size(),
                   values_[i].size(),
                   NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE});
  }
}

Request::~Request() = default;

const nghttp2_nv* Request::headers() const {
  return nv_.data();
}

// The C callbacks, reaching the Session through user_data.
struct Callbacks {
  static int frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    return static_cast<Session*>(user)->on_frame_recv(frame);
  }
  static int header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                    size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    return static_cast<Session*>(user)->on_header(
        frame->hd.stream_id, std::string_view(reinterpret_cast<const char*>(name), namelen),
        std::string_view(reinterpret_cast<const char*>(value), valuelen));
  }
  static int data_chunk(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                        size_t len, void* user) {
    return static_cast<Session*>(user)->on_data_chunk(
        stream_id, std::string_view(reinterpret_cast<const char*>(data), len));
  }
  static int stream_close(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* user) {
    return static_cast<Session*>(user)->on_stream_close(stream_id, error_code);
  }
  static ssize_t read_body(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                           uint32_t* data_flags, nghttp2_data_source*, void* user) {
    return static_cast<Session*>(user)->read_body(stream_id, buf, length, data_flags);
  }
};

Session::Session(const Settings& settings, http::RequestListener& listener,
                 metrics::Snapshot& stats, StreamHook* hook)
    : settings_(settings), listener_(listener), stats_(stats), hook_(hook) {
  if (hook_ == nullptr && settings_.capture) {
    capture_ = std::make_unique<ResponseCapture>(std::max<uint32_t>(1, settings_.max_streams),
                                                 settings_.capture_body_bytes);
    hook_ = capture_.get();
  }
  settings_.max_streams = std::max<uint32_t>(1, settings_.max_streams);
  streams_.resize(settings_.max_streams);
  free_.reserve(settings_.max_streams);
  for (uint32_t i = settings_.max_streams; i > 0; --i)
    free_.push_back(i - 1);
  outcomes_.reserve(settings_.max_streams);

  nghttp2_session_callbacks* callbacks = nullptr;
  nghttp2_option* option = nullptr;
  if (nghttp2_session_callbacks_new(&callbacks) != 0 || nghttp2_option_new(&option) != 0) {
    nghttp2_session_callbacks_del(callbacks);
    broken_ = true;
    return;
  }
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &Callbacks::frame_recv);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, &Callbacks::header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &Callbacks::data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &Callbacks::stream_close);
  // Until the server's SETTINGS arrive, assume it takes what we were asked for.
  nghttp2_option_set_peer_max_concurrent_streams(option, settings_.max_streams);
  if (nghttp2_session_client_new2(&session_, callbacks, this, option) != 0) {
    session_ = nullptr;
    broken_ = true;
  }
  nghttp2_option_del(option);
  nghttp2_session_callbacks_del(callbacks);
}

Session::~Session() {
  nghttp2_session_del(session_);
}

http::SessionStatus Session::on_open(http::Output& out) {
  if (broken_) return {false, ErrorCause::kIoOther};
  const nghttp2_settings_entry entries[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, settings_.initial_window},
      {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, settings_.header_table_size},
  };
  if (nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, entries, std::size(entries)) != 0) {
    broken_ = true;
    return {false, ErrorCause::kProtocolError};
  }
  // The connection window: room for every stream's full window, so the
  // connection is never the bottleneck the per-stream setting did not ask for.
  const uint64_t connection_window = std::min<uint64_t>(
      uint64_t{settings_.initial_window} * settings_.max_streams, NGHTTP2_MAX_WINDOW_SIZE);
  if (connection_window > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE) {
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                          static_cast<int32_t>(connection_window));
  }
  return flush(out);
}

http::SessionStatus Session::flush(http::Output& out) {
  if (broken_) return {false, ErrorCause::kProtocolError};
  // nghttp2 hands out one frame at a time; gathered here they leave in one
  // write (one send syscall for a whole batch of HEADERS, not one each).
  constexpr size_t kBatchBytes = 64 * 1024;
  for (;;) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      broken_ = true;
      return {false, ErrorCause::kProtocolError};
    }
    if (n > 0) pending_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    if (pending_.empty()) return {};
    if (n > 0 && pending_.size() < kBatchBytes) continue;
    const bool more = out.write(pending_);
    pending_.clear();
    if (n == 0 || !more) return {};  // !more: on_writable continues
  }
}

http::SessionStatus Session::on_read(std::span<const char> bytes, http::Output& out) {
  if (broken_) return {false, ErrorCause::kProtocolError};
  now_ns_ = net::now_ns();
  const ssize_t n = nghttp2_session_mem_recv(
      session_, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  if (n < 0) broken_ = true;
  // Outcomes first (they are facts), then our answers (SETTINGS ACK,
  // WINDOW_UPDATE, PING ACK, GOAWAY after a protocol error).
  deliver();
  http::SessionStatus status = flush(out);
  if (n < 0) return {false, ErrorCause::kProtocolError};
  // nghttp2 gave up on the peer (it sent GOAWAY for a protocol error).
  if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_) &&
      (in_flight_ > 0 || !goaway_)) {
    broken_ = true;
    return {false, ErrorCause::kProtocolError};
  }
  return status;
}

uint32_t Session::capacity() const {
  if (broken_ || goaway_ || session_ == nullptr) return 0;
  const uint32_t peer =
      nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  const uint32_t limit = std::min(settings_.max_streams, peer);
  if (nghttp2_session_get_next_stream_id(session_) > (1u << 31) - 1) return 0;
  return limit > in_flight_ ? limit - in_flight_ : 0;
}

bool Session::draining() const {
  return broken_ || goaway_ || session_ == nullptr ||
         nghttp2_session_get_next_stream_id(session_) > (1u << 31) - 1;
}

bool Session::submit(const http::PreparedRequest& prepared, http::RequestToken token,
                     int64_t now_ns, http::Output& out) {
  if (capacity() == 0 || free_.empty()) return false;
  const auto& request = static_cast<const Request&>(prepared);
  const uint32_t index = free_.back();
  Stream& stream = streams_[index];
  stream = Stream{};
  stream.token = token;
  stream.sent_ns = now_ns;
  nghttp2_data_provider provider{};
  provider.read_callback = &Callbacks::read_body;
  if (!request.body().empty()) stream.body = &request.body();
  const int32_t id = nghttp2_submit_request(
      session_, nullptr, request.headers(), request.header_count(),
      request.body().empty() ? nullptr : &provider, reinterpret_cast<void*>(uintptr_t{index} + 1));
  if (id < 0) return false;
  free_.pop_back();
  stream.id = id;
  ++in_flight_;
  if (hook_ != nullptr) hook_->on_submit(index);
  (void)out;  // the frames go out at the next on_writable(): many submits, one write
  return true;
}

http::SessionStatus Session::on_writable(http::Output& out) {
  return flush(out);
}

Session::Stream* Session::stream_of(int32_t stream_id) {
  void* data = nghttp2_session_get_stream_user_data(session_, stream_id);
  if (data == nullptr) return nullptr;
  const uintptr_t index = reinterpret_cast<uintptr_t>(data) - 1;
  if (index >= streams_.size() || streams_[index].id != stream_id) return nullptr;
  return &streams_[index];
}

void Session::release(uint32_t slot) {
  Stream& stream = streams_[slot];
  stream.id = -1;
  stream.body = nullptr;
  free_.push_back(slot);
  --in_flight_;
}

int Session::on_frame_recv(const void* frame_pointer) {
  const auto* frame = static_cast<const nghttp2_frame*>(frame_pointer);
  switch (frame->hd.type) {
    case NGHTTP2_GOAWAY:
      goaway_ = true;
      ++stats_.h2_goaway[frame->goaway.error_code];
      break;
    case NGHTTP2_RST_STREAM:
      ++stats_.h2_rst_stream[frame->rst_stream.error_code];
      if (Stream* stream = stream_of(frame->hd.stream_id)) stream->reset = true;
      break;
    case NGHTTP2_HEADERS:
      // Only a hook tells response headers from trailers; plain HTTP/2 needs the stream at its end.
      if (hook_ == nullptr && !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) break;
      if (Stream* stream = stream_of(frame->hd.stream_id)) {
        if (stream->status >= 200) ++stream->header_blocks;
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) stream->ended = true;
      }
      break;
    case NGHTTP2_DATA:
      if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        if (Stream* stream = stream_of(frame->hd.stream_id)) stream->ended = true;
      }
      break;
    default:
      break;
  }
  return 0;
}

int Session::on_header(int32_t stream_id, std::string_view name, std::string_view value) {
  if (name != ":status") {
    // Plain HTTP/2 looks at :status only; a hook sees every other field.
    if (hook_ == nullptr) return 0;
    Stream* stream = stream_of(stream_id);
    if (stream == nullptr) return 0;
    const auto slot = static_cast<uint32_t>(stream - streams_.data());
    return hook_->on_header(slot, stream->header_blocks > 0, name, value)
               ? 0
               : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // resets the stream
  }
  Stream* stream = stream_of(stream_id);
  if (stream == nullptr) return 0;
  // nghttp2 checked it is three digits (RFC 9113 8.3.2) before calling us.
  int status = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // resets the stream
    status = status * 10 + (c - '0');
  }
  // An interim response (100 Continue, 103 Early Hints) is followed by the final one.
  if (status >= 200) stream->status = status;
  return 0;
}

int Session::on_data_chunk(int32_t stream_id, std::string_view data) {
  Stream* stream = stream_of(stream_id);
  if (stream == nullptr) return 0;
  stream->body_bytes += data.size();
  if (hook_ != nullptr) hook_->on_data(static_cast<uint32_t>(stream - streams_.data()), data);
  return 0;
}

Session::Outcome Session::judge(Stream& stream, uint32_t error_code) {
  const auto slot = static_cast<uint32_t>(&stream - streams_.data());
  Outcome outcome{stream.token,
                  false,
                  {stream.status, stream.body_bytes},
                  ErrorCause::kProtocolError,
                  static_cast<int32_t>(slot)};
  if (error_code != NGHTTP2_NO_ERROR || !stream.ended) {
    if (stream.reset) {
      outcome.cause = ErrorCause::kStreamReset;
    } else if (error_code == NGHTTP2_REFUSED_STREAM && goaway_) {
      outcome.cause = ErrorCause::kGoaway;  // past the GOAWAY's last stream id: never processed
    }
    return outcome;
  }
  if (hook_ != nullptr) {
    const std::optional<ErrorCause> cause = hook_->on_complete(slot, outcome.response);
    outcome.ok = !cause;
    if (cause) outcome.cause = *cause;
  } else if (stream.status != 0) {
    outcome.ok = true;
  } else if (stream.reset) {
    outcome.cause = ErrorCause::kStreamReset;
  }
  return outcome;
}

int Session::on_stream_close(int32_t stream_id, uint32_t error_code) {
  Stream* stream = stream_of(stream_id);
  if (stream == nullptr) return 0;
  if (stream->timed_out) {
    release(static_cast<uint32_t>(stream - streams_.data()));  // reported at expire()
    return 0;
  }
  // The slot stays taken until the outcome is delivered (deliver()): a
  // listener that submits from an earlier outcome's callback must not get
  // it while the hook's state for it is still to be read.
  outcomes_.push_back(judge(*stream, error_code));
  stream->id = -1;
  stream->body = nullptr;
  return 0;
}

long Session::read_body(int32_t stream_id, uint8_t* buf, size_t length, uint32_t* data_flags) {
  Stream* stream = stream_of(stream_id);
  if (stream == nullptr || stream->body == nullptr) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return 0;
  }
  const size_t n = std::min(length, stream->body->size() - stream->body_offset);
  std::memcpy(buf, stream->body->data() + stream->body_offset, n);
  stream->body_offset += n;
  if (stream->body_offset == stream->body->size()) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<long>(n);
}

void Session::deliver() {
  // The listener may submit (or fail_all) from its callback; a nested
  // deliver() would reorder outcomes, so only the outermost one drains.
  if (delivering_) return;
  delivering_ = true;
  for (size_t i = 0; i < outcomes_.size(); ++i) {
    const Outcome outcome = outcomes_[i];
    if (outcome.slot >= 0) release(static_cast<uint32_t>(outcome.slot));
    if (outcome.ok) {
      listener_.on_response(outcome.token, outcome.response, now_ns_);
    } else {
      listener_.on_request_failed(outcome.token, outcome.cause);
    }
  }
  outcomes_.clear();
  delivering_ = false;
}

void Session::expire(int64_t now_ns, int64_t timeout_ns, http::Output& out) {
  bool any = false;
  for (Stream& stream : streams_) {
    if (stream.id < 0 || stream.timed_out || now_ns - stream.sent_ns < timeout_ns) continue;
    // The stream's slot stays taken until the server confirms the close (its
    // answer to our RST_STREAM may still arrive); the request fails now.
    stream.timed_out = true;
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream.id, NGHTTP2_CANCEL);
    outcomes_.push_back({stream.token, false, {}, ErrorCause::kTimeout, -1});
    any = true;
  }
  if (!any) return;
  deliver();
  flush(out);
}

void Session::fail_all(ErrorCause cause) {
  broken_ = true;
  for (Stream& stream : streams_) {
    if (stream.id < 0) continue;
    if (!stream.timed_out) outcomes_.push_back({stream.token, false, {}, cause, -1});
    release(static_cast<uint32_t>(&stream - streams_.data()));
  }
  deliver();
}

std::string error_code_name(uint32_t code) {
  static constexpr const char* kNames[] = {"no_error",
                                           "protocol_error",
                                           "internal_error",
                                           "flow_control_error",
                                           "settings_timeout",
                                           "stream_closed",
                                           "frame_size_error",
                                           "refused_stream",
                                           "cancel",
                                           "compression_error",
                                           "connect_error",
                                           "enhance_your_calm",
                                           "inadequate_security",
                                           "http_1_1_required"};
  if (code < std::size(kNames)) return kNames[code];
  return fmt::format("0x{:x}", code);
}

}  // namespace millstone::http2
