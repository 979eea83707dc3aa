// Connection::SendFile on a TLS connection, over real loopback sockets
// against OpenSSL's blocking client: a file many times the socket buffers
// reaches a slow reader byte for byte and is read only as the socket
// drains (never whole into memory), in order between the Writes around it,
// counted by pending_output as file bytes not yet read; close_notify after
// it; a transferred descriptor closed; a file shorter than its range closes
// the connection.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "baton/reactor.h"
#include "baton/tls.h"
#include "tests/util/test_certificates.h"
#include "tests/util/test_client.h"
#include "tests/util/tls_test_client.h"

namespace baton {
namespace {

using ::baton::testing::Notification;
using ::baton::testing::Pattern;
using ::baton::testing::TestPki;

// Only a hang reaches these bounds.
constexpr auto kBound = std::chrono::seconds(120);
constexpr int kBoundMs = 120000;

constexpr char kHead[] = "HEAD";
constexpr char kTail[] = "TAIL";
constexpr char kLast[] = "LAST";

int OpenDescriptors() {
  int count = 0;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    while (::readdir(dir) != nullptr) ++count;
    ::closedir(dir);
  }
  return count;
}

// The largest value of a /proc/sys/net/ipv4/tcp_[rw]mem triple.
int64_t SocketBufferMax(const char* path) {
  std::ifstream in(path);
  int64_t low = 0, initial = 0, max = 0;
  in >> low >> initial >> max;
  return max > 0 ? max : 64 << 20;
}

// What the server does on OnOpen: Write(kHead), SendFile(path, 0, length),
// Write(kTail), then Reactor::Write(kLast) and Close if asked; and what it
// saw.
struct Plan {
  std::string path;
  int64_t length = 0;
  FileOwnership ownership = FileOwnership::kCopy;
  bool close_after = false;
  bool foreign_last = false;  // then Reactor::Write(kLast)

  std::atomic<bool> sent{false};
  std::atomic<size_t> pending_before{0};  // before SendFile
  std::atomic<size_t> pending_after{0};   // right after it
  std::mutex mu;
  absl::Status reason;  // guarded by mu
  Notification closed;
};

class FileHandler : public ConnectionHandler {
 public:
  explicit FileHandler(Plan* plan) : plan_(plan) {}
  void OnOpen(Connection& conn) override {
    const int fd = ::open(plan_->path.c_str(), O_RDONLY | O_CLOEXEC);
    conn.Write(kHead);
    plan_->pending_before.store(conn.pending_output());
    plan_->sent.store(conn.SendFile(fd, 0, plan_->length, plan_->ownership));
    plan_->pending_after.store(conn.pending_output());
    if (plan_->ownership == FileOwnership::kCopy) ::close(fd);
    conn.Write(kTail);
    // Through the queue foreign Writes take, behind the file too.
    if (plan_->foreign_last) conn.reactor().Write(conn.id(), kLast);
    if (plan_->close_after) conn.Close();
  }
  void OnData(Connection&, absl::string_view) override {}
  void OnClose(Connection&, const absl::Status& reason) override {
    {
      std::lock_guard<std::mutex> lock(plan_->mu);
      plan_->reason = reason;
    }
    plan_->closed.Notify();
  }

 private:
  Plan* const plan_;
};

class TlsSendFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestPki> pki = baton::testing::WriteTestPki("sendfile");
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *pki;
    client_ctx_ =
        baton::testing::NewVerifyingClientContext(pki_.ca.certificate_file);
    ASSERT_NE(client_ctx_, nullptr);
    plan_.path = ::testing::TempDir() + "/tls_sendfile.bin";
  }
  void TearDown() override {
    if (reactor_ != nullptr) {
      reactor_->Stop();
      reactor_->Wait();
    }
    SSL_CTX_free(client_ctx_);
    ::unlink(plan_.path.c_str());
  }

  void WriteFile(const std::string& content) {
    std::ofstream out(plan_.path, std::ios::binary | std::ios::trunc);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    ASSERT_TRUE(out.good());
  }

  int StartServer() {
    ReactorOptions options;
    options.threads = 2;
    absl::StatusOr<std::unique_ptr<Reactor>> reactor = Reactor::Create(options);
    EXPECT_TRUE(reactor.ok()) << reactor.status();
    reactor_ = *std::move(reactor);
    auto tls = std::make_shared<TlsServerOptions>();
    tls->certificate_chain_file = pki_.server.certificate_file;
    tls->private_key_file = pki_.server.key_file;
    ListenOptions listen;
    listen.tls = tls;
    Plan* plan = &plan_;
    absl::StatusOr<int> port = reactor_->Listen(
        listen, [plan] { return std::make_unique<FileHandler>(plan); });
    EXPECT_TRUE(port.ok()) << port.status();
    EXPECT_TRUE(reactor_->Start().ok());
    return port.ok() ? *port : -1;
  }

  bool WaitFor(const std::function<bool()>& done) {
    for (int i = 0; i < kBoundMs; ++i) {
      if (done()) return true;
      ::usleep(1000);
    }
    return false;
  }

  TestPki pki_;
  SSL_CTX* client_ctx_ = nullptr;
  Plan plan_;
  std::unique_ptr<Reactor> reactor_;
};

