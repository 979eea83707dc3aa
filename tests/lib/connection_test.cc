// Contract tests for the public API only (baton/reactor.h, baton/connection.h):
// each test states one promise of those headers and checks it over loopback
// with real sockets, bytes compared end to end. Waits are bounded in count
// and time; no assertion depends on how fast the machine is, except generous
// upper bounds that only a hang reaches.
#include "baton/connection.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "baton/reactor.h"
#include "tests/util/test_client.h"

namespace baton {
namespace {

using ::baton::testing::ConnectLoopback;
using ::baton::testing::EchoRoundTrip;
using ::baton::testing::End;
using ::baton::testing::EndName;
using ::baton::testing::EofOrReset;
using ::baton::testing::Notification;
using ::baton::testing::Pattern;
using ::baton::testing::ReadExact;
using ::baton::testing::ReadToEof;
using ::baton::testing::SendAll;
using ::baton::testing::WaitForEnd;

// ---- helpers
// -----------------------------------------------------------------

template <typename F>
bool Eventually(F predicate, int timeout_ms = 20000) {
  for (int waited = 0; waited < timeout_ms; waited += 2) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return predicate();
}

struct Server {
  std::unique_ptr<Reactor> reactor;
  int port = 0;
};

Server Start(ReactorOptions options, HandlerFactory factory,
             ListenOptions listen = ListenOptions{}) {
  Server s;
  absl::StatusOr<std::unique_ptr<Reactor>> r = Reactor::Create(options);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return s;
  s.reactor = std::move(*r);
  absl::StatusOr<int> port = s.reactor->Listen(listen, std::move(factory));
  EXPECT_TRUE(port.ok()) << port.status();
  s.port = port.ok() ? *port : 0;
  EXPECT_TRUE(s.reactor->Start().ok());
  return s;
}

ReactorOptions Threads(int n) {
  ReactorOptions o;
  o.threads = n;
  return o;
}

// Reads until EOF or reset (bounded by the socket's receive timeout);
// returns what arrived and sets *how.
std::string ReadUntilEnd(int fd, End* how) {
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    *how = n == 0                ? End::kEof
           : errno == ECONNRESET ? End::kReset
           : errno == EAGAIN     ? End::kTimeout
                                 : End::kError;
    return out;
  }
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

// A temporary file holding `content`; removed by the destructor.
class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    const char* dir = std::getenv("TEST_TMPDIR");
    path_ = std::string(dir != nullptr ? dir : "/tmp") + "/contract_XXXXXX";
    fd_ = ::mkstemp(path_.data());
    EXPECT_GE(fd_, 0);
    EXPECT_TRUE(SendAllToFile(content));
  }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
  }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

 private:
  bool SendAllToFile(const std::string& content) {
    size_t done = 0;
    while (done < content.size()) {
      const ssize_t n =
          ::write(fd_, content.data() + done, content.size() - done);
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }
  std::string path_;
  int fd_ = -1;
};

// ---- PauseReading / ResumeReading / OnDrained
// ---------------------------------

// On "p": pauses reading and queues a reply far larger than the socket
// buffers. Nothing more may be delivered while paused; OnDrained comes when
// the backlog is written, and resumes reading; then later bytes are echoed.
class PauseUntilDrained : public ConnectionHandler {
 public:
  static constexpr size_t kReply = 8 << 20;
  struct Log {
    std::mutex mu;
    std::vector<std::string> events;
    void Add(std::string e) {
      std::lock_guard<std::mutex> lock(mu);
      events.push_back(std::move(e));
    }
  };
  PauseUntilDrained(Log* log, const std::string* reply)
      : log_(log), reply_(reply) {}
  void OnData(Connection& conn, absl::string_view data) override {
    log_->Add(absl::StrCat("data:", data, paused_ ? ":while-paused" : ""));
    if (!paused_ && !resumed_ && data == "p") {
      conn.PauseReading();
      paused_ = true;
      log_->Add("paused");  // before the first reply byte can leave
      conn.Write(*reply_);
      return;
    }
    conn.Write(data);
  }
  void OnDrained(Connection& conn) override {
    log_->Add("drained");
    if (paused_) {
      paused_ = false;
      resumed_ = true;
      conn.ResumeReading();
    }
  }

