// Test utility: in-process baton servers that behave well or badly (echo,
// corrupting, silent, resetting, fixed HTTP), for the client tests. All
// listen on 127.0.0.1 with port 0.
#ifndef BATON_TESTS_CLIENT_TEST_SERVERS_H_
#define BATON_TESTS_CLIENT_TEST_SERVERS_H_

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "baton/reactor.h"
#include "client/net.h"

namespace baton::testing {

// Echoes every byte.
class EchoHandler : public ConnectionHandler {
 public:
  void OnData(Connection& conn, absl::string_view data) override;
};

// Echoes, but flips one bit of the 100th byte it sends on each connection.
class CorruptingHandler : public ConnectionHandler {
 public:
  void OnData(Connection& conn, absl::string_view data) override;

 private:
  size_t sent_ = 0;  // per connection; ONESHOT serializes the callbacks
};

// Reads and never answers.
class SilentHandler : public ConnectionHandler {
 public:
  void OnData(Connection& conn, absl::string_view data) override {}
};

// Resets the connection (RST) as soon as anything arrives.
class ResettingHandler : public ConnectionHandler {
 public:
  void OnData(Connection& conn, absl::string_view data) override;
};

// Answers every request (anything up to a blank line) with `response`, then
// closes unless the request said HTTP/1.1.
class FixedHttpHandler : public ConnectionHandler {
 public:
  explicit FixedHttpHandler(std::string response)
      : response_(std::move(response)) {}
  void OnData(Connection& conn, absl::string_view data) override;

 private:
  const std::string response_;
  std::string pending_;
};

// A running reactor with one listener; stopped and joined on destruction.
class TestServer {
 public:
  // Starts a two-thread reactor serving `factory` on `listen` (by default
  // plain TCP on 127.0.0.1, port 0); fails the calling test (ADD_FAILURE)
  // if that cannot be done.
  explicit TestServer(HandlerFactory factory,
                      absl::Duration idle_timeout = absl::ZeroDuration(),
                      ListenOptions listen = ListenOptions{});
  ~TestServer();

  template <typename Handler, typename... Args>
  static std::unique_ptr<TestServer> Of(Args... args) {
    return std::make_unique<TestServer>(
        [args...] { return std::make_unique<Handler>(args...); });
  }

  Reactor& reactor() { return *reactor_; }
  int port() const { return port_; }
  const client::Endpoint& endpoint() const { return endpoint_; }
  // Polls (up to 10 s) until the server holds `n` connections.
  bool WaitForConnections(size_t n);
  // Polls (up to 10 s) until the server has read `n` bytes in total.
  bool WaitForBytesRead(uint64_t n);

 private:
  std::unique_ptr<Reactor> reactor_;
  int port_ = 0;
  client::Endpoint endpoint_;
};

// A loopback port that refuses connections: bound but never listened on,
// and kept bound for this object's life so no other test can take it.
class RefusingPort {
 public:
  RefusingPort();
  ~RefusingPort();
  RefusingPort(const RefusingPort&) = delete;
  RefusingPort& operator=(const RefusingPort&) = delete;

  int port() const { return port_; }
  client::Endpoint endpoint() const {
    return *client::ResolveEndpoint("127.0.0.1", port_);
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace baton::testing

#endif  // BATON_TESTS_CLIENT_TEST_SERVERS_H_
