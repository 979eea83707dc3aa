// Internal header (HTTP server): HttpHandler, one HTTP/1.x connection on a
// baton reactor. Requests are parsed with http-parser; responses are queued
// in request order, so pipelined requests are answered in order; files go
// out with Connection::SendFile (zero copy, paced by EPOLLOUT).
#ifndef BATON_SERVER_HTTP_HTTP_HANDLER_H_
#define BATON_SERVER_HTTP_HTTP_HANDLER_H_

#include <http_parser.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "baton/connection.h"
#include "baton/reactor.h"
#include "server/httpd/head_syntax.h"

namespace baton::http {

struct HttpConfig {
  // Document root, opened O_DIRECTORY by the caller, who keeps it open for
  // the server's lifetime. Unused in fixed-body mode.
  int root_fd = -1;
  // >= 0: answer every GET with a body of this many bytes (benchmarks).
  int64_t response_size = -1;
  size_t max_target_bytes = 8192;   // longer request target: 414
  size_t max_header_bytes = 16384;  // larger header block: 431
  int max_header_fields = 100;      // more fields: 431
  // Paths with a segment starting with '.' (".git", ".env"), or that lead
  // into one through a symbolic link beneath the root, are 404 and such
  // names left out of listings unless this is set.
  bool serve_dotfiles = false;
  // Directory listings read at most this many entries (hidden ones
  // included) and stop listing before the page passes max_listing_bytes.
  size_t max_listing_entries = 10000;
  size_t max_listing_bytes = 1 << 20;
  // A request whose header block is not complete this long after its first
  // byte is answered 408 and the connection closed (slowloris).
  absl::Duration request_timeout = absl::Seconds(10);
  // A request body not complete this long after its head is answered 408
  // and the connection closed (slowloris by body: a byte now and then
  // would otherwise hold the connection for ever). With request_timeout it
  // bounds how long one request can hold a connection.
  absl::Duration body_timeout = absl::Seconds(10);
  // Request bodies are read only to be skipped. One larger than this is
  // answered 413 and the connection closed: at once when Content-Length
  // says so (before any 100 Continue), as soon as a chunked body passes it.
  uint64_t max_body_bytes = 1 << 20;
  Reactor* reactor = nullptr;
};

class HttpHandler : public ConnectionHandler {
 public:
  // `config` must outlive the handler.
  explicit HttpHandler(const HttpConfig* config);
  ~HttpHandler() override;

  void OnOpen(Connection& conn) override;
  void OnData(Connection& conn, absl::string_view data) override;
  void OnDrained(Connection& conn) override;
  void OnClose(Connection& conn, const absl::Status& reason) override;

 private:
  // http-parser callbacks (static trampolines in the .cc).
  friend struct ParserCallbacks;
  int OnMessageBegin();
  int OnUrl(absl::string_view part);
  int OnHeaderField(absl::string_view part);
  int OnHeaderValue(absl::string_view part);
  int OnHeadersComplete();
  int OnBody(absl::string_view part);
  int OnMessageComplete();

  // Runs the parser over `data`, stopping at each complete head to check
  // its line syntax before the request is answered.
  void Parse(absl::string_view data);
  // At the end of a head whose syntax is checked: answers what can be
  // answered before the body (a body too large, Expect: 100-continue) and
  // starts the body's clock.
  void HeadComplete();
  // The parser failed with `err` at `refused`: answers 400/414/431/501.
  void ParseError(http_errno err, absl::string_view refused);
  // Answers `status` and closes, unless the request timer already answered.
  void Refuse(int status);
  // Files the header field just completed (field_, value_).
  void FileField();
  void Respond();
  void ServeFile(bool head);
  // Answers for the directory `fd` (taken), known as `path`, which ends in
  // '/' or is the root: its index.html, else a listing.
  void ServeDirectory(int fd, const std::string& path, bool head);
  // Answers with the regular file `fd` (taken), `st` its status.
  void SendFileResponse(int fd, const struct stat& st, const std::string& path,
                        bool head);
  // 503 for a lack of descriptors or memory (-errno `err`), else 403.
  void SendOpenError(int err);
  void SendError(int status, bool close, const char* extra_headers = "");
  // Status line and common headers, ending with the blank line; no
  // Content-Length if `content_length` < 0.
  std::string Head(int status, int64_t content_length, const char* type,
                   const std::string& extra) const;
  // Answers 408 and closes after `timeout` unless disarmed first; one
  // timer at a time (a no-op while one is armed).
  void ArmRequestTimer(absl::Duration timeout);
  bool DisarmRequestTimer();  // false if the timer already answered 408

  const HttpConfig* config_;
  Connection* conn_ = nullptr;  // valid only inside OnData
  ConnectionId id_;
  http_parser parser_;

  // The request being parsed.
  std::string target_;
  std::string field_;
  std::string value_;
  bool in_value_ = false;
  size_t header_bytes_ = 0;
  int header_fields_ = 0;
  bool has_host_ = false;
  bool expect_continue_ = false;
  bool method_started_ = false;  // the parser accepted a method byte
  bool method_refused_ = false;  // the parser failed inside the method
  bool has_body_ = false;
  uint64_t body_bytes_ = 0;  // of the body so far
  std::string if_modified_since_;
  std::string range_;
  std::string if_range_;
  int limit_status_ = 0;  // 413 / 414 / 431 when a limit stopped the parser
  bool bad_request_ = false;
  bool keep_alive_ = true;
  bool in_headers_ = false;
  bool closing_ = false;
  // The parser is paused at the LF that ends a head (set in
  // OnHeadersComplete), so Parse can check the head before the request is
  // answered; head_syntax_ has seen every byte of the head up to it.
  bool head_paused_ = false;
  HeadSyntax head_syntax_;
  // Pipelining back-pressure: once this much response data is queued, the
  // parser is paused, reading stops, and the unparsed rest of the last read
  // waits here until the output drains. Bounds memory and the file
  // descriptors held by queued SendFile bodies, however many requests a
  // client pipelines without reading.
  static constexpr size_t kPipelineHighWater = 256 << 10;
  bool parser_paused_ = false;
  std::string backlog_;

  // Shared with the request timer (the head's, then the body's): 0 idle,
  // 1 armed, 2 fired.
  std::shared_ptr<std::atomic<int>> timer_state_;
  TimerId timer_ = 0;
};

}  // namespace baton::http

#endif  // BATON_SERVER_HTTP_HTTP_HANDLER_H_
