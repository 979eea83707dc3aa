// The load generators against a Unix socket (--host=unix:/path): every
// //client:bench mode and //client:deadconn against in-process baton
// servers, and the client library's Unix endpoint and connects.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "baton/reactor.h"
#include "client/dead_connections.h"
#include "client/net.h"
#include "tests/client/test_servers.h"
#include "tests/util/test_client.h"
#include "tests/util/unix_socket.h"

namespace baton::testing {
namespace {

struct Outcome {
  int status = -1;
  std::string output;
  int exit_code() const { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }
};

// Runs `binary args` to completion (killed after 60 s so nothing hangs).
Outcome RunTool(const std::string& binary, const std::string& args) {
  Outcome r;
  const std::string command =
      absl::StrCat("timeout 60 ", RunfilePath(binary), " ", args, " 2>&1");
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0)
    r.output.append(buf, n);
  r.status = ::pclose(pipe);
  return r;
}

// A two-thread reactor serving `factory` on the Unix socket `path`.
class UnixServer {
 public:
  UnixServer(const std::string& path, HandlerFactory factory) {
    ReactorOptions options;
    options.threads = 2;
    absl::StatusOr<std::unique_ptr<Reactor>> r = Reactor::Create(options);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return;
    reactor_ = std::move(*r);
    ListenOptions listen;
    listen.unix_path = path;
    absl::Status s = reactor_->Listen(listen, std::move(factory)).status();
    EXPECT_TRUE(s.ok()) << s;
    s = reactor_->Start();
    EXPECT_TRUE(s.ok()) << s;
  }
  ~UnixServer() {
    if (reactor_ == nullptr) return;
    reactor_->Stop();
    reactor_->Wait();
  }
  Reactor& reactor() { return *reactor_; }
  // Polls (bounded) until the server holds `n` connections.
  bool WaitForConnections(size_t n) {
    for (int i = 0; i < 2000; ++i) {
      if (reactor_->connection_count() == n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return reactor_->connection_count() == n;
  }

 private:
  std::unique_ptr<Reactor> reactor_;
};

template <typename Handler, typename... Args>
HandlerFactory Of(Args... args) {
  return [args...] { return std::make_unique<Handler>(args...); };
}

TEST(UnixClientTest, ResolveEndpoint) {
  absl::StatusOr<client::Endpoint> e =
      client::ResolveEndpoint("unix:/run/echo.sock", 0);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->addr.ss_family, AF_UNIX);
  EXPECT_EQ(e->text, "unix:/run/echo.sock");
  EXPECT_EQ(e->host_header, "localhost");
  e = client::ResolveEndpoint("unix:@echo", 12345);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->text, "unix:@echo");
  EXPECT_FALSE(client::ResolveEndpoint("unix:", 1).ok());
  e = client::ResolveEndpoint("127.0.0.1", 80);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->host_header, "127.0.0.1:80");
}

// A non-blocking Unix connect fails with EAGAIN while the listener's
// backlog is full; ConnectNonBlocking waits for room instead.
TEST(UnixClientTest, ConnectNonBlockingWaitsForRoomInAFullBacklog) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.Path("backlog.sock");
  absl::StatusOr<client::Endpoint> e =
      client::ResolveEndpoint("unix:" + path, 0);
  ASSERT_TRUE(e.ok());
  const int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  ASSERT_EQ(
      ::bind(listener, reinterpret_cast<const sockaddr*>(&e->addr), e->len), 0);
  ASSERT_EQ(::listen(listener, 0), 0);
  constexpr int kClients = 6;
  std::vector<int> fds(kClients, -1);
  std::vector<std::string> errors(kClients);
  std::thread connecting([&] {
    for (int i = 0; i < kClients; ++i) {
      absl::StatusOr<int> fd = client::ConnectNonBlocking(*e);
      if (fd.ok()) {
        fds[i] = *fd;
      } else {
        errors[i] = std::string(fd.status().message());
      }
    }
  });
  // A backlog of 0 holds one connection: the clients past it must wait
  // for these accepts to make room. (The poll bound only limits a hang:
  // a client that gave up never comes.)
  std::vector<int> accepted;
  for (int i = 0; i < kClients; ++i) {
    pollfd p = {listener, POLLIN, 0};
    if (::poll(&p, 1, 20000) != 1) {
      ADD_FAILURE() << "only " << i << " clients connected";
      break;
    }
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    accepted.push_back(fd);
  }
  connecting.join();
  for (int i = 0; i < kClients; ++i) {
    EXPECT_GE(fds[i], 0) << "client " << i << ": " << errors[i];
    if (fds[i] >= 0) {
      EXPECT_NE(::fcntl(fds[i], F_GETFL) & O_NONBLOCK, 0);
      ::close(fds[i]);
    }
  }
  for (const int fd : accepted) ::close(fd);
  ::close(listener);
}