 private:
  Log* log_;
  const std::string* reply_;
  bool paused_ = false;
  bool resumed_ = false;
};

TEST(ConnectionContractTest, PauseReadingHoldsDataUntilOnDrainedResumes) {
  PauseUntilDrained::Log log;
  ReactorOptions o = Threads(2);
  o.output_high_water = 64 << 20;  // only the handler's pause is in play
  const std::string reply = Pattern(PauseUntilDrained::kReply, 42);
  Server s = Start(
      o, [&] { return std::make_unique<PauseUntilDrained>(&log, &reply); });
  const int fd = ConnectLoopback(s.port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, "p").ok());
  // The reply has begun: the handler has paused.
  absl::StatusOr<std::string> head = ReadExact(fd, 1);
  ASSERT_TRUE(head.ok()) << head.status();
  ASSERT_TRUE(SendAll(fd, "x").ok());
  // While paused (most of the 8 MiB still queued), "x" is not delivered.
  // A window can only miss a bug here, never invent one.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  {
    std::lock_guard<std::mutex> lock(log.mu);
    EXPECT_EQ(log.events, (std::vector<std::string>{"data:p", "paused"}));
  }
  absl::StatusOr<std::string> rest =
      ReadExact(fd, PauseUntilDrained::kReply - 1);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_TRUE(*head + *rest == reply);
  // Drained -> resumed -> "x" is delivered and echoed.
  absl::StatusOr<std::string> x = ReadExact(fd, 1);
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(*x, "x");
  {
    std::lock_guard<std::mutex> lock(log.mu);
    EXPECT_EQ(log.events, (std::vector<std::string>{"data:p", "paused",
                                                    "drained", "data:x"}));
  }
  ::close(fd);
}

// ---- OnPeerClosed overridden ----------------------------------------------

// Does not close on the peer's EOF: answers "bye" and keeps the connection
// open; the test closes it later through Reactor::Close from its thread.
class KeepOpenOnPeerClose : public ConnectionHandler {
 public:
  KeepOpenOnPeerClose(std::atomic<uint64_t>* id, Notification* peer_closed)
      : id_(id), peer_closed_(peer_closed) {}
  void OnOpen(Connection& conn) override { id_->store(conn.id().value); }
  void OnData(Connection& conn, absl::string_view data) override {
    conn.Write(data);
  }
  void OnPeerClosed(Connection& conn) override {
    conn.Write("bye");
    peer_closed_->Notify();
  }

 private:
  std::atomic<uint64_t>* id_;
  Notification* peer_closed_;
};

TEST(ConnectionContractTest, OverriddenOnPeerClosedKeepsTheConnection) {
  std::atomic<uint64_t> id{0};
  Notification peer_closed;
  Server s = Start(Threads(2), [&] {
    return std::make_unique<KeepOpenOnPeerClose>(&id, &peer_closed);
  });
  const int fd = ConnectLoopback(s.port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, "hello").ok());
  ASSERT_EQ(::shutdown(fd, SHUT_WR), 0);
  ASSERT_TRUE(peer_closed.WaitFor(std::chrono::seconds(20)));
  absl::StatusOr<std::string> got = ReadExact(fd, 8);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "hellobye");
  // Still open: the override did not close, so a later Write arrives.
  EXPECT_EQ(s.reactor->connection_count(), 1u);
  EXPECT_TRUE(s.reactor->Write(ConnectionId{id.load()}, "later"));
  got = ReadExact(fd, 5);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "later");
  EXPECT_TRUE(s.reactor->Close(ConnectionId{id.load()}));
  End how;
  EXPECT_EQ(ReadUntilEnd(fd, &how), "");
  EXPECT_EQ(how, End::kEof) << EndName(how);
  EXPECT_TRUE(Eventually([&] { return s.reactor->connection_count() == 0; }));
  ::close(fd);
}

// ---- SendFile with kCopy and its failure paths
// -------------------------------

