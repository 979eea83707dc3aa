// Internal (HTTP server): HttpHandler.
#include "server/httpd/http_handler.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/httpd/http_util.h"

namespace baton::http {

struct ParserCallbacks {
  static HttpHandler* Of(http_parser* p) {
    return static_cast<HttpHandler*>(p->data);
  }
  static int MessageBegin(http_parser* p) { return Of(p)->OnMessageBegin(); }
  static int Url(http_parser* p, const char* at, size_t n) {
    return Of(p)->OnUrl(absl::string_view(at, n));
  }
  static int HeaderField(http_parser* p, const char* at, size_t n) {
    return Of(p)->OnHeaderField(absl::string_view(at, n));
  }
  static int HeaderValue(http_parser* p, const char* at, size_t n) {
    return Of(p)->OnHeaderValue(absl::string_view(at, n));
  }
  static int HeadersComplete(http_parser* p) {
    return Of(p)->OnHeadersComplete();
  }
  static int Body(http_parser* p, const char* at, size_t n) {
    return Of(p)->OnBody(absl::string_view(at, n));
  }
  static int MessageComplete(http_parser* p) {
    return Of(p)->OnMessageComplete();
  }

  static const http_parser_settings& Settings() {
    static const http_parser_settings settings = [] {
      http_parser_settings s;
      http_parser_settings_init(&s);
      s.on_message_begin = MessageBegin;
      s.on_url = Url;
      s.on_header_field = HeaderField;
      s.on_header_value = HeaderValue;
      s.on_headers_complete = HeadersComplete;
      s.on_body = Body;
      s.on_message_complete = MessageComplete;
      return s;
    }();
    return settings;
  }
};

namespace {

// The Date header, formatted once per second per thread.
const std::string& CurrentDate() {
  thread_local time_t cached_second = 0;
  thread_local std::string cached;
  const time_t now = ::time(nullptr);
  if (now != cached_second) {
    cached_second = now;
    cached = FormatHttpDate(now);
  }
  return cached;
}

// The fixed body for --response_size, shared by every connection.
const std::string& FixedBody(int64_t size) {
  static const std::string body(static_cast<size_t>(size), 'x');
  return body;
}

}  // namespace

HttpHandler::HttpHandler(const HttpConfig* config) : config_(config) {
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;
}

HttpHandler::~HttpHandler() = default;

void HttpHandler::OnOpen(Connection& conn) { id_ = conn.id(); }

void HttpHandler::OnClose(Connection&, const absl::Status&) {
  DisarmRequestTimer();
}

void HttpHandler::OnData(Connection& conn, absl::string_view data) {
  if (closing_) return;
  conn_ = &conn;
  Parse(data);
  conn_ = nullptr;
}

void HttpHandler::Parse(absl::string_view data) {
  size_t offset = 0;  // where the parser resumes
  size_t seen = 0;    // bytes before this went to head_syntax_ already
  while (true) {
    const size_t parsed =
        http_parser_execute(&parser_, &ParserCallbacks::Settings(),
                            data.data() + offset, data.size() - offset);
    const http_errno err = HTTP_PARSER_ERRNO(&parser_);
    if (closing_) return;
    const size_t end = offset + parsed;  // where the parser stopped
    if (head_paused_) {
      // data[end] is the LF that ends a head: check the head's line syntax
      // before anything answers it, then go on from that LF.
      head_paused_ = false;
      if (!head_syntax_.Feed(data.substr(seen, end + 1 - seen))) {
        Refuse(400);
        return;
      }
      seen = end + 1;
      offset = end;
      http_parser_pause(&parser_, 0);
      HeadComplete();
      if (closing_) return;
      continue;
    }
    // Bytes of a body are not a head; a request with a body is the last
    // one answered on a connection (see OnHeadersComplete).
    if (!has_body_ && !head_syntax_.Feed(data.substr(seen, end - seen))) {
      Refuse(400);
      return;
    }
    if (err == HPE_PAUSED) {
      // Back-pressure (OnMessageComplete): keep the rest for OnDrained.
      backlog_.assign(data.data() + end, data.size() - end);
      conn_->PauseReading();
      return;
    }
    if (err != HPE_OK) {
      ParseError(err, data.substr(end));
    } else if (end < data.size()) {
      // The parser stopped early without an error, which it does after an
      // Upgrade or CONNECT request; those close after their answer, so
      // this is only a guard: unparsed bytes are never dropped silently.
      Refuse(400);
    } else if (in_headers_) {
      // The header block is still incomplete after this read: start the
      // clock on it (a request that arrives whole never pays for a timer).
      ArmRequestTimer(config_->request_timeout);
    }
    return;
  }
}

void HttpHandler::Refuse(int status) {
  if (DisarmRequestTimer()) {
    SendError(status, true);
  } else {
    closing_ = true;  // the request timer answered 408 and closes
  }
}

void HttpHandler::ParseError(http_errno err, absl::string_view refused) {
  method_refused_ = err == HPE_INVALID_METHOD;
  if (limit_status_ != 0) {
    Refuse(limit_status_);
  } else if (err == HPE_INVALID_METHOD &&
             IsUnknownMethod(refused, method_started_)) {
    Refuse(501);
  } else {
    Refuse(400);
  }
}

int HttpHandler::OnMessageBegin() {
  target_.clear();
  field_.clear();
  value_.clear();
  in_value_ = false;
  header_bytes_ = 0;
  header_fields_ = 0;
  has_host_ = false;
  expect_continue_ = false;
  method_started_ = true;
  has_body_ = false;
  body_bytes_ = 0;
  if_modified_since_.clear();
  range_.clear();
  if_range_.clear();
  limit_status_ = 0;
  bad_request_ = false;
  in_headers_ = true;
  return 0;
}

int HttpHandler::OnUrl(absl::string_view part) {
  if (target_.size() + part.size() > config_->max_target_bytes) {
    limit_status_ = 414;
    return 1;  // stops the parser
  }
  target_.append(part.data(), part.size());
  return 0;
}

int HttpHandler::OnHeaderField(absl::string_view part) {
  header_bytes_ += part.size();
  // Debian's http-parser is built non-strict and lets SP into field names,
  // so "Transfer-Encoding : chunked" would be an unknown field here but
  // Transfer-Encoding to a lenient proxy (request smuggling). RFC 9112 5.1:
  // whitespace before the colon is a 400.
  if (absl::StrContains(part, ' ')) return 1;
  if (in_value_) FileField();  // a new field begins
  if (field_.empty() && ++header_fields_ > config_->max_header_fields) {
    limit_status_ = 431;
    return 1;
  }
  if (header_bytes_ > config_->max_header_bytes) {
    limit_status_ = 431;
    return 1;
  }
  field_.append(part.data(), part.size());
  return 0;
}

void HttpHandler::FileField() {
  const std::string name = absl::AsciiStrToLower(field_);
  if (name == "host") {
    // RFC 9112 3.2: more than one Host is a 400, like none.
    if (has_host_) bad_request_ = true;
    has_host_ = true;
  }
  if (name == "if-modified-since") if_modified_since_ = value_;
  if (name == "range") range_ = value_;
  if (name == "if-range") if_range_ = value_;
  if (name == "expect" &&
      absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(value_),
                             "100-continue")) {
    expect_continue_ = true;
  }
  if (absl::StrContains(value_, '\0')) bad_request_ = true;
  field_.clear();
  value_.clear();
  in_value_ = false;
}

