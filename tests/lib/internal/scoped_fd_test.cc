// Tests for lib/internal/scoped_fd: a move-only owner that closes its
// descriptor exactly once.
#include "lib/internal/scoped_fd.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <type_traits>
#include <utility>

namespace baton::internal {
namespace {

static_assert(!std::is_copy_constructible_v<ScopedFd>);
static_assert(!std::is_copy_assignable_v<ScopedFd>);
static_assert(std::is_nothrow_move_constructible_v<ScopedFd>);
static_assert(std::is_nothrow_move_assignable_v<ScopedFd>);

bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

// A fresh descriptor to own (a pipe's read end; the write end is closed).
int NewFd() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return -1;
  ::close(fds[1]);
  return fds[0];
}

TEST(ScopedFdTest, DefaultIsEmpty) {
  ScopedFd fd;
  EXPECT_FALSE(fd.valid());
  EXPECT_EQ(fd.get(), -1);
}

TEST(ScopedFdTest, ClosesOnDestruction) {
  const int raw = NewFd();
  ASSERT_GE(raw, 0);
  {
    ScopedFd fd(raw);
    EXPECT_TRUE(fd.valid());
    EXPECT_EQ(fd.get(), raw);
    EXPECT_TRUE(IsOpen(raw));
  }
  EXPECT_FALSE(IsOpen(raw));
}

TEST(ScopedFdTest, MoveConstructionTransfersOwnership) {
  const int raw = NewFd();
  ScopedFd a(raw);
  ScopedFd b(std::move(a));
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): checked state
  EXPECT_EQ(b.get(), raw);
  { ScopedFd c(std::move(b)); }
  EXPECT_FALSE(IsOpen(raw));
}

TEST(ScopedFdTest, MoveAssignmentClosesTheOldDescriptor) {
  const int first = NewFd();
  const int second = NewFd();
  ScopedFd a(first);
  ScopedFd b(second);
  a = std::move(b);
  EXPECT_FALSE(IsOpen(first));
  EXPECT_TRUE(IsOpen(second));
  EXPECT_EQ(a.get(), second);
  EXPECT_FALSE(b.valid());  // NOLINT(bugprone-use-after-move)
}

TEST(ScopedFdTest, SelfMoveAssignmentKeepsTheDescriptor) {
  const int raw = NewFd();
  ScopedFd a(raw);
  ScopedFd& alias = a;
  a = std::move(alias);
  EXPECT_EQ(a.get(), raw);
  EXPECT_TRUE(IsOpen(raw));
}

TEST(ScopedFdTest, ReleaseGivesUpOwnershipWithoutClosing) {
  const int raw = NewFd();
  int released;
  {
    ScopedFd fd(raw);
    released = fd.Release();
    EXPECT_FALSE(fd.valid());
    EXPECT_EQ(fd.Release(), -1);
  }
  EXPECT_EQ(released, raw);
  EXPECT_TRUE(IsOpen(raw));
  ::close(raw);
}

TEST(ScopedFdTest, ResetClosesTheOldAndTakesTheNew) {
  const int first = NewFd();
  const int second = NewFd();
  ScopedFd fd(first);
  fd.Reset(second);
  EXPECT_FALSE(IsOpen(first));
  EXPECT_EQ(fd.get(), second);
  fd.Reset();
  EXPECT_FALSE(IsOpen(second));
  EXPECT_FALSE(fd.valid());
  fd.Reset();  // resetting an empty owner is a no-op
  EXPECT_FALSE(fd.valid());
}

}  // namespace
}  // namespace baton::internal