// On its first bytes: "<" + file[offset, offset+length) + ">", the file sent
// with FileOwnership::kCopy from `file_fd`, which this handler closes right
// after SendFile returns (the connection must hold its own duplicate).
class SendFileCopy : public ConnectionHandler {
 public:
  SendFileCopy(std::string path, int64_t offset, int64_t length,
               std::atomic<int>* result)
      : path_(std::move(path)),
        offset_(offset),
        length_(length),
        result_(result) {}
  void OnData(Connection& conn, absl::string_view) override {
    if (done_) return;
    done_ = true;
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    conn.Write("<");
    const bool ok = conn.SendFile(fd, offset_, length_);  // kCopy default
    if (fd >= 0) ::close(fd);
    result_->store(ok ? 1 : 0);
    conn.Write(">");
    conn.Close();
  }

 private:
  std::string path_;
  int64_t offset_, length_;
  std::atomic<int>* result_;
  bool done_ = false;
};

TEST(ConnectionContractTest, SendFileCopySendsFromItsOwnDuplicate) {
  const std::string content = Pattern(3 << 20, 17);
  TempFile file(content);
  std::atomic<int> result{-1};
  Server s = Start(Threads(2), [&] {
    return std::make_unique<SendFileCopy>(file.path(), 1000, 2 << 20, &result);
  });
  const int fd = ConnectLoopback(s.port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, "go").ok());
  absl::StatusOr<std::string> got = ReadToEof(fd);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(result.load(), 1);
  EXPECT_TRUE(*got == "<" + content.substr(1000, 2 << 20) + ">")
      << got->size() << " bytes";
  ::close(fd);
}

TEST(ConnectionContractTest, SendFileCopyOfABadDescriptorQueuesNothing) {
  // The path does not exist: open() gives -1, dup fails, SendFile says
  // false and queues nothing; the writes around it still arrive in order.
  std::atomic<int> result{-1};
  Server s = Start(Threads(2), [&] {
    return std::make_unique<SendFileCopy>("/nonexistent/baton", 0, 100,
                                          &result);
  });
  const int fd = ConnectLoopback(s.port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, "go").ok());
  absl::StatusOr<std::string> got = ReadToEof(fd);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(result.load(), 0);
  EXPECT_EQ(*got, "<>");
  ::close(fd);
}

// A file that shrinks after SendFile queued it: the connection cannot send
// what it promised. It must end (EOF or reset) instead of hanging on a
// sendfile that returns 0 forever, and nothing leaks.
class SendShrinking : public ConnectionHandler {
 public:
  SendShrinking(int file_fd, int64_t length, Notification* queued)
      : file_fd_(file_fd), length_(length), queued_(queued) {}
  void OnData(Connection& conn, absl::string_view) override {
    if (done_) return;
    done_ = true;
    EXPECT_TRUE(conn.SendFile(file_fd_, 0, length_));
    queued_->Notify();
  }

 private:
  int file_fd_;
  int64_t length_;
  Notification* queued_;
  bool done_ = false;
};

TEST(ConnectionContractTest, SendFileOfAFileThatShrinksEndsTheConnection) {
  constexpr size_t kSize = 16 << 20;
  const std::string content = Pattern(kSize, 5);
  TempFile file(content);
  Notification queued;
  Server s = Start(Threads(2), [&] {
    return std::make_unique<SendShrinking>(file.fd(), kSize, &queued);
  });
  const int fd = ConnectLoopback(s.port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, "go").ok());
  ASSERT_TRUE(queued.WaitFor(std::chrono::seconds(20)));
  // Not reading yet, so most of the file is still queued: cut it to 1 MiB.
  ASSERT_EQ(::ftruncate(file.fd(), 1 << 20), 0);
  End how;
  const std::string got = ReadUntilEnd(fd, &how);
  EXPECT_TRUE(EofOrReset(how)) << EndName(how) << " after " << got.size();
  EXPECT_LE(got.size(), kSize);
  // The part that survived the cut arrives intact. Bytes past it that had
  // already been handed to the kernel may arrive too: sendfile queues
  // references to the page cache, and truncation zeroes those pages, so
  // they may read as zeros (kernel behaviour, seen here on every run).
  const size_t kept = std::min<size_t>(got.size(), 1 << 20);
  EXPECT_TRUE(got.compare(0, kept, content, 0, kept) == 0)
      << "the surviving start of the file arrived changed";
  for (size_t i = kept; i < got.size(); ++i) {
    if (got[i] != content[i] && got[i] != '\0') {
      ADD_FAILURE() << "byte " << i << " is neither the file's nor a zero";
      break;
    }
  }
  EXPECT_TRUE(Eventually([&] { return s.reactor->connection_count() == 0; }));
  ::close(fd);
}

