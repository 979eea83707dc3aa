// The reactor's host name answer cache (lib/internal/resolver_cache.cc and
// the cache and sharing in resolver.cc): names answered by a DNS server on
// 127.0.0.1 inside the test (ReactorOptions::dns_servers) and `localhost`
// from the hosts file. Expiry moves the cache's clock forward
// (ReactorTestPeer::FreezeDnsCacheClock, AdvanceDnsCacheClock) instead of
// waiting, so answers expire at exact times. Lookups are counted by the
// reactor's dns_* counters and by the DNS server.
// Covered: a second connect (to another port too) without a lookup, expiry
// at the answer's TTL, the maximum TTL, a TTL of 0, hosts file answers,
// names that do not exist, timeouts not kept, concurrent connects sharing
// one query, cancelling one of them (Close) or all (Stop), the size bound
// (least recently used dropped), a maximum TTL of zero, and bad options.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "baton/reactor.h"
#include "tests/lib/internal/reactor_test_support.h"
#include "tests/util/test_client.h"
#include "tests/util/test_dns_server.h"

namespace baton {
namespace {

using ::baton::internal::ReactorTestPeer;
using ::baton::testing::EchoServer;
using ::baton::testing::Eventually;
using ::baton::testing::Record;
using ::baton::testing::RecordingFactory;
using ::baton::testing::RecordingHandler;
using ::baton::testing::StartReactor;
using ::baton::testing::TestDnsServer;
using ::baton::testing::Threads;

constexpr std::chrono::seconds kBound{20};  // only limits a hang

ReactorOptions ClientOptions(const TestDnsServer* dns) {
  ReactorOptions options = Threads(2);
  if (dns != nullptr) options.dns_servers = dns->servers();
  return options;
}

ConnectOptions To(const std::string& name, int port) {
  ConnectOptions o;
  o.address = name;
  o.port = port;
  return o;
}

// A handler that sends `message` in OnOpen and closes once it is back.
HandlerFactory EchoingFactory(std::shared_ptr<Record> record,
                              std::string message) {
  return [record, message] {
    auto h = std::make_unique<RecordingHandler>(record);
    h->on_open = [message](Connection& conn) { conn.Write(message); };
    h->on_data = [record, message](Connection& conn, absl::string_view) {
      if (record->received().size() >= message.size()) conn.Close();
    };
    return h;
  };
}

// Connects to `name`, sends a message in OnOpen and expects it back.
void ExpectEchoThrough(Reactor& client, const std::string& name, int port) {
  auto record = std::make_shared<Record>();
  const std::string message = testing::Pattern(20000, 5);
  ASSERT_TRUE(
      client.Connect(To(name, port), EchoingFactory(record, message)).ok());
  ASSERT_TRUE(record->done.WaitFor(kBound));
  EXPECT_TRUE(record->status().ok()) << record->status();
  EXPECT_TRUE(record->received() == message);
}

// Connects to `name` and expects the connect to fail with `code`; its
// status goes to `*status` if given.
void ExpectConnectFails(Reactor& client, ConnectOptions options,
                        absl::StatusCode code, absl::Status* status = nullptr) {
  auto record = std::make_shared<Record>();
  EXPECT_TRUE(client.Connect(options, RecordingFactory(record)).ok());
  EXPECT_TRUE(record->done.WaitFor(kBound));
  EXPECT_FALSE(record->is_opened());
  EXPECT_EQ(record->status().code(), code) << record->status();
  if (status != nullptr) *status = record->status();
}

uint64_t Lookups(Reactor& r) { return r.Counters().dns_lookups; }
uint64_t Hits(Reactor& r) { return r.Counters().dns_cache_hits; }
uint64_t Misses(Reactor& r) { return r.Counters().dns_cache_misses; }

TEST(DnsCacheTest, ASecondConnectToANameDoesNoSecondLookup) {
  EchoServer server;
  EchoServer other;
  TestDnsServer dns;
  dns.Add("echo.test", {"127.0.0.1"});
  auto client = StartReactor(ClientOptions(&dns));
  ExpectEchoThrough(*client, "echo.test", server.port);
  const int queries = dns.queries("echo.test");
  EXPECT_GE(queries, 1);
  EXPECT_EQ(Lookups(*client), 1u);
  EXPECT_EQ(Misses(*client), 1u);
  EXPECT_EQ(Hits(*client), 0u);
  // The same name, and the same name on another port (the cached addresses
  // get each connect's own port; the bytes come back from that server).
  ExpectEchoThrough(*client, "echo.test", server.port);
  ExpectEchoThrough(*client, "echo.test", other.port);
  EXPECT_EQ(dns.queries("echo.test"), queries);
  EXPECT_EQ(Lookups(*client), 1u);
  EXPECT_EQ(Misses(*client), 1u);
  EXPECT_EQ(Hits(*client), 2u);
  EXPECT_EQ(client->Counters().connect_attempts, 3u);
  EXPECT_EQ(server.reactor->Counters().accepts, 2u);
  EXPECT_EQ(other.reactor->Counters().accepts, 1u);
  EXPECT_TRUE(Eventually(
      [&] { return ReactorTestPeer::PendingLookups(*client) == 0; }));
}

TEST(DnsCacheTest, AnAnswerExpiresAtItsTtl) {
  EchoServer server;
  TestDnsServer dns;
  dns.Add("short.test", {"127.0.0.1"}, /*ttl_seconds=*/30);
  auto client = StartReactor(ClientOptions(&dns));
  ReactorTestPeer::FreezeDnsCacheClock(*client);
  ExpectEchoThrough(*client, "short.test", server.port);
  ReactorTestPeer::AdvanceDnsCacheClock(*client, absl::Seconds(29));
  ExpectEchoThrough(*client, "short.test", server.port);
  EXPECT_EQ(Lookups(*client), 1u);
  EXPECT_EQ(Hits(*client), 1u);
  ReactorTestPeer::AdvanceDnsCacheClock(*client, absl::Seconds(2));
  ExpectEchoThrough(*client, "short.test", server.port);
  EXPECT_EQ(Lookups(*client), 2u);
  EXPECT_EQ(Hits(*client), 1u);
  // Cached again from the new answer.
  ExpectEchoThrough(*client, "short.test", server.port);
  EXPECT_EQ(Lookups(*client), 2u);
  EXPECT_EQ(Hits(*client), 2u);
}

TEST(DnsCacheTest, TheMaximumTtlCapsALongOne) {
  EchoServer server;
  TestDnsServer dns;
  dns.Add("long.test", {"127.0.0.1"}, /*ttl_seconds=*/3600);
  ReactorOptions options = ClientOptions(&dns);
  options.dns_cache_max_ttl = absl::Seconds(10);
  auto client = StartReactor(options);
  ReactorTestPeer::FreezeDnsCacheClock(*client);
  ExpectEchoThrough(*client, "long.test", server.port);
  ReactorTestPeer::AdvanceDnsCacheClock(*client, absl::Seconds(9));
  ExpectEchoThrough(*client, "long.test", server.port);
  EXPECT_EQ(Lookups(*client), 1u);
  ReactorTestPeer::AdvanceDnsCacheClock(*client, absl::Seconds(2));
  ExpectEchoThrough(*client, "long.test", server.port);
  EXPECT_EQ(Lookups(*client), 2u);
  EXPECT_EQ(Hits(*client), 1u);
}

TEST(DnsCacheTest, AnAnswerWithATtlOfZeroIsNotKept) {
  EchoServer server;
  TestDnsServer dns;
  dns.Add("zero.test", {"127.0.0.1"}, /*ttl_seconds=*/0);
  auto client = StartReactor(ClientOptions(&dns));
  ExpectEchoThrough(*client, "zero.test", server.port);
  ExpectEchoThrough(*client, "zero.test", server.port);
  EXPECT_EQ(Lookups(*client), 2u);
  EXPECT_EQ(Hits(*client), 0u);
}

TEST(DnsCacheTest, AHostsFileAnswerIsKeptForFiveSeconds) {
  EchoServer server;  // 127.0.0.1; if localhost is also ::1, that refuses
  auto client = StartReactor(ClientOptions(nullptr));
  ReactorTestPeer::FreezeDnsCacheClock(*client);
  ExpectEchoThrough(*client, "localhost", server.port);
  ReactorTestPeer::AdvanceDnsCacheClock(*client, absl::Seconds(4));
  ExpectEchoThrough(*client, "localhost", server.port);
  EXPECT_EQ(Lookups(*client), 1u);
  EXPECT_EQ(Hits(*client), 1u);
  ReactorTestPeer::AdvanceDnsCacheClock(*client, absl::Seconds(2));
  ExpectEchoThrough(*client, "localhost", server.port);
  EXPECT_EQ(Lookups(*client), 2u);
  EXPECT_EQ(Hits(*client), 1u);
}

TEST(DnsCacheTest, ANameThatDoesNotExistIsKeptForTwoSeconds) {
  TestDnsServer dns;  // knows no names: NXDOMAIN for all
  auto client = StartReactor(ClientOptions(&dns));
  ReactorTestPeer::FreezeDnsCacheClock(*client);
  ExpectConnectFails(*client, To("nosuch.test", 80),
                     absl::StatusCode::kNotFound);
  const int queries = dns.queries("nosuch.test");
  absl::Status cached;
  ExpectConnectFails(*client, To("nosuch.test", 80),
                     absl::StatusCode::kNotFound, &cached);
  EXPECT_NE(cached.message().find("connect nosuch.test:80: resolve nosuch"),
            std::string::npos)
      << cached;
  EXPECT_EQ(dns.queries("nosuch.test"), queries);
  EXPECT_EQ(Lookups(*client), 1u);
  EXPECT_EQ(Hits(*client), 1u);
  EXPECT_EQ(client->Counters().connect_failures, 2u);
  EXPECT_EQ(client->Counters().connect_attempts, 0u);
  ReactorTestPeer::AdvanceDnsCacheClock(*client, absl::Seconds(3));
  ExpectConnectFails(*client, To("nosuch.test", 80),
                     absl::StatusCode::kNotFound);
  EXPECT_EQ(Lookups(*client), 2u);
  EXPECT_EQ(Hits(*client), 1u);
}

TEST(DnsCacheTest, ALookupThatTimedOutIsNotKept) {
  TestDnsServer dns;
  dns.AddSilent("silent.test");
  auto client = StartReactor(ClientOptions(&dns));
  ConnectOptions o = To("silent.test", 80);
  o.resolve_timeout = absl::Milliseconds(50);  // never answered: no race
  ExpectConnectFails(*client, o, absl::StatusCode::kDeadlineExceeded);
  ExpectConnectFails(*client, o, absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(Hits(*client), 0u);
  EXPECT_EQ(Misses(*client), 2u);
}

// Two connects to a name whose answer is held by the server: both wait for
// the one query, and both connect once it is answered.
TEST(DnsCacheTest, ConcurrentConnectsToOneNameShareOneQuery) {
  EchoServer server;
  TestDnsServer dns;
  dns.AddHeld("held.test", {"127.0.0.1"});
  auto client = StartReactor(ClientOptions(&dns));
  auto first = std::make_shared<Record>();
  auto second = std::make_shared<Record>();
  const std::string message = testing::Pattern(20000, 7);
  ASSERT_TRUE(client
                  ->Connect(To("held.test", server.port),
                            EchoingFactory(first, message))
                  .ok());
  ASSERT_TRUE(client
                  ->Connect(To("held.test", server.port),
                            EchoingFactory(second, message))
                  .ok());
  // Both waiting for the answer.
  ASSERT_TRUE(Eventually(
      [&] { return ReactorTestPeer::PendingLookups(*client) == 2; }));
  dns.ReleaseHeld();
  for (auto* record : {&first, &second}) {
    ASSERT_TRUE((*record)->done.WaitFor(kBound));
    EXPECT_TRUE((*record)->status().ok()) << (*record)->status();
    EXPECT_TRUE((*record)->received() == message);
  }
  EXPECT_EQ(Lookups(*client), 1u);
  EXPECT_EQ(Misses(*client), 2u);
  EXPECT_EQ(server.reactor->Counters().accepts, 2u);
  EXPECT_TRUE(Eventually(
      [&] { return ReactorTestPeer::PendingLookups(*client) == 0; }));
}

// Closing one of two connects waiting for one query ends only that one
// (CANCELLED); the other gets the answer and connects.
TEST(DnsCacheTest, CancellingOneWaiterLeavesTheOthersLookupRunning) {
  EchoServer server;
  TestDnsServer dns;
  dns.AddHeld("held.test", {"127.0.0.1"});
  auto client = StartReactor(ClientOptions(&dns));
  auto cancelled = std::make_shared<Record>();
  auto kept = std::make_shared<Record>();
  const std::string message = testing::Pattern(20000, 9);
  auto id = client->Connect(To("held.test", server.port),
                            RecordingFactory(cancelled));
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(
      client
          ->Connect(To("held.test", server.port), EchoingFactory(kept, message))
          .ok());
  ASSERT_TRUE(Eventually(
      [&] { return ReactorTestPeer::PendingLookups(*client) == 2; }));
  EXPECT_TRUE(client->Close(*id));
  ASSERT_TRUE(cancelled->done.WaitFor(kBound));
  EXPECT_FALSE(cancelled->is_opened());
  EXPECT_EQ(cancelled->status().code(), absl::StatusCode::kCancelled)
      << cancelled->status();
  EXPECT_NE(cancelled->status().message().find("closed while connecting"),
            std::string::npos)
      << cancelled->status();
  ASSERT_TRUE(Eventually(
      [&] { return ReactorTestPeer::PendingLookups(*client) == 1; }));
  EXPECT_FALSE(kept->done.HasBeenNotified()) << kept->status();
  dns.ReleaseHeld();
  ASSERT_TRUE(kept->done.WaitFor(kBound));
  EXPECT_TRUE(kept->status().ok()) << kept->status();
  EXPECT_TRUE(kept->received() == message);
  EXPECT_EQ(Lookups(*client), 1u);
  EXPECT_EQ(client->Counters().connect_attempts, 1u);
  EXPECT_EQ(server.reactor->Counters().accepts, 1u);
  EXPECT_TRUE(Eventually(
      [&] { return ReactorTestPeer::PendingLookups(*client) == 0; }));
}

// Stop while two connects wait for one query: both end CANCELLED and
// nothing is left behind (run under ASan too).
TEST(DnsCacheTest, StopCancelsEveryWaiterOfASharedQuery) {
  TestDnsServer dns;
  dns.AddSilent("silent.test");
  auto client = StartReactor(ClientOptions(&dns));
  ConnectOptions o = To("silent.test", 80);
  o.resolve_timeout = absl::Seconds(600);
  std::vector<std::shared_ptr<Record>> records;
  for (int i = 0; i < 2; ++i) {
    records.push_back(std::make_shared<Record>());
    ASSERT_TRUE(client->Connect(o, RecordingFactory(records.back())).ok());
  }
  ASSERT_TRUE(Eventually(
      [&] { return ReactorTestPeer::PendingLookups(*client) == 2; }));
  EXPECT_EQ(Lookups(*client), 1u);
  client->Stop();
  client->Wait();
  for (auto& record : records) {
    ASSERT_TRUE(record->done.WaitFor(kBound));
    EXPECT_FALSE(record->is_opened());
    EXPECT_EQ(record->status().code(), absl::StatusCode::kCancelled)
        << record->status();
  }
  EXPECT_EQ(ReactorTestPeer::PendingLookups(*client), 0u);
}

TEST(DnsCacheTest, TheSizeBoundDropsTheLeastRecentlyUsedName) {
  EchoServer server;
  TestDnsServer dns;
  for (const char* name : {"a.test", "b.test", "c.test"}) {
    dns.Add(name, {"127.0.0.1"});
  }
  ReactorOptions options = ClientOptions(&dns);
  options.dns_cache_max_names = 2;
  auto client = StartReactor(options);
  ExpectEchoThrough(*client, "a.test", server.port);  // lookup 1
  ExpectEchoThrough(*client, "b.test", server.port);  // lookup 2
  ExpectEchoThrough(*client, "a.test", server.port);  // hit: a before b
  EXPECT_EQ(Lookups(*client), 2u);
  EXPECT_EQ(Hits(*client), 1u);
  ExpectEchoThrough(*client, "c.test", server.port);  // lookup 3, drops b
  ExpectEchoThrough(*client, "a.test", server.port);  // hit
  EXPECT_EQ(Lookups(*client), 3u);
  EXPECT_EQ(Hits(*client), 2u);
  ExpectEchoThrough(*client, "b.test", server.port);  // lookup 4, drops c
  EXPECT_EQ(Lookups(*client), 4u);
  EXPECT_EQ(Hits(*client), 2u);
  ExpectEchoThrough(*client, "a.test", server.port);  // hit
  EXPECT_EQ(Hits(*client), 3u);
  EXPECT_EQ(dns.queries("b.test"), 2 * dns.queries("c.test"));
}

TEST(DnsCacheTest, AZeroMaximumTtlDisablesTheCache) {
  EchoServer server;
  TestDnsServer dns;
  dns.Add("echo.test", {"127.0.0.1"});
  ReactorOptions options = ClientOptions(&dns);
  options.dns_cache_max_ttl = absl::ZeroDuration();
  auto client = StartReactor(options);
  ExpectEchoThrough(*client, "echo.test", server.port);
  const int queries = dns.queries("echo.test");
  ExpectEchoThrough(*client, "echo.test", server.port);
  EXPECT_EQ(dns.queries("echo.test"), 2 * queries);
  EXPECT_EQ(Lookups(*client), 2u);
  EXPECT_EQ(Misses(*client), 2u);
  EXPECT_EQ(Hits(*client), 0u);
}

TEST(DnsCacheTest, BadCacheOptionsAreRefused) {
  ReactorOptions options = Threads(1);
  options.dns_cache_max_ttl = absl::Seconds(-1);
  EXPECT_EQ(Reactor::Create(options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options = Threads(1);
  options.dns_cache_max_names = 0;
  EXPECT_EQ(Reactor::Create(options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace baton
