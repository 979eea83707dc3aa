// TLS handshakes on threads of their own (ReactorOptions::
// tls_handshake_threads), over real loopback sockets against OpenSSL's
// blocking client: options checked, the threads' lowered priority, many
// clients handshaking at once each echoed byte for byte, a step served by
// a worker once it waited past the bound, and a handler
// that writes to another connection from OnOpen (which runs on a handshake
// thread) while the only worker waits for the kernel.
#include <dirent.h>
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "baton/reactor.h"
#include "baton/tls.h"
#include "tests/util/test_certificates.h"
#include "tests/util/test_client.h"
#include "tests/util/tls_test_client.h"

namespace baton {
namespace {

using ::baton::testing::ConnectLoopback;
using ::baton::testing::Notification;
using ::baton::testing::Pattern;
using ::baton::testing::TestPki;

// Only a hang reaches these bounds.
constexpr auto kBound = std::chrono::seconds(60);
constexpr int kBoundMs = 60000;

// Echoes what it reads.
class EchoHandler : public ConnectionHandler {
 public:
  void OnData(Connection& conn, absl::string_view data) override {
    conn.Write(data);
  }
};

// The nice values of this process's threads whose name contains `part`
// (/proc/self/task/TID/stat: the name in parentheses, then the fields from
// the state on; nice is the 19th field).
std::vector<int> NiceOfThreadsNamed(const std::string& part) {
  std::vector<int> nices;
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) return nices;
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream in(absl::StrCat("/proc/self/task/", entry->d_name, "/stat"));
    std::stringstream text;
    text << in.rdbuf();
    const std::string stat = text.str();
    const size_t open = stat.find('(');
    const size_t close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    if (stat.substr(open + 1, close - open - 1).find(part) ==
        std::string::npos) {
      continue;
    }
    // Fields after the name: state is field 3, so nice (19) is the 17th.
    std::vector<std::string> fields =
        absl::StrSplit(stat.substr(close + 2), ' ', absl::SkipEmpty());
    int nice = 0;
    if (fields.size() > 16 && absl::SimpleAtoi(fields[16], &nice)) {
      nices.push_back(nice);
    }
  }
  ::closedir(dir);
  return nices;
}

class TlsHandshakeThreadsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestPki> pki = baton::testing::WriteTestPki("hsthreads");
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *pki;
    client_ctx_ =
        baton::testing::NewVerifyingClientContext(pki_.ca.certificate_file);
    ASSERT_NE(client_ctx_, nullptr);
  }
  void TearDown() override {
    if (reactor_ != nullptr) {
      reactor_->Stop();
      reactor_->Wait();
    }
    SSL_CTX_free(client_ctx_);
  }

  std::shared_ptr<TlsServerOptions> ServerOptions() const {
    auto tls = std::make_shared<TlsServerOptions>();
    tls->certificate_chain_file = pki_.server.certificate_file;
    tls->private_key_file = pki_.server.key_file;
    tls->handshake_timeout = absl::Seconds(60);
    return tls;
  }

  // A reactor with `workers` workers and `handshake_threads` handshake
  // threads `nice` lower, whose steps workers take after `max_wait`; not
  // started.
  void CreateReactor(int workers, int handshake_threads, int nice = 3,
                     absl::Duration max_wait = absl::Milliseconds(10)) {
    ReactorOptions options;
    options.threads = workers;
    options.tls_handshake_threads = handshake_threads;
    options.tls_handshake_nice = nice;
    options.tls_handshake_max_wait = max_wait;
    absl::StatusOr<std::unique_ptr<Reactor>> reactor = Reactor::Create(options);
    ASSERT_TRUE(reactor.ok()) << reactor.status();
    reactor_ = *std::move(reactor);
  }

  TestPki pki_;
  SSL_CTX* client_ctx_ = nullptr;
  std::unique_ptr<Reactor> reactor_;
};

