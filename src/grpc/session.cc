#include "grpc/session.h"

#include <algorithm>
#include <cstring>

#include "grpc/status.h"
#include "net/clock.h"

namespace millstone::grpc {

using metrics::ErrorCause;

bool grpc_content_type(std::string_view value) {
  constexpr std::string_view kType = "application/grpc";
  if (value.size() < kType.size()) return false;
  for (size_t i = 0; i < kType.size(); ++i) {
    char c = value[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kType[i]) return false;
  }
  if (value.size() == kType.size()) return true;
  const char next = value[kType.size()];
  return next == '+' || next == ';' || next == ' ';
}

// nghttp2's C callbacks, reaching the Session through user_data.
struct CallCallbacks {
  static int frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    return static_cast<Session*>(user)->on_frame_recv(frame);
  }
  static int header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                    size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    return static_cast<Session*>(user)->on_header(
        frame, std::string_view(reinterpret_cast<const char*>(name), namelen),
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
                 metrics::Snapshot& stats)
    : settings_(settings), listener_(listener), stats_(stats) {
  const uint32_t streams = std::max<uint32_t>(1, settings_.h2.max_streams);
  settings_.h2.max_streams = streams;
  calls_.resize(streams);
  for (Call& call : calls_)
    call.messages = MessageReader(settings_.max_message_bytes);
  free_.reserve(streams);
  for (uint32_t i = streams; i > 0; --i)
    free_.push_back(i - 1);
  outcomes_.reserve(streams);

  nghttp2_session_callbacks* callbacks = nullptr;
  nghttp2_option* option = nullptr;
  if (nghttp2_session_callbacks_new(&callbacks) != 0 || nghttp2_option_new(&option) != 0) {
    nghttp2_session_callbacks_del(callbacks);
    broken_ = true;
    return;
  }
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &CallCallbacks::frame_recv);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, &CallCallbacks::header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &CallCallbacks::data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &CallCallbacks::stream_close);
  nghttp2_option_set_peer_max_concurrent_streams(option, streams);
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
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, settings_.h2.initial_window},
      {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, settings_.h2.header_table_size},
  };
  if (nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, entries, std::size(entries)) != 0) {
    broken_ = true;
    return {false, ErrorCause::kProtocolError};
  }
  const uint64_t connection_window = std::min<uint64_t>(
      uint64_t{settings_.h2.initial_window} * settings_.h2.max_streams, NGHTTP2_MAX_WINDOW_SIZE);
  if (connection_window > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE) {
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                          static_cast<int32_t>(connection_window));
  }
  return flush(out);
}

http::SessionStatus Session::flush(http::Output& out) {
  if (broken_) return {false, ErrorCause::kProtocolError};
  // Frames gathered into one write, as in http2::Session.
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
    if (n == 0 || !more) return {};
  }
}

http::SessionStatus Session::on_read(std::span<const char> bytes, http::Output& out) {
  if (broken_) return {false, ErrorCause::kProtocolError};
  now_ns_ = net::now_ns();
  const ssize_t n = nghttp2_session_mem_recv(
      session_, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  if (n < 0) broken_ = true;
  deliver();
  http::SessionStatus status = flush(out);
  if (n < 0) return {false, ErrorCause::kProtocolError};
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
  const uint32_t limit = std::min(settings_.h2.max_streams, peer);
  if (nghttp2_session_get_next_stream_id(session_) > (1u << 31) - 1) return 0;
  return limit > in_flight_ ? limit - in_flight_ : 0;
}

bool Session::draining() const {
  return broken_ || goaway_ || session_ == nullptr ||
         nghttp2_session_get_next_stream_id(session_) > (1u << 31) - 1;
}

bool Session::submit(const http::PreparedRequest& prepared, http::RequestToken token,
                     int64_t now_ns, http::Output&) {
  if (capacity() == 0 || free_.empty()) return false;
  const auto& request = static_cast<const http2::Request&>(prepared);
  const uint32_t index = free_.back();
  Call& call = calls_[index];
  call.token = token;
  call.sent_ns = now_ns;
  call.http_status = 0;
  call.grpc_status = -1;
  call.header_blocks = 0;
  call.content_type_ok = false;
  call.status_field_bad = false;
  call.messages.reset();
  call.body = &request.body();
  call.body_offset = 0;
  call.ended = false;
  call.reset = false;
  call.timed_out = false;
  nghttp2_data_provider provider{};
  provider.read_callback = &CallCallbacks::read_body;
  const int32_t id =
      nghttp2_submit_request(session_, nullptr, request.headers(), request.header_count(),
                             &provider, reinterpret_cast<void*>(uintptr_t{index} + 1));
  if (id < 0) return false;
  free_.pop_back();
  call.id = id;
  ++in_flight_;
  return true;  // the frames leave at the next on_writable(): many submits, one write
}

http::SessionStatus Session::on_writable(http::Output& out) {
  return flush(out);
}

Session::Call* Session::call_of(int32_t stream_id) {
  void* data = nghttp2_session_get_stream_user_data(session_, stream_id);
  if (data == nullptr) return nullptr;
  const uintptr_t index = reinterpret_cast<uintptr_t>(data) - 1;
  if (index >= calls_.size() || calls_[index].id != stream_id) return nullptr;
  return &calls_[index];
}

void Session::release(Call& call) {
  call.id = -1;
  call.body = nullptr;
  free_.push_back(static_cast<uint32_t>(&call - calls_.data()));
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
      if (Call* call = call_of(frame->hd.stream_id)) call->reset = true;
      break;
    case NGHTTP2_HEADERS:
      if (Call* call = call_of(frame->hd.stream_id)) {
        if (call->http_status >= 200) ++call->header_blocks;
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) call->ended = true;
      }
      break;
    case NGHTTP2_DATA:
      if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        if (Call* call = call_of(frame->hd.stream_id)) call->ended = true;
      }
      break;
    default:
      break;
  }
  return 0;
}

