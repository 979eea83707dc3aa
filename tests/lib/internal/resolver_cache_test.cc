// ResolverCache on its own: expiry at the TTL given and at the maximum,
// nothing kept for a TTL <= 0 or a zero maximum, replacement, NOT_FOUND
// kept like an answer, the size bound dropping the least recently used
// entry, and keys telling address families apart. Each cache's clock is
// frozen: time moves through AdvanceClockForTest only.
#include "lib/internal/resolver_cache.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"

namespace baton::internal {
namespace {

constexpr int64_t kSecond = 1000000000;

// One IPv4 address, port 0.
LookupResult V4(const char* text) {
  ResolvedAddress a;
  auto* sin = reinterpret_cast<sockaddr_in*>(&a.address);
  sin->sin_family = AF_INET;
  EXPECT_EQ(inet_pton(AF_INET, text, &sin->sin_addr), 1);
  a.length = sizeof(sockaddr_in);
  return std::vector<ResolvedAddress>{a};
}

// The first address of a cached answer, as text ("" for none).
std::string First(const std::optional<LookupResult>& found) {
  if (!found.has_value() || !found->ok() || (*found)->empty()) return "";
  const auto* sin = reinterpret_cast<const sockaddr_in*>(&(**found)[0].address);
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
  return text;
}

TEST(ResolverCacheTest, KeepsAnAnswerUntilItsTtl) {
  ResolverCache cache(60 * kSecond, 16);
  cache.FreezeClockForTest();
  EXPECT_FALSE(cache.Find("a.test", AF_UNSPEC).has_value());
  cache.Insert("a.test", AF_UNSPEC, V4("10.0.0.1"), 30 * kSecond);
  EXPECT_EQ(First(cache.Find("a.test", AF_UNSPEC)), "10.0.0.1");
  cache.AdvanceClockForTest(30 * kSecond - 1);
  EXPECT_EQ(First(cache.Find("a.test", AF_UNSPEC)), "10.0.0.1");
  cache.AdvanceClockForTest(1);
  EXPECT_FALSE(cache.Find("a.test", AF_UNSPEC).has_value());
  EXPECT_EQ(cache.size(), 0u);  // dropped when found expired
}

TEST(ResolverCacheTest, TheMaximumTtlCapsEveryEntry) {
  ResolverCache cache(10 * kSecond, 16);
  cache.FreezeClockForTest();
  cache.Insert("a.test", AF_UNSPEC, V4("10.0.0.1"), 3600 * kSecond);
  cache.AdvanceClockForTest(10 * kSecond - 1);
  EXPECT_TRUE(cache.Find("a.test", AF_UNSPEC).has_value());
  cache.AdvanceClockForTest(1);
  EXPECT_FALSE(cache.Find("a.test", AF_UNSPEC).has_value());
}

TEST(ResolverCacheTest, NothingIsKeptForATtlOfZeroOrAZeroMaximum) {
  ResolverCache cache(60 * kSecond, 16);
  cache.FreezeClockForTest();
  cache.Insert("a.test", AF_UNSPEC, V4("10.0.0.1"), 0);
  EXPECT_FALSE(cache.Find("a.test", AF_UNSPEC).has_value());
  // A TTL of zero also drops what was kept.
  cache.Insert("a.test", AF_UNSPEC, V4("10.0.0.1"), kSecond);
  cache.Insert("a.test", AF_UNSPEC, V4("10.0.0.2"), 0);
  EXPECT_FALSE(cache.Find("a.test", AF_UNSPEC).has_value());
  EXPECT_EQ(cache.size(), 0u);

  ResolverCache disabled(0, 16);
  disabled.FreezeClockForTest();
  EXPECT_FALSE(disabled.enabled());
  disabled.Insert("a.test", AF_UNSPEC, V4("10.0.0.1"), kSecond);
  EXPECT_FALSE(disabled.Find("a.test", AF_UNSPEC).has_value());
  EXPECT_EQ(disabled.size(), 0u);
}

TEST(ResolverCacheTest, ANewAnswerReplacesTheOld) {
  ResolverCache cache(60 * kSecond, 16);
  cache.FreezeClockForTest();
  cache.Insert("a.test", AF_UNSPEC, V4("10.0.0.1"), 5 * kSecond);
  cache.Insert("a.test", AF_UNSPEC, V4("10.0.0.2"), 20 * kSecond);
  EXPECT_EQ(cache.size(), 1u);
  cache.AdvanceClockForTest(10 * kSecond);
  EXPECT_EQ(First(cache.Find("a.test", AF_UNSPEC)), "10.0.0.2");
}

TEST(ResolverCacheTest, NotFoundIsKeptLikeAnAnswer) {
  ResolverCache cache(60 * kSecond, 16);
  cache.FreezeClockForTest();
  cache.Insert("no.test", AF_UNSPEC, absl::NotFoundError("resolve no.test"),
               2 * kSecond);
  std::optional<LookupResult> found = cache.Find("no.test", AF_UNSPEC);
  ASSERT_TRUE(found.has_value());
  EXPECT_TRUE(absl::IsNotFound(found->status())) << found->status();
  cache.AdvanceClockForTest(2 * kSecond);
  EXPECT_FALSE(cache.Find("no.test", AF_UNSPEC).has_value());
}

TEST(ResolverCacheTest, TheSizeBoundDropsTheLeastRecentlyUsed) {
  ResolverCache cache(60 * kSecond, 3);
  cache.FreezeClockForTest();
  cache.Insert("a.test", AF_UNSPEC, V4("10.0.0.1"), 30 * kSecond);
  cache.Insert("b.test", AF_UNSPEC, V4("10.0.0.2"), 30 * kSecond);
  cache.Insert("c.test", AF_UNSPEC, V4("10.0.0.3"), 30 * kSecond);
  EXPECT_TRUE(cache.Find("a.test", AF_UNSPEC).has_value());         // a: newest
  cache.Insert("d.test", AF_UNSPEC, V4("10.0.0.4"), 30 * kSecond);  // drops b
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_FALSE(cache.Find("b.test", AF_UNSPEC).has_value());
  EXPECT_EQ(First(cache.Find("a.test", AF_UNSPEC)), "10.0.0.1");
  EXPECT_EQ(First(cache.Find("c.test", AF_UNSPEC)), "10.0.0.3");
  EXPECT_EQ(First(cache.Find("d.test", AF_UNSPEC)), "10.0.0.4");
  // Many more names: never more than the bound.
  for (int i = 0; i < 100; ++i) {
    cache.Insert("n" + std::to_string(i) + ".test", AF_UNSPEC, V4("10.0.1.1"),
                 30 * kSecond);
    EXPECT_LE(cache.size(), 3u);
  }
  EXPECT_TRUE(cache.Find("n99.test", AF_UNSPEC).has_value());
  EXPECT_FALSE(cache.Find("a.test", AF_UNSPEC).has_value());
}

TEST(ResolverCacheTest, TheFamilyAskedForIsPartOfTheKey) {
  ResolverCache cache(60 * kSecond, 16);
  cache.FreezeClockForTest();
  cache.Insert("a.test", AF_INET, V4("10.0.0.1"), 30 * kSecond);
  EXPECT_FALSE(cache.Find("a.test", AF_UNSPEC).has_value());
  EXPECT_FALSE(cache.Find("a.test", AF_INET6).has_value());
  EXPECT_EQ(First(cache.Find("a.test", AF_INET)), "10.0.0.1");
}

// Finds and inserts from several threads at once (run under TSan too).
TEST(ResolverCacheTest, ManyThreadsAtOnce) {
  ResolverCache cache(60 * kSecond, 8);
  cache.FreezeClockForTest();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t] {
      for (int i = 0; i < 2000; ++i) {
        const std::string name = "n" + std::to_string((i + t) % 12) + ".test";
        if (!cache.Find(name, AF_UNSPEC).has_value()) {
          cache.Insert(name, AF_UNSPEC, V4("10.0.0.1"), 30 * kSecond);
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_LE(cache.size(), 8u);
}

}  // namespace
}  // namespace baton::internal