TEST_F(TlsHandshakeThreadsTest, OutOfRangeOptionsAreRefused) {
  for (auto [threads, nice] : {std::pair{-1, 10}, std::pair{1025, 10},
                               std::pair{1, 0}, std::pair{1, 20}}) {
    ReactorOptions options;
    options.threads = 1;
    options.tls_handshake_threads = threads;
    options.tls_handshake_nice = nice;
    absl::StatusOr<std::unique_ptr<Reactor>> reactor = Reactor::Create(options);
    ASSERT_FALSE(reactor.ok()) << threads << " threads, nice " << nice;
    EXPECT_EQ(reactor.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(reactor.status().message().find("tls_handshake"),
              std::string::npos)
        << reactor.status();
  }
}

TEST_F(TlsHandshakeThreadsTest, ANonPositiveWaitBoundIsRefused) {
  for (absl::Duration wait : {absl::ZeroDuration(), absl::Milliseconds(-1)}) {
    ReactorOptions options;
    options.threads = 1;
    options.tls_handshake_threads = 1;
    options.tls_handshake_max_wait = wait;
    absl::StatusOr<std::unique_ptr<Reactor>> reactor = Reactor::Create(options);
    ASSERT_FALSE(reactor.ok()) << wait;
    EXPECT_EQ(reactor.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST_F(TlsHandshakeThreadsTest, HandshakeThreadsRunLowerThanTheWorkers) {
  CreateReactor(/*workers=*/1, /*handshake_threads=*/2, /*nice=*/7);
  ASSERT_TRUE(reactor_->Start().ok());
  errno = 0;
  const int base = ::getpriority(PRIO_PROCESS, 0);
  ASSERT_EQ(errno, 0);
  const int want = std::min(19, base + 7);
  // Each thread names itself, and a handshake thread lowers itself, as it
  // starts: wait (bounded) until all three have.
  std::vector<int> nices;
  std::vector<int> workers;
  for (int i = 0; i < kBoundMs; ++i) {
    nices = NiceOfThreadsNamed("-tls-");
    workers = NiceOfThreadsNamed("baton-0");
    if (nices.size() == 2 && nices[0] == want && nices[1] == want &&
        workers.size() == 1) {
      break;
    }
    ::usleep(1000);
  }
  ASSERT_EQ(nices.size(), 2u);
  EXPECT_EQ(nices[0], want);
  EXPECT_EQ(nices[1], want);
  // The worker keeps the process's priority.
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0], base);
  // One counter block per thread, handshake threads after the workers.
  EXPECT_EQ(reactor_->ThreadCounters().size(), 3u);
}

// `max_wait` 0: the default bound. 1 ns: workers and the handshake thread
// race for every step, which runs wherever it is taken.
class ManyClientsTest : public TlsHandshakeThreadsTest,
                        public ::testing::WithParamInterface<absl::Duration> {};

TEST_P(ManyClientsTest, HandshakingAtOnceAreEchoedExactly) {
  CreateReactor(/*workers=*/2, /*handshake_threads=*/2, /*nice=*/3, GetParam());
  ListenOptions listen;
  listen.tls = ServerOptions();
  absl::StatusOr<int> port =
      reactor_->Listen(listen, [] { return std::make_unique<EchoHandler>(); });
  ASSERT_TRUE(port.ok()) << port.status();
  ASSERT_TRUE(reactor_->Start().ok());
  constexpr int kClients = 8;
  constexpr int kRounds = 4;
  std::atomic<int> echoed{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      baton::testing::TlsTestClient client(client_ctx_, *port, kBoundMs);
      if (!client.Handshake()) return;
      for (int r = 0; r < kRounds; ++r) {
        const std::string message = Pattern(20000 + 1000 * c, c * 16 + r);
        if (!client.Send(message) || client.Receive(message.size()) != message)
          return;
      }
      echoed.fetch_add(1);
      client.Close();
    });
  }
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(echoed.load(), kClients);
  const ReactorCounters counters = reactor_->Counters();
  EXPECT_EQ(counters.tls_handshakes, static_cast<uint64_t>(kClients));
  EXPECT_GE(counters.tls_handshake_steps_deferred,
            static_cast<uint64_t>(kClients));
  EXPECT_EQ(counters.tls_handshake_failures, 0u);
  EXPECT_LE(counters.tls_handshake_steps_overdue,
            counters.tls_handshake_steps_deferred);
}

