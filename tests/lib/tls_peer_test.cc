// What a TLS connection's handler learns of its peer (Connection::tls):
// ALPN, version and a verified client certificate, on both sides of a real
// loopback connection; null on a plain one. And Reactor::Connect building
// one client context per TLS options object: the CA file is read once, and
// a repeat connect resumes a session its predecessor received.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "baton/reactor.h"
#include "baton/tls.h"
#include "tests/util/test_certificates.h"
#include "tests/util/test_client.h"

namespace baton {
namespace {

using ::baton::testing::Notification;
using ::baton::testing::TestPki;

// Only a hang reaches this bound.
constexpr auto kBound = std::chrono::seconds(60);

// What one side's handler saw at OnOpen, and how it ended.
struct Seen {
  std::mutex mu;
  bool opened = false;  // guarded by mu
  bool tls = false;     // conn.tls() was not null
  TlsPeer peer;         // guarded by mu
  absl::Status reason;  // guarded by mu
  Notification closed;
};

// Records conn.tls() at OnOpen; the client side closes at once.
class RecordingHandler : public ConnectionHandler {
 public:
  RecordingHandler(Seen* seen, bool close_at_open)
      : seen_(seen), close_at_open_(close_at_open) {}
  void OnOpen(Connection& conn) override {
    {
      std::lock_guard<std::mutex> lock(seen_->mu);
      seen_->opened = true;
      seen_->tls = conn.tls() != nullptr;
      if (conn.tls() != nullptr) seen_->peer = *conn.tls();
    }
    if (close_at_open_) conn.Close();
  }
  void OnData(Connection&, absl::string_view) override {}
  void OnClose(Connection&, const absl::Status& reason) override {
    {
      std::lock_guard<std::mutex> lock(seen_->mu);
      seen_->reason = reason;
    }
    seen_->closed.Notify();
  }

 private:
  Seen* const seen_;
  const bool close_at_open_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

bool WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  return out.good();
}

class TlsPeerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestPki> pki = baton::testing::WriteTestPki("peer");
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *pki;
    ReactorOptions options;
    options.threads = 2;
    absl::StatusOr<std::unique_ptr<Reactor>> reactor = Reactor::Create(options);
    ASSERT_TRUE(reactor.ok()) << reactor.status();
    reactor_ = *std::move(reactor);
    ASSERT_TRUE(reactor_->Start().ok());
  }
  void TearDown() override {
    reactor_->Stop();
    reactor_->Wait();
  }

  // A listener whose connections record into server_ (the last one's).
  int Listen(std::shared_ptr<const TlsServerOptions> tls) {
    ListenOptions listen;
    listen.tls = std::move(tls);
    Seen* seen = &server_;
    absl::StatusOr<int> port = reactor_->Listen(listen, [seen] {
      return std::make_unique<RecordingHandler>(seen, false);
    });
    EXPECT_TRUE(port.ok()) << port.status();
    return port.ok() ? *port : -1;
  }
  std::shared_ptr<TlsServerOptions> ServerOptions() {
    auto tls = std::make_shared<TlsServerOptions>();
    tls->certificate_chain_file = pki_.server.certificate_file;
    tls->private_key_file = pki_.server.key_file;
    return tls;
  }
  std::shared_ptr<TlsClientOptions> ClientOptions() {
    auto tls = std::make_shared<TlsClientOptions>();
    tls->ca_file = pki_.ca.certificate_file;
    tls->server_name = "localhost";
    return tls;
  }
  // Connects, waits for the client side's OnClose; true if it opened.
  bool ConnectOnce(int port, std::shared_ptr<const TlsClientOptions> tls,
                   Seen* client) {
    ConnectOptions connect;
    connect.port = port;
    connect.tls = std::move(tls);
    absl::StatusOr<ConnectionId> id = reactor_->Connect(connect, [client] {
      return std::make_unique<RecordingHandler>(client, true);
    });
    EXPECT_TRUE(id.ok()) << id.status();
    if (!id.ok()) return false;
    EXPECT_TRUE(client->closed.WaitFor(kBound));
    std::lock_guard<std::mutex> lock(client->mu);
    return client->opened;
  }

  TestPki pki_;
  Seen server_;
  std::unique_ptr<Reactor> reactor_;
};