int HttpHandler::OnHeaderValue(absl::string_view part) {
  header_bytes_ += part.size();
  if (header_bytes_ > config_->max_header_bytes) {
    limit_status_ = 431;
    return 1;
  }
  value_.append(part.data(), part.size());
  in_value_ = true;
  return 0;
}

int HttpHandler::OnHeadersComplete() {
  if (in_value_) FileField();
  in_headers_ = false;
  keep_alive_ = http_should_keep_alive(&parser_) != 0;
  // Request bodies are only skipped, and the non-strict parser is lenient
  // about their framing (it does not check the CRLF after chunk data), so
  // parsers in front of us may disagree where a body ends. Answer a request
  // that has a body, then close: nothing after a body is ever taken as the
  // next request (no smuggling through body framing).
  has_body_ =
      (parser_.flags & F_CHUNKED) != 0 ||
      ((parser_.flags & F_CONTENTLENGTH) != 0 && parser_.content_length > 0);
  if (has_body_) keep_alive_ = false;
  // Upgrade (with "Connection: upgrade") and CONNECT: the parser stops
  // after such a request and takes what follows as another protocol. We
  // switch to none, so the request is answered as plain HTTP and the
  // connection then closes: the bytes after it are never answered, however
  // TCP split them (no desync with a proxy that pipelines).
  if (parser_.upgrade) keep_alive_ = false;
  if (parser_.http_major == 1 && parser_.http_minor >= 1 && !has_host_) {
    bad_request_ = true;
  }
  // Parse checks the head before it is answered, then resumes.
  head_paused_ = true;
  http_parser_pause(&parser_, 1);
  return 0;
}

