// Public header (servers): EchoHandler, the connection handler of
// //server:echo, also used by tests and benchmarks.
#ifndef BATON_SERVER_ECHO_HANDLER_H_
#define BATON_SERVER_ECHO_HANDLER_H_

#include <memory>

#include "baton/connection.h"

namespace baton {

// Sends every byte back as it arrives. When the peer shuts down its sending
// side, the default OnPeerClosed flushes what is queued and then closes, so
// a client that half-closes still receives every byte before EOF. A peer
// that stops reading is paused by the reactor's output high-water mark.
class EchoHandler : public ConnectionHandler {
 public:
  void OnData(Connection& conn, absl::string_view data) override {
    conn.Write(data);
  }
};

inline HandlerFactory EchoHandlerFactory() {
  return [] { return std::make_unique<EchoHandler>(); };
}

}  // namespace baton

#endif  // BATON_SERVER_ECHO_HANDLER_H_
