#include "tests/lib/reactor_fixture.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "lib/internal/reactor_core.h"

namespace baton {
namespace internal {

void ReactorTestPeer::InjectEvent(Reactor& reactor, uint64_t data,
                                  uint32_t events) {
  reactor.core_->InjectEventForTest(data, events);
}

void ReactorTestPeer::HoldPolling(Reactor& reactor) {
  reactor.core_->HoldPollingForTest();
}

void ReactorTestPeer::ResumePolling(Reactor& reactor) {
  reactor.core_->ResumePollingForTest();
}

size_t ReactorTestPeer::PendingTimers(Reactor& reactor) {
  return reactor.core_->PendingTimersForTest();
}

size_t ReactorTestPeer::PendingLookups(Reactor& reactor) {
  return reactor.core_->PendingLookupsForTest();
}

void ReactorTestPeer::FreezeDnsCacheClock(Reactor& reactor) {
  reactor.core_->FreezeDnsCacheClockForTest();
}

void ReactorTestPeer::AdvanceDnsCacheClock(Reactor& reactor,
                                           absl::Duration by) {
  reactor.core_->AdvanceDnsCacheClockForTest(absl::ToInt64Nanoseconds(by));
}

}  // namespace internal

namespace testing {

HandlerFactory EchoFactory() {
  return [] { return std::make_unique<Echo>(); };
}

Server StartServer(ReactorOptions options, HandlerFactory factory) {
  Server s;
  auto reactor = Reactor::Create(options);
  EXPECT_TRUE(reactor.ok()) << reactor.status();
  s.reactor = std::move(*reactor);
  auto port = s.reactor->Listen(ListenOptions{}, std::move(factory));
  EXPECT_TRUE(port.ok()) << port.status();
  s.port = *port;
  EXPECT_TRUE(s.reactor->Start().ok());
  return s;
}

ReactorOptions Threads(int n) {
  ReactorOptions o;
  o.threads = n;
  return o;
}

int ConnectErrno(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int err =
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0
          ? 0
          : errno;
  ::close(fd);
  return err;
}

}  // namespace testing
}  // namespace baton