void HttpHandler::HeadComplete() {
  if (!has_body_) return;
  // The head is complete: its clock stops and the body's starts below.
  if (!DisarmRequestTimer()) {
    closing_ = true;  // the request timer answered 408 and closes
    return;
  }
  // A body larger than we would skip is refused before it is sent.
  if ((parser_.flags & F_CHUNKED) == 0 &&
      parser_.content_length > config_->max_body_bytes) {
    SendError(413, true);
    return;
  }
  // Expect: 100-continue on an HTTP/1.1 request (RFC 9110 10.1.1): a
  // request that will be refused is answered at once, without waiting for
  // its body; otherwise the client is told to send it.
  if (expect_continue_ && parser_.http_major == 1 && parser_.http_minor >= 1) {
    const auto method = static_cast<http_method>(parser_.method);
    if (bad_request_ || (method != HTTP_GET && method != HTTP_HEAD)) {
      Respond();  // closes: a request with a body is the last one
      return;
    }
    conn_->Write("HTTP/1.1 100 Continue\r\n\r\n");
  }
  // However slowly the body trickles in, each byte refreshing the idle
  // sweep, it is answered 408 once this runs out.
  ArmRequestTimer(config_->body_timeout);
}

int HttpHandler::OnBody(absl::string_view part) {
  body_bytes_ += part.size();
  if (body_bytes_ > config_->max_body_bytes) {
    limit_status_ = 413;
    return 1;  // stops the parser
  }
  return 0;
}

int HttpHandler::OnMessageComplete() {
  method_started_ = false;
  head_syntax_.Reset();
  if (!DisarmRequestTimer()) {
    // The header timer already answered 408 and is closing us.
    closing_ = true;
    http_parser_pause(&parser_, 1);
    return 0;
  }
  Respond();
  if (closing_) {
    http_parser_pause(&parser_, 1);  // ignore what follows
  } else if (conn_->pending_output() > kPipelineHighWater) {
    http_parser_pause(&parser_, 1);  // resumed in OnDrained
    parser_paused_ = true;
  }
  return 0;
}

void HttpHandler::OnDrained(Connection& conn) {
  if (!parser_paused_ || closing_) return;
  parser_paused_ = false;
  http_parser_pause(&parser_, 0);
  conn.ResumeReading();
  std::string pending;
  pending.swap(backlog_);
  if (!pending.empty()) OnData(conn, pending);
}

std::string HttpHandler::Head(int status, int64_t content_length,
                              const char* type,
                              const std::string& extra) const {
  std::string head =
      absl::StrCat("HTTP/1.1 ", status, " ", ReasonPhrase(status),
                   "\r\nServer: baton\r\nDate: ", CurrentDate(), "\r\n");
  if (content_length >= 0) {
    absl::StrAppend(&head, "Content-Length: ", content_length, "\r\n");
  }
  if (type != nullptr) absl::StrAppend(&head, "Content-Type: ", type, "\r\n");
  absl::StrAppend(&head, extra, "Connection: ",
                  keep_alive_ && !closing_ ? "keep-alive" : "close",
                  "\r\n\r\n");
  return head;
}

