// A consumer program: includes every public header as "baton/...", starts a
// reactor, echoes one message over a socketpair, and exits 0 on success.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "baton/connection.h"
#include "baton/counters.h"
#include "baton/reactor.h"

namespace {

class Echo : public baton::ConnectionHandler {
 public:
  void OnData(baton::Connection& conn, absl::string_view data) override {
    conn.Write(data);
  }
};

}  // namespace

int main() {
  baton::ReactorOptions options;
  options.threads = 2;
  auto reactor = baton::Reactor::Create(options);
  if (!reactor.ok()) return 1;
  auto port = (*reactor)->Listen(baton::ListenOptions{},
                                 [] { return std::make_unique<Echo>(); });
  if (!port.ok() || !(*reactor)->Start().ok()) return 1;

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 1;
  if (!(*reactor)->Adopt(sv[0], [] { return std::make_unique<Echo>(); }).ok()) {
    return 1;
  }
  timeval tv = {10, 0};
  ::setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  const std::string message = "hello from a consumer repository";
  if (::write(sv[1], message.data(), message.size()) !=
      static_cast<ssize_t>(message.size())) {
    return 1;
  }
  std::string echoed;
  char buf[256];
  while (echoed.size() < message.size()) {
    const ssize_t n = ::read(sv[1], buf, sizeof(buf));
    if (n <= 0) return 1;
    echoed.append(buf, static_cast<size_t>(n));
  }
  ::close(sv[1]);
  (*reactor)->Stop();
  (*reactor)->Wait();
  const baton::ReactorCounters counters = (*reactor)->Counters();
  std::printf("echoed %zu bytes on port %d; %s\n", echoed.size(), *port,
              counters.ToString().c_str());
  return echoed == message ? 0 : 1;
}
