// Internal header (servers): ServeUntilSignal, the lifecycle shared by the
// baton-based servers' main()s, and the flags only those servers take
// (--max_connections here; --drain_timeout_ms is read by ServeUntilSignal).
#ifndef BATON_SERVER_SERVE_H_
#define BATON_SERVER_SERVE_H_

#include <gflags/gflags.h>
#include <signal.h>

#include <functional>
#include <string>

#include "baton/reactor.h"

// Accepted connections beyond this are closed at once
// (ReactorOptions::max_connections).
DECLARE_int64(max_connections);

namespace baton::flags {

// Creates a reactor with `options`, listens with `listen` using the factory
// `make_factory(reactor)` returns, starts it, logs "listening on ADDR:PORT
// <what>", waits for one of `stop_signals` (already blocked), then shuts
// down gracefully: Reactor::Drain (no new connections; idle ones close at
// once, busy ones once their output is sent) for up to --drain_timeout_ms
// or until a second stop signal, then Stop cuts whatever is left; logs the
// counters. Returns the process exit status: 0 after a clean stop, 1 if it
// could not listen or start, 2 for bad options.
int ServeUntilSignal(
    const ReactorOptions& options, const ListenOptions& listen,
    const std::function<HandlerFactory(Reactor*)>& make_factory,
    const sigset_t& stop_signals, const std::string& what);

}  // namespace baton::flags

#endif  // BATON_SERVER_SERVE_H_
