// Internal header: ScopedFd, a move-only owner of a file descriptor.
#ifndef BATON_INTERNAL_SCOPED_FD_H_
#define BATON_INTERNAL_SCOPED_FD_H_

namespace baton::internal {

// Owns one file descriptor and closes it on destruction. Move-only.
// Descriptors created by baton are always close-on-exec.
class ScopedFd {
 public:
  ScopedFd() = default;
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() { Reset(); }

  ScopedFd(ScopedFd&& other) noexcept : fd_(other.Release()) {}
  ScopedFd& operator=(ScopedFd&& other) noexcept {
    if (this != &other) Reset(other.Release());
    return *this;
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

  // Gives up ownership without closing.
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

  // Closes the current descriptor (if any) and takes `fd`.
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

}  // namespace baton::internal

#endif  // BATON_INTERNAL_SCOPED_FD_H_
