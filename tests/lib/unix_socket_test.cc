// The public API over Unix domain sockets (ListenOptions::unix_path,
// ConnectOptions::unix_path): the connection contract holds as over TCP
// (bytes end to end, half-close, back-pressure, SendFile, Retain, timers),
// the socket file's life (stale replaced, live and non-sockets refused,
// removed when the listener shuts, mode applied), abstract names, outbound
// connects, and TCP-only options refused. Waits are bounded; no assertion
// depends on how fast the machine is.
#include "tests/util/unix_socket.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "baton/connection.h"
#include "baton/reactor.h"
#include "lib/net/address.h"
#include "tests/util/test_client.h"

namespace baton {
namespace {

using ::baton::testing::ConnectUnix;
using ::baton::testing::EchoRoundTrip;
using ::baton::testing::Notification;
using ::baton::testing::Pattern;
using ::baton::testing::ReadExact;
using ::baton::testing::ReadToEof;
using ::baton::testing::SendAll;
using ::baton::testing::UnixTempDir;

template <typename F>
bool Eventually(F predicate, int timeout_ms = 20000) {
  for (int waited = 0; waited < timeout_ms; waited += 2) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return predicate();
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

class Echo : public ConnectionHandler {
 public:
  void OnData(Connection& conn, absl::string_view data) override {
    conn.Write(data);
  }
};

HandlerFactory EchoFactory() {
  return [] { return std::make_unique<Echo>(); };
}

ListenOptions UnixListen(const std::string& path) {
  ListenOptions o;
  o.unix_path = path;
  return o;
}

std::unique_ptr<Reactor> StartReactor(ReactorOptions options = {}) {
  if (options.threads == 0) options.threads = 2;
  absl::StatusOr<std::unique_ptr<Reactor>> r = Reactor::Create(options);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return nullptr;
  EXPECT_TRUE((*r)->Start().ok());
  return std::move(*r);
}

// ---- bytes end to end ------------------------------------------------------

TEST(UnixSocketTest, EchoOnAPathReturnsZeroAsThePort) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.Path("echo.sock");
  std::unique_ptr<Reactor> reactor = StartReactor();
  ASSERT_NE(reactor, nullptr);
  absl::StatusOr<int> port = reactor->Listen(UnixListen(path), EchoFactory());
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_EQ(*port, 0);
  for (uint32_t i = 0; i < 3; ++i) {
    const int fd = ConnectUnix(path);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    EXPECT_TRUE(EchoRoundTrip(fd, Pattern(1000 + i * 77777, i)).ok());
    ::close(fd);
  }
}

TEST(UnixSocketTest, EchoOnAnAbstractName) {
  const std::string name = testing::AbstractName("echo");
  std::unique_ptr<Reactor> reactor = StartReactor();
  ASSERT_NE(reactor, nullptr);
  absl::StatusOr<int> port = reactor->Listen(UnixListen(name), EchoFactory());
  ASSERT_TRUE(port.ok()) << port.status();
  const int fd = ConnectUnix(name);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  EXPECT_TRUE(EchoRoundTrip(fd, Pattern(300000, 7)).ok());
  ::close(fd);
  reactor->Stop();
  reactor->Wait();
  // The name is free again once the listener is closed.
  EXPECT_LT(ConnectUnix(name), 0);
}

// A large transfer against a small high-water mark: the reactor pauses
// reading while replies back up and every byte still comes back in order.
TEST(UnixSocketTest, BackPressureLargeTransferIsByteExact) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.Path("bp.sock");
  ReactorOptions options;
  options.output_high_water = 64 << 10;
  std::unique_ptr<Reactor> reactor = StartReactor(options);
  ASSERT_NE(reactor, nullptr);
  ASSERT_TRUE(reactor->Listen(UnixListen(path), EchoFactory()).ok());
  const int fd = ConnectUnix(path);
  ASSERT_GE(fd, 0);
  const absl::Status s = EchoRoundTrip(fd, Pattern(16 << 20, 3));
  EXPECT_TRUE(s.ok()) << s;
  ::close(fd);
}

// ---- half-close ------------------------------------------------------------

// Collects everything, answers it reversed once the peer has shut its side,
// then shuts ours: the connection ends with OK.
class ReverseAtEof : public ConnectionHandler {
 public:
  explicit ReverseAtEof(Notification* closed_ok) : closed_ok_(closed_ok) {}
  void OnData(Connection&, absl::string_view data) override {
    got_.append(data.data(), data.size());
  }
  void OnPeerClosed(Connection& conn) override {
    conn.Write(std::string(got_.rbegin(), got_.rend()));
    conn.ShutdownWrite();
  }
  void OnClose(Connection&, const absl::Status& reason) override {
    if (reason.ok()) closed_ok_->Notify();
  }

