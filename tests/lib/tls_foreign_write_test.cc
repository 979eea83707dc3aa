// Reactor::Write to TLS connections, over real loopback sockets against
// OpenSSL's blocking client: from a thread that is not a reactor thread, in
// order with the handler's own writes; from another connection's handler
// (a tiny TLS relay); from several threads at once; counted by
// pending_output; and to a Connect'ed TLS connection before it is up.
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
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

// The server's connections, by the name each client sends first ("a\n",
// "b\n"); the unnamed first one is "first".
struct Registry {
  std::mutex mu;
  std::map<std::string, ConnectionId> ids;  // guarded by mu
  std::atomic<int> opens{0};
  Notification first_open;

  void Put(const std::string& name, ConnectionId id) {
    std::lock_guard<std::mutex> lock(mu);
    ids[name] = id;
  }
  bool Get(const std::string& name, ConnectionId* id) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = ids.find(name);
    if (it == ids.end()) return false;
    *id = it->second;
    return true;
  }
};

// Echoes what it reads; registers itself as "first" at OnOpen.
class EchoHandler : public ConnectionHandler {
 public:
  explicit EchoHandler(Registry* registry) : registry_(registry) {}
  void OnOpen(Connection& conn) override {
    if (registry_->opens.fetch_add(1) == 0) {
      registry_->Put("first", conn.id());
      registry_->first_open.Notify();
    }
  }
  void OnData(Connection& conn, absl::string_view data) override {
    conn.Write(data);
  }

 private:
  Registry* const registry_;
};

// A tiny TLS relay: the first line a client sends names it ("a" or "b"),
// answered "ok\n"; after that, what "a" sends is written to "b" with
// Reactor::Write and the other way round.
class RelayHandler : public ConnectionHandler {
 public:
  RelayHandler(Registry* registry, Reactor** reactor)
      : registry_(registry), reactor_(reactor) {}
  void OnData(Connection& conn, absl::string_view data) override {
    if (peer_.empty()) {
      // The name line comes in one record, so in one OnData.
      const std::string name(data.substr(0, data.find('\n')));
      peer_ = name == "a" ? "b" : "a";
      registry_->Put(name, conn.id());
      conn.Write("ok\n");
      return;
    }
    ConnectionId peer;
    ASSERT_TRUE(registry_->Get(peer_, &peer));
    ASSERT_TRUE((*reactor_)->Write(peer, data));
  }

 private:
  Registry* const registry_;
  Reactor** const reactor_;
  std::string peer_;
};

// Reactor::Connect's side: collects what comes until `want` bytes, then
// closes.
class CollectHandler : public ConnectionHandler {
 public:
  struct Result {
    std::mutex mu;
    std::string received;  // guarded by mu
    absl::Status reason;   // guarded by mu
    Notification closed;
  };
  CollectHandler(Result* result, size_t want) : result_(result), want_(want) {}
  void OnData(Connection& conn, absl::string_view data) override {
    std::lock_guard<std::mutex> lock(result_->mu);
    result_->received.append(data.data(), data.size());
    if (result_->received.size() >= want_) conn.Close();
  }
  void OnClose(Connection&, const absl::Status& reason) override {
    {
      std::lock_guard<std::mutex> lock(result_->mu);
      result_->reason = reason;
    }
    result_->closed.Notify();
  }

 private:
  Result* const result_;
  const size_t want_;
};

// A blocking OpenSSL client on its own socket.
// A blocking TLS client that gives up connecting after kBoundMs.
class Client : public baton::testing::TlsTestClient {
 public:
  Client(SSL_CTX* ctx, int port) : TlsTestClient(ctx, port, kBoundMs) {}
};

class TlsForeignWriteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestPki> pki = baton::testing::WriteTestPki("foreign");
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

  // Starts a reactor with a TLS listener of `factory`'s handlers.
  int StartServer(HandlerFactory factory) {
    ReactorOptions options;
    options.threads = 2;
    absl::StatusOr<std::unique_ptr<Reactor>> reactor = Reactor::Create(options);
    EXPECT_TRUE(reactor.ok()) << reactor.status();
    reactor_ = *std::move(reactor);
    raw_reactor_ = reactor_.get();
    auto tls = std::make_shared<TlsServerOptions>();
    tls->certificate_chain_file = pki_.server.certificate_file;
    tls->private_key_file = pki_.server.key_file;
    ListenOptions listen;
    listen.tls = tls;
    absl::StatusOr<int> port = reactor_->Listen(listen, std::move(factory));
    EXPECT_TRUE(port.ok()) << port.status();
    EXPECT_TRUE(reactor_->Start().ok());
    return port.ok() ? *port : -1;
  }
  int StartEchoServer() {
    Registry* registry = &registry_;
    return StartServer(
        [registry] { return std::make_unique<EchoHandler>(registry); });
  }
  // The first connection's id, once it opened.
  ConnectionId FirstId() {
    EXPECT_TRUE(registry_.first_open.WaitFor(kBound));
    ConnectionId id{0};
    EXPECT_TRUE(registry_.Get("first", &id));
    return id;
  }
  bool WaitNoPendingOutput(ConnectionId id) {
    for (int i = 0; i < kBoundMs; ++i) {
      if (reactor_->pending_output(id) == 0) return true;
      ::usleep(1000);
    }
    return false;
  }

  TestPki pki_;
  SSL_CTX* client_ctx_ = nullptr;
  Registry registry_;
  std::unique_ptr<Reactor> reactor_;
  Reactor* raw_reactor_ = nullptr;
};

