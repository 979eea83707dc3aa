// Tests for lib/net/errno_status.
#include "lib/net/errno_status.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace baton::net {
namespace {

TEST(ErrnoStatusTest, CodeFollowsErrno) {
  EXPECT_EQ(ErrnoStatus("connect", ECONNREFUSED).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrnoStatus("open", ENOENT).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ErrnoStatus("accept", EMFILE).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoStatus("bind", EACCES).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoStatus("poll", ETIMEDOUT).code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(ErrnoStatus("setsockopt", EINVAL).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ErrnoStatusTest, AgreesWithAbslForEveryCommonSocketErrno) {
  for (int err : {EAGAIN, EINTR, ECONNRESET, EPIPE, EADDRINUSE, ENOTSOCK, EBADF,
                  ENFILE, ENOBUFS, EHOSTUNREACH}) {
    EXPECT_EQ(ErrnoStatus("x", err).code(), absl::ErrnoToStatusCode(err))
        << err;
    EXPECT_FALSE(ErrnoStatus("x", err).ok()) << err;
  }
}

TEST(ErrnoStatusTest, MessageIsWhatThenStrerror) {
  const absl::Status s = ErrnoStatus("connect to 127.0.0.1:1", ECONNREFUSED);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(std::string(s.message()), std::string("connect to 127.0.0.1:1: ") +
                                          std::strerror(ECONNREFUSED));
}

TEST(ErrnoStatusTest, ErrnoZeroIsStillAnError) {
  // Callers pass errno after a failed call; 0 would be a caller bug, and
  // absl maps it to OK: the failure must not turn into success.
  const absl::Status s = ErrnoStatus("read", 0);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(std::string(s.message()), "read: errno not set");
}

}  // namespace
}  // namespace baton::net