// ---- foreign-thread Write racing Close and teardown
// ----------------------------

class RecordId : public ConnectionHandler {
 public:
  RecordId(std::atomic<uint64_t>* id, std::atomic<int>* closes)
      : id_(id), closes_(closes) {}
  void OnOpen(Connection& conn) override { id_->store(conn.id().value); }
  void OnData(Connection& conn, absl::string_view data) override {
    if (data.find('c') != absl::string_view::npos) conn.Close();
  }
  void OnClose(Connection&, const absl::Status&) override {
    closes_->fetch_add(1);
  }

 private:
  std::atomic<uint64_t>* id_;
  std::atomic<int>* closes_;
};

// Writers on four threads hammer Reactor::Write while the handler closes
// the connection and then the reactor is stopped and destroyed. Checked
// under ThreadSanitizer; here: every message that arrives is whole and in
// order per writer, Write turns false once the connection is gone and never
// comes back true, and OnClose ran exactly once.
TEST(ConnectionContractTest, ForeignWritesRacingCloseAndTeardown) {
  for (int round = 0; round < 5; ++round) {
    std::atomic<uint64_t> id{0};
    std::atomic<int> closes{0};
    Server s = Start(Threads(2),
                     [&] { return std::make_unique<RecordId>(&id, &closes); });
    const int fd = ConnectLoopback(s.port);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(Eventually([&] { return id.load() != 0; }));
    const ConnectionId conn{id.load()};
    constexpr int kWriters = 4;
    // Bounded by count. Close waits for queued output; Reactor::Write
    // refuses once the close has begun (kOutputClosed), so the queue
    // drains even while the writers are still writing.
    constexpr int kMessages = 5000;
    std::atomic<int> true_after_false{0};
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&, w] {
        bool saw_false = false;
        for (int seq = 0; seq < kMessages; ++seq) {
          // "[w:seq]" framed so a torn message shows.
          const bool ok =
              s.reactor->Write(conn, absl::StrCat("[", w, ":", seq, "]"));
          if (!ok) saw_false = true;
          if (ok && saw_false) true_after_false.fetch_add(1);
        }
      });
    }
    std::string received;
    End how = End::kTimeout;
    std::thread reader_thread([&] { received = ReadUntilEnd(fd, &how); });
    std::this_thread::sleep_for(std::chrono::milliseconds(5 * round));
    const bool sent = SendAll(fd, "c").ok();  // the handler closes
    if (round % 2 == 1) {
      s.reactor->Stop();  // and teardown races the writers too
    }
    for (auto& t : writers) t.join();
    if (round % 2 == 1) {
      // After Stop, a connection still open when the workers exit is
      // closed by the join (Wait), not by itself: without this the check
      // below raced Stop against the handler's close and failed whenever
      // Stop won (found flaky at about 1 run in 10).
      s.reactor->Wait();
    }
    const bool closed = Eventually([&] { return closes.load() == 1; }, 60000);
    s.reactor->Stop();
    s.reactor->Wait();
    s.reactor.reset();
    reader_thread.join();
    EXPECT_TRUE(sent);
    EXPECT_TRUE(closed);
    EXPECT_TRUE(EofOrReset(how)) << EndName(how);
    EXPECT_EQ(true_after_false.load(), 0);
    EXPECT_EQ(closes.load(), 1);
    // Parse: whole messages, each writer's sequence increasing by one.
    std::vector<int> next(kWriters, 0);
    size_t pos = 0;
    while (pos < received.size()) {
      const size_t end = received.find(']', pos);
      if (end == std::string::npos) {
        ADD_FAILURE() << "torn message at byte " << pos;
        break;
      }
      int w = -1, seq = -1;
      ASSERT_EQ(std::sscanf(received.substr(pos, end - pos + 1).c_str(),
                            "[%d:%d]", &w, &seq),
                2)
          << received.substr(pos, 40);
      ASSERT_TRUE(w >= 0 && w < kWriters);
      EXPECT_EQ(seq, next[w]) << "writer " << w << " out of order";
      next[w] = seq + 1;
      pos = end + 1;
    }
    ::close(fd);
  }
}

