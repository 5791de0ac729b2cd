#include "proxy/api_server.h"

namespace millstone::proxy {

http::ApiReply ApiHandler::handle(const http::RequestParser& request) {
  const ApiResponse response =
      api_.handle({request.method(), request.path(), request.header("User-Agent"), request.body(),
                   request.header("Authorization")});
  http::ApiReply reply;
  reply.status = response.status;
  reply.body = response.body;
  return reply;
}

}  // namespace millstone::proxy
