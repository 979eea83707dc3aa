// TlsSession over a real loopback TCP socket, driven the way the reactor
// will drive it (non-blocking socket, poll, read -> Feed -> Read until
// empty -> flush output), against independent TLS clients: OpenSSL's
// blocking API on its own socket, and the `openssl s_client` command.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <thread>

#include "lib/tls/tls_session.h"
#include "tests/lib/tls/tls_pair.h"
#include "tests/util/test_certificates.h"
#include "tests/util/test_client.h"

namespace baton::tls {
namespace {

using ::baton::testing::TestPki;
using testing::ClientOptions;
using ::testing::HasSubstr;
using testing::MustSession;
using testing::ServerOptions;
using State = TlsSession::State;

// Only a hang reaches this bound.
constexpr int kPollBoundMs = 30000;

// A listening socket on 127.0.0.1, port 0.
int ListenLoopback(int* port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (fd < 0 ||
      ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) ||
      ::listen(fd, 8) ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length)) {
    return -1;
  }
  *port = ntohs(address.sin_port);
  return fd;
}

struct EchoResult {
  std::string received;
  State state = State::kHandshaking;
  absl::Status status;
  std::string alpn;
};

// Accepts one connection and serves it with `session` as the reactor will:
// echoes the plaintext, sends close_notify once `close_after` bytes came,
// and stops when the peer closes or the session ends.
EchoResult ServeEcho(int listen_fd, TlsSession& session, size_t close_after) {
  EchoResult result;
  pollfd accept_poll{listen_fd, POLLIN, 0};
  if (::poll(&accept_poll, 1, kPollBoundMs) != 1) {
    ADD_FAILURE() << "no connection came";
    return result;
  }
  const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK);
  EXPECT_GE(fd, 0);
  std::string output;
  bool closed = false;
  bool eof = false;
  char buffer[16384];
  for (int round = 0; round < 100000; ++round) {
    pollfd p{
        fd,
        static_cast<short>((eof ? 0 : POLLIN) | (output.empty() ? 0 : POLLOUT)),
        0};
    if (::poll(&p, 1, kPollBoundMs) != 1) {
      ADD_FAILURE() << "the connection went silent";
      break;
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      const ssize_t n = ::read(fd, buffer, sizeof(buffer));
      if (n > 0) session.Feed(absl::string_view(buffer, n));
      if (n == 0) {
        session.FeedEof();
        eof = true;
      }
      if (n < 0 && errno != EAGAIN) break;
    }
    // Drain everything the engine holds before waiting on the socket again.
    for (int i = 0; i < 100000; ++i) {
      const size_t n = session.Read(buffer, sizeof(buffer));
      if (n == 0) break;
      result.received.append(buffer, n);
      EXPECT_TRUE(session.Write(absl::string_view(buffer, n)).ok());
    }
    EXPECT_FALSE(session.HasBufferedInput());
    if (!closed && result.received.size() >= close_after &&
        session.state() == State::kOpen) {
      session.Close();
      closed = true;
    }
    session.TakeOutput(&output);
    while (!output.empty()) {
      const ssize_t sent =
          ::send(fd, output.data(), output.size(), MSG_NOSIGNAL);
      if (sent <= 0) break;
      output.erase(0, sent);
    }
    const State state = session.state();
    if ((state != State::kHandshaking && state != State::kOpen &&
         output.empty()) ||
        eof) {
      break;
    }
  }
  ::close(fd);
  result.state = session.state();
  result.status = session.status();
  result.alpn = session.alpn();
  return result;
}

class TlsLoopbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestPki> pki = baton::testing::WriteTestPki("loopback");
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *pki;
    listen_fd_ = ListenLoopback(&port_);
    ASSERT_GE(listen_fd_, 0);
  }
  void TearDown() override { ::close(listen_fd_); }

  TestPki pki_;
  int listen_fd_ = -1;
  int port_ = 0;
};

// What the blocking client saw.
struct ClientResult {
  bool connected = false;
  std::string error;
  std::string echoed;
  bool got_close_notify = false;
};