// ---- Drain, then Stop
// ---------------------------------------------------------

class CloseLog : public ConnectionHandler {
 public:
  CloseLog(std::mutex* mu, std::vector<absl::StatusCode>* codes, size_t reply)
      : mu_(mu), codes_(codes), reply_(reply) {}
  void OnData(Connection& conn, absl::string_view) override {
    if (!sent_) conn.Write(std::string(reply_, 'r'));
    sent_ = true;
  }
  void OnClose(Connection&, const absl::Status& reason) override {
    std::lock_guard<std::mutex> lock(*mu_);
    codes_->push_back(reason.code());
  }

 private:
  std::mutex* mu_;
  std::vector<absl::StatusCode>* codes_;
  size_t reply_;
  bool sent_ = false;
};

// Drain closes the idle connection at once (OK) but cannot finish a reply to
// a peer that never reads; Stop then cuts it (CANCELLED), and Wait returns.
TEST(ConnectionContractTest, DrainThenStopCutsWhatDrainCouldNotFinish) {
  std::mutex mu;
  std::vector<absl::StatusCode> codes;
  Server s = Start(Threads(2), [&] {
    return std::make_unique<CloseLog>(&mu, &codes, 32 << 20);
  });
  const int idle = ConnectLoopback(s.port);
  const int stuck = ConnectLoopback(s.port);
  ASSERT_GE(idle, 0);
  ASSERT_GE(stuck, 0);
  ASSERT_TRUE(SendAll(stuck, "x").ok());  // 32 MiB reply, never read
  ASSERT_TRUE(Eventually([&] { return s.reactor->connection_count() == 2; }));
  s.reactor->Drain();
  EXPECT_EQ(WaitForEnd(idle), End::kEof);
  ASSERT_TRUE(Eventually([&] { return s.reactor->connection_count() == 1; }));
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(codes, std::vector<absl::StatusCode>{absl::StatusCode::kOk});
  }
  s.reactor->Stop();
  s.reactor->Wait();
  EXPECT_EQ(s.reactor->connection_count(), 0u);
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(codes, (std::vector<absl::StatusCode>{
                         absl::StatusCode::kOk, absl::StatusCode::kCancelled}));
  }
  ::close(idle);
  ::close(stuck);
}

// ---- OnClose with CANCELLED on Stop
// -------------------------------------------

TEST(ConnectionContractTest, StopClosesOpenConnectionsWithCancelled) {
  std::mutex mu;
  std::vector<absl::StatusCode> codes;
  Server s = Start(Threads(2),
                   [&] { return std::make_unique<CloseLog>(&mu, &codes, 1); });
  std::vector<int> fds;
  for (int i = 0; i < 3; ++i) {
    fds.push_back(ConnectLoopback(s.port));
    ASSERT_GE(fds.back(), 0);
  }
  ASSERT_TRUE(Eventually([&] { return s.reactor->connection_count() == 3; }));
  s.reactor->Stop();
  s.reactor->Wait();
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(codes,
            std::vector<absl::StatusCode>(3, absl::StatusCode::kCancelled));
  for (int fd : fds) {
    EXPECT_TRUE(EofOrReset(WaitForEnd(fd)));
    ::close(fd);
  }
}

// ---- linger_timeout
// ------------------------------------------------------------