 private:
  std::string got_;
  Notification* closed_ok_;
};

TEST(UnixSocketTest, HalfCloseBothWays) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.Path("half.sock");
  std::unique_ptr<Reactor> reactor = StartReactor();
  ASSERT_NE(reactor, nullptr);
  Notification closed_ok;
  ASSERT_TRUE(reactor
                  ->Listen(UnixListen(path),
                           [&closed_ok] {
                             return std::make_unique<ReverseAtEof>(&closed_ok);
                           })
                  .ok());
  const int fd = ConnectUnix(path);
  ASSERT_GE(fd, 0);
  const std::string sent = Pattern(200000, 11);
  ASSERT_TRUE(SendAll(fd, sent).ok());
  ASSERT_EQ(::shutdown(fd, SHUT_WR), 0);
  absl::StatusOr<std::string> got = ReadToEof(fd);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, std::string(sent.rbegin(), sent.rend()));
  ::close(fd);
  EXPECT_TRUE(closed_ok.WaitFor(std::chrono::seconds(20)));
}

// ---- SendFile --------------------------------------------------------------

class SendsFile : public ConnectionHandler {
 public:
  SendsFile(std::string path, int64_t length) : path_(path), length_(length) {}
  void OnData(Connection& conn, absl::string_view) override {
    if (sent_) return;
    sent_ = true;
    conn.Write("head:", WriteHint::kMoreFollows);
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (!conn.SendFile(fd, 100, length_, FileOwnership::kTransfer)) {
      conn.Abort();
      return;
    }
    conn.Write(":tail");
    conn.Close();
  }

 private:
  std::string path_;
  int64_t length_;
  bool sent_ = false;
};

TEST(UnixSocketTest, SendFileIsByteExact) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string file = dir.Path("body");
  const std::string body = Pattern(3 << 20, 5);
  { std::ofstream(file, std::ios::binary) << body; }
  const std::string path = dir.Path("file.sock");
  std::unique_ptr<Reactor> reactor = StartReactor();
  ASSERT_NE(reactor, nullptr);
  const int64_t length = static_cast<int64_t>(body.size()) - 200;
  ASSERT_TRUE(reactor
                  ->Listen(UnixListen(path),
                           [&file, length] {
                             return std::make_unique<SendsFile>(file, length);
                           })
                  .ok());
  const int fd = ConnectUnix(path);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, "go").ok());
  absl::StatusOr<std::string> got = ReadToEof(fd);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == "head:" + body.substr(100, length) + ":tail")
      << "got " << got->size() << " bytes";
  ::close(fd);
}

// ---- Retain and timers
// -------------------------------------------------------

// Answers each complete line after a timer, retaining an incomplete tail.
class DelayedLines : public ConnectionHandler {
 public:
  void OnData(Connection& conn, absl::string_view data) override {
    const size_t end = data.rfind('\n');
    if (end == absl::string_view::npos) {
      conn.Retain(data.size());
      return;
    }
    const std::string lines(data.substr(0, end + 1));
    conn.Retain(data.size() - end - 1);
    conn.RunAfter(absl::Milliseconds(1),
                  [lines](Connection& c) { c.Write(lines); });
  }
};

TEST(UnixSocketTest, RetainAndTimers) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.Path("lines.sock");
  std::unique_ptr<Reactor> reactor = StartReactor();
  ASSERT_NE(reactor, nullptr);
  ASSERT_TRUE(reactor
                  ->Listen(UnixListen(path),
                           [] { return std::make_unique<DelayedLines>(); })
                  .ok());
  const int fd = ConnectUnix(path);
  ASSERT_GE(fd, 0);
  // Split mid-line: the tail must be retained, not lost or answered early.
  ASSERT_TRUE(SendAll(fd, "alpha\nbr").ok());
  absl::StatusOr<std::string> first = ReadExact(fd, 6);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, "alpha\n");
  ASSERT_TRUE(SendAll(fd, "avo\ncharlie\n").ok());
  absl::StatusOr<std::string> rest = ReadExact(fd, 14);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(*rest, "bravo\ncharlie\n");
  ::close(fd);
}

// ---- the socket file
// ---------------------------------------------------------

TEST(UnixSocketTest, FileIsRemovedOnStop) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.Path("stop.sock");
  std::unique_ptr<Reactor> reactor = StartReactor();
  ASSERT_NE(reactor, nullptr);
  ASSERT_TRUE(reactor->Listen(UnixListen(path), EchoFactory()).ok());
  ASSERT_TRUE(Exists(path));
  reactor->Stop();
  EXPECT_FALSE(Exists(path));
  reactor->Wait();
  EXPECT_FALSE(Exists(path));
}

