// Internal header (HTTP server): HeadSyntax, a streaming check of the line
// structure of request heads that the lenient http-parser does not make.
#ifndef BATON_SERVER_HTTPD_HEAD_SYNTAX_H_
#define BATON_SERVER_HTTPD_HEAD_SYNTAX_H_

#include "absl/strings/string_view.h"

namespace baton::http {

// Fed the bytes of one request head in order (across reads), from the end
// of the previous request to the LF that ends the head. Refuses what
// RFC 9112 lets a server reject and Debian's http-parser accepts:
//   - a bare LF as a line end (every line must end in CRLF);
//   - obs-fold: a line after the request line that starts with SP or HTAB,
//     which the parser appends to the previous field value, so that
//     "X: y\r\n Content-Length: 5" would mean different things to us and
//     to a proxy in front of us.
// Empty lines before the request line are allowed (RFC 9112 2.2).
class HeadSyntax {
 public:
  // False once the bytes fed so far break a rule; stays false.
  bool Feed(absl::string_view bytes);
  // Starts over for the next request.
  void Reset() { *this = HeadSyntax(); }

 private:
  bool ok_ = true;
  bool after_cr_ = false;  // the previous byte was CR
  bool at_line_start_ = true;
  bool in_request_line_ = true;  // no complete non-empty line yet
  bool line_empty_ = true;
};

}  // namespace baton::http

#endif  // BATON_SERVER_HTTPD_HEAD_SYNTAX_H_