// A blocking OpenSSL client on its own socket: sends `payload`, reads the
// echo, waits for the server's close_notify and answers it.
void BlockingClient(int port, SSL_CTX* ctx, const std::string& payload,
                    ClientResult* result) {
  const int fd = baton::testing::ConnectLoopback(port, kPollBoundMs);
  if (fd < 0) {
    result->error = "connect failed";
    return;
  }
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  SSL_set_tlsext_host_name(ssl, "localhost");
  SSL_set1_host(ssl, "localhost");
  if (SSL_connect(ssl) != 1) {
    result->error =
        absl::StrCat("SSL_connect: ",
                     X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
  } else {
    result->connected = true;
    size_t written = 0;
    // A blocking write before reading cannot deadlock: the server keeps
    // reading while its echo waits in its own queue.
    if (SSL_write_ex(ssl, payload.data(), payload.size(), &written) == 1) {
      char buffer[16384];
      size_t n = 0;
      while (result->echoed.size() < payload.size() &&
             SSL_read_ex(ssl, buffer, sizeof(buffer), &n) == 1) {
        result->echoed.append(buffer, n);
      }
      const int end = SSL_read_ex(ssl, buffer, sizeof(buffer), &n);
      result->got_close_notify =
          end == 0 && SSL_get_error(ssl, end) == SSL_ERROR_ZERO_RETURN;
      SSL_shutdown(ssl);
    }
  }
  SSL_free(ssl);
  ERR_clear_error();
  ::close(fd);
}

TEST_F(TlsLoopbackTest, EchoesToABlockingOpenSslClient) {
  TlsServerOptions server_options = ServerOptions(pki_);
  server_options.alpn = {"echo"};
  std::unique_ptr<TlsSession> server =
      MustSession(TlsContext::ForServer(server_options));
  ASSERT_NE(server, nullptr);
  TlsClientOptions client_options = ClientOptions(pki_);
  client_options.alpn = {"echo"};
  absl::StatusOr<std::shared_ptr<const TlsContext>> client_context =
      TlsContext::ForClient(client_options);
  ASSERT_TRUE(client_context.ok()) << client_context.status();

  const std::string payload = baton::testing::Pattern(200 << 10, 7);
  ClientResult client;
  std::thread thread(BlockingClient, port_, (*client_context)->native_handle(),
                     payload, &client);
  const EchoResult served = ServeEcho(listen_fd_, *server, payload.size());
  thread.join();

  EXPECT_TRUE(client.connected) << client.error;
  EXPECT_EQ(served.received, payload);
  EXPECT_EQ(client.echoed, payload);
  EXPECT_EQ(served.alpn, "echo");
  EXPECT_TRUE(client.got_close_notify);
  // The client answered our close_notify: a clean close both ways.
  EXPECT_EQ(served.state, State::kClosed) << served.status;
}

TEST_F(TlsLoopbackTest, ClientThatDistrustsTheServerIsReportedByAlert) {
  std::unique_ptr<TlsSession> server =
      MustSession(TlsContext::ForServer(ServerOptions(pki_)));
  ASSERT_NE(server, nullptr);
  absl::StatusOr<TestPki> other = baton::testing::WriteTestPki("stranger");
  ASSERT_TRUE(other.ok());
  TlsClientOptions client_options = ClientOptions(pki_);
  client_options.ca_file = other->ca.certificate_file;
  absl::StatusOr<std::shared_ptr<const TlsContext>> client_context =
      TlsContext::ForClient(client_options);
  ASSERT_TRUE(client_context.ok()) << client_context.status();

  ClientResult client;
  std::thread thread(BlockingClient, port_, (*client_context)->native_handle(),
                     "never sent", &client);
  const EchoResult served = ServeEcho(listen_fd_, *server, 1);
  thread.join();

  EXPECT_FALSE(client.connected);
  EXPECT_THAT(client.error,
              HasSubstr("unable to get local issuer certificate"));
  EXPECT_EQ(served.state, State::kFailed);
  EXPECT_THAT(served.status.message(), HasSubstr("peer alert: unknown CA"));
}

// `openssl s_client` (when installed) as the peer: it sends a line from its
// stdin, prints what comes back and exits on the server's close_notify.
TEST_F(TlsLoopbackTest, EchoesToOpenSslSClient) {
  if (::access("/usr/bin/openssl", X_OK) != 0) {
    GTEST_SKIP() << "the openssl command is not installed";
  }
  std::unique_ptr<TlsSession> server =
      MustSession(TlsContext::ForServer(ServerOptions(pki_)));
  ASSERT_NE(server, nullptr);
  const std::string line = "hello through s_client\n";
  int to_child[2];
  int from_child[2];
  ASSERT_EQ(::pipe2(to_child, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(from_child, O_CLOEXEC), 0);
  const std::string connect = absl::StrCat("127.0.0.1:", port_);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(to_child[0], 0);
    ::dup2(from_child[1], 1);
    const int null_fd = ::open("/dev/null", O_WRONLY);
    ::dup2(null_fd, 2);
    ::execl("/usr/bin/openssl", "openssl", "s_client", "-quiet", "-connect",
            connect.c_str(), "-servername", "localhost", "-verify_hostname",
            "localhost", "-CAfile", pki_.ca.certificate_file.c_str(),
            "-verify_return_error", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(to_child[0]);
  ::close(from_child[1]);
  ASSERT_EQ(::write(to_child[1], line.data(), line.size()),
            static_cast<ssize_t>(line.size()));

  const EchoResult served = ServeEcho(listen_fd_, *server, line.size());
  ::close(to_child[1]);
  std::string printed;
  char buffer[4096];
  for (int i = 0; i < 10000; ++i) {
    pollfd p{from_child[0], POLLIN, 0};
    if (::poll(&p, 1, kPollBoundMs) != 1) {
      ADD_FAILURE() << "s_client went silent";
      ::kill(pid, SIGKILL);
      break;
    }
    const ssize_t n = ::read(from_child[0], buffer, sizeof(buffer));
    if (n <= 0) break;
    printed.append(buffer, n);
  }
  ::close(from_child[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);

  EXPECT_EQ(served.received, line);
  EXPECT_EQ(printed, line);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(served.state, State::kClosed) << served.status;
}

}  // namespace
}  // namespace baton::tls
