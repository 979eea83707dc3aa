// Internal header (HTTP server): request-target normalisation, safe opening
// beneath the document root, content types, dates, ranges and directory
// listings. Pure functions, unit-tested in tests/server/httpd/.
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
  // At most this many entries are read and shown (readdir order decides
  // which); the listing says so when there were more. Bounds the memory and
  // time of one listing whatever the directory holds.
  size_t max_entries = 10000;
  bool show_dotfiles = false;  // names starting with '.'
};

// An HTML listing of the open directory `dir_fd`, shown as `url_path`
// (which ends in '/'). Names are escaped, links percent-encoded, entries
// sorted, directories marked with a trailing slash.
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
