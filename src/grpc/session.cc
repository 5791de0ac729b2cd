#include "grpc/session.h"

#include <algorithm>

#include "grpc/status.h"

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

CallHook::CallHook(const Settings& settings)
    : unary_(settings.unary), calls_(std::max<uint32_t>(1, settings.h2.max_streams)) {
  for (Call& call : calls_)
    call.messages = MessageReader(settings.max_message_bytes);
}

void CallHook::on_submit(uint32_t slot) {
  Call& call = calls_[slot];
  call.grpc_status = -1;
  call.content_type_ok = false;
  call.status_field_bad = false;
  call.messages.reset();
}

bool CallHook::on_header(uint32_t slot, bool trailers, std::string_view name,
                         std::string_view value) {
  Call& call = calls_[slot];
  if (name == "content-type") {
    if (!trailers) call.content_type_ok = grpc_content_type(value);
  } else if (name == "grpc-status") {
    if (const auto code = parse_status_field(value)) {
      call.grpc_status = static_cast<int32_t>(*code);
    } else {
      call.status_field_bad = true;
    }
  }
  return true;
}

void CallHook::on_data(uint32_t slot, std::string_view data) {
  calls_[slot].messages.feed(data);
}

std::optional<ErrorCause> CallHook::on_complete(uint32_t slot, http::ResponseInfo& response) {
  // A complete HTTP/2 response; is it gRPC?
  Call& call = calls_[slot];
  MessageReader& messages = call.messages;  // the stream is over: finish() may change it
  response.body_bytes = messages.message_bytes();
  if (response.status != 200) return ErrorCause::kGrpcHttpStatus;
  if (!call.content_type_ok) return ErrorCause::kGrpcContentType;
  if (!messages.finish()) return ErrorCause::kGrpcBadMessage;
  if (call.grpc_status < 0 || call.status_field_bad) return ErrorCause::kGrpcMissingStatus;
  if (unary_ && call.grpc_status == static_cast<int32_t>(kStatusOk) && messages.messages() != 1) {
    return ErrorCause::kGrpcBadMessage;  // a unary OK carries exactly one message
  }
  response.grpc_status = call.grpc_status;
  response.grpc_messages = messages.messages();
  return std::nullopt;
}

std::optional<ErrorCause> judge_captured_call(int http_status, const http::ResponseContent& content,
                                              bool unary, uint32_t max_message_bytes,
                                              CapturedCall* call) {
  call->grpc_status = -1;
  call->grpc_message.clear();
  call->has_grpc_message = false;
  call->messages.clear();
  bool content_type_ok = false;
  bool seen_content_type = false;
  bool status_field_bad = false;
  for (const auto& [name, value] : content.headers) {
    if (name == "content-type") {
      // The first one is the response's; one in the trailers does not count.
      if (!seen_content_type) content_type_ok = grpc_content_type(value);
      seen_content_type = true;
    } else if (name == "grpc-status") {
      if (const auto code = parse_status_field(value)) {
        call->grpc_status = static_cast<int32_t>(*code);
      } else {
        status_field_bad = true;
      }
    } else if (name == "grpc-message") {
      call->grpc_message = decode_message_field(value);
      call->has_grpc_message = true;
    }
  }
  if (http_status != 200) return ErrorCause::kGrpcHttpStatus;
  if (!content_type_ok) return ErrorCause::kGrpcContentType;
  if (split_messages(content.body, max_message_bytes, &call->messages) != FramingError::kNone) {
    return ErrorCause::kGrpcBadMessage;
  }
  if (call->grpc_status < 0 || status_field_bad) return ErrorCause::kGrpcMissingStatus;
  if (unary && call->grpc_status == static_cast<int32_t>(kStatusOk) && call->messages.size() != 1) {
    return ErrorCause::kGrpcBadMessage;
  }
  return std::nullopt;
}

}  // namespace millstone::grpc