TEST_F(TlsForeignWriteTest, WriteFromAnotherThreadKeepsOrderWithHandlerWrites) {
  const int port = StartEchoServer();
  Client client(client_ctx_, port);
  ASSERT_TRUE(client.Handshake());
  // The server's OnOpen runs once it has our Finished: the first echo
  // round trip makes sure it did.
  ASSERT_TRUE(client.Send("x"));
  ASSERT_EQ(client.Receive(1), "x");
  const ConnectionId id = FirstId();
  // Each step: a foreign Write from this (non-reactor) thread returns, then
  // the client sends a message the handler echoes with its own Write. The
  // foreign bytes were queued first, so they arrive first.
  for (int step = 0; step < 24; ++step) {
    const std::string foreign = Pattern((step % 6 + 1) * 50000, step + 1);
    const std::string echo = absl::StrCat("echo-", step, "\n");
    ASSERT_TRUE(reactor_->Write(id, foreign)) << "step " << step;
    ASSERT_TRUE(client.Send(echo));
    const std::string got = client.Receive(foreign.size() + echo.size());
    ASSERT_EQ(got.size(), foreign.size() + echo.size()) << "step " << step;
    ASSERT_TRUE(got == foreign + echo) << "step " << step;
  }
  EXPECT_TRUE(WaitNoPendingOutput(id));
}

TEST_F(TlsForeignWriteTest, PendingOutputCountsForeignWritesUntilSent) {
  const int port = StartEchoServer();
  Client client(client_ctx_, port);
  // A fixed, small receive buffer (no autotuning): the socket buffers
  // cannot take the whole payload.
  const int receive_buffer = 64 << 10;
  ASSERT_EQ(::setsockopt(client.fd(), SOL_SOCKET, SO_RCVBUF, &receive_buffer,
                         sizeof(receive_buffer)),
            0);
  ASSERT_TRUE(client.Handshake());
  ASSERT_TRUE(client.Send("x"));
  ASSERT_EQ(client.Receive(1), "x");
  const ConnectionId id = FirstId();
  // The echo (and the session tickets sent after the handshake) may reach
  // the client before the server's thread has accounted for the send.
  ASSERT_TRUE(WaitNoPendingOutput(id));
  // More than loopback's socket buffers hold while the client reads
  // nothing: whether the owner has encrypted it yet or not, bytes are
  // counted as queued once Write returns.
  const std::string payload = Pattern(24 << 20, 7);
  ASSERT_TRUE(reactor_->Write(id, payload));
  EXPECT_GT(reactor_->pending_output(id), 0u);
  const std::string got = client.Receive(payload.size());
  ASSERT_EQ(got.size(), payload.size());
  EXPECT_TRUE(got == payload);
  EXPECT_TRUE(WaitNoPendingOutput(id));
}

TEST_F(TlsForeignWriteTest, HandlerRelaysToAnotherTlsConnection) {
  Registry* registry = &registry_;
  Reactor** reactor = &raw_reactor_;
  const int port = StartServer([registry, reactor] {
    return std::make_unique<RelayHandler>(registry, reactor);
  });
  Client a(client_ctx_, port);
  Client b(client_ctx_, port);
  ASSERT_TRUE(a.Handshake());
  ASSERT_TRUE(b.Handshake());
  ASSERT_TRUE(a.Send("a\n"));
  ASSERT_EQ(a.Receive(3), "ok\n");
  ASSERT_TRUE(b.Send("b\n"));
  ASSERT_EQ(b.Receive(3), "ok\n");
  // Several MiB each way, in steps the socket buffers hold.
  const std::string forth = Pattern(3 << 20, 11);
  const std::string back = Pattern(3 << 20, 12);
  constexpr size_t kStep = 96 << 10;
  for (size_t at = 0; at < forth.size(); at += kStep) {
    const std::string piece = forth.substr(at, kStep);
    ASSERT_TRUE(a.Send(piece));
    ASSERT_TRUE(b.Receive(piece.size()) == piece) << "a->b at " << at;
  }
  for (size_t at = 0; at < back.size(); at += kStep) {
    const std::string piece = back.substr(at, kStep);
    ASSERT_TRUE(b.Send(piece));
    ASSERT_TRUE(a.Receive(piece.size()) == piece) << "b->a at " << at;
  }
}

