// TlsOptionsCache (Connection::StartTls's contexts): one context per live
// options object, its files read once, failures not kept, and entries of
// options objects gone dropped so the map stays bounded.
#include "lib/internal/tls_options_cache.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>

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

}  // namespace
}  // namespace baton::internal
