// Internal header (servers): EchoMain, the body of //server:echo's main(),
// shared with //server/compare:baton_echo (the same server plus the
// head-of-line benchmark's slow rule), and the echo server's own flags
// (--idle_timeout_ms, --write_timeout_ms, --max_events, --output_high_water,
// --reread_rounds), defined in echo_main.cc.
#ifndef BATON_SERVER_ECHO_MAIN_H_
#define BATON_SERVER_ECHO_MAIN_H_

#include <functional>
#include <string>

#include "baton/connection.h"

namespace baton {

// What a binary built on EchoMain adds to the echo server.
struct EchoMainHooks {
  // The usage message (--help); empty: //server:echo's.
  std::string usage;
  // Called once after the flags are parsed, before any reactor thread
  // starts; returns the factory of the connections' handlers. Empty:
  // EchoHandlerFactory().
  std::function<HandlerFactory()> handlers;
  // Called once after the server has stopped, before EchoMain returns.
  std::function<void()> on_stop;
};

// Parses the flags, serves echo until SIGINT or SIGTERM (ServeUntilSignal)
// and returns the process exit status.
int EchoMain(int argc, char** argv, const EchoMainHooks& hooks);

}  // namespace baton

#endif  // BATON_SERVER_ECHO_MAIN_H_