TEST_F(TlsForeignWriteTest, ManyThreadsWriteWhileTheHandlerEchoes) {
  const int port = StartEchoServer();
  Client client(client_ctx_, port);
  ASSERT_TRUE(client.Handshake());
  ASSERT_TRUE(client.Send("x"));
  ASSERT_EQ(client.Receive(1), "x");
  const ConnectionId id = FirstId();
  constexpr int kThreads = 4;
  constexpr int kMessages = 300;
  constexpr int kEchoes = 100;
  // Message m of thread t: "T<t> <m> " padded with '.' to a length that
  // varies with m, then '\n'. Every message is written by one Write.
  auto message = [](int t, int m) {
    std::string line = absl::StrCat("T", t, " ", m, " ");
    line.append(static_cast<size_t>(10 + (m * 37 + t * 101) % 900), '.');
    line.push_back('\n');
    return line;
  };
  size_t total = 0;
  for (int t = 0; t < kThreads; ++t) {
    for (int m = 0; m < kMessages; ++m) total += message(t, m).size();
  }
  std::vector<std::string> echoes;
  for (int e = 0; e < kEchoes; ++e) {
    echoes.push_back(absl::StrCat("E", e, "\n"));
    total += echoes.back().size();
  }
  std::atomic<int> refused{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int m = 0; m < kMessages; ++m) {
        if (!reactor_->Write(id, message(t, m))) refused.fetch_add(1);
      }
    });
  }
  // The handler's own writes (echoes, one record each) meanwhile.
  for (const std::string& echo : echoes) ASSERT_TRUE(client.Send(echo));
  const std::string got = client.Receive(total);
  for (std::thread& writer : writers) writer.join();
  EXPECT_EQ(refused.load(), 0);
  ASSERT_EQ(got.size(), total);
  // Every message whole and each writer's (and the echoes') in order.
  std::vector<int> next(kThreads, 0);
  int next_echo = 0;
  for (absl::string_view line : absl::StrSplit(got, '\n', absl::SkipEmpty())) {
    if (line[0] == 'E') {
      int e = -1;
      ASSERT_TRUE(absl::SimpleAtoi(line.substr(1), &e)) << line;
      ASSERT_EQ(e, next_echo) << line;
      ++next_echo;
      continue;
    }
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
    ASSERT_EQ(parts.size(), 3u) << line;
    int t = -1;
    int m = -1;
    ASSERT_TRUE(absl::SimpleAtoi(parts[0].substr(1), &t)) << line;
    ASSERT_TRUE(absl::SimpleAtoi(parts[1], &m)) << line;
    ASSERT_TRUE(t >= 0 && t < kThreads) << line;
    ASSERT_EQ(m, next[t]) << line;
    ASSERT_EQ(absl::StrCat(line, "\n"), message(t, m));
    ++next[t];
  }
  EXPECT_EQ(next_echo, kEchoes);
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(next[t], kMessages);
  EXPECT_TRUE(WaitNoPendingOutput(id));
}

TEST_F(TlsForeignWriteTest, WriteBeforeATlsConnectIsUpIsEncrypted) {
  const int port = StartEchoServer();
  auto tls = std::make_shared<TlsClientOptions>();
  tls->ca_file = pki_.ca.certificate_file;
  tls->server_name = "localhost";
  ConnectOptions connect;
  connect.port = port;
  connect.tls = tls;
  const std::string early = Pattern(100000, 21);
  CollectHandler::Result result;
  absl::StatusOr<ConnectionId> id =
      reactor_->Connect(connect, [&result, &early] {
        return std::make_unique<CollectHandler>(&result, early.size());
      });
  ASSERT_TRUE(id.ok()) << id.status();
  // Queued while connecting: sent, encrypted, once the handshake is done,
  // and echoed back by the server.
  ASSERT_TRUE(reactor_->Write(*id, early));
  ASSERT_TRUE(result.closed.WaitFor(kBound));
  std::lock_guard<std::mutex> lock(result.mu);
  EXPECT_TRUE(result.reason.ok()) << result.reason;
  EXPECT_EQ(result.received.size(), early.size());
  EXPECT_TRUE(result.received == early);
}

}  // namespace
}  // namespace baton