INSTANTIATE_TEST_SUITE_P(WaitBounds, ManyClientsTest,
                         ::testing::Values(absl::Milliseconds(10),
                                           absl::Nanoseconds(1)),
                         [](const ::testing::TestParamInfo<absl::Duration>& p) {
                           return p.param == absl::Nanoseconds(1)
                                      ? std::string("OneNanosecond")
                                      : std::string("TenMilliseconds");
                         });

// Holds the handshake thread: the first OnOpen that runs on it (a thread
// named "...-tls-N") waits there until released.
struct HandshakeThreadGate {
  std::atomic<bool> taken{false};
  Notification holding;  // the handshake thread is held
  Notification release;
  // Releases the thread however the test ends (before the reactor stops).
  ~HandshakeThreadGate() { release.Notify(); }
};

class GatedEchoHandler : public EchoHandler {
 public:
  explicit GatedEchoHandler(HandshakeThreadGate* gate) : gate_(gate) {}
  void OnOpen(Connection&) override {
    char name[16] = {};
    ::pthread_getname_np(::pthread_self(), name, sizeof(name));
    if (std::string(name).find("-tls-") == std::string::npos) return;
    if (gate_->taken.exchange(true)) return;
    gate_->holding.Notify();
    gate_->release.WaitFor(kBound);
  }

 private:
  HandshakeThreadGate* const gate_;
};

TEST_F(TlsHandshakeThreadsTest, AStepPastTheBoundIsServedByAWorker) {
  // The only handshake thread is held in a handler; a new client's steps
  // then wait past the bound and the only worker must serve them, although
  // no other event comes to bring it out of epoll_wait, and it must serve
  // them for the readiness they were deferred with.
  CreateReactor(/*workers=*/1, /*handshake_threads=*/1, /*nice=*/3,
                absl::Milliseconds(20));
  HandshakeThreadGate gate;
  ListenOptions listen;
  listen.tls = ServerOptions();
  absl::StatusOr<int> port = reactor_->Listen(
      listen, [&] { return std::make_unique<GatedEchoHandler>(&gate); });
  ASSERT_TRUE(port.ok()) << port.status();
  ASSERT_TRUE(reactor_->Start().ok());

  // A step runs on a worker only once it is overdue, so the handshake
  // thread takes nearly every first client's OnOpen; a few tries (each
  // closed again) make sure.
  std::vector<std::unique_ptr<baton::testing::TlsTestClient>> first;
  for (int i = 0; i < 20 && !gate.holding.HasBeenNotified(); ++i) {
    first.push_back(std::make_unique<baton::testing::TlsTestClient>(
        client_ctx_, *port, kBoundMs));
    ASSERT_TRUE(first.back()->Handshake());
    ASSERT_TRUE(first.back()->Send("x"));
    gate.holding.WaitFor(std::chrono::milliseconds(500));
  }
  ASSERT_TRUE(gate.holding.HasBeenNotified());
  const uint64_t overdue_before =
      reactor_->Counters().tls_handshake_steps_overdue;

  baton::testing::TlsTestClient second(client_ctx_, *port, kBoundMs);
  ASSERT_TRUE(second.Handshake()) << "a step past the bound was not served";
  const std::string message = Pattern(30000, 7);
  ASSERT_TRUE(second.Send(message));
  EXPECT_EQ(second.Receive(message.size()), message);
  EXPECT_GT(reactor_->Counters().tls_handshake_steps_overdue, overdue_before);
  second.Close();

  // Released, the held connection is served too.
  gate.release.Notify();
  EXPECT_EQ(first.back()->Receive(1), "x");
}

