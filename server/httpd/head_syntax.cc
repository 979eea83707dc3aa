// Internal (HTTP server): HeadSyntax.
#include "server/httpd/head_syntax.h"

namespace baton::http {

bool HeadSyntax::Feed(absl::string_view bytes) {
  for (const char c : bytes) {
    if (!ok_) break;
    if (c == '\n') {
      ok_ = after_cr_;
      if (!line_empty_) in_request_line_ = false;
      at_line_start_ = true;
      line_empty_ = true;
      after_cr_ = false;
      continue;
    }
    if (after_cr_) {  // CR not followed by LF
      ok_ = false;
      break;
    }
    if (at_line_start_ && !in_request_line_ && (c == ' ' || c == '\t')) {
      ok_ = false;  // obs-fold
      break;
    }
    after_cr_ = c == '\r';
    if (!after_cr_) line_empty_ = false;
    at_line_start_ = false;
  }
  return ok_;
}

}  // namespace baton::http
