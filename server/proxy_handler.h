// Internal header (servers): the handlers of //server:proxy, a TCP proxy
// written on baton's public API only (baton/reactor.h, baton/connection.h).
//
// Each accepted client connection opens one upstream connection with
// Reactor::Connect; the two handlers (one per side) share a ProxyLink and
// talk only through the reactor's thread-safe calls, since their callbacks
// may run at the same time on different threads:
//   * bytes: Reactor::Write(peer id), queued in order, sent at once if the
//     peer is idle, else by the thread serving it (also while the upstream
//     is still connecting);
//   * back-pressure: after writing, a side whose peer has more than
//     `high_water` bytes queued pauses its own reading and sets its flag in
//     the link; the peer's OnDrained clears the flag and resumes it with
//     Reactor::ResumeReading. The flag is set before the backlog is checked
//     again, and cleared (exchange) by whichever side sees the drain first,
//     so a drain between the two cannot strand a paused side. Memory per
//     proxied connection stays near 2 x (high_water + one read).
//   * half-close: a side's EOF becomes Reactor::ShutdownWrite on its peer
//     (after everything written before it); a side closes cleanly once
//     both of its directions are done;
//   * failure: a side that closes with an error (reset, refused, timed out)
//     aborts its peer, and an upstream failure is logged.
#ifndef BATON_SERVER_PROXY_HANDLER_H_
#define BATON_SERVER_PROXY_HANDLER_H_

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "baton/connection.h"
#include "baton/reactor.h"

namespace baton::proxy {

struct ProxyConfig {
  ConnectOptions upstream;
  // Pause reading a side while its peer has more than this queued.
  size_t high_water = 1 << 20;
};

// Parses "HOST:PORT" or "[HOST]:PORT" (IP literals) into `options`.
absl::Status ParseUpstream(absl::string_view text, ConnectOptions* options);

// The factory for accepted (client) connections. `reactor` and `config`
// must outlive the reactor's connections.
HandlerFactory ClientFactory(Reactor* reactor, const ProxyConfig* config);

}  // namespace baton::proxy

#endif  // BATON_SERVER_PROXY_HANDLER_H_
