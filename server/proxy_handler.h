// Internal header (servers): the handlers of //server:proxy, a TCP proxy
// written on baton's public API only (baton/reactor.h, baton/connection.h).
//
// Each accepted client connection opens one upstream connection with
// Reactor::Connect; the two handlers (one per side) share a link and talk
// only through the reactor's thread-safe calls, since their callbacks may
// run at the same time on different threads:
//   * opening: the client is not read until its upstream is connected, so
//     a slow or unreachable upstream queues nothing in the proxy;
//   * bytes: Reactor::Write(peer id), queued in order, sent at once if the
//     peer is idle, else by the thread serving it;
//   * back-pressure: after writing, a side whose peer has more than
//     `high_water` bytes queued pauses its own reading and sets its flag in
//     the link; the peer's OnDrained clears the flag and resumes it with
//     Reactor::ResumeReading. The flag is set before the backlog is checked
//     again, and cleared (exchange) by whichever side sees the drain first,
//     so a drain between the two cannot strand a paused side;
//   * a process-wide bound: the bytes every pair has queued, both ways, are
//     summed (each direction charges what its peer's queue holds after a
//     write and after a drain, under a per-direction lock). Above
//     `max_queued`, a side that still has bytes queued at its peer pauses
//     the same way until they drain, so over the bound each direction holds
//     at most about one read: memory stays near max_queued plus one read
//     per direction, and every pair still moves at its peer's pace;
//   * half-close: a side's EOF becomes Reactor::ShutdownWrite on its peer
//     (after everything written before it); a side closes cleanly once
//     both of its directions are done;
//   * failure: a side that closes with an error (reset, refused, timed out,
//     cut) aborts its peer. Once the upstream has connected, a side closed
//     by an error is closed with a reset (SO_LINGER 0), never a FIN that
//     reads as a complete stream; a client whose upstream never connected
//     received nothing and is simply closed. Upstream failures are counted
//     and logged (rate-limited);
//   * stopping: Reactor::StopAccepting, then pairs finish by themselves;
//     CutAll resets whatever is left (server/proxy.cc).
#ifndef BATON_SERVER_PROXY_HANDLER_H_
#define BATON_SERVER_PROXY_HANDLER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "baton/connection.h"
#include "baton/reactor.h"

namespace baton::proxy {

struct ProxyConfig {
  ConnectOptions upstream;
  // Pause reading a side while its peer has more than this queued.
  size_t high_water = 1 << 20;
  // Process-wide: while the pairs hold more than this queued in all, a side
  // with bytes still queued at its peer pauses until they drain.
  size_t max_queued = size_t{256} << 20;
};

struct ProxyCounters {
  uint64_t pairs = 0;              // client connections served
  uint64_t upstream_failures = 0;  // refused, unreachable, timed out, reset
  uint64_t high_water_pauses = 0;  // a side paused for its peer's backlog
  uint64_t max_queued_pauses = 0;  // ... for the process-wide bound
  uint64_t pairs_cut = 0;          // reset by CutAll
  uint64_t queued_bytes = 0;       // queued now, all pairs, both ways
  uint64_t peak_queued_bytes = 0;  // the most queued_bytes has been
  std::string ToString() const;
};

// Parses "HOST:PORT", "IP:PORT" or "[IPv6]:PORT", or "unix:/path" /
// "unix:@name" (options->unix_path, port 0), into `options`. A host name is
// kept as is: Reactor::Connect looks it up for each client, without
// blocking (a name that does not resolve fails that client's upstream, as
// a refusal does).
absl::Status ParseUpstream(absl::string_view text, ConnectOptions* options);

// The proxy's shared state: the configuration, the live pairs and the
// counters. Thread-safe. `reactor` must outlive the Proxy, and the Proxy
// must outlive every connection its factory creates (stop and wait for the
// reactor before destroying it).
class Proxy {
 public:
  Proxy(Reactor* reactor, const ProxyConfig& config);
  ~Proxy();
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // The factory for accepted (client) connections.
  HandlerFactory ClientFactory();

  // Pairs with at least one side still open.
  size_t live_pairs() const;

  // Aborts both sides of every live pair; each side is closed with a reset.
  // Returns how many pairs were cut.
  size_t CutAll();

  ProxyCounters Counters() const;

  struct Shared;  // what the handlers share (proxy_handler.cc)

 private:
  std::unique_ptr<Shared> shared_;
};

}  // namespace baton::proxy

#endif  // BATON_SERVER_PROXY_HANDLER_H_