TEST(UnixClientTest, BenchEveryModeAgainstAUnixSocket) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string echo_path = dir.Path("echo.sock");
  UnixServer echo(echo_path, Of<EchoHandler>());
  const std::string host = " --host=unix:" + echo_path + " ";
  Outcome r = RunTool("client/bench", "--json --threads=3" + host);
  EXPECT_EQ(r.exit_code(), 0) << r.output;
  EXPECT_NE(r.output.find("{\"mode\":\"barrier\",\"ok\":true,"),
            std::string::npos)
      << r.output;

  r = RunTool("client/bench",
              "--json --mode=pingpong --duration=0.3 --connections=3 "
              "--size=4096" +
                  host);
  EXPECT_EQ(r.exit_code(), 0) << r.output;
  EXPECT_NE(r.output.find("{\"mode\":\"pingpong\",\"ok\":true,"),
            std::string::npos)
      << r.output;

  // A server that corrupts a byte is caught over a Unix socket too.
  const std::string bad_path = dir.Path("corrupt.sock");
  UnixServer corrupting(bad_path, Of<CorruptingHandler>());
  r = RunTool("client/bench",
              "--json --threads=2 --size=500 --host=unix:" + bad_path);
  EXPECT_EQ(r.exit_code(), 1) << r.output;

  const std::string http_path = dir.Path("http.sock");
  UnixServer http(http_path,
                  Of<FixedHttpHandler>(std::string(
                      "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")));
  r = RunTool("client/bench",
              "--json --mode=http --requests=30 --connections=4 "
              "--host=unix:" +
                  http_path);
  EXPECT_EQ(r.exit_code(), 0) << r.output;
  EXPECT_NE(r.output.find("\"good\":30,\"bad\":0,\"errors\":0"),
            std::string::npos)
      << r.output;
}

TEST(UnixClientTest, BenchAgainstAnAbstractName) {
  const std::string name = AbstractName("bench");
  UnixServer echo(name, Of<EchoHandler>());
  Outcome r = RunTool("client/bench", "--threads=2 --host=unix:" + name);
  EXPECT_EQ(r.exit_code(), 0) << r.output;
}

TEST(UnixClientTest, BenchReportsAMissingSocket) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  Outcome r = RunTool("client/bench",
                      "--threads=1 --host=unix:" + dir.Path("none.sock"));
  EXPECT_EQ(r.exit_code(), 1) << r.output;
  EXPECT_NE(r.output.find("unix:" + dir.Path("none.sock")), std::string::npos)
      << r.output;
}

TEST(UnixClientTest, DeadconnHoldsItsConnections) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.Path("dead.sock");
  UnixServer server(path, Of<SilentHandler>());
  ChildServer deadconn;
  ASSERT_TRUE(deadconn
                  .Start(RunfilePath("client/deadconn"),
                         {"--connections=300", "--partial_request",
                          "--host=unix:" + path},
                         "holding ([0-9]+)")
                  .ok())
      << deadconn.output();
  EXPECT_EQ(deadconn.port(), 300) << deadconn.output();
  EXPECT_TRUE(server.WaitForConnections(300))
      << "server sees " << server.reactor().connection_count();
  // Each sent its partial request, with "localhost" as the Host header.
  client::DeadConnOptions o;
  o.host_header = "localhost";
  const size_t partial = client::DeadConnections(o).partial_request().size();
  bool all_read = false;
  for (int i = 0; i < 2000 && !all_read; ++i) {
    all_read = server.reactor().Counters().bytes_read == 300 * partial;
    if (!all_read) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(all_read) << server.reactor().Counters().bytes_read;
  absl::StatusOr<int> status = deadconn.StopWith(SIGINT, 20000);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << deadconn.output();
  EXPECT_TRUE(server.WaitForConnections(0));
}

}  // namespace
}  // namespace baton::testing