TEST(UnixSocketTest, FileIsRemovedByStopAcceptingAndByDrain) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  for (const bool drain : {false, true}) {
    const std::string path = dir.Path(drain ? "drain.sock" : "stopacc.sock");
    std::unique_ptr<Reactor> reactor = StartReactor();
    ASSERT_NE(reactor, nullptr);
    ASSERT_TRUE(reactor->Listen(UnixListen(path), EchoFactory()).ok());
    // An open connection is unaffected by StopAccepting.
    const int fd = ConnectUnix(path);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(EchoRoundTrip(fd, "before").ok());
    ASSERT_TRUE(Exists(path));
    if (drain) {
      reactor->Drain();
    } else {
      reactor->StopAccepting();
    }
    EXPECT_FALSE(Exists(path)) << (drain ? "Drain" : "StopAccepting");
    if (!drain) {
      EXPECT_TRUE(EchoRoundTrip(fd, "after").ok());
    }
    ::close(fd);
  }
}

TEST(UnixSocketTest, DestroyingAnUnstartedReactorRemovesTheFile) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.Path("unstarted.sock");
  {
    absl::StatusOr<std::unique_ptr<Reactor>> r = Reactor::Create({});
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE((*r)->Listen(UnixListen(path), EchoFactory()).ok());
    ASSERT_TRUE(Exists(path));
  }
  EXPECT_FALSE(Exists(path));
}

TEST(UnixSocketTest, ModeIsApplied) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.Path("mode.sock");
  std::unique_ptr<Reactor> reactor = StartReactor();
  ASSERT_NE(reactor, nullptr);
  ListenOptions listen = UnixListen(path);
  listen.unix_mode = 0640;
  ASSERT_TRUE(reactor->Listen(listen, EchoFactory()).ok());
  struct stat st;
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
}

TEST(UnixSocketTest, StaleFileIsReplacedLiveOneAndRegularFileRefused) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  std::unique_ptr<Reactor> reactor = StartReactor();
  ASSERT_NE(reactor, nullptr);

  const std::string stale = dir.Path("stale.sock");
  ASSERT_TRUE(testing::MakeStaleSocketFile(stale));
  ASSERT_TRUE(reactor->Listen(UnixListen(stale), EchoFactory()).ok());
  int fd = ConnectUnix(stale);
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(EchoRoundTrip(fd, "replaced").ok());
  ::close(fd);

  // Someone (here: this reactor) listens on it: refused, still served.
  absl::StatusOr<int> live = reactor->Listen(UnixListen(stale), EchoFactory());
  EXPECT_EQ(live.status().code(), absl::StatusCode::kAlreadyExists)
      << live.status();
  fd = ConnectUnix(stale);
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(EchoRoundTrip(fd, "still served").ok());
  ::close(fd);

  const std::string file = dir.Path("regular");
  { std::ofstream(file) << "data"; }
  absl::StatusOr<int> regular =
      reactor->Listen(UnixListen(file), EchoFactory());
  EXPECT_EQ(regular.status().code(), absl::StatusCode::kFailedPrecondition)
      << regular.status();
  reactor->Stop();
  reactor->Wait();
  EXPECT_TRUE(Exists(file));  // not ours: left alone
  EXPECT_FALSE(Exists(stale));
}