void HttpHandler::SendError(int status, bool close, const char* extra) {
  if (close) {
    closing_ = true;
    keep_alive_ = false;
  }
  const std::string body =
      absl::StrCat("<!DOCTYPE html>\n<html><body><h1>", status, " ",
                   ReasonPhrase(status), "</h1></body></html>\n");
  // A HEAD answer has no body (RFC 9110 9.3.2), errors included, once the
  // method is certain (the parser may fail inside it).
  const bool head_only = parser_.method == HTTP_HEAD && !method_refused_;
  conn_->Write(Head(status, static_cast<int64_t>(body.size()),
                    "text/html; charset=utf-8", extra));
  if (!head_only) conn_->Write(body);
  if (closing_) conn_->Close();
}

void HttpHandler::Respond() {
  if (bad_request_) {
    SendError(400, true);
    return;
  }
  const auto method = static_cast<http_method>(parser_.method);
  if (method != HTTP_GET && method != HTTP_HEAD) {
    SendError(405, !keep_alive_, "Allow: GET, HEAD\r\n");
    return;
  }
  const bool head = method == HTTP_HEAD;
  if (!keep_alive_) closing_ = true;
  if (config_->response_size >= 0) {
    // One buffer, one send(2).
    std::string response = Head(200, config_->response_size, "text/plain", "");
    if (!head) response += FixedBody(config_->response_size);
    conn_->Write(response);
  } else {
    ServeFile(head);
  }
  if (closing_) conn_->Close();
}

void HttpHandler::ServeFile(bool head) {
  absl::StatusOr<std::string> path = NormalizeTarget(target_);
  if (!path.ok()) {
    SendError(400, true);
    return;
  }
  // Hidden names are 404 however they are reached, links included.
  const int fd =
      OpenVisibleBeneath(config_->root_fd, *path, config_->serve_dotfiles);
  if (fd < 0) {
    if (fd == -ENOENT || fd == -ENOTDIR) {
      SendError(404, false);
    } else {
      SendOpenError(-fd);
    }
    return;
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    SendError(500, false);
    return;
  }
  if (S_ISDIR(st.st_mode)) {
    if (!path->empty() && path->back() != '/') {
      ::close(fd);
      SendError(301, false,
                absl::StrCat("Location: /", PercentEncodePath(*path), "/\r\n")
                    .c_str());
      return;
    }
    ServeDirectory(fd, *path, head);
    return;
  }
  SendFileResponse(fd, st, *path, head);
}

void HttpHandler::SendOpenError(int err) {
  if (err == EMFILE || err == ENFILE || err == ENOMEM) {
    // Out of descriptors or memory is temporary, not "forbidden": 503,
    // and close, which gives a descriptor back.
    SendError(503, true, "Retry-After: 1\r\n");
  } else {
    SendError(403, false);
  }
}

void HttpHandler::ServeDirectory(int fd, const std::string& path, bool head) {
  // index.html is resolved from the root like any path, so a symlink to
  // it must stay beneath the root and out of hidden names. Only a missing
  // index.html shows the listing: an operator who put one there to hide
  // the listing never gets the listing instead because the file could not
  // be opened.
  const std::string index_path = path + "index.html";
  int index =
      OpenVisibleBeneath(config_->root_fd, index_path, config_->serve_dotfiles);
  if (index == -ENOENT && !config_->serve_dotfiles) {
    // Hidden (a link into a hidden name) is not missing.
    const int any = OpenBeneath(config_->root_fd, index_path);
    if (any >= 0) {
      ::close(any);
      index = -EACCES;
    }
  }
  if (index >= 0) {
    ::close(fd);
    struct stat st;
    if (::fstat(index, &st) != 0) {
      ::close(index);
      SendError(500, false);
      return;
    }
    SendFileResponse(index, st, index_path, head);
    return;
  }
  if (index != -ENOENT) {
    ::close(fd);
    SendOpenError(-index);
    return;
  }
  ListingOptions options;
  options.max_entries = config_->max_listing_entries;
  options.max_bytes = config_->max_listing_bytes;
  options.show_dotfiles = config_->serve_dotfiles;
  const std::string html = DirectoryListing(fd, "/" + path, options);
  ::close(fd);
  conn_->Write(Head(200, static_cast<int64_t>(html.size()),
                    "text/html; charset=utf-8", ""));
  if (!head) conn_->Write(html);
}

