// Internal: ErrnoStatus.
#include "lib/net/errno_status.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace baton::net {

absl::Status ErrnoStatus(absl::string_view what, int err) {
  // ErrnoToStatusCode(0) is OK, which would turn a failure into success.
  if (err == 0)
    return absl::UnknownError(absl::StrCat(what, ": errno not set"));
  return absl::Status(absl::ErrnoToStatusCode(err),
                      absl::StrCat(what, ": ", std::strerror(err)));
}

}  // namespace baton::net
