// Test utility (header only): a started Reactor on loopback, bounded waits,
// a count to wait for, a handler that records what happened to its
// connection, and helpers to count descriptors and find a port nothing
// listens on.
#ifndef BATON_TESTS_LIB_INTERNAL_REACTOR_TEST_SUPPORT_H_
#define BATON_TESTS_LIB_INTERNAL_REACTOR_TEST_SUPPORT_H_

#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "baton/connection.h"
#include "baton/reactor.h"
#include "tests/lib/reactor_fixture.h"
#include "tests/util/test_client.h"

namespace baton::testing {

inline std::unique_ptr<Reactor> StartReactor(ReactorOptions options) {
  auto reactor = Reactor::Create(options);
  EXPECT_TRUE(reactor.ok()) << reactor.status();
  if (!reactor.ok()) return nullptr;
  EXPECT_TRUE((*reactor)->Start().ok());
  return std::move(*reactor);
}

// A count other threads can wait for (bounded). std::mutex, so that
// ThreadSanitizer sees the synchronisation.
class Counter {
 public:
  void Increment() {
    std::lock_guard<std::mutex> lock(mu_);
    ++n_;
    cv_.notify_all();
  }
  // True once the count reached `n`; false if `timeout` ran out first or
  // GiveUp was called.
  bool WaitFor(int n, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return n_ >= n || given_up_; });
    return n_ >= n;
  }
  // Ends every wait now and from now on (so a failing run fails fast).
  void GiveUp() {
    std::lock_guard<std::mutex> lock(mu_);
    given_up_ = true;
    cv_.notify_all();
  }
  int value() {
    std::lock_guard<std::mutex> lock(mu_);
    return n_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int n_ = 0;
  bool given_up_ = false;
};

// What one connection went through, readable from the test thread.
struct Record {
  std::mutex mu;
  bool opened = false;
  bool closed = false;
  // OnClose's reason, as its code and message: a copy of the Status would
  // share its representation with the reactor thread, and ThreadSanitizer,
  // which cannot see the reference counting inside Debian's (uninstrumented)
  // absl, reports whichever thread releases it last as racing the other.
  absl::StatusCode reason_code = absl::StatusCode::kOk;
  std::string reason_message;
  std::string data;
  ConnectionId id;
  Notification done;  // after OnClose

  bool is_opened() {
    std::lock_guard<std::mutex> lock(mu);
    return opened;
  }
  std::string received() {
    std::lock_guard<std::mutex> lock(mu);
    return data;
  }
  // A Status of this thread's own.
  absl::Status status() {
    std::lock_guard<std::mutex> lock(mu);
    return absl::Status(reason_code, reason_message);
  }
};

// Records into a shared Record; `on_open` / `on_data` add behaviour.
class RecordingHandler : public ConnectionHandler {
 public:
  explicit RecordingHandler(std::shared_ptr<Record> record)
      : record_(std::move(record)) {}
  std::function<void(Connection&)> on_open;
  std::function<void(Connection&, absl::string_view)> on_data;

  void OnOpen(Connection& conn) override {
    {
      std::lock_guard<std::mutex> lock(record_->mu);
      EXPECT_FALSE(record_->closed) << "OnOpen after OnClose";
      record_->opened = true;
      record_->id = conn.id();
    }
    if (on_open) on_open(conn);
  }
  void OnData(Connection& conn, absl::string_view data) override {
    {
      std::lock_guard<std::mutex> lock(record_->mu);
      EXPECT_TRUE(record_->opened) << "OnData before OnOpen";
      record_->data.append(data.data(), data.size());
    }
    if (on_data) on_data(conn, data);
  }
  void OnClose(Connection&, const absl::Status& reason) override {
    {
      std::lock_guard<std::mutex> lock(record_->mu);
      EXPECT_FALSE(record_->closed) << "OnClose twice";
      record_->closed = true;
      record_->reason_code = reason.code();
      record_->reason_message = std::string(reason.message());
    }
    record_->done.Notify();
  }

 private:
  std::shared_ptr<Record> record_;
};

inline HandlerFactory RecordingFactory(std::shared_ptr<Record> record) {
  return [record] { return std::make_unique<RecordingHandler>(record); };
}

// An echo server on 127.0.0.1, on a port the kernel picks, two threads.
struct EchoServer {
  std::unique_ptr<Reactor> reactor = StartReactor(Threads(2));
  int port = 0;
  EchoServer() {
    absl::StatusOr<int> p = reactor->Listen(ListenOptions{}, EchoFactory());
    EXPECT_TRUE(p.ok()) << p.status();
    if (p.ok()) port = *p;
  }
};

// Open descriptors of this process.
inline int OpenFdCount() {
  int n = 0;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  while (::readdir(dir) != nullptr) ++n;
  ::closedir(dir);
  return n;
}

// A loopback port with a bound but not listening socket on it: connects to
// it are refused. The socket stays open (so the port stays ours) until the
// returned fd is closed or listened on.
inline int BoundNotListening(int* port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(addr.sin_port);
  return fd;
}

}  // namespace baton::testing

#endif  // BATON_TESTS_LIB_INTERNAL_REACTOR_TEST_SUPPORT_H_
