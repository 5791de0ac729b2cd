#include "serve/http_server.h"

namespace millstone::serve {

class ServeServer::Subscriber final : public EventSink {
 public:
  explicit Subscriber(http::EventStream* stream) : stream_(stream) {}
  void on_event(std::string_view text) override { stream_->send(text); }
  void on_end() override { stream_->end(); }

 private:
  http::EventStream* stream_;
};

ServeServer::ServeServer(net::EventLoop& loop, ServeApi& api, RunQueue& runs,
                         const tls::TlsServerContext* tls)
    : api_(api),
      runs_(runs),
      server_(loop, *this,
              {.max_header_bytes = 64 * 1024, .max_body_bytes = ServeApi::kMaxBodyBytes}, tls) {}

ServeServer::~ServeServer() = default;

http::ApiReply ServeServer::handle(const http::RequestParser& request) {
  return api_.handle(request);
}

void ServeServer::open_stream(const std::string& run_id, http::EventStream* stream) {
  auto& subscriber = subscribers_[stream];
  subscriber = std::make_unique<Subscriber>(stream);
  runs_.subscribe(run_id, subscriber.get());
}

void ServeServer::close_stream(http::EventStream* stream) {
  auto it = subscribers_.find(stream);
  if (it == subscribers_.end()) return;
  runs_.unsubscribe(it->second.get());
  subscribers_.erase(it);
}

}  // namespace millstone::serve