int Session::on_header(const void* frame_pointer, std::string_view name, std::string_view value) {
  const auto* frame = static_cast<const nghttp2_frame*>(frame_pointer);
  Call* call = call_of(frame->hd.stream_id);
  if (call == nullptr) return 0;
  if (name == ":status") {
    int status = 0;
    for (char c : value) {
      if (c < '0' || c > '9') return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
      status = status * 10 + (c - '0');
    }
    if (status >= 200) call->http_status = status;  // 1xx: the final answer follows
  } else if (name == "content-type") {
    if (call->header_blocks == 0) call->content_type_ok = grpc_content_type(value);
  } else if (name == "grpc-status") {
    if (const auto code = parse_status_field(value)) {
      call->grpc_status = static_cast<int32_t>(*code);
    } else {
      call->status_field_bad = true;
    }
  }
  return 0;
}

int Session::on_data_chunk(int32_t stream_id, std::string_view data) {
  if (Call* call = call_of(stream_id)) call->messages.feed(data);
  return 0;
}

Session::Outcome Session::judge(const Call& call, uint32_t error_code) const {
  Outcome outcome{call.token,
                  false,
                  {call.http_status, call.messages.message_bytes()},
                  ErrorCause::kProtocolError};
  if (error_code != NGHTTP2_NO_ERROR || !call.ended) {
    if (call.reset) {
      outcome.cause = ErrorCause::kStreamReset;
    } else if (error_code == NGHTTP2_REFUSED_STREAM && goaway_) {
      outcome.cause = ErrorCause::kGoaway;
    }
    return outcome;
  }
  // A complete HTTP/2 response; is it gRPC?
  MessageReader messages = call.messages;
  if (call.http_status != 200) {
    outcome.cause = ErrorCause::kGrpcHttpStatus;
  } else if (!call.content_type_ok) {
    outcome.cause = ErrorCause::kGrpcContentType;
  } else if (!messages.finish()) {
    outcome.cause = ErrorCause::kGrpcBadMessage;
  } else if (call.grpc_status < 0 || call.status_field_bad) {
    outcome.cause = ErrorCause::kGrpcMissingStatus;
  } else if (settings_.unary && call.grpc_status == static_cast<int32_t>(kStatusOk) &&
             messages.messages() != 1) {
    outcome.cause = ErrorCause::kGrpcBadMessage;  // a unary OK carries exactly one message
  } else {
    outcome.ok = true;
    outcome.response.grpc_status = call.grpc_status;
    outcome.response.grpc_messages = messages.messages();
  }
  return outcome;
}

int Session::on_stream_close(int32_t stream_id, uint32_t error_code) {
  Call* call = call_of(stream_id);
  if (call == nullptr) return 0;
  if (!call->timed_out) outcomes_.push_back(judge(*call, error_code));
  release(*call);
  return 0;
}

long Session::read_body(int32_t stream_id, uint8_t* buf, size_t length, uint32_t* data_flags) {
  Call* call = call_of(stream_id);
  if (call == nullptr || call->body == nullptr) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return 0;
  }
  const size_t n = std::min(length, call->body->size() - call->body_offset);
  std::memcpy(buf, call->body->data() + call->body_offset, n);
  call->body_offset += n;
  if (call->body_offset == call->body->size()) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<long>(n);
}

void Session::deliver() {
  if (delivering_) return;
  delivering_ = true;
  for (size_t i = 0; i < outcomes_.size(); ++i) {
    const Outcome outcome = outcomes_[i];
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
  for (Call& call : calls_) {
    if (call.id < 0 || call.timed_out || now_ns - call.sent_ns < timeout_ns) continue;
    call.timed_out = true;
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, call.id, NGHTTP2_CANCEL);
    outcomes_.push_back({call.token, false, {}, ErrorCause::kTimeout});
    any = true;
  }
  if (!any) return;
  deliver();
  flush(out);
}

void Session::fail_all(ErrorCause cause) {
  broken_ = true;
  for (Call& call : calls_) {
    if (call.id < 0) continue;
    if (!call.timed_out) outcomes_.push_back({call.token, false, {}, cause});
    release(call);
  }
  deliver();
}

}  // namespace millstone::grpc