TEST_F(TlsPeerTest, AlpnAndAVerifiedClientCertificateOnBothSides) {
  auto server_tls = ServerOptions();
  server_tls->alpn = {"h2", "http/1.1"};
  server_tls->client_certificates = TlsClientCertificates::kRequire;
  server_tls->client_ca_file = pki_.ca.certificate_file;
  const int port = Listen(server_tls);
  auto client_tls = ClientOptions();
  client_tls->alpn = {"http/1.1"};
  client_tls->certificate_chain_file = pki_.client.certificate_file;
  client_tls->private_key_file = pki_.client.key_file;
  Seen client;
  ASSERT_TRUE(ConnectOnce(port, client_tls, &client));
  ASSERT_TRUE(server_.closed.WaitFor(kBound));
  {
    std::lock_guard<std::mutex> lock(client.mu);
    ASSERT_TRUE(client.tls);
    EXPECT_EQ(client.peer.alpn(), "http/1.1");
    EXPECT_EQ(client.peer.version(), TlsVersion::kTls13);
    EXPECT_TRUE(client.peer.peer_verified());
    EXPECT_EQ(client.peer.peer_subject(), "localhost");
  }
  std::lock_guard<std::mutex> lock(server_.mu);
  ASSERT_TRUE(server_.opened);
  ASSERT_TRUE(server_.tls);
  EXPECT_EQ(server_.peer.alpn(), "http/1.1");
  EXPECT_EQ(server_.peer.version(), TlsVersion::kTls13);
  EXPECT_TRUE(server_.peer.peer_verified());
  EXPECT_TRUE(absl::StrContains(server_.peer.peer_subject(), "CN=peer-client"))
      << server_.peer.peer_subject();
}

TEST_F(TlsPeerTest, NoAlpnAndNoClientCertificate) {
  auto server_tls = ServerOptions();
  server_tls->client_certificates = TlsClientCertificates::kRequest;
  server_tls->client_ca_file = pki_.ca.certificate_file;
  const int port = Listen(server_tls);
  auto client_tls = ClientOptions();
  client_tls->verify_peer = false;
  Seen client;
  ASSERT_TRUE(ConnectOnce(port, client_tls, &client));
  ASSERT_TRUE(server_.closed.WaitFor(kBound));
  {
    std::lock_guard<std::mutex> lock(client.mu);
    ASSERT_TRUE(client.tls);
    EXPECT_EQ(client.peer.alpn(), "");
    EXPECT_FALSE(client.peer.peer_verified());  // verify_peer off
    EXPECT_EQ(client.peer.peer_subject(), "");
  }
  std::lock_guard<std::mutex> lock(server_.mu);
  ASSERT_TRUE(server_.tls);
  EXPECT_EQ(server_.peer.alpn(), "");
  EXPECT_FALSE(server_.peer.peer_verified());  // asked, none sent
  EXPECT_EQ(server_.peer.peer_subject(), "");
}

TEST_F(TlsPeerTest, PlainConnectionHasNoTlsFacts) {
  const int port = Listen(nullptr);
  Seen client;
  ASSERT_TRUE(ConnectOnce(port, nullptr, &client));
  ASSERT_TRUE(server_.closed.WaitFor(kBound));
  {
    std::lock_guard<std::mutex> lock(client.mu);
    EXPECT_FALSE(client.tls);
  }
  std::lock_guard<std::mutex> lock(server_.mu);
  ASSERT_TRUE(server_.opened);
  EXPECT_FALSE(server_.tls);
}

TEST_F(TlsPeerTest, ConnectReadsTheCaFileOncePerOptionsObject) {
  const int port = Listen(ServerOptions());
  // The client trusts a copy of the CA; after the first connect the copy
  // is replaced by a stranger's CA. Connects with the same options object
  // still trust the server (their context was built once); a new options
  // object naming the same file reads the stranger and refuses it.
  const std::string ca_copy = ::testing::TempDir() + "/peer_test_ca.pem";
  ASSERT_TRUE(WriteFile(ca_copy, ReadFile(pki_.ca.certificate_file)));
  auto reused = ClientOptions();
  reused->ca_file = ca_copy;
  {
    Seen client;
    ASSERT_TRUE(ConnectOnce(port, reused, &client));
  }
  absl::StatusOr<TestPki> stranger = baton::testing::WriteTestPki("stranger");
  ASSERT_TRUE(stranger.ok());
  ASSERT_TRUE(WriteFile(ca_copy, ReadFile(stranger->ca.certificate_file)));
  for (int i = 0; i < 20; ++i) {
    Seen client;
    ASSERT_TRUE(ConnectOnce(port, reused, &client)) << "connect " << i;
    std::lock_guard<std::mutex> lock(client.mu);
    EXPECT_TRUE(client.reason.ok()) << client.reason;
  }
  auto fresh = ClientOptions();
  fresh->ca_file = ca_copy;
  Seen refused;
  EXPECT_FALSE(ConnectOnce(port, fresh, &refused));
  std::lock_guard<std::mutex> lock(refused.mu);
  EXPECT_EQ(refused.reason.code(), absl::StatusCode::kUnauthenticated)
      << refused.reason;
  ::unlink(ca_copy.c_str());
}