// Pauses at its first data and records its id; the test then queues a reply
// and closes it by id while input it has not read is waiting, so the close
// lingers (reply delivered, input discarded) until linger_timeout, then
// closes even though the peer never stops sending.
class PauseAtFirstData : public ConnectionHandler {
 public:
  PauseAtFirstData(std::atomic<uint64_t>* id, std::atomic<int>* reason)
      : id_(id), reason_(reason) {}
  void OnData(Connection& conn, absl::string_view) override {
    conn.PauseReading();
    id_->store(conn.id().value);
  }
  void OnClose(Connection&, const absl::Status& reason) override {
    reason_->store(static_cast<int>(reason.code()));
  }

 private:
  std::atomic<uint64_t>* id_;
  std::atomic<int>* reason_;
};

TEST(ConnectionContractTest, LingerTimeoutEndsALingeringClose) {
  ReactorOptions o = Threads(2);
  o.linger_timeout = absl::Milliseconds(300);
  std::atomic<uint64_t> id{0};
  std::atomic<int> reason{-1};
  Server s = Start(
      o, [&] { return std::make_unique<PauseAtFirstData>(&id, &reason); });
  const int fd = ConnectLoopback(s.port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, "a").ok());
  ASSERT_TRUE(Eventually([&] { return id.load() != 0; }));
  // Input the handler has not read: sent while it is paused, and all of it
  // in the server's receive queue (nothing left unacknowledged here), so
  // the close below finds it unread and lingers (SHUT_WR, then read and
  // discard). Deterministic: it does not depend on how fast the client
  // sends (an earlier version raced the handler's read against the client).
  ASSERT_TRUE(SendAll(fd, std::string(32 << 10, 'a')).ok());
  ASSERT_TRUE(Eventually([&] {
    int unacked = -1;
    return ::ioctl(fd, SIOCOUTQ, &unacked) == 0 && unacked == 0;
  }));
  const ConnectionId conn{id.load()};
  ASSERT_TRUE(s.reactor->Write(conn, Pattern(10000, 3)));
  ASSERT_TRUE(s.reactor->Close(conn));
  std::atomic<bool> stop_sending{false};
  // Keeps sending until the connection is gone, so the linger can only end
  // by its timeout (bounded: 20 s).
  std::thread sender([&] {
    const std::string chunk(4096, 's');
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!stop_sending.load() && std::chrono::steady_clock::now() < until) {
      if (::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL) < 0 &&
          errno != EAGAIN && errno != EINTR) {
        break;
      }
    }
  });
  absl::StatusOr<std::string> reply = ReadExact(fd, 10000);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_TRUE(*reply == Pattern(10000, 3));
  const End end = WaitForEnd(fd, 20000);
  EXPECT_EQ(end, End::kEof)
      << EndName(end) << ": the linger starts with SHUT_WR";
  // The peer never stops sending, so only the timeout can end the linger:
  // OnClose says ABORTED (an EOF from the peer would have been OK).
  EXPECT_TRUE(Eventually([&] { return s.reactor->connection_count() == 0; }));
  EXPECT_EQ(reason.load(), static_cast<int>(absl::StatusCode::kAborted));
  stop_sending = true;
  sender.join();
  ::close(fd);
}

// ---- reuse_port
// ----------------------------------------------------------------

TEST(ConnectionContractTest, ReusePortLetsTwoReactorsShareAPort) {
  ListenOptions l;
  l.reuse_port = true;
  Server a = Start(Threads(1), EchoFactory(), l);
  ASSERT_NE(a.port, 0);
  l.port = a.port;
  Server b = Start(Threads(1), EchoFactory(), l);
  EXPECT_EQ(b.port, a.port);
  // Without reuse_port the same port is refused.
  auto c = Reactor::Create(Threads(1));
  ASSERT_TRUE(c.ok());
  ListenOptions plain;
  plain.port = a.port;
  EXPECT_FALSE((*c)->Listen(plain, EchoFactory()).ok());
  // Connections are served (by either) byte for byte.
  for (int i = 0; i < 20; ++i) {
    const int fd = ConnectLoopback(a.port);
    ASSERT_GE(fd, 0);
    EXPECT_TRUE(EchoRoundTrip(fd, Pattern(1000, i)).ok());
    ::close(fd);
  }
  const ReactorCounters ca = a.reactor->Counters();
  const ReactorCounters cb = b.reactor->Counters();
  EXPECT_EQ(ca.accepts + cb.accepts, 20u);
}

