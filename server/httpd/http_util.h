// Internal header (HTTP server): request-target normalisation, safe opening
// beneath the document root, content types, dates, ranges and directory
// listings. Pure functions, unit-tested in tests/server/http/.
#ifndef BATON_SERVER_HTTPD_HTTP_UTIL_H_
#define BATON_SERVER_HTTPD_HTTP_UTIL_H_

#include <sys/stat.h>

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace baton::http {

// Turns a request target ("/a/b%20c/?q=1") into a path relative to the
// document root ("a/b c/"; "" is the root itself). Percent-decodes,
// removes "." and ".." segments, keeps a trailing slash. Refuses (status
// InvalidArgument, answered 400) anything that is neither origin-form nor
// an absolute-form http(s) URI without userinfo (RFC 9112 3.2.2: its path
// is used, the authority ignored), has bad escapes, decodes to NUL or
// control bytes, contains a backslash or an encoded slash, or whose ".."
// would climb above the root.
absl::StatusOr<std::string> NormalizeTarget(absl::string_view target);

// True if a segment of `path` (from NormalizeTarget) starts with '.'
// (".git", ".env", "a/.hidden/b").
bool HasDotSegment(absl::string_view path);

// Percent-encodes each segment of `path` ("x?y/50%/" -> "x%3Fy/50%25/"),
// keeping the slashes.
std::string PercentEncodePath(absl::string_view path);

// Opens `relative` (from NormalizeTarget) beneath the directory `root_fd`,
// never following anything out of it: openat2(RESOLVE_BENEATH |
// RESOLVE_NO_MAGICLINKS) where the kernel has it, otherwise a walk with
// O_NOFOLLOW that refuses every symbolic link. O_NONBLOCK, so FIFOs and
// devices never block. A trailing slash requires a directory (ENOTDIR
// otherwise). Returns the fd or -errno.
int OpenBeneath(int root_fd, const std::string& relative);
// The fallback walk of OpenBeneath on its own (for tests).
int OpenBeneathByWalk(int root_fd, const std::string& relative);

// OpenBeneath for a server that hides names starting with '.' (.git,
// .env) unless `show_dotfiles`: the hidden name may not be reached by way
// of a symbolic link beneath the root either ("cfg" -> ".git" makes
// "cfg/config" hidden too). The rule holds on where the path resolves,
// the opened file's location beneath the root, not only on the path as
// requested. A hidden path gives -ENOENT (answered 404, as if it did not
// exist). A path without symbolic links costs no more than OpenBeneath;
// one with them is checked through /proc/self/fd, and gives -EACCES (403)
// if that cannot be read.
int OpenVisibleBeneath(int root_fd, const std::string& relative,
                       bool show_dotfiles);

// Where the open file `fd` lies beneath the open directory `root_fd`
// ("a/b.txt"; "" for the root itself), from /proc/self/fd. NotFound if it
// is not beneath it, Unavailable if /proc cannot tell.
absl::StatusOr<std::string> PathBeneath(int root_fd, int fd);

// Content-Type for a file name, by extension.
const char* ContentTypeFor(absl::string_view name);

// IMF-fixdate ("Tue, 24 Nov 2026 13:00:00 GMT") and back.
std::string FormatHttpDate(time_t t);
std::optional<time_t> ParseHttpDate(absl::string_view text);

// A single "bytes=" range resolved against a body of `size` bytes.
struct ByteRange {
  int64_t first = 0;
  int64_t length = 0;
};
enum class RangeResult { kNone, kSatisfiable, kUnsatisfiable };
// kNone for a missing, malformed or multi-range header (serve it whole).
// The unit is case-insensitive ("Bytes=0-9").
RangeResult ParseRange(absl::string_view header, int64_t size,
                       ByteRange* range);

// Minimal HTML escaping for text and attribute values.
std::string HtmlEscape(absl::string_view text);
// Percent-encodes a path segment for use in a link.
std::string PercentEncodeSegment(absl::string_view segment);

struct ListingOptions {
  // At most this many directory entries are read, hidden ones (names
  // starting with '.') included, and so at most this many shown (readdir
  // order decides which). Bounds the time and memory of one listing
  // whatever the directory holds.
  size_t max_entries = 10000;
  // The page stops listing entries before it would grow past this many
  // bytes (unless the heading alone, which holds the escaped path, is
  // longer). Names can need six bytes of HTML per byte, so entries alone
  // do not bound the size.
  size_t max_bytes = 1 << 20;
  bool show_dotfiles = false;  // names starting with '.'
};

// An HTML listing of the open directory `dir_fd`, shown as `url_path`
// (which ends in '/'). Names are escaped, links percent-encoded, entries
// sorted, directories marked with a trailing slash. When a bound of
// `options` left entries out, the page says so.
std::string DirectoryListing(int dir_fd, absl::string_view url_path,
                             const ListingOptions& options = {});

// For a request line the parser refused inside the method: true if the
// method is still a well-formed token (RFC 9110 5.6.2) followed by SP or
// the end of what has arrived, so the answer is 501 (a method this server
// does not implement); false for a malformed request line (400).
// `refused` starts at the byte the parser refused; `started` says whether
// the parser had accepted method bytes before it (they are letters).
bool IsUnknownMethod(absl::string_view refused, bool started);

// Reason phrase for a status code.
const char* ReasonPhrase(int status);

}  // namespace baton::http

#endif  // BATON_SERVER_HTTPD_HTTP_UTIL_H_