// Greets with "hi\n" at OnOpen (after the server's session tickets) and
// records whether each connection resumed a session.
class GreetingHandler : public ConnectionHandler {
 public:
  explicit GreetingHandler(std::vector<bool>* resumed, std::mutex* mu)
      : resumed_(resumed), mu_(mu) {}
  void OnOpen(Connection& conn) override {
    {
      std::lock_guard<std::mutex> lock(*mu_);
      resumed_->push_back(conn.tls() != nullptr && conn.tls()->resumed());
    }
    conn.Write("hi\n");
  }
  void OnData(Connection&, absl::string_view) override {}

 private:
  std::vector<bool>* const resumed_;
  std::mutex* const mu_;
};

// Records as RecordingHandler does; reads the greeting (so the tickets
// before it are taken in), then closes.
class GreetedHandler : public RecordingHandler {
 public:
  explicit GreetedHandler(Seen* seen) : RecordingHandler(seen, false) {}
  void OnData(Connection& conn, absl::string_view data) override {
    greeting_.append(data.data(), data.size());
    if (greeting_ == "hi\n") conn.Close();
  }

 private:
  std::string greeting_;
};

class TlsResumptionTest : public TlsPeerTest,
                          public ::testing::WithParamInterface<bool> {};

TEST_P(TlsResumptionTest, ARepeatConnectResumesOnlyWhenAsked) {
  const bool resumption = GetParam();
  std::vector<bool> server_resumed;
  std::mutex server_mu;
  ListenOptions listen;
  listen.tls = ServerOptions();  // the server issues tickets by default
  absl::StatusOr<int> port = reactor_->Listen(listen, [&] {
    return std::make_unique<GreetingHandler>(&server_resumed, &server_mu);
  });
  ASSERT_TRUE(port.ok()) << port.status();
  auto options = ClientOptions();
  options->session_resumption = resumption;
  ConnectOptions connect;
  connect.port = *port;
  connect.tls = options;
  constexpr int kConnects = 3;
  for (int i = 0; i < kConnects; ++i) {
    Seen client;
    absl::StatusOr<ConnectionId> id = reactor_->Connect(connect, [&client] {
      return std::make_unique<GreetedHandler>(&client);
    });
    ASSERT_TRUE(id.ok()) << id.status();
    ASSERT_TRUE(client.closed.WaitFor(kBound)) << "connect " << i;
    std::lock_guard<std::mutex> lock(client.mu);
    ASSERT_TRUE(client.opened) << "connect " << i << ": " << client.reason;
    EXPECT_TRUE(client.reason.ok()) << client.reason;
    // The first connect has nothing to resume; each later one resumes a
    // ticket the one before took in, if resumption is on.
    EXPECT_EQ(client.peer.resumed(), resumption && i > 0) << "connect " << i;
    // A resumed session keeps the verified name of its full handshake.
    EXPECT_TRUE(client.peer.peer_verified()) << "connect " << i;
    EXPECT_EQ(client.peer.peer_subject(), "localhost") << "connect " << i;
  }
  std::lock_guard<std::mutex> lock(server_mu);
  ASSERT_EQ(server_resumed.size(), static_cast<size_t>(kConnects));
  for (int i = 0; i < kConnects; ++i) {
    EXPECT_EQ(server_resumed[i], resumption && i > 0) << "connect " << i;
  }
}

// Connects at once from one options object take and keep sessions on
// several reactor threads: each still opens, and those that found a
// session resumed it (run under tsan for the shared session store).
TEST_F(TlsPeerTest, ConcurrentConnectsShareOneSessionStore) {
  std::vector<bool> server_resumed;
  std::mutex server_mu;
  ListenOptions listen;
  listen.tls = ServerOptions();
  absl::StatusOr<int> port = reactor_->Listen(listen, [&] {
    return std::make_unique<GreetingHandler>(&server_resumed, &server_mu);
  });
  ASSERT_TRUE(port.ok()) << port.status();
  ConnectOptions connect;
  connect.port = *port;
  connect.tls = ClientOptions();
  {
    Seen first;  // leaves its tickets in the store
    ASSERT_TRUE(reactor_
                    ->Connect(connect,
                              [&first] {
                                return std::make_unique<GreetedHandler>(&first);
                              })
                    .ok());
    ASSERT_TRUE(first.closed.WaitFor(kBound));
  }
  constexpr int kConnects = 8;
  std::vector<std::unique_ptr<Seen>> clients;
  for (int i = 0; i < kConnects; ++i) {
    clients.push_back(std::make_unique<Seen>());
    Seen* seen = clients.back().get();
    ASSERT_TRUE(
        reactor_
            ->Connect(connect,
                      [seen] { return std::make_unique<GreetedHandler>(seen); })
            .ok());
  }
  int resumed = 0;
  for (int i = 0; i < kConnects; ++i) {
    ASSERT_TRUE(clients[i]->closed.WaitFor(kBound)) << "connect " << i;
    std::lock_guard<std::mutex> lock(clients[i]->mu);
    EXPECT_TRUE(clients[i]->opened && clients[i]->reason.ok())
        << "connect " << i << ": " << clients[i]->reason;
    if (clients[i]->peer.resumed()) ++resumed;
  }
  // The first connect left two tickets; the batch found at least one.
  EXPECT_GE(resumed, 1);
}

