// Internal (HTTP server): request-target and file helpers.
#include "server/httpd/http_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <http_parser.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"

namespace baton::http {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = absl::ascii_tolower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

constexpr char kDateFormat[] = "%a, %d %b %Y %H:%M:%S GMT";

// The path and query of an absolute-form target ("http://h/p?q" ->
// "/p?q"; "http://h" -> "/"), or nullopt if it is not an http(s) URI with
// a host and without userinfo.
std::optional<absl::string_view> AbsoluteFormPath(absl::string_view target) {
  http_parser_url url;
  http_parser_url_init(&url);
  if (http_parser_parse_url(target.data(), target.size(), 0, &url) != 0) {
    return std::nullopt;
  }
  auto field = [&](int f) {
    return absl::string_view(target.data() + url.field_data[f].off,
                             url.field_data[f].len);
  };
  auto has = [&](int f) { return (url.field_set & (1 << f)) != 0; };
  if (!has(UF_SCHEMA) || !has(UF_HOST) || has(UF_USERINFO)) {
    return std::nullopt;
  }
  const absl::string_view scheme = field(UF_SCHEMA);
  if (!absl::EqualsIgnoreCase(scheme, "http") &&
      !absl::EqualsIgnoreCase(scheme, "https")) {
    return std::nullopt;
  }
  if (!has(UF_PATH)) return absl::string_view("/");
  return target.substr(url.field_data[UF_PATH].off);
}

}  // namespace

absl::StatusOr<std::string> NormalizeTarget(absl::string_view target) {
  if (target.empty() || target[0] != '/') {
    const std::optional<absl::string_view> path = AbsoluteFormPath(target);
    if (!path) {
      return absl::InvalidArgumentError(
          "request target is neither origin-form nor an http(s) URI");
    }
    target = *path;
  }
  target = target.substr(0, target.find_first_of("?#"));
  std::vector<std::string> segments;
  bool trailing_slash = false;
  for (absl::string_view raw : absl::StrSplit(target.substr(1), '/')) {
    std::string seg;
    for (size_t i = 0; i < raw.size(); ++i) {
      char c = raw[i];
      if (c == '%') {
        const int hi = i + 2 < raw.size() ? HexValue(raw[i + 1]) : -1;
        const int lo = i + 2 < raw.size() ? HexValue(raw[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
          return absl::InvalidArgumentError("bad percent escape");
        }
        c = static_cast<char>(hi * 16 + lo);
        i += 2;
        if (c == '/') return absl::InvalidArgumentError("encoded slash");
      }
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        return absl::InvalidArgumentError("control byte in path");
      }
      if (c == '\\') return absl::InvalidArgumentError("backslash in path");
      seg.push_back(c);
    }
    trailing_slash = seg.empty() || seg == "." || seg == "..";
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") {
      if (segments.empty()) {
        return absl::InvalidArgumentError("path climbs above the root");
      }
      segments.pop_back();
      continue;
    }
    segments.push_back(std::move(seg));
  }
  std::string out = absl::StrJoin(segments, "/");
  if (trailing_slash && !out.empty()) out += '/';
  return out;
}

bool HasDotSegment(absl::string_view path) {
  for (absl::string_view seg : absl::StrSplit(path, '/')) {
    if (absl::StartsWith(seg, ".")) return true;
  }
  return false;
}

std::string PercentEncodePath(absl::string_view path) {
  std::vector<std::string> segments;
  for (absl::string_view seg : absl::StrSplit(path, '/')) {
    segments.push_back(PercentEncodeSegment(seg));
  }
  return absl::StrJoin(segments, "/");
}

namespace {

// openat2 beneath `root_fd` with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS
// and `resolve`; the fd or -errno.
int OpenAt2Beneath(int root_fd, const std::string& relative, uint64_t resolve) {
  const std::string path = relative.empty() ? "." : relative;
  open_how how = {};
  how.flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | resolve;
  const long fd =
      ::syscall(SYS_openat2, root_fd, path.c_str(), &how, sizeof(how));
  return fd >= 0 ? static_cast<int>(fd) : -errno;
}

bool NoOpenAt2(int err) { return err == -ENOSYS || err == -EPERM; }

// The target of the magic link /proc/self/fd/`fd`.
absl::StatusOr<std::string> FdPath(int fd) {
  const std::string link = absl::StrCat("/proc/self/fd/", fd);
  char buf[PATH_MAX];
  const ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf));
  if (n <= 0 || static_cast<size_t>(n) >= sizeof(buf) || buf[0] != '/') {
    return absl::UnavailableError(absl::StrCat("cannot resolve ", link));
  }
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace

int OpenBeneath(int root_fd, const std::string& relative) {
  const int fd = OpenAt2Beneath(root_fd, relative, 0);
  if (!NoOpenAt2(fd)) return fd;
  return OpenBeneathByWalk(root_fd, relative);
}

int OpenVisibleBeneath(int root_fd, const std::string& relative,
                       bool show_dotfiles) {
  if (show_dotfiles) return OpenBeneath(root_fd, relative);
  if (HasDotSegment(relative)) return -ENOENT;
  // Without a symbolic link on the way, the file is where the path says.
  int fd = OpenAt2Beneath(root_fd, relative, RESOLVE_NO_SYMLINKS);
  if (NoOpenAt2(fd)) {
    // The walk refuses every symbolic link: the path is what it opens.
    return OpenBeneathByWalk(root_fd, relative);
  }
  if (fd != -ELOOP) return fd;
  // A link on the way (or a real loop, which fails again here): follow
  // the links beneath the root, then check where the file really is.
  fd = OpenAt2Beneath(root_fd, relative, 0);
  if (fd < 0) return fd;
  const absl::StatusOr<std::string> where = PathBeneath(root_fd, fd);
  if (!where.ok() || HasDotSegment(*where)) {
    ::close(fd);
    return where.ok() ? -ENOENT : -EACCES;
  }
  return fd;
}

absl::StatusOr<std::string> PathBeneath(int root_fd, int fd) {
  absl::StatusOr<std::string> root = FdPath(root_fd);
  if (!root.ok()) return root.status();
  absl::StatusOr<std::string> path = FdPath(fd);
  if (!path.ok()) return path.status();
  if (*path == *root) return std::string();
  if (root->back() != '/') root->push_back('/');
  if (!absl::StartsWith(*path, *root)) {
    return absl::NotFoundError(absl::StrCat(*path, " is not beneath ", *root));
  }
  return path->substr(root->size());
}

int OpenBeneathByWalk(int root_fd, const std::string& relative) {
  // Old kernel (or seccomp): walk component by component, refusing every
  // symbolic link. Stricter than openat2 (links inside the root are
  // refused too) but never unsafe.
  int dir = ::dup(root_fd);
  if (dir < 0) return -errno;
  std::vector<std::string> parts =
      absl::StrSplit(relative, '/', absl::SkipEmpty());
  if (parts.empty()) parts.push_back(".");
  // "file/" names a directory, as it does for open(2) and openat2.
  const bool want_dir = absl::EndsWith(relative, "/");
  for (size_t i = 0; i < parts.size(); ++i) {
    const bool last = i + 1 == parts.size();
    const int flags = O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY |
                      O_RDONLY | (last && !want_dir ? 0 : O_DIRECTORY);
    const int next = ::openat(dir, parts[i].c_str(), flags);
    const int err = errno;
    ::close(dir);
    if (next < 0) return -(err == ELOOP ? EXDEV : err);
    dir = next;
  }
  return dir;
}

const char* ContentTypeFor(absl::string_view name) {
  static const std::pair<const char*, const char*> kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".htm", "text/html; charset=utf-8"},
      {".txt", "text/plain; charset=utf-8"},
      {".css", "text/css"},
      {".js", "text/javascript"},
      {".json", "application/json"},
      {".xml", "application/xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".gif", "image/gif"},
      {".svg", "image/svg+xml"},
      {".ico", "image/x-icon"},
      {".pdf", "application/pdf"},
      {".wasm", "application/wasm"},
      {".gz", "application/gzip"},
      {".tar", "application/x-tar"},
      {".zip", "application/zip"},
      {".md", "text/markdown; charset=utf-8"},
  };
  const std::string lower = absl::AsciiStrToLower(name);
  for (const auto& [ext, type] : kTypes) {
    if (absl::EndsWith(lower, ext)) return type;
  }
  return "application/octet-stream";
}

std::string FormatHttpDate(time_t t) {
  return absl::FormatTime(kDateFormat, absl::FromTimeT(t), absl::UTCTimeZone());
}

std::optional<time_t> ParseHttpDate(absl::string_view text) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(kDateFormat, text, absl::UTCTimeZone(), &t, &err)) {
    return std::nullopt;
  }
  return absl::ToTimeT(t);
}

