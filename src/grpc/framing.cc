#include "grpc/framing.h"

#include <algorithm>

namespace millstone::grpc {

void append_message(std::string* out, std::string_view message) {
  const auto size = static_cast<uint32_t>(message.size());
  const char prefix[kPrefixBytes] = {0, static_cast<char>(size >> 24),
                                     static_cast<char>(size >> 16), static_cast<char>(size >> 8),
                                     static_cast<char>(size)};
  out->append(prefix, kPrefixBytes);
  out->append(message);
}

std::string frame_message(std::string_view message) {
  std::string out;
  out.reserve(kPrefixBytes + message.size());
  append_message(&out, message);
  return out;
}

const char* framing_error_name(FramingError error) {
  switch (error) {
    case FramingError::kNone:
      return "none";
    case FramingError::kBadFlag:
      return "bad_flag";
    case FramingError::kCompressed:
      return "compressed";
    case FramingError::kTooLarge:
      return "too_large";
    case FramingError::kTruncated:
      return "truncated";
  }
  return "unknown";
}

FramingError split_messages(std::string_view bytes, uint32_t max_message_bytes,
                            std::vector<std::string_view>* messages) {
  messages->clear();
  while (!bytes.empty()) {
    if (bytes.size() < kPrefixBytes) return FramingError::kTruncated;
    const auto* prefix = reinterpret_cast<const unsigned char*>(bytes.data());
    if (prefix[0] > 1) return FramingError::kBadFlag;
    if (prefix[0] == 1) return FramingError::kCompressed;
    const uint32_t size = (uint32_t{prefix[1]} << 24) | (uint32_t{prefix[2]} << 16) |
                          (uint32_t{prefix[3]} << 8) | uint32_t{prefix[4]};
    if (size > max_message_bytes) return FramingError::kTooLarge;
    if (bytes.size() - kPrefixBytes < size) return FramingError::kTruncated;
    messages->push_back(bytes.substr(kPrefixBytes, size));
    bytes.remove_prefix(kPrefixBytes + size);
  }
  return FramingError::kNone;
}

bool MessageReader::feed(std::string_view bytes) {
  if (error_ != FramingError::kNone) return false;
  while (!bytes.empty()) {
    if (!in_payload_) {
      const size_t take = std::min(kPrefixBytes - prefix_filled_, bytes.size());
      std::copy_n(bytes.data(), take, prefix_ + prefix_filled_);
      prefix_filled_ += take;
      bytes.remove_prefix(take);
      if (prefix_filled_ < kPrefixBytes) return true;
      prefix_filled_ = 0;
      if (prefix_[0] > 1) {
        error_ = FramingError::kBadFlag;
        return false;
      }
      if (prefix_[0] == 1) {
        error_ = FramingError::kCompressed;
        return false;
      }
      remaining_ = (uint32_t{prefix_[1]} << 24) | (uint32_t{prefix_[2]} << 16) |
                   (uint32_t{prefix_[3]} << 8) | uint32_t{prefix_[4]};
      if (remaining_ > max_message_bytes_) {
        error_ = FramingError::kTooLarge;
        return false;
      }
      in_payload_ = true;
      if (keep_payload_) current_.clear();
    }
    const size_t take = std::min<size_t>(remaining_, bytes.size());
    if (keep_payload_) current_.append(bytes.data(), take);
    remaining_ -= static_cast<uint32_t>(take);
    message_bytes_ += take;
    bytes.remove_prefix(take);
    if (remaining_ == 0) {
      in_payload_ = false;
      ++messages_;
      if (keep_payload_) last_.swap(current_);
    }
  }
  return true;
}

bool MessageReader::finish() {
  if (error_ != FramingError::kNone) return false;
  if (in_payload_ || prefix_filled_ > 0) {
    error_ = FramingError::kTruncated;
    return false;
  }
  return true;
}

void MessageReader::reset() {
  error_ = FramingError::kNone;
  prefix_filled_ = 0;
  remaining_ = 0;
  in_payload_ = false;
  messages_ = 0;
  message_bytes_ = 0;
  current_.clear();
  last_.clear();
}

}  // namespace millstone::grpc