void HttpHandler::SendFileResponse(int fd, const struct stat& st,
                                   const std::string& path, bool head) {
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);  // FIFOs, devices, sockets, directories: never read
    SendError(403, false);
    return;
  }
  const std::string modified =
      absl::StrCat("Last-Modified: ", FormatHttpDate(st.st_mtime),
                   "\r\nAccept-Ranges: bytes\r\n");
  if (!if_modified_since_.empty()) {
    const std::optional<time_t> since = ParseHttpDate(if_modified_since_);
    if (since && st.st_mtime <= *since) {
      ::close(fd);
      // No Content-Length: a 304 must not send one that differs from the
      // 200's (RFC 9110 15.4.5), and it has no body.
      conn_->Write(Head(304, -1, nullptr, modified));
      return;
    }
  }
  const char* type = ContentTypeFor(path);
  ByteRange range{0, st.st_size};
  int status = 200;
  std::string extra = modified;
  // If-Range (RFC 9110 13.1.5): the range applies only to the version the
  // client has, named by its Last-Modified date (we send no ETags, so an
  // entity-tag never matches); otherwise the whole file, 200.
  bool range_applies = !range_.empty();
  if (range_applies && !if_range_.empty()) {
    const std::optional<time_t> date = ParseHttpDate(if_range_);
    range_applies = date && *date == st.st_mtime;
  }
  if (range_applies) {
    switch (ParseRange(range_, st.st_size, &range)) {
      case RangeResult::kNone:
        range = {0, st.st_size};
        break;
      case RangeResult::kSatisfiable:
        status = 206;
        absl::StrAppend(&extra, "Content-Range: bytes ", range.first, "-",
                        range.first + range.length - 1, "/", st.st_size,
                        "\r\n");
        break;
      case RangeResult::kUnsatisfiable:
        ::close(fd);
        SendError(416, false,
                  absl::StrCat("Content-Range: bytes */", st.st_size, "\r\n")
                      .c_str());
        return;
    }
  }
  const bool body = !head && range.length > 0;
  // The head waits for the body (one segment for small files).
  conn_->Write(Head(status, range.length, type, extra),
               body ? WriteHint::kMoreFollows : WriteHint::kPush);
  if (!body) {
    ::close(fd);
  } else if (!conn_->SendFile(fd, range.first, range.length,
                              FileOwnership::kTransfer)) {
    // Headers are out; the body cannot follow. Cut the connection so the
    // client sees a short response rather than a wrong one.
    conn_->Abort();
  }
}

void HttpHandler::ArmRequestTimer(absl::Duration timeout) {
  if (timer_state_ != nullptr && timer_state_->load() == 1) return;
  timer_state_ = std::make_shared<std::atomic<int>>(1);
  Reactor* reactor = config_->reactor;
  const ConnectionId id = id_;
  timer_ = reactor->RunAfter(timeout, [reactor, id, state = timer_state_] {
    int armed = 1;
    if (!state->compare_exchange_strong(armed, 2)) return;
    reactor->Write(id, absl::StrCat("HTTP/1.1 408 Request Timeout\r\n"
                                    "Server: baton\r\nDate: ",
                                    CurrentDate(),
                                    "\r\nContent-Length: 0\r\n"
                                    "Connection: close\r\n\r\n"));
    reactor->Close(id);
  });
}

bool HttpHandler::DisarmRequestTimer() {
  if (timer_state_ == nullptr) return true;
  int armed = 1;
  const bool disarmed = timer_state_->compare_exchange_strong(armed, 0);
  if (disarmed) config_->reactor->CancelTimer(timer_);
  const bool fired = !disarmed && armed == 2;
  timer_state_.reset();
  return !fired;
}

}  // namespace baton::http