TEST(UnixSocketTest, TcpOnlyOptionsAreRefused) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  absl::StatusOr<std::unique_ptr<Reactor>> r = Reactor::Create({});
  ASSERT_TRUE(r.ok());
  ListenOptions o = UnixListen(dir.Path("opts.sock"));
  o.reuse_port = true;
  EXPECT_EQ((*r)->Listen(o, EchoFactory()).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.reuse_port = false;
  o.defer_accept_seconds = 5;
  EXPECT_EQ((*r)->Listen(o, EchoFactory()).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.defer_accept_seconds = 0;
  o.port = 80;
  EXPECT_EQ((*r)->Listen(o, EchoFactory()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(Exists(o.unix_path));
  ListenOptions tcp;
  tcp.unix_mode = 0600;
  EXPECT_EQ((*r)->Listen(tcp, EchoFactory()).status().code(),
            absl::StatusCode::kInvalidArgument);
  ConnectOptions c;
  c.unix_path = dir.Path("opts.sock");
  c.port = 80;
  EXPECT_EQ((*r)->Connect(c, EchoFactory()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---- the peer's address
// --------------------------------------------------------

class ReportsAddresses : public ConnectionHandler {
 public:
  void OnOpen(Connection& conn) override {
    sockaddr_storage addr;
    socklen_t len = sizeof(addr);
    ::getsockname(conn.fd(), reinterpret_cast<sockaddr*>(&addr), &len);
    std::string text = net::SocketAddressString(addr, len);
    len = sizeof(addr);
    ::getpeername(conn.fd(), reinterpret_cast<sockaddr*>(&addr), &len);
    text += " " + net::SocketAddressString(addr, len) + "\n";
    conn.Write(text);
  }
  void OnData(Connection&, absl::string_view) override {}
};

TEST(UnixSocketTest, AddressesPrintAsUnixText) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.Path("addr.sock");
  std::unique_ptr<Reactor> reactor = StartReactor();
  ASSERT_NE(reactor, nullptr);
  ASSERT_TRUE(reactor
                  ->Listen(UnixListen(path),
                           [] { return std::make_unique<ReportsAddresses>(); })
                  .ok());
  const int fd = ConnectUnix(path);
  ASSERT_GE(fd, 0);
  const std::string want = "unix:" + path + " unix:(unnamed)\n";
  absl::StatusOr<std::string> got = ReadExact(fd, want.size());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, want);
  ::close(fd);
}

// ---- outbound connects
// -----------------------------------------------------------

// Writes `message` once connected and collects the answer; records how
// the connection ended.
class Client : public ConnectionHandler {
 public:
  struct Result {
    std::mutex mu;
    std::string got;
    // How it ended, copied out of the absl::Status: Debian's libabsl is not
    // instrumented, so ThreadSanitizer cannot see a shared Status's
    // reference count.
    absl::StatusCode code = absl::StatusCode::kUnknown;
    std::string message;
    Notification closed;
  };
  Client(std::string message, Result* result)
      : message_(std::move(message)), result_(result) {}
  void OnOpen(Connection& conn) override {
    conn.Write(message_);
    conn.ShutdownWrite();
  }
  void OnData(Connection&, absl::string_view data) override {
    std::lock_guard<std::mutex> lock(result_->mu);
    result_->got.append(data.data(), data.size());
  }
  void OnClose(Connection&, const absl::Status& reason) override {
    {
      std::lock_guard<std::mutex> lock(result_->mu);
      result_->code = reason.code();
      result_->message = std::string(reason.message());
    }
    result_->closed.Notify();
  }

 private:
  std::string message_;
  Result* result_;
};

TEST(UnixSocketTest, ConnectToAUnixListener) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  for (const std::string& path :
       {dir.Path("connect.sock"), testing::AbstractName("connect")}) {
    std::unique_ptr<Reactor> reactor = StartReactor();
    ASSERT_NE(reactor, nullptr);
    ASSERT_TRUE(reactor->Listen(UnixListen(path), EchoFactory()).ok());
    ConnectOptions c;
    c.unix_path = path;
    Client::Result result;
    const std::string message = Pattern(1 << 20, 9);
    ASSERT_TRUE(reactor
                    ->Connect(c,
                              [&message, &result] {
                                return std::make_unique<Client>(message,
                                                                &result);
                              })
                    .ok());
    ASSERT_TRUE(result.closed.WaitFor(std::chrono::seconds(20)));
    std::lock_guard<std::mutex> lock(result.mu);
    EXPECT_EQ(result.code, absl::StatusCode::kOk) << result.message;
    EXPECT_TRUE(result.got == message)
        << path << ": got " << result.got.size() << " bytes";
  }
}

TEST(UnixSocketTest, ConnectFailuresNameThePath) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string stale = dir.Path("refused.sock");
  ASSERT_TRUE(testing::MakeStaleSocketFile(stale));
  std::unique_ptr<Reactor> reactor = StartReactor();
  ASSERT_NE(reactor, nullptr);
  for (const std::string& path : {stale, dir.Path("missing.sock")}) {
    ConnectOptions c;
    c.unix_path = path;
    c.max_attempts = 2;
    c.initial_backoff = absl::Milliseconds(1);
    c.max_backoff = absl::Milliseconds(1);
    Client::Result result;
    ASSERT_TRUE(
        reactor
            ->Connect(
                c, [&result] { return std::make_unique<Client>("x", &result); })
            .ok());
    ASSERT_TRUE(result.closed.WaitFor(std::chrono::seconds(20)));
    std::lock_guard<std::mutex> lock(result.mu);
    EXPECT_EQ(result.code, path == stale ? absl::StatusCode::kUnavailable
                                         : absl::StatusCode::kNotFound)
        << result.message;
    EXPECT_NE(result.message.find("connect unix:" + path), std::string::npos)
        << result.message;
    EXPECT_NE(result.message.find("(2 attempts)"), std::string::npos)
        << result.message;
  }
}

}  // namespace
}  // namespace baton
