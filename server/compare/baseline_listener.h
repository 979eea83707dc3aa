// Internal header (comparison servers): the listening socket and run loop
// scaffolding shared by the classic comparison servers (poll, select, thread
// per connection), so each file holds only its dispatch model.
#ifndef BATON_SERVER_COMPARE_BASELINE_LISTENER_H_
#define BATON_SERVER_COMPARE_BASELINE_LISTENER_H_

#include <signal.h>

#include <atomic>
#include <string>

namespace baton::baseline {

// Set by the stop-signal thread; dispatch loops poll it at least every
// 100 ms and return when it is true.
extern std::atomic<bool> g_stopping;

// Parses the common flags (--port, --address; --threads is ignored), opens
// a listening socket (non-blocking if `nonblocking`), logs "listening on
// ADDR:PORT" and starts a thread that sets g_stopping on SIGINT/SIGTERM.
// Returns the listening fd, or -1 after logging why (the caller exits
// non-zero).
int StartListening(int* argc, char*** argv, const char* usage,
                   bool nonblocking);

// Accepts one connection from a listening socket (non-blocking and
// close-on-exec if `nonblocking`), with TCP_NODELAY as baton sets it. On
// EMFILE/ENFILE sleeps 10 ms so that exhaustion does not become a busy
// loop. Returns -1 if nothing was accepted.
int AcceptOne(int listen_fd, bool nonblocking);

// Sends all of `data` on a blocking or non-blocking socket, waiting with
// poll() when the socket is full. False if the peer is gone.
bool SendAll(int fd, const char* data, size_t size);

}  // namespace baton::baseline

#endif  // BATON_SERVER_COMPARE_BASELINE_LISTENER_H_