// ---- max_connections under concurrent accepts and Adopt
// ------------------------

class CountLive : public ConnectionHandler {
 public:
  CountLive(std::atomic<int>* live, std::atomic<int>* max_live)
      : live_(live), max_live_(max_live) {}
  void OnOpen(Connection&) override {
    const int now = live_->fetch_add(1) + 1;
    int seen = max_live_->load();
    while (now > seen && !max_live_->compare_exchange_weak(seen, now)) {
    }
  }
  void OnData(Connection& conn, absl::string_view data) override {
    conn.Write(data);
  }
  void OnClose(Connection&, const absl::Status&) override {
    live_->fetch_sub(1);
  }

 private:
  std::atomic<int>* live_;
  std::atomic<int>* max_live_;
};

TEST(ConnectionContractTest, MaxConnectionsHoldsUnderConcurrentAccepts) {
  constexpr int kMax = 5;
  constexpr int kClients = 40;
  std::atomic<int> live{0}, max_live{0};
  ReactorOptions o = Threads(3);
  o.max_connections = kMax;
  Server s =
      Start(o, [&] { return std::make_unique<CountLive>(&live, &max_live); });
  std::atomic<int> served{0}, refused{0}, other{0};
  std::vector<int> fds(kClients, -1);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      const int fd = ConnectLoopback(s.port);
      fds[i] = fd;
      if (fd < 0) {
        other.fetch_add(1);
        return;
      }
      // Either echoed (admitted) or ended at once (refused).
      const std::string msg = Pattern(100, i);
      if (!SendAll(fd, msg).ok()) {
        refused.fetch_add(1);
        return;
      }
      pollfd p = {fd, POLLIN, 0};
      if (::poll(&p, 1, 20000) != 1) {
        other.fetch_add(1);
        return;
      }
      char buf[100];
      const ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_WAITALL);
      if (n == 100 && std::string(buf, 100) == msg) {
        served.fetch_add(1);
      } else if (n == 0 || (n < 0 && errno == ECONNRESET)) {
        refused.fetch_add(1);
      } else {
        other.fetch_add(1);
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_LE(max_live.load(), kMax);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(served.load() + refused.load(), kClients);
  EXPECT_GE(served.load(), 1);
  EXPECT_LE(served.load(), kMax);  // admitted ones are still held open
  EXPECT_EQ(s.reactor->Counters().rejected,
            static_cast<uint64_t>(refused.load()));
  for (int fd : fds) {
    if (fd >= 0) ::close(fd);
  }
}

// Adopt counts against max_connections too: with the limit reached it fails
// and closes the descriptor it was given.
TEST(ConnectionContractTest, AdoptBeyondMaxConnectionsFailsAndClosesTheFd) {
  std::atomic<int> live{0}, max_live{0};
  ReactorOptions o = Threads(2);
  o.max_connections = 2;
  Server s =
      Start(o, [&] { return std::make_unique<CountLive>(&live, &max_live); });
  HandlerFactory factory = [&] {
    return std::make_unique<CountLive>(&live, &max_live);
  };
  int peers[3] = {-1, -1, -1};
  for (int i = 0; i < 3; ++i) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    peers[i] = sv[1];
    absl::StatusOr<ConnectionId> id = s.reactor->Adopt(sv[0], factory);
    if (i < 2) {
      ASSERT_TRUE(id.ok()) << id.status();
      EXPECT_TRUE(EchoRoundTrip(sv[1], Pattern(1000, i)).ok());
    } else {
      EXPECT_FALSE(id.ok()) << "adopted past max_connections";
      EXPECT_EQ(id.status().code(), absl::StatusCode::kResourceExhausted)
          << id.status();
      // The reactor closed its end: the peer sees EOF.
      EXPECT_EQ(WaitForEnd(sv[1]), End::kEof);
    }
  }
  EXPECT_LE(max_live.load(), 2);
  for (int fd : peers) ::close(fd);
}