// A blocking OpenSSL server that speaks TLS 1.2 at most, with OpenSSL's
// server session cache: on its own thread it serves `connections`
// connections one at a time, greeting each with "hi\n" and waiting for the
// client to close, and records whether each resumed a session.
class Tls12Server {
 public:
  Tls12Server(const TestPki& pki, int connections)
      : ctx_(SSL_CTX_new(TLS_server_method())) {
    SSL_CTX_set_max_proto_version(ctx_, TLS1_2_VERSION);
    ready_ = SSL_CTX_use_certificate_chain_file(
                 ctx_, pki.server.certificate_file.c_str()) == 1 &&
             SSL_CTX_use_PrivateKey_file(ctx_, pki.server.key_file.c_str(),
                                         SSL_FILETYPE_PEM) == 1;
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    ready_ = ready_ && listen_fd_ >= 0 &&
             ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) == 0 &&
             ::listen(listen_fd_, 4) == 0 &&
             ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr),
                           &len) == 0;
    port_ = ntohs(addr.sin_port);
    if (ready_)
      thread_ = std::thread([this, connections] { Serve(connections); });
  }
  ~Tls12Server() {
    if (thread_.joinable()) thread_.join();
    if (listen_fd_ >= 0) ::close(listen_fd_);
    SSL_CTX_free(ctx_);
  }
  bool ready() const { return ready_; }
  int port() const { return port_; }
  // Waits for the thread; then what each connection resumed.
  std::vector<bool> Join() {
    if (thread_.joinable()) thread_.join();
    return resumed_;
  }

 private:
  void Serve(int connections) {
    const timeval bound = {static_cast<time_t>(kBound.count()), 0};
    for (int i = 0; i < connections; ++i) {
      pollfd p = {listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(kBound.count() * 1000)) != 1) return;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof(bound));
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &bound, sizeof(bound));
      SSL* ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, fd);
      if (SSL_accept(ssl) == 1) {
        resumed_.push_back(SSL_session_reused(ssl) == 1);
        char byte;
        if (SSL_write(ssl, "hi\n", 3) == 3) {
          while (SSL_read(ssl, &byte, 1) > 0) {
          }  // until the client's close_notify
          SSL_shutdown(ssl);
        }
      }
      SSL_free(ssl);
      ::close(fd);
    }
  }

  SSL_CTX* const ctx_;
  bool ready_ = false;
  int listen_fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::vector<bool> resumed_;  // the thread's until Join
};

// TLS 1.2 sessions (not single-use tickets) are resumed again and again:
// the client keeps the session it resumed for the next connect.
TEST_F(TlsPeerTest, ATls12SessionIsResumedByEveryLaterConnect) {
  constexpr int kConnects = 3;
  Tls12Server server(pki_, kConnects);
  ASSERT_TRUE(server.ready());
  ConnectOptions connect;
  connect.port = server.port();
  connect.tls = ClientOptions();
  for (int i = 0; i < kConnects; ++i) {
    Seen client;
    ASSERT_TRUE(
        reactor_
            ->Connect(
                connect,
                [&client] { return std::make_unique<GreetedHandler>(&client); })
            .ok());
    ASSERT_TRUE(client.closed.WaitFor(kBound)) << "connect " << i;
    std::lock_guard<std::mutex> lock(client.mu);
    ASSERT_TRUE(client.opened) << "connect " << i << ": " << client.reason;
    EXPECT_TRUE(client.reason.ok()) << client.reason;
    EXPECT_EQ(client.peer.version(), TlsVersion::kTls12);
    EXPECT_EQ(client.peer.resumed(), i > 0) << "connect " << i;
  }
  EXPECT_EQ(server.Join(), (std::vector<bool>{false, true, true}));
}

INSTANTIATE_TEST_SUITE_P(Resumption, TlsResumptionTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? std::string("On")
                                          : std::string("Off");
                         });

TEST_F(TlsPeerTest, ABadCaFileFailsEveryConnectThatNamesIt) {
  auto bad = ClientOptions();
  bad->ca_file = "/nonexistent/ca.pem";
  ConnectOptions connect;
  connect.port = 1;
  connect.tls = bad;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<ConnectionId> id = reactor_->Connect(
        connect, [] { return std::unique_ptr<ConnectionHandler>(); });
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(id.status().message(), "ca.pem"))
        << id.status();
  }
}

}  // namespace
}  // namespace baton
