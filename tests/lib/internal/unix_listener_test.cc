// Tests for lib/internal/unix_listener: the socket file's life (stale files
// replaced, live ones and other files refused, mode applied, removal only of
// our own file) and abstract names.
#include "lib/internal/unix_listener.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include "tests/util/unix_socket.h"

namespace baton::internal {
namespace {

using testing::ConnectUnix;
using testing::UnixTempDir;

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

bool IsSocket(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

TEST(CreateUnixListenerTest, ListensOnAPathAndRemoveUnlinksIt) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.Path("a.sock");
  absl::StatusOr<UnixListener> l = CreateUnixListener(path, 16, -1);
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_TRUE(IsSocket(path));
  EXPECT_EQ(l->file.path(), path);
  const int client = ConnectUnix(path);
  ASSERT_GE(client, 0) << std::strerror(errno);
  ::close(client);
  l->file.Remove();
  EXPECT_FALSE(Exists(path));
  l->file.Remove();  // idempotent
}

TEST(CreateUnixListenerTest, DestructionRemovesTheFile) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.Path("b.sock");
  {
    absl::StatusOr<UnixListener> l = CreateUnixListener(path, 16, -1);
    ASSERT_TRUE(l.ok()) << l.status();
    ASSERT_TRUE(IsSocket(path));
  }
  EXPECT_FALSE(Exists(path));
}

TEST(CreateUnixListenerTest, ModeIsApplied) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  for (const int mode : {0600, 0660, 0777}) {
    const std::string path = dir.Path("mode.sock");
    absl::StatusOr<UnixListener> l = CreateUnixListener(path, 16, mode);
    ASSERT_TRUE(l.ok()) << l.status();
    struct stat st;
    ASSERT_EQ(::lstat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, static_cast<mode_t>(mode))
        << std::oct << mode;
  }
  EXPECT_EQ(
      CreateUnixListener(dir.Path("bad.sock"), 16, 010000).status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST(CreateUnixListenerTest, StaleSocketFileIsReplaced) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.Path("stale.sock");
  ASSERT_TRUE(testing::MakeStaleSocketFile(path));
  ASSERT_TRUE(IsSocket(path));
  absl::StatusOr<UnixListener> l = CreateUnixListener(path, 16, -1);
  ASSERT_TRUE(l.ok()) << l.status();
  const int client = ConnectUnix(path);
  EXPECT_GE(client, 0) << std::strerror(errno);
  if (client >= 0) ::close(client);
}

TEST(CreateUnixListenerTest, LivePathIsRefusedAndLeftAlone) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.Path("live.sock");
  absl::StatusOr<UnixListener> first = CreateUnixListener(path, 16, -1);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<UnixListener> second = CreateUnixListener(path, 16, -1);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists)
      << second.status();
  EXPECT_NE(second.status().message().find(path), std::string::npos);
  // The first listener still serves.
  const int client = ConnectUnix(path);
  EXPECT_GE(client, 0) << std::strerror(errno);
  if (client >= 0) ::close(client);
}

TEST(CreateUnixListenerTest, RegularFileIsRefusedAndLeftAlone) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.Path("file.sock");
  { std::ofstream(path) << "keep me"; }
  absl::StatusOr<UnixListener> l = CreateUnixListener(path, 16, -1);
  EXPECT_EQ(l.status().code(), absl::StatusCode::kFailedPrecondition)
      << l.status();
  EXPECT_NE(l.status().message().find("not a socket"), std::string::npos);
  std::ifstream in(path);
  std::string kept;
  std::getline(in, kept);
  EXPECT_EQ(kept, "keep me");
}

TEST(CreateUnixListenerTest, RemoveLeavesAFileThatReplacedOurs) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.Path("replaced.sock");
  absl::StatusOr<UnixListener> l = CreateUnixListener(path, 16, -1);
  ASSERT_TRUE(l.ok()) << l.status();
  // Someone else removes our file and puts their own at the path.
  ASSERT_EQ(::unlink(path.c_str()), 0);
  ASSERT_TRUE(testing::MakeStaleSocketFile(path));
  l->file.Remove();
  EXPECT_TRUE(IsSocket(path));
}

TEST(CreateUnixListenerTest, AbstractName) {
  const std::string name = testing::AbstractName("listener");
  absl::StatusOr<UnixListener> l = CreateUnixListener(name, 16, -1);
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_TRUE(l->file.path().empty());
  const int client = ConnectUnix(name);
  EXPECT_GE(client, 0) << std::strerror(errno);
  if (client >= 0) ::close(client);
  absl::StatusOr<UnixListener> again = CreateUnixListener(name, 16, -1);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists)
      << again.status();
  EXPECT_EQ(CreateUnixListener(testing::AbstractName("mode"), 16, 0600)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace baton::internal
