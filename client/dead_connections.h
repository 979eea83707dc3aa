// Client library header: DeadConnections, the idle ("dead") connections of
// Libenzi's /dev/epoll study, opened in parallel and held open.
#ifndef BATON_CLIENT_DEAD_CONNECTIONS_H_
#define BATON_CLIENT_DEAD_CONNECTIONS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "client/net.h"

namespace baton::client {

struct DeadConnOptions {
  Endpoint endpoint;
  int connections = 1000;
  // Send the start of an HTTP request and never finish it, like a client on
  // a very slow link (the server must keep a parser state per connection).
  bool partial_request = false;
  std::string host_header = "localhost";
  int timeout_ms = 5000;  // per connect
  // Connects in flight at once: enough to open thousands in a second on
  // loopback without flooding the server's accept backlog.
  int in_flight = 256;
};

// Not thread-safe: one thread drives it. Owns its sockets; the destructor
// closes whatever is still open.
class DeadConnections {
 public:
  explicit DeadConnections(DeadConnOptions options);
  ~DeadConnections();
  DeadConnections(const DeadConnections&) = delete;
  DeadConnections& operator=(const DeadConnections&) = delete;

  // Opens up to `connections` connections. Returns when each has connected
  // or failed (refused, timed out, out of descriptors), or early once
  // `should_stop()` is true (checked at least every 200 ms). `progress` (may
  // be empty) is called each time another `progress_every` or more attempts
  // have completed (checked once per batch of connect events).
  void Open(const std::function<bool()>& should_stop,
            const std::function<void(int opened, int failed)>& progress = {},
            int progress_every = 1000);

  // Holds the connections, reading nothing, until `should_stop()` or the
  // monotonic time `until_ns` (NowNanos() scale). A connection the server
  // closes or resets meanwhile is closed and counted in dropped().
  void Hold(int64_t until_ns, const std::function<bool()>& should_stop);

  // Closes every held connection.
  void CloseAll();

  int held() const { return held_; }
  int failed() const { return failed_; }
  int dropped() const { return dropped_; }
  const std::string& first_error() const { return first_error_; }
  // The bytes each connection sends when partial_request is set.
  const std::string& partial_request() const { return partial_; }

 private:
  struct Slot {
    int fd = -1;
    bool connecting = false;
    int64_t started_ns = 0;
  };
  void Failed(Slot& slot, const std::string& why);
  void Connected(Slot& slot);

  const DeadConnOptions options_;
  const std::string partial_;
  int epfd_ = -1;
  std::vector<Slot> slots_;
  int held_ = 0;
  int failed_ = 0;
  int dropped_ = 0;
  std::string first_error_;
};

}  // namespace baton::client

#endif  // BATON_CLIENT_DEAD_CONNECTIONS_H_
