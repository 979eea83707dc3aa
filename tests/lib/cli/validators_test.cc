// Tests for lib/cli/validators: the gflags validators the servers and
// clients share accept their whole range, refuse what lies outside it, and
// say which flag was wrong and what it takes.
#include "lib/cli/validators.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace baton::cli {
namespace {

using ::testing::HasSubstr;

struct Result {
  bool ok;
  std::string message;  // what the validator printed on stderr
};

template <typename Validator, typename T>
Result Check(Validator validate, const char* flag, T value) {
  ::testing::internal::CaptureStderr();
  const bool ok = validate(flag, value);
  return {ok, ::testing::internal::GetCapturedStderr()};
}

// A good value passes silently.
template <typename Validator, typename T>
void ExpectAccepted(Validator validate, const char* flag, T value) {
  const Result r = Check(validate, flag, value);
  EXPECT_TRUE(r.ok) << flag << "=" << value;
  EXPECT_EQ(r.message, "") << flag << "=" << value;
}

// A bad value fails with one line that starts with "--flag=value: " and
// holds `why`.
template <typename Validator, typename T>
void ExpectRefused(Validator validate, const char* flag, T value,
                   const std::string& shown, const std::string& why) {
  const Result r = Check(validate, flag, value);
  EXPECT_FALSE(r.ok) << flag << "=" << shown;
  EXPECT_EQ(r.message.rfind(std::string("--") + flag + "=" + shown + ": ", 0),
            0u)
      << r.message;
  EXPECT_THAT(r.message, HasSubstr(why));
  EXPECT_EQ(r.message.back(), '\n') << r.message;
}

TEST(ValidatorsTest, Positive) {
  ExpectAccepted(&ValidatePositive<int32_t>, "threads", 1);
  ExpectAccepted(&ValidatePositive<double>, "duration", 0.5);
  ExpectRefused(&ValidatePositive<int32_t>, "threads", 0, "0",
                "must be positive");
  ExpectRefused(&ValidatePositive<int64_t>, "max_connections", int64_t{-1},
                "-1", "must be positive");
  ExpectRefused(&ValidatePositive<double>, "duration", -0.5, "-0.5",
                "must be positive");
}

TEST(ValidatorsTest, NonNegative) {
  ExpectAccepted(&ValidateNonNegative<int64_t>, "idle_timeout_ms", int64_t{0});
  ExpectAccepted(&ValidateNonNegative<double>, "warmup", 2.5);
  ExpectRefused(&ValidateNonNegative<int32_t>, "slow_connections", -1, "-1",
                "must not be negative");
  ExpectRefused(&ValidateNonNegative<double>, "warmup", -0.1, "-0.1",
                "must not be negative");
}

TEST(ValidatorsTest, InRangeTakesBothEndsAndSaysTheRange) {
  const auto seconds = [](const char* flag, int64_t value) {
    return ValidateInRange(flag, value, 0, 60, " seconds");
  };
  ExpectAccepted(seconds, "defer_accept_seconds", 0);
  ExpectAccepted(seconds, "defer_accept_seconds", 60);
  const Result r = Check(seconds, "defer_accept_seconds", 61);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.message, "--defer_accept_seconds=61: must be in 0..60 seconds\n");
  ExpectRefused(seconds, "defer_accept_seconds", -1, "-1", "0..60");
  const auto wide = [](const char* flag, int64_t value) {
    return ValidateInRange(flag, value, -1, int64_t{1} << 40);
  };
  ExpectAccepted(wide, "n", int64_t{1} << 40);
  ExpectRefused(wide, "n", (int64_t{1} << 40) + 1, "1099511627777",
                "-1..1099511627776");
}

TEST(ValidatorsTest, ListenPortMayBeZero) {
  const auto listen = &ValidatePort<PortUse::kListen>;
  for (int32_t port : {0, 1, 12345, 65535}) {
    ExpectAccepted(listen, "port", port);
  }
  for (int32_t port : {-1, 65536, 70000}) {
    ExpectRefused(listen, "port", port, std::to_string(port), "0..65535");
  }
  EXPECT_THAT(Check(listen, "port", 70000).message, HasSubstr("free"));
}

TEST(ValidatorsTest, ConnectPortMayNotBeZero) {
  const auto connect = &ValidatePort<PortUse::kConnect>;
  for (int32_t port : {1, 80, 65535}) {
    ExpectAccepted(connect, "target_port", port);
  }
  for (int32_t port : {0, -1, 65536}) {
    ExpectRefused(connect, "target_port", port, std::to_string(port),
                  "1..65535");
  }
  EXPECT_THAT(Check(connect, "target_port", 0).message,
              HasSubstr("connect to"));
}

TEST(ValidatorsTest, Byte) {
  ExpectAccepted(&ValidateByte, "slow_byte", 0);
  ExpectAccepted(&ValidateByte, "slow_byte", 255);
  ExpectRefused(&ValidateByte, "slow_byte", 256, "256", "0..255");
  ExpectRefused(&ValidateByte, "slow_byte", -1, "-1", "0..255");
}

TEST(ValidatorsTest, AddressLiteral) {
  for (const char* address : {"127.0.0.1", "::1", "0.0.0.0"}) {
    ExpectAccepted(&ValidateAddressLiteral, "address", std::string(address));
  }
  for (const char* address : {"localhost", "[::1]", ""}) {
    ExpectRefused(&ValidateAddressLiteral, "host", std::string(address),
                  address, "not an IPv4 or IPv6 address literal");
  }
}

TEST(ValidatorsTest, AddressOrHostName) {
  for (const char* address :
       {"127.0.0.1", "::1", "0.0.0.0", "localhost", "db.internal"}) {
    ExpectAccepted(&ValidateAddressOrHostName, "address", std::string(address));
  }
  for (const char* address : {"[::1]", "", "1.2.3", "bad name", "a..b"}) {
    ExpectRefused(&ValidateAddressOrHostName, "host", std::string(address),
                  address,
                  "neither an IPv4 or IPv6 address literal nor a host");
  }
}

TEST(ValidatorsTest, AddressOrUnix) {
  for (const char* address :
       {"127.0.0.1", "::1", "localhost", "db.internal", "unix:/run/echo.sock",
        "unix:@echo", "unix:rel"}) {
    ExpectAccepted(&ValidateAddressOrUnix, "address", std::string(address));
  }
  for (const char* address : {"[::1]", "", "bad name", "a..b"}) {
    ExpectRefused(&ValidateAddressOrUnix, "address", std::string(address),
                  address,
                  "neither an IPv4 or IPv6 address literal nor a host");
  }
  ExpectRefused(&ValidateAddressOrUnix, "address", std::string("unix:"),
                "unix:", "empty Unix socket path");
  ExpectRefused(&ValidateAddressOrUnix, "host", std::string("unix:@"), "unix:@",
                "empty abstract Unix socket name");
  const std::string too_long = "unix:/" + std::string(200, 'x');
  ExpectRefused(&ValidateAddressOrUnix, "host", too_long, too_long,
                "longer than 107 bytes");
}

}  // namespace
}  // namespace baton::cli
