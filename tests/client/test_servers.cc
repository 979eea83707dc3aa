// Test utility implementation: in-process servers for the client tests.
#include "tests/client/test_servers.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

namespace baton::testing {
namespace {

constexpr int kPollRounds = 200;
constexpr auto kPollStep = std::chrono::milliseconds(50);

template <typename Predicate>
bool PollUntil(Predicate done) {
  for (int i = 0; i < kPollRounds; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(kPollStep);
  }
  return done();
}

}  // namespace

void EchoHandler::OnData(Connection& conn, absl::string_view data) {
  conn.Write(data);
}

void CorruptingHandler::OnData(Connection& conn, absl::string_view data) {
  std::string copy(data);
  constexpr size_t kVictim = 100;
  if (sent_ <= kVictim && sent_ + copy.size() > kVictim) {
    copy[kVictim - sent_] ^= 0x04;
  }
  sent_ += copy.size();
  conn.Write(copy);
}

void ResettingHandler::OnData(Connection& conn, absl::string_view data) {
  conn.Abort();
}

void FixedHttpHandler::OnData(Connection& conn, absl::string_view data) {
  pending_.append(data.data(), data.size());
  size_t end;
  while ((end = pending_.find("\r\n\r\n")) != std::string::npos) {
    const bool keep = pending_.find("HTTP/1.1") < end;
    pending_.erase(0, end + 4);
    conn.Write(response_);
    if (!keep) {
      conn.Close();
      return;
    }
  }
}

TestServer::TestServer(HandlerFactory factory, absl::Duration idle_timeout,
                       ListenOptions listen) {
  ReactorOptions options;
  options.threads = 2;
  options.idle_timeout = idle_timeout;
  absl::StatusOr<std::unique_ptr<Reactor>> reactor = Reactor::Create(options);
  if (!reactor.ok()) {
    ADD_FAILURE() << reactor.status();
    return;
  }
  reactor_ = std::move(*reactor);
  absl::StatusOr<int> port = reactor_->Listen(listen, std::move(factory));
  if (!port.ok()) {
    ADD_FAILURE() << port.status();
    return;
  }
  port_ = *port;
  const absl::Status started = reactor_->Start();
  if (!started.ok()) ADD_FAILURE() << started;
  endpoint_ = *client::ResolveEndpoint("127.0.0.1", port_);
}

TestServer::~TestServer() {
  if (reactor_ == nullptr) return;
  reactor_->Stop();
  reactor_->Wait();
}

bool TestServer::WaitForConnections(size_t n) {
  return PollUntil([&] { return reactor_->connection_count() == n; });
}

bool TestServer::WaitForBytesRead(uint64_t n) {
  return PollUntil([&] { return reactor_->Counters().bytes_read == n; });
}

RefusingPort::RefusingPort() {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  // Linux answers a SYN to a bound, non-listening port with a reset.
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ADD_FAILURE() << "cannot bind a loopback port";
  }
  port_ = ntohs(addr.sin_port);
}

RefusingPort::~RefusingPort() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace baton::testing
