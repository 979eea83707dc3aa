// Reactor::Connect to host names (lib/internal/resolver.cc and the lookup
// part of connector.cc): names answered by a DNS server on 127.0.0.1 inside
// the test (ReactorOptions::dns_servers), so nothing leaves the machine,
// and `localhost` through the system's configuration (/etc/hosts).
// Covered: a name with one address, a name whose first address refuses
// (the next one is tried), a name whose every address refuses (the status
// names the name and each address), a name that does not exist, a lookup
// that times out, cancellation by Close, Drain and Stop while the name is
// being looked up (and a late answer after the slot was reused),
// malformed names refused at once, and a Unix path never taken for a name.
//
// As in connector_test: each Record is declared before its reactor.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "baton/reactor.h"
#include "lib/net/address.h"
#include "tests/lib/internal/reactor_test_support.h"
#include "tests/util/test_client.h"
#include "tests/util/test_dns_server.h"

namespace baton {
namespace {

using ::baton::internal::ReactorTestPeer;
using ::baton::testing::BoundNotListening;
using ::baton::testing::EchoServer;
using ::baton::testing::Eventually;
using ::baton::testing::OpenFdCount;
using ::baton::testing::Record;
using ::baton::testing::RecordingFactory;
using ::baton::testing::RecordingHandler;
using ::baton::testing::StartReactor;
using ::baton::testing::TestDnsServer;
using ::baton::testing::Threads;

constexpr std::chrono::seconds kBound{20};  // only limits a hang

// A client reactor that asks `dns` (or the system's configuration).
std::unique_ptr<Reactor> ClientFor(const TestDnsServer* dns,
                                   size_t max_connections = 1 << 20) {
  ReactorOptions options = Threads(2);
  if (dns != nullptr) options.dns_servers = dns->servers();
  options.max_connections = max_connections;
  return StartReactor(options);
}

ConnectOptions To(const std::string& name, int port) {
  ConnectOptions o;
  o.address = name;
  o.port = port;
  return o;
}

// Connects to `name`, sends a message in OnOpen and expects it back.
void ExpectEchoThrough(Reactor& client, const std::string& name, int port) {
  auto record = std::make_shared<Record>();
  const std::string message = testing::Pattern(50000, 3);
  auto id = client.Connect(To(name, port), [&] {
    auto h = std::make_unique<RecordingHandler>(record);
    h->on_open = [&](Connection& conn) { conn.Write(message); };
    h->on_data = [&](Connection& conn, absl::string_view) {
      if (record->data.size() >= message.size()) conn.Close();
    };
    return h;
  });
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(record->done.WaitFor(kBound));
  EXPECT_TRUE(record->status().ok()) << record->status();
  EXPECT_TRUE(record->is_opened());
  EXPECT_TRUE(record->received() == message);
}

TEST(ResolverTest, ConnectsToANameWithOneAddress) {
  EchoServer server;
  TestDnsServer dns;
  dns.Add("echo.test", {"127.0.0.1"});
  auto client = ClientFor(&dns);
  ExpectEchoThrough(*client, "echo.test", server.port);
  EXPECT_EQ(client->Counters().connect_attempts, 1u);
  EXPECT_GE(dns.queries("echo.test"), 1);
  // Forgotten at teardown, just after OnClose.
  EXPECT_TRUE(Eventually(
      [&] { return ReactorTestPeer::PendingLookups(*client) == 0; }));
}

TEST(ResolverTest, TriesTheNextAddressWhenTheFirstRefuses) {
  // Nothing listens on 127.0.0.2 (the server is bound to 127.0.0.1 only).
  EchoServer server;
  TestDnsServer dns;
  dns.Add("two.test", {"127.0.0.2", "127.0.0.1"});
  auto client = ClientFor(&dns);
  ExpectEchoThrough(*client, "two.test", server.port);
  // Both addresses, in the order given: one refused, one connected.
  EXPECT_EQ(client->Counters().connect_attempts, 2u);
  EXPECT_EQ(client->Counters().connect_failures, 0u);
}

TEST(ResolverTest, EveryAddressRefusedNamesTheNameAndEachAddress) {
  int port = 0;
  const int reserved = BoundNotListening(&port);  // 127.0.0.1: refuses too
  TestDnsServer dns;
  dns.Add("down.test", {"127.0.0.2", "127.0.0.1"});
  auto record = std::make_shared<Record>();
  auto client = ClientFor(&dns);
  const int fds_before = OpenFdCount();
  ASSERT_TRUE(
      client->Connect(To("down.test", port), RecordingFactory(record)).ok());
  ASSERT_TRUE(record->done.WaitFor(kBound));
  EXPECT_FALSE(record->is_opened());
  const absl::Status status = record->status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  const std::string p = std::to_string(port);
  for (const std::string& part : {"connect down.test:" + p, "127.0.0.2:" + p,
                                  "127.0.0.1:" + p, std::string("refused")}) {
    EXPECT_NE(status.message().find(part), std::string::npos)
        << "'" << part << "' not in " << status;
  }
  EXPECT_EQ(client->Counters().connect_attempts, 2u);
  EXPECT_EQ(client->Counters().connect_failures, 1u);
  // The resolver's own socket may stay open; the connects' sockets do not.
  EXPECT_TRUE(Eventually([&] { return OpenFdCount() <= fds_before + 1; }));
  ::close(reserved);
}

TEST(ResolverTest, RetriesGoThroughEveryAddressAgain) {
  int port = 0;
  const int reserved = BoundNotListening(&port);
  TestDnsServer dns;
  dns.Add("down.test", {"127.0.0.2", "127.0.0.1"});
  auto record = std::make_shared<Record>();
  auto client = ClientFor(&dns);
  ConnectOptions o = To("down.test", port);
  o.max_attempts = 2;
  o.initial_backoff = o.max_backoff = absl::Milliseconds(1);
  ASSERT_TRUE(client->Connect(o, RecordingFactory(record)).ok());
  ASSERT_TRUE(record->done.WaitFor(kBound));
  EXPECT_EQ(record->status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(record->status().message().find("(2 attempts)"), std::string::npos)
      << record->status();
  EXPECT_EQ(client->Counters().connect_attempts, 4u);
  ::close(reserved);
}

TEST(ResolverTest, ANameThatDoesNotExistIsNotFound) {
  TestDnsServer dns;  // knows no names: NXDOMAIN for all
  auto record = std::make_shared<Record>();
  auto client = ClientFor(&dns);
  ASSERT_TRUE(
      client->Connect(To("nosuch.test", 80), RecordingFactory(record)).ok());
  ASSERT_TRUE(record->done.WaitFor(kBound));
  EXPECT_FALSE(record->is_opened());
  EXPECT_EQ(record->status().code(), absl::StatusCode::kNotFound)
      << record->status();
  EXPECT_NE(record->status().message().find("resolve nosuch.test"),
            std::string::npos)
      << record->status();
  EXPECT_EQ(client->Counters().connect_attempts, 0u);
  EXPECT_EQ(client->Counters().connect_failures, 1u);
  // Forgotten at teardown, just after OnClose.
  EXPECT_TRUE(Eventually(
      [&] { return ReactorTestPeer::PendingLookups(*client) == 0; }));
}

TEST(ResolverTest, ALookupThatIsNeverAnsweredTimesOut) {
  TestDnsServer dns;
  dns.AddSilent("silent.test");
  auto record = std::make_shared<Record>();
  auto client = ClientFor(&dns);
  ConnectOptions o = To("silent.test", 80);
  o.resolve_timeout = absl::Milliseconds(50);  // never answered: no race
  ASSERT_TRUE(client->Connect(o, RecordingFactory(record)).ok());
  ASSERT_TRUE(record->done.WaitFor(kBound));
  EXPECT_FALSE(record->is_opened());
  EXPECT_EQ(record->status().code(), absl::StatusCode::kDeadlineExceeded)
      << record->status();
  EXPECT_NE(record->status().message().find("resolve silent.test: timed out"),
            std::string::npos)
      << record->status();
  EXPECT_GE(dns.queries("silent.test"), 1);
  // Forgotten at teardown, just after OnClose.
  EXPECT_TRUE(Eventually(
      [&] { return ReactorTestPeer::PendingLookups(*client) == 0; }));
}

// A connect whose name is being looked up (the server never answers),
// cancelled by `cancel`; it must end with OnClose(CANCELLED) and forget
// its lookup.
template <typename Cancel>
void ExpectCancelledWhileResolving(Cancel cancel, const std::string& why) {
  TestDnsServer dns;
  dns.AddSilent("silent.test");
  auto record = std::make_shared<Record>();
  auto client = ClientFor(&dns);
  ConnectOptions o = To("silent.test", 80);
  o.resolve_timeout = absl::Seconds(600);
  auto id = client->Connect(o, RecordingFactory(record));
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(Eventually([&] { return dns.queries("silent.test") >= 1; }));
  cancel(*client, *id);
  ASSERT_TRUE(record->done.WaitFor(kBound));
  EXPECT_FALSE(record->is_opened());
  EXPECT_EQ(record->status().code(), absl::StatusCode::kCancelled)
      << record->status();
  EXPECT_NE(record->status().message().find(why), std::string::npos)
      << record->status();
  // Forgotten at teardown, just after OnClose.
  EXPECT_TRUE(Eventually(
      [&] { return ReactorTestPeer::PendingLookups(*client) == 0; }));
  EXPECT_EQ(client->Counters().connect_attempts, 0u);
  EXPECT_TRUE(Eventually([&] { return client->connection_count() == 0; }));
}

TEST(ResolverTest, CloseCancelsALookup) {
  ExpectCancelledWhileResolving(
      [](Reactor& r, ConnectionId id) { EXPECT_TRUE(r.Close(id)); },
      "closed while connecting");
}

TEST(ResolverTest, DrainCancelsALookup) {
  ExpectCancelledWhileResolving([](Reactor& r, ConnectionId) { r.Drain(); },
                                "reactor draining");
}

TEST(ResolverTest, StopCancelsALookup) {
  ExpectCancelledWhileResolving(
      [](Reactor& r, ConnectionId) {
        r.Stop();
        r.Wait();
      },
      "reactor stopped");
}

// The answer to a cancelled lookup arrives after the connection's slot
// went to another connection (max_connections 1): it touches nothing.
TEST(ResolverTest, ALateAnswerAfterTheSlotWasReusedIsDropped) {
  EchoServer server;
  TestDnsServer dns;
  dns.AddHeld("late.test", {"127.0.0.1"});
  auto first = std::make_shared<Record>();
  auto second = std::make_shared<Record>();
  auto client = ClientFor(&dns, /*max_connections=*/1);
  auto id =
      client->Connect(To("late.test", server.port), RecordingFactory(first));
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(Eventually([&] { return dns.queries("late.test") >= 1; }));
  EXPECT_TRUE(client->Close(*id));
  ASSERT_TRUE(first->done.WaitFor(kBound));
  EXPECT_EQ(first->status().code(), absl::StatusCode::kCancelled);
  // Forgotten at teardown, just after OnClose.
  EXPECT_TRUE(Eventually(
      [&] { return ReactorTestPeer::PendingLookups(*client) == 0; }));

  ASSERT_TRUE(Eventually([&] { return client->connection_count() == 0; }));
  // Same slot, next generation: a literal connect that stays open.
  ConnectOptions literal;
  literal.port = server.port;
  auto id2 = client->Connect(literal, RecordingFactory(second));
  ASSERT_TRUE(id2.ok()) << id2.status();
  ASSERT_TRUE(Eventually([&] { return second->is_opened(); }));
  dns.ReleaseHeld();
  // A lookup after the late answer went out, through the same channel:
  // once it is answered, the late one has been received too.
  dns.Add("after.test", {"127.0.0.1"});
  auto third = std::make_shared<Record>();
  EXPECT_TRUE(client->Close(*id2));
  ASSERT_TRUE(second->done.WaitFor(kBound));
  EXPECT_TRUE(second->status().ok()) << second->status();
  ASSERT_TRUE(Eventually([&] { return client->connection_count() == 0; }));
  auto id3 =
      client->Connect(To("after.test", server.port), RecordingFactory(third));
  ASSERT_TRUE(id3.ok()) << id3.status();
  ASSERT_TRUE(Eventually([&] { return third->is_opened(); }));
  EXPECT_FALSE(third->done.HasBeenNotified()) << third->status();
  // Forgotten at teardown, just after OnClose.
  EXPECT_TRUE(Eventually(
      [&] { return ReactorTestPeer::PendingLookups(*client) == 0; }));
  EXPECT_EQ(client->Counters().connect_attempts, 2u);
}

// Lookups finishing together are handled by whichever threads take their
// events: the one channel is shared under its lock (run under TSan too).
TEST(ResolverTest, ManyLookupsAtOnceOnSeveralThreads) {
  EchoServer server;
  TestDnsServer dns;
  constexpr int kNames = 8;
  constexpr int kConnects = 48;
  for (int i = 0; i < kNames; ++i) {
    dns.Add("n" + std::to_string(i) + ".test", {"127.0.0.2", "127.0.0.1"});
  }
  ReactorOptions options = Threads(4);
  options.dns_servers = dns.servers();
  auto client = StartReactor(options);
  std::vector<std::shared_ptr<Record>> records;
  for (int i = 0; i < kConnects; ++i) {
    auto record = std::make_shared<Record>();
    records.push_back(record);
    auto id = client->Connect(
        To("n" + std::to_string(i % kNames) + ".test", server.port), [record] {
          auto h = std::make_unique<RecordingHandler>(record);
          h->on_open = [](Connection& conn) { conn.Write("ping"); };
          h->on_data = [record](Connection& conn, absl::string_view) {
            if (record->data.size() >= 4) conn.Close();
          };
          return h;
        });
    ASSERT_TRUE(id.ok()) << id.status();
  }
  for (auto& record : records) {
    ASSERT_TRUE(record->done.WaitFor(kBound));
    EXPECT_TRUE(record->status().ok()) << record->status();
    EXPECT_EQ(record->received(), "ping");
  }
  EXPECT_EQ(client->Counters().connect_attempts, uint64_t{2 * kConnects});
  EXPECT_TRUE(Eventually(
      [&] { return ReactorTestPeer::PendingLookups(*client) == 0; }));
}

TEST(ResolverTest, LocalhostThroughTheSystemConfiguration) {
  EchoServer server;  // 127.0.0.1; if localhost is also ::1, that refuses
  auto client = ClientFor(nullptr);
  ExpectEchoThrough(*client, "localhost", server.port);
}

TEST(ResolverTest, MalformedNamesAreRefusedAtOnce) {
  auto record = std::make_shared<Record>();
  auto client = ClientFor(nullptr);
  for (const char* bad :
       {"", "1.2.3", "256.0.0.1", "a..b", "bad name", "[::1]", "-", "x:80"}) {
    EXPECT_EQ(
        client->Connect(To(bad, 80), RecordingFactory(record)).status().code(),
        absl::StatusCode::kInvalidArgument)
        << "'" << bad << "'";
  }
  ConnectOptions o = To("localhost", 80);
  o.resolve_timeout = absl::ZeroDuration();
  EXPECT_EQ(client->Connect(o, RecordingFactory(record)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client->connection_count(), 0u);
}

// A Unix socket connect never looks `address` up: a unix_path that does
// not parse is refused at once even when `address` is a host name.
TEST(ResolverTest, AUnixPathIsNeverTakenForAHostName) {
  auto record = std::make_shared<Record>();
  auto client = ClientFor(nullptr);
  ConnectOptions o = To("localhost", 0);
  o.unix_path = "/" + std::string(200, 'x');  // longer than sun_path
  EXPECT_EQ(client->Connect(o, RecordingFactory(record)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client->connection_count(), 0u);
}

}  // namespace
}  // namespace baton
