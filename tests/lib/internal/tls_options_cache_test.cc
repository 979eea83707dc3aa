// TlsOptionsCache (the contexts of Connection::StartTls and
// Reactor::Connect): one context per live options object, its files read
// once, a dead object's address not mistaken for it, failures not kept, and
// the map bounded whether the callers' options objects die or live.
#include "lib/internal/tls_options_cache.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "baton/tls.h"
#include "tests/util/test_certificates.h"

namespace baton::internal {
namespace {

class TlsOptionsCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<testing::TestPki> pki = testing::WriteTestPki("cache");
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *pki;
  }
  std::shared_ptr<TlsServerOptions> Server() const {
    auto options = std::make_shared<TlsServerOptions>();
    options->certificate_chain_file = pki_.server.certificate_file;
    options->private_key_file = pki_.server.key_file;
    return options;
  }
  std::shared_ptr<const TlsClientOptions> Client() const {
    auto options = std::make_shared<TlsClientOptions>();
    options->ca_file = pki_.ca.certificate_file;
    options->server_name = "localhost";
    return options;
  }

  testing::TestPki pki_;
  TlsOptionsCache cache_;
};

TEST_F(TlsOptionsCacheTest, OneOptionsObjectReadsItsFilesOnce) {
  std::shared_ptr<const TlsServerOptions> options = Server();
  absl::StatusOr<TlsOptionsCache::Context> first = cache_.Get(options);
  ASSERT_TRUE(first.ok()) << first.status();
  // The files are gone: only the context built before can serve.
  ASSERT_EQ(std::remove(pki_.server.certificate_file.c_str()), 0);
  absl::StatusOr<TlsOptionsCache::Context> again = cache_.Get(options);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->get(), first->get());
  // Another object with the same fields is another key: built anew, and
  // the missing file is its error.
  absl::StatusOr<TlsOptionsCache::Context> other =
      cache_.Get(std::shared_ptr<const TlsServerOptions>(
          std::make_shared<TlsServerOptions>(*options)));
  EXPECT_EQ(other.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TlsOptionsCacheTest, FailuresAreNotKept) {
  auto options = Server();
  const std::string key = options->private_key_file;
  options->private_key_file = key + ".missing";
  std::shared_ptr<const TlsServerOptions> bad = options;
  EXPECT_FALSE(cache_.Get(bad).ok());
  EXPECT_EQ(cache_.size(), 0u);
}

TEST_F(TlsOptionsCacheTest, ServerAndClientOptionsBuildTheirRoles) {
  auto client = std::make_shared<TlsClientOptions>();
  client->ca_file = pki_.ca.certificate_file;
  absl::StatusOr<TlsOptionsCache::Context> c =
      cache_.Get(std::shared_ptr<const TlsClientOptions>(client));
  absl::StatusOr<TlsOptionsCache::Context> s =
      cache_.Get(std::shared_ptr<const TlsServerOptions>(Server()));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE((*c)->is_server());
  EXPECT_TRUE((*s)->is_server());
}

TEST_F(TlsOptionsCacheTest, OptionsObjectsThatDiedAreDropped) {
  std::shared_ptr<const TlsServerOptions> kept = Server();
  ASSERT_TRUE(cache_.Get(kept).ok());
  for (int i = 0; i < 200; ++i) {
    std::shared_ptr<const TlsServerOptions> once = Server();
    ASSERT_TRUE(cache_.Get(once).ok());
  }
  // Swept whenever the map doubles: a handful of dead entries at most.
  EXPECT_LE(cache_.size(), 16u);
  absl::StatusOr<TlsOptionsCache::Context> still = cache_.Get(kept);
  ASSERT_TRUE(still.ok());
  absl::StatusOr<TlsOptionsCache::Context> same = cache_.Get(kept);
  EXPECT_EQ(still->get(), same->get());
}

TEST_F(TlsOptionsCacheTest, AnotherObjectWithTheSameFieldsGetsItsOwn) {
  const auto a = Client();
  const auto b = Client();
  absl::StatusOr<TlsOptionsCache::Context> for_a = cache_.Get(a);
  absl::StatusOr<TlsOptionsCache::Context> for_b = cache_.Get(b);
  ASSERT_TRUE(for_a.ok() && for_b.ok());
  EXPECT_NE(for_a->get(), for_b->get());
  EXPECT_EQ(cache_.size(), 2u);
}

TEST_F(TlsOptionsCacheTest, StaysBoundedForNewObjectsDeadOrAlive) {
  TlsOptionsCache cache(/*capacity=*/4);
  for (int i = 0; i < 50; ++i) {  // made, used once, dropped
    ASSERT_TRUE(cache.Get(Client()).ok());
    ASSERT_LE(cache.size(), 4u);
  }
  std::vector<std::shared_ptr<const TlsClientOptions>> kept;
  for (int i = 0; i < 50; ++i) {  // made and kept by the caller
    kept.push_back(Client());
    ASSERT_TRUE(cache.Get(kept.back()).ok());
    ASSERT_LE(cache.size(), 4u);
  }
  // The last one is still cached.
  absl::StatusOr<TlsOptionsCache::Context> last = cache.Get(kept.back());
  absl::StatusOr<TlsOptionsCache::Context> again = cache.Get(kept.back());
  ASSERT_TRUE(last.ok() && again.ok());
  EXPECT_EQ(last->get(), again->get());
}

TEST_F(TlsOptionsCacheTest, ADeadObjectsAddressIsNotMistakenForIt) {
  std::shared_ptr<const TlsClientOptions> first = Client();
  const void* address = first.get();
  absl::StatusOr<TlsOptionsCache::Context> old = cache_.Get(first);
  ASSERT_TRUE(old.ok());
  const tls::TlsContext* old_context = old->get();
  // The options object dies; its context stays alive (held by `old`), so
  // no new context can take its address.
  first.reset();
  // A new object, possibly at the same address, asking for no peer
  // verification: it must get a context of its own options.
  for (int i = 0; i < 100; ++i) {
    auto next = std::make_shared<TlsClientOptions>();
    next->verify_peer = false;
    absl::StatusOr<TlsOptionsCache::Context> context =
        cache_.Get(std::shared_ptr<const TlsClientOptions>(next));
    ASSERT_TRUE(context.ok()) << context.status();
    EXPECT_FALSE((*context)->verify_peer());
    if (next.get() == address) {
      EXPECT_NE(context->get(), old_context);
      break;
    }
  }
}

}  // namespace
}  // namespace baton::internal