// ---- CancelTimer racing a running RunEvery
// -------------------------------------

// Two 1 ms timers fall due together; the first runs long, and the second is
// cancelled meanwhile. Cancel says true, and the second never runs (the old
// TimerQueue ran it once more after "true").
TEST(ConnectionContractTest, CancelTimerDuringTheBatchStopsTheLaterTimer) {
  absl::StatusOr<std::unique_ptr<Reactor>> r = Reactor::Create(Threads(1));
  ASSERT_TRUE(r.ok());
  Reactor& reactor = **r;
  Notification first_running, cancelled;
  std::atomic<int> first_runs{0}, second_runs{0};
  reactor.RunEvery(absl::Milliseconds(1), [&] {
    if (first_runs.fetch_add(1) == 0) {
      first_running.Notify();
      EXPECT_TRUE(cancelled.WaitFor(std::chrono::seconds(20)));
    }
  });
  const TimerId second = reactor.RunEvery(absl::Milliseconds(1),
                                          [&] { second_runs.fetch_add(1); });
  // Both are due before the reactor starts: one batch holds both.
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(reactor.Start().ok());
  ASSERT_TRUE(first_running.WaitFor(std::chrono::seconds(20)));
  EXPECT_TRUE(reactor.CancelTimer(second));
  cancelled.Notify();
  // Let the first timer run 20 more times: bounded by count.
  ASSERT_TRUE(Eventually([&] { return first_runs.load() > 20; }));
  EXPECT_EQ(second_runs.load(), 0);
  reactor.Stop();
  reactor.Wait();
}

// Many cancels racing a running RunEvery on two threads: whenever
// CancelTimer says true, the tick count is frozen from that moment.
TEST(ConnectionContractTest, CancelTimerTrueFreezesTheTickCount) {
  absl::StatusOr<std::unique_ptr<Reactor>> r = Reactor::Create(Threads(2));
  ASSERT_TRUE(r.ok());
  Reactor& reactor = **r;
  ASSERT_TRUE(reactor.Start().ok());
  std::atomic<int> sentinel{0};
  const TimerId keep =
      reactor.RunEvery(absl::Milliseconds(1), [&] { sentinel.fetch_add(1); });
  int trues = 0;
  for (int i = 0; i < 100; ++i) {
    std::atomic<int> ticks{0};
    std::atomic<bool> cancelled_true{false};
    std::atomic<int> after_true{0};
    const TimerId id = reactor.RunEvery(absl::Milliseconds(1), [&] {
      if (cancelled_true.load()) after_true.fetch_add(1);
      ticks.fetch_add(1);
    });
    // Cancel at a varying point, often while it runs.
    const int wait_ticks = i % 4;
    ASSERT_TRUE(Eventually([&] { return ticks.load() >= wait_ticks; }));
    if (reactor.CancelTimer(id)) {
      cancelled_true = true;
      ++trues;
      const int frozen = ticks.load();
      // Five more sentinel ticks: the cancelled one had every chance.
      const int s0 = sentinel.load();
      ASSERT_TRUE(Eventually([&] { return sentinel.load() >= s0 + 5; }));
      EXPECT_EQ(ticks.load(), frozen) << "ticked after CancelTimer was true";
      EXPECT_EQ(after_true.load(), 0);
    } else {
      // Running on another thread right now: not waited for; it must still
      // stop, so wait for it to be quiet before its counters go away.
      ASSERT_TRUE(Eventually([&] {
        const int t = ticks.load();
        const int s0 = sentinel.load();
        return Eventually([&] { return sentinel.load() >= s0 + 3; }) &&
               ticks.load() == t;
      }));
    }
  }
  EXPECT_GT(trues, 0);
  reactor.CancelTimer(keep);
  reactor.Stop();
  reactor.Wait();
}

}  // namespace
}  // namespace baton
