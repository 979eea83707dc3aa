// Tests for lib/cli/validators: the gflags validators the servers and
// clients share.
#include "lib/cli/validators.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace baton::cli {
namespace {

TEST(ValidatorsTest, Positive) {
  EXPECT_TRUE(ValidatePositive<int32_t>("n", 1));
  EXPECT_TRUE(ValidatePositive<double>("d", 0.5));
  EXPECT_FALSE(ValidatePositive<int32_t>("n", 0));
  EXPECT_FALSE(ValidatePositive<int64_t>("n", -1));
}

TEST(ValidatorsTest, NonNegative) {
  EXPECT_TRUE(ValidateNonNegative<int64_t>("n", 0));
  EXPECT_TRUE(ValidateNonNegative<double>("d", 2.5));
  EXPECT_FALSE(ValidateNonNegative<int32_t>("n", -1));
  EXPECT_FALSE(ValidateNonNegative<double>("d", -0.1));
}

TEST(ValidatorsTest, AddressLiteral) {
  EXPECT_TRUE(ValidateAddressLiteral("address", "127.0.0.1"));
  EXPECT_TRUE(ValidateAddressLiteral("address", "::1"));
  EXPECT_TRUE(ValidateAddressLiteral("address", "0.0.0.0"));
  EXPECT_FALSE(ValidateAddressLiteral("address", "localhost"));
  EXPECT_FALSE(ValidateAddressLiteral("address", "[::1]"));
  EXPECT_FALSE(ValidateAddressLiteral("address", ""));
}

}  // namespace
}  // namespace baton::cli