// OnOpen writes "open\n" to a plain connection (the monitor) registered
// before; the monitor's handler echoes.
struct Monitor {
  std::mutex mu;
  ConnectionId id;  // guarded by mu
  Notification registered;
};

class MonitorHandler : public ConnectionHandler {
 public:
  explicit MonitorHandler(Monitor* monitor) : monitor_(monitor) {}
  void OnOpen(Connection& conn) override {
    {
      std::lock_guard<std::mutex> lock(monitor_->mu);
      monitor_->id = conn.id();
    }
    monitor_->registered.Notify();
  }
  void OnData(Connection& conn, absl::string_view data) override {
    conn.Write(data);
  }

 private:
  Monitor* const monitor_;
};

class AnnouncingHandler : public ConnectionHandler {
 public:
  AnnouncingHandler(Reactor* reactor, Monitor* monitor)
      : reactor_(reactor), monitor_(monitor) {}
  void OnOpen(Connection&) override {
    ConnectionId id;
    {
      std::lock_guard<std::mutex> lock(monitor_->mu);
      id = monitor_->id;
    }
    // The first Write claims the monitor, sends at once and queues the
    // claim on the ready queue; the second finds it claimed and leaves its
    // bytes for that queued claim to send.
    reactor_->Write(id, "open\n");
    reactor_->Write(id, "more\n");
  }
  void OnData(Connection& conn, absl::string_view data) override {
    conn.Write(data);
  }

 private:
  Reactor* const reactor_;
  Monitor* const monitor_;
};

TEST_F(TlsHandshakeThreadsTest, WriteFromOnOpenLeavesTheOtherConnectionServed) {
  // One worker: once it has deferred the last handshake step it leads,
  // waiting for the kernel with nothing running. The Writes from OnOpen, on
  // the handshake thread, leave the monitor claimed on the ready queue with
  // bytes to send; unless the leader is made to look, they never go out
  // (the monitor's peer is silent, so no event of its own comes).
  CreateReactor(/*workers=*/1, /*handshake_threads=*/1);
  Monitor monitor;
  absl::StatusOr<int> plain = reactor_->Listen(ListenOptions{}, [&] {
    return std::make_unique<MonitorHandler>(&monitor);
  });
  ASSERT_TRUE(plain.ok()) << plain.status();
  ListenOptions listen;
  listen.tls = ServerOptions();
  Reactor* reactor = reactor_.get();
  absl::StatusOr<int> secure = reactor_->Listen(listen, [&, reactor] {
    return std::make_unique<AnnouncingHandler>(reactor, &monitor);
  });
  ASSERT_TRUE(secure.ok()) << secure.status();
  ASSERT_TRUE(reactor_->Start().ok());

  const int watcher = ConnectLoopback(*plain, kBoundMs);
  ASSERT_GE(watcher, 0);
  ASSERT_TRUE(monitor.registered.WaitFor(kBound));
  for (int i = 0; i < 3; ++i) {
    baton::testing::TlsTestClient client(client_ctx_, *secure, kBoundMs);
    ASSERT_TRUE(client.Handshake());
    // The client stays silent: no event of its own wakes the leader.
    absl::StatusOr<std::string> announced =
        baton::testing::ReadExact(watcher, 10);
    ASSERT_TRUE(announced.ok())
        << "the monitor was left unserved: " << announced.status();
    EXPECT_EQ(*announced, "open\nmore\n");
    const std::string ping = absl::StrCat("ping", i, "\n");
    ASSERT_TRUE(baton::testing::SendAll(watcher, ping).ok());
    absl::StatusOr<std::string> echoed =
        baton::testing::ReadExact(watcher, ping.size());
    ASSERT_TRUE(echoed.ok()) << echoed.status();
    EXPECT_EQ(*echoed, ping);
    client.Close();
  }
  ::close(watcher);
}

}  // namespace
}  // namespace baton
