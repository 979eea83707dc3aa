// Test utility implementation: the poll loop of the TLS echo server.
#include "tests/client/tls_echo_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "lib/tls/tls_session.h"

namespace baton::testing {
namespace {

using State = tls::TlsSession::State;

struct Conn {
  int fd = -1;
  std::unique_ptr<tls::TlsSession> session;
  std::string output;
  bool counted = false;
};

// Sends what the socket takes now; false on a socket error.
bool SendSome(Conn& c) {
  c.session->TakeOutput(&c.output);
  while (!c.output.empty()) {
    const ssize_t n =
        ::send(c.fd, c.output.data(), c.output.size(), MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    c.output.erase(0, n);
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TlsEchoServer>> TlsEchoServer::Start(
    const std::string& certificate_file, const std::string& key_file) {
  TlsServerOptions options;
  options.certificate_chain_file = certificate_file;
  options.private_key_file = key_file;
  absl::StatusOr<std::shared_ptr<const tls::TlsContext>> context =
      tls::TlsContext::ForServer(options);
  if (!context.ok()) return context.status();
  return std::make_unique<TlsEchoServer>(*std::move(context));
}

TlsEchoServer::TlsEchoServer(std::shared_ptr<const tls::TlsContext> context)
    : context_(std::move(context)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  ::listen(listen_fd_, 128);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
  port_ = ntohs(address.sin_port);
  endpoint_ = *client::ResolveEndpoint("127.0.0.1", port_);
  ::pipe2(stop_pipe_, O_CLOEXEC);
  thread_ = std::thread([this] { Run(); });
}

TlsEchoServer::~TlsEchoServer() {
  ::write(stop_pipe_[1], "x", 1);
  thread_.join();
  ::close(stop_pipe_[0]);
  ::close(stop_pipe_[1]);
  ::close(listen_fd_);
}

void TlsEchoServer::Run() {
  std::vector<Conn> conns;
  std::vector<char> buffer(1 << 16);
  for (;;) {
    std::vector<pollfd> polls = {{stop_pipe_[0], POLLIN, 0},
                                 {listen_fd_, POLLIN, 0}};
    for (const Conn& c : conns) {
      polls.push_back(
          {c.fd, static_cast<short>(POLLIN | (c.output.empty() ? 0 : POLLOUT)),
           0});
    }
    if (::poll(polls.data(), polls.size(), -1) < 0 && errno != EINTR) return;
    if (polls[0].revents != 0) break;
    if (polls[1].revents & POLLIN) {
      const int fd =
          ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        absl::StatusOr<std::unique_ptr<tls::TlsSession>> session =
            tls::TlsSession::Create(context_);
        if (session.ok()) {
          conns.push_back(Conn{fd, *std::move(session), "", false});
        } else {
          ::close(fd);
        }
      }
    }
    // Only the connections polled above (an accepted one is kept as is).
    std::vector<Conn> kept;
    for (size_t i = 0; i < conns.size(); ++i) {
      if (i + 2 >= polls.size()) {
        kept.push_back(std::move(conns[i]));
        continue;
      }
      Conn& c = conns[i];
      const short revents = polls[i + 2].revents;
      bool keep = true;
      if (revents & (POLLIN | POLLHUP | POLLERR)) {
        const ssize_t n = ::read(c.fd, buffer.data(), buffer.size());
        if (n > 0) c.session->Feed(absl::string_view(buffer.data(), n));
        if (n == 0) c.session->FeedEof();
        if (n < 0 && errno != EAGAIN && errno != EINTR) keep = false;
        for (;;) {
          const size_t got = c.session->Read(buffer.data(), buffer.size());
          if (got == 0) break;
          c.session->Write(absl::string_view(buffer.data(), got)).IgnoreError();
        }
        if (!c.counted && c.session->state() != State::kHandshaking &&
            c.session->state() != State::kFailed) {
          c.counted = true;
          ++handshakes_;
        }
        if (c.session->state() == State::kFailed) ++failures_;
        if (c.session->state() == State::kClosed) c.session->Close();
        if (c.session->state() != State::kOpen &&
            c.session->state() != State::kHandshaking) {
          keep = false;
        }
        if (n == 0) keep = false;
      }
      if (!SendSome(c)) keep = false;
      if (keep) {
        kept.push_back(std::move(c));
      } else {
        ::close(c.fd);
      }
    }
    conns.swap(kept);
  }
  for (Conn& c : conns) ::close(c.fd);
}

}  // namespace baton::testing