RangeResult ParseRange(absl::string_view header, int64_t size,
                       ByteRange* range) {
  header = absl::StripAsciiWhitespace(header);
  if (!absl::StartsWithIgnoreCase(header, "bytes=")) return RangeResult::kNone;
  header.remove_prefix(6);
  if (header.find(',') != absl::string_view::npos) return RangeResult::kNone;
  const size_t dash = header.find('-');
  if (dash == absl::string_view::npos) return RangeResult::kNone;
  const absl::string_view a =
      absl::StripAsciiWhitespace(header.substr(0, dash));
  const absl::string_view b =
      absl::StripAsciiWhitespace(header.substr(dash + 1));
  int64_t first = 0, last = 0;
  if (a.empty()) {  // suffix: the last b bytes
    if (!absl::SimpleAtoi(b, &last) || last < 0) return RangeResult::kNone;
    if (last == 0 || size == 0) return RangeResult::kUnsatisfiable;
    range->length = std::min(last, size);
    range->first = size - range->length;
    return RangeResult::kSatisfiable;
  }
  if (!absl::SimpleAtoi(a, &first) || first < 0) return RangeResult::kNone;
  if (b.empty()) {
    last = size - 1;
  } else if (!absl::SimpleAtoi(b, &last) || last < first) {
    return RangeResult::kNone;
  }
  if (first >= size) return RangeResult::kUnsatisfiable;
  last = std::min(last, size - 1);
  range->first = first;
  range->length = last - first + 1;
  return RangeResult::kSatisfiable;
}

std::string HtmlEscape(absl::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string PercentEncodeSegment(absl::string_view segment) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : segment) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' ||
        c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string DirectoryListing(int dir_fd, absl::string_view url_path,
                             const ListingOptions& options) {
  std::vector<std::pair<std::string, bool>> entries;  // name, is_dir
  bool truncated = false;
  const int fd = ::dup(dir_fd);
  if (DIR* dir = fd >= 0 ? ::fdopendir(fd) : nullptr) {
    ::rewinddir(dir);    // the duplicate shares dir_fd's position
    size_t scanned = 0;  // hidden names count too: they cost the same
    while (dirent* e = ::readdir(dir)) {
      const absl::string_view name = e->d_name;
      if (name == "." || name == "..") continue;
      if (scanned == options.max_entries) {
        truncated = true;
        break;
      }
      ++scanned;
      if (!options.show_dotfiles && absl::StartsWith(name, ".")) continue;
      bool is_dir = e->d_type == DT_DIR;
      if (e->d_type == DT_UNKNOWN) {
        struct stat st;
        is_dir = ::fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                 S_ISDIR(st.st_mode);
      }
      entries.emplace_back(std::string(name), is_dir);
    }
    ::closedir(dir);
  } else if (fd >= 0) {
    ::close(fd);
  }
  std::sort(entries.begin(), entries.end());
  const std::string title = HtmlEscape(url_path);
  const std::string head = absl::StrCat(
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of ",
      title, "</title></head>\n<body><h1>Index of ", title, "</h1>\n");
  constexpr absl::string_view kTruncated =
      "<p>Only part of this directory is listed.</p>\n";
  constexpr absl::string_view kTail = "</ul></body></html>\n";
  std::string items = "<ul>\n";
  if (url_path != "/") items += "<li><a href=\"../\">../</a></li>\n";
  // Room for the entries on a page of max_bytes, without and with the
  // notice; `fits` is how much of `items` leaves room for the notice.
  const size_t frame = head.size() + kTail.size();
  const size_t room = options.max_bytes > frame ? options.max_bytes - frame : 0;
  const size_t room_with_notice =
      room > kTruncated.size() ? room - kTruncated.size() : 0;
  size_t fits = items.size();
  for (const auto& [name, is_dir] : entries) {
    const char* suffix = is_dir ? "/" : "";
    const std::string item =
        absl::StrCat("<li><a href=\"", PercentEncodeSegment(name), suffix,
                     "\">", HtmlEscape(name), suffix, "</a></li>\n");
    if (items.size() + item.size() > room) {
      truncated = true;
      break;
    }
    items += item;
    if (items.size() <= room_with_notice) fits = items.size();
  }
  if (truncated) items.resize(fits);
  return absl::StrCat(head, truncated ? kTruncated : "", items, kTail);
}

bool IsUnknownMethod(absl::string_view refused, bool started) {
  // tchar (RFC 9110 5.6.2).
  auto tchar = [](char c) {
    return absl::ascii_isalnum(c) ||
           absl::string_view("!#$%&'*+-.^_`|~").find(c) !=
               absl::string_view::npos;
  };
  size_t n = 0;
  while (n < refused.size() && tchar(refused[n])) ++n;
  if (!started && n == 0) return false;  // empty method
  return n == refused.size() || refused[n] == ' ';
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 416:
      return "Range Not Satisfiable";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

}  // namespace baton::http