TEST_F(TlsSendFileTest, LargeFileReachesASlowReaderAsTheSocketDrains) {
  // The client stops after `read_first` bytes. However far the server gets
  // meanwhile, it can have read no more than the socket buffers (ours and
  // the kernel's, both ends) and a few records past that. Then the rest of
  // the file changes on disk: a server that read the file as the socket
  // drained sends the new bytes; one that read it all at SendFile sends
  // the old.
  constexpr int kClientBuffer = 256 << 10;
  constexpr size_t kReadFirst = 256 << 10;
  const size_t read_ahead_bound =
      static_cast<size_t>(SocketBufferMax("/proc/sys/net/ipv4/tcp_wmem")) +
      4 * kClientBuffer + (2 << 20);
  const size_t changed_from = kReadFirst + read_ahead_bound;
  const size_t size = changed_from + (4 << 20);
  const std::string old_content = Pattern(size, 7);
  const std::string new_content = Pattern(size, 8);
  ASSERT_NE(old_content.substr(changed_from), new_content.substr(changed_from));
  WriteFile(old_content);
  plan_.length = static_cast<int64_t>(size);
  const int port = StartServer();

  baton::testing::TlsTestClient client(client_ctx_, port, kBoundMs);
  ASSERT_TRUE(::setsockopt(client.fd(), SOL_SOCKET, SO_RCVBUF, &kClientBuffer,
                           sizeof(kClientBuffer)) == 0);
  ASSERT_TRUE(client.Handshake());
  std::string received = client.Receive(sizeof(kHead) - 1 + kReadFirst);
  ASSERT_EQ(received.size(), sizeof(kHead) - 1 + kReadFirst);
  ASSERT_TRUE(plan_.sent.load());
  // SendFile queued the file's bytes, unread: nothing encrypted yet.
  EXPECT_EQ(plan_.pending_after.load() - plan_.pending_before.load(), size);

  {
    const int fd = ::open(plan_.path.c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    const std::string rest = new_content.substr(changed_from);
    ASSERT_EQ(::pwrite(fd, rest.data(), rest.size(),
                       static_cast<off_t>(changed_from)),
              static_cast<ssize_t>(rest.size()));
    ::close(fd);
  }
  // The rest, slowly: a record-sized read at a time.
  const size_t total = sizeof(kHead) - 1 + size + sizeof(kTail) - 1;
  while (received.size() < total) {
    const std::string piece =
        client.Receive(std::min<size_t>(16 << 10, total - received.size()));
    ASSERT_FALSE(piece.empty()) << "stream ended at " << received.size();
    received += piece;
  }
  const std::string expected = kHead + old_content.substr(0, changed_from) +
                               new_content.substr(changed_from) + kTail;
  ASSERT_EQ(received.size(), expected.size());
  EXPECT_TRUE(received == expected)
      << "first difference at "
      << std::mismatch(received.begin(), received.end(), expected.begin())
                 .first -
             received.begin();
  EXPECT_TRUE(WaitFor([&] { return reactor_->connection_count() == 1; }));
}

TEST_F(TlsSendFileTest,
       WritesStayInOrderCloseNotifyComesLastAndTheFileIsClosed) {
  const size_t size = (3 << 20) + 12345;  // not a whole number of blocks
  const std::string content = Pattern(size, 3);
  WriteFile(content);
  plan_.length = static_cast<int64_t>(size);
  plan_.ownership = FileOwnership::kTransfer;
  plan_.close_after = true;
  plan_.foreign_last = true;
  const int port = StartServer();
  const int baseline = OpenDescriptors();
  {
    baton::testing::TlsTestClient client(client_ctx_, port, kBoundMs);
    ASSERT_TRUE(client.Handshake());
    const std::string expected = kHead + content + kTail + kLast;
    EXPECT_TRUE(client.Receive(expected.size()) == expected);
    EXPECT_TRUE(client.ReceivedCloseNotify());
  }
  ASSERT_TRUE(plan_.closed.WaitFor(kBound));
  {
    std::lock_guard<std::mutex> lock(plan_.mu);
    EXPECT_TRUE(plan_.reason.ok()) << plan_.reason;
  }
  EXPECT_TRUE(plan_.sent.load());
  EXPECT_TRUE(WaitFor([&] { return reactor_->connection_count() == 0; }));
  EXPECT_TRUE(WaitFor([&] { return OpenDescriptors() == baseline; }))
      << OpenDescriptors() << " descriptors, " << baseline << " before";
}

TEST_F(TlsSendFileTest, FileShorterThanItsRangeClosesTheConnection) {
  const size_t size = (1 << 20) + 100;
  const std::string content = Pattern(size, 5);
  WriteFile(content);
  plan_.length = static_cast<int64_t>(size + 5000);  // more than there is
  const int port = StartServer();
  baton::testing::TlsTestClient client(client_ctx_, port, kBoundMs);
  ASSERT_TRUE(client.Handshake());
  const std::string expected = kHead + content;
  EXPECT_TRUE(client.Receive(expected.size()) == expected);
  // Then the end: no more bytes (not the tail), and no close_notify.
  EXPECT_EQ(client.Receive(1), "");
  EXPECT_FALSE(client.ReceivedCloseNotify());
  ASSERT_TRUE(plan_.closed.WaitFor(kBound));
  std::lock_guard<std::mutex> lock(plan_.mu);
  EXPECT_FALSE(plan_.reason.ok());
  EXPECT_TRUE(
      absl::StrContains(plan_.reason.message(), "send: Input/output error"))
      << plan_.reason;
}

}  // namespace
}  // namespace baton
