// Public header (servers): EchoHandler, the connection handler of
// //server:echo, also used by tests and benchmarks.
#ifndef BATON_SERVER_ECHO_HANDLER_H_
#define BATON_SERVER_ECHO_HANDLER_H_

#include <memory>

#include "baton/connection.h"
#include "server/slow_rule.h"

namespace baton {

// Sends every byte back as it arrives. When the peer shuts down its sending
// side, the default OnPeerClosed flushes what is queued and then closes, so
// a client that half-closes still receives every byte before EOF. A peer
// that stops reading is paused by the reactor's output high-water mark.
//
// With a SlowRule (the head-of-line benchmark), data holding the rule's
// marker is delayed on the handling thread before it is echoed; the rule
// must outlive the handler.
class EchoHandler : public ConnectionHandler {
 public:
  explicit EchoHandler(const SlowRule* slow = nullptr) : slow_(slow) {}

  void OnData(Connection& conn, absl::string_view data) override {
    if (slow_ != nullptr) slow_->Apply(data);
    conn.Write(data);
  }

 private:
  const SlowRule* const slow_;
};

// `slow` may be null (no delays) and must outlive every handler made.
inline HandlerFactory EchoHandlerFactory(const SlowRule* slow = nullptr) {
  return [slow] { return std::make_unique<EchoHandler>(slow); };
}

}  // namespace baton

#endif  // BATON_SERVER_ECHO_HANDLER_H_
