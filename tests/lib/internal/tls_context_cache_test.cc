// TlsClientContextCache: one context per live options object, none kept
// for dead ones, bounded whatever the caller does, errors not cached.
#include "lib/internal/tls_context_cache.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "tests/util/test_certificates.h"

namespace baton::internal {
namespace {

class TlsContextCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<testing::TestPki> pki = testing::WriteTestPki("cache");
    ASSERT_TRUE(pki.ok()) << pki.status();
    ca_file_ = pki->ca.certificate_file;
  }
  std::shared_ptr<const TlsClientOptions> NewOptions() {
    auto options = std::make_shared<TlsClientOptions>();
    options->ca_file = ca_file_;
    options->server_name = "localhost";
    return options;
  }

  std::string ca_file_;
};

TEST_F(TlsContextCacheTest, OneOptionsObjectGetsOneContext) {
  TlsClientContextCache cache;
  const std::shared_ptr<const TlsClientOptions> options = NewOptions();
  absl::StatusOr<std::shared_ptr<const tls::TlsContext>> first =
      cache.Get(options);
  ASSERT_TRUE(first.ok()) << first.status();
  for (int i = 0; i < 1000; ++i) {
    absl::StatusOr<std::shared_ptr<const tls::TlsContext>> again =
        cache.Get(options);
    ASSERT_TRUE(again.ok());
    ASSERT_EQ(again->get(), first->get());
  }
  EXPECT_EQ(cache.size(), 1u);
}

TEST_F(TlsContextCacheTest, AnotherObjectWithTheSameFieldsGetsItsOwn) {
  TlsClientContextCache cache;
  const auto a = NewOptions();
  const auto b = NewOptions();
  absl::StatusOr<std::shared_ptr<const tls::TlsContext>> for_a = cache.Get(a);
  absl::StatusOr<std::shared_ptr<const tls::TlsContext>> for_b = cache.Get(b);
  ASSERT_TRUE(for_a.ok() && for_b.ok());
  EXPECT_NE(for_a->get(), for_b->get());
  EXPECT_EQ(cache.size(), 2u);
}

TEST_F(TlsContextCacheTest, StaysBoundedForNewObjectsDeadOrAlive) {
  TlsClientContextCache cache(/*capacity=*/4);
  for (int i = 0; i < 50; ++i) {  // made, used once, dropped
    ASSERT_TRUE(cache.Get(NewOptions()).ok());
    ASSERT_LE(cache.size(), 4u);
  }
  std::vector<std::shared_ptr<const TlsClientOptions>> kept;
  for (int i = 0; i < 50; ++i) {  // made and kept by the caller
    kept.push_back(NewOptions());
    ASSERT_TRUE(cache.Get(kept.back()).ok());
    ASSERT_LE(cache.size(), 4u);
  }
  // The last one is still cached.
  absl::StatusOr<std::shared_ptr<const tls::TlsContext>> last =
      cache.Get(kept.back());
  absl::StatusOr<std::shared_ptr<const tls::TlsContext>> again =
      cache.Get(kept.back());
  ASSERT_TRUE(last.ok() && again.ok());
  EXPECT_EQ(last->get(), again->get());
}

TEST_F(TlsContextCacheTest, ADeadObjectsAddressIsNotMistakenForIt) {
  TlsClientContextCache cache;
  auto first = NewOptions();
  const void* address = first.get();
  absl::StatusOr<std::shared_ptr<const tls::TlsContext>> old = cache.Get(first);
  ASSERT_TRUE(old.ok());
  const tls::TlsContext* old_context = old->get();
  old = absl::StatusOr<std::shared_ptr<const tls::TlsContext>>();
  first.reset();
  // A new object, possibly at the same address, asking for no peer
  // verification: it must get a context of its own options.
  for (int i = 0; i < 100; ++i) {
    auto next = std::make_shared<TlsClientOptions>();
    next->verify_peer = false;
    absl::StatusOr<std::shared_ptr<const tls::TlsContext>> context =
        cache.Get(next);
    ASSERT_TRUE(context.ok());
    EXPECT_FALSE((*context)->verify_peer());
    if (next.get() == address) {
      EXPECT_NE(context->get(), old_context);
      break;
    }
  }
}

TEST_F(TlsContextCacheTest, AnErrorIsReturnedAndNotCached) {
  TlsClientContextCache cache;
  auto options = std::make_shared<TlsClientOptions>();
  options->ca_file = "/nonexistent/ca.pem";
  EXPECT_EQ(cache.Get(options).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cache.size(), 0u);
}

}  // namespace
}  // namespace baton::internal
