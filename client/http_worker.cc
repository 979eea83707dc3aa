// Client library: one HTTP load thread's connections. Responses are parsed
// with http-parser.
#include "client/http_worker.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "absl/strings/str_cat.h"

namespace baton::client {
namespace {

constexpr int64_t kMaxWaitNs = 50000000;  // 50 ms: also the timeout check

int OnHeadersComplete(http_parser* p) {
  HttpSlot* s = static_cast<HttpSlot*>(p->data);
  s->headers_done = true;
  s->has_length = (p->flags & F_CONTENTLENGTH) != 0;
  s->announced = s->has_length ? p->content_length : 0;
  return 0;
}

int OnBody(http_parser* p, const char*, size_t length) {
  static_cast<HttpSlot*>(p->data)->body += length;
  return 0;
}

int OnMessageComplete(http_parser* p) {
  HttpSlot* s = static_cast<HttpSlot*>(p->data);
  s->complete = true;
  s->keep_alive = http_should_keep_alive(p) != 0;
  // Stop here: bytes after the response belong to no request of ours.
  http_parser_pause(p, 1);
  return 0;
}

// epoll_wait with a nanosecond timeout (epoll_pwait2): a paced request
// goes out at its time, not at the next millisecond.
int WaitNs(int epfd, epoll_event* events, int max, int64_t wait_ns) {
  const timespec ts = {static_cast<time_t>(wait_ns / 1000000000),
                       static_cast<long>(wait_ns % 1000000000)};
  const int n = ::epoll_pwait2(epfd, events, max, &ts, nullptr);
  if (n >= 0 || errno != ENOSYS) return n;
  // A kernel before 5.11: milliseconds, rounded up.
  return ::epoll_wait(epfd, events, max,
                      static_cast<int>((wait_ns + 999999) / 1000000));
}

}  // namespace

HttpWorker::HttpWorker(const HttpLoadOptions& o, HttpProblems* problems,
                       int slots)
    : o_(o), problems_(problems), slots_(slots) {
  http_parser_settings_init(&settings_);
  settings_.on_headers_complete = OnHeadersComplete;
  settings_.on_body = OnBody;
  settings_.on_message_complete = OnMessageComplete;
  const bool http11 = o.keepalive || o.rate > 0;
  request_ =
      absl::StrCat("GET ", o.path, http11 ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n",
                   "Host: ", o.host_header, "\r\nUser-Agent: baton-bench\r\n",
                   o.keepalive  ? "Connection: keep-alive\r\n"
                   : o.rate > 0 ? "Connection: close\r\n"
                                : "",
                   "\r\n");
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  last_timeout_check_ns_ = NowNanos();
}

HttpWorker::~HttpWorker() {
  for (HttpSlot& s : slots_) Close(s);
  ::close(epfd_);
}

void HttpWorker::Close(HttpSlot& s) {
  if (s.tls != nullptr && s.fd >= 0 &&
      s.tls->state() == tls::TlsSession::State::kOpen) {
    // close_notify, best effort: the server then sees a clean end.
    s.tls->Close();
    std::string alert;
    s.tls->TakeOutput(&alert);
    (void)::send(s.fd, alert.data(), alert.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  if (s.fd >= 0) ::close(s.fd);  // also leaves the epoll set
  s.fd = -1;
  s.tls.reset();
  s.tls_out.clear();
  s.tls_out_sent = 0;
  s.want_out = false;
}

void HttpWorker::Start(HttpSlot& s, int64_t origin_ns, bool measured) {
  s.active = true;
  ++active_;
  s.measured = measured;
  s.sent = 0;
  s.origin_ns = origin_ns;
  s.started_ns = NowNanos();
  http_parser_init(&s.parser, HTTP_RESPONSE);
  s.parser.data = &s;
  s.headers_done = s.has_length = s.complete = s.keep_alive = false;
  s.announced = s.body = 0;
  if (s.fd >= 0) {
    OnWritable(s);
    return;
  }
  if (o_.tls != nullptr) {
    absl::StatusOr<std::unique_ptr<tls::TlsSession>> session =
        tls::TlsSession::Create(o_.tls);
    if (!session.ok()) {
      Fail(s, true, std::string(session.status().message()));
      return;
    }
    s.tls = *std::move(session);
  }
  absl::StatusOr<int> fd = ConnectNonBlocking(o_.endpoint);
  if (!fd.ok()) {
    Fail(s, true, std::string(fd.status().message()));
    return;
  }
  s.fd = *fd;
  s.connecting = true;
  s.want_out = true;
  epoll_event ev = {};
  ev.events = EPOLLOUT | EPOLLIN;
  ev.data.ptr = &s;
  ::epoll_ctl(epfd_, EPOLL_CTL_ADD, s.fd, &ev);
}

void HttpWorker::Fail(HttpSlot& s, bool is_error, const std::string& why) {
  if (s.measured) {
    problems_->Note(why);
    ++(is_error ? result_.errors : result_.bad);
  }
  Close(s);
  Finish(s, false);
}

void HttpWorker::Finish(HttpSlot& s, bool reusable) {
  if (s.active) {
    s.active = false;
    --active_;
    s.ended_ns = NowNanos();
    if (s.measured) last_measured_end_ns_ = s.ended_ns;
    if (o_.progress != nullptr) o_.progress->fetch_add(1);
  }
  if (!reusable) Close(s);
  // The caller starts the next request after Poll returns, not from here:
  // a server refusing every connection would otherwise recurse once per
  // request.
  finished_.push_back(&s);
}

std::vector<HttpSlot*> HttpWorker::TakeFinished() {
  std::vector<HttpSlot*> done;
  done.swap(finished_);
  return done;
}

void HttpWorker::OnWritable(HttpSlot& s) {
  if (s.connecting) {
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      Fail(s, true,
           absl::StrCat("connect to ", o_.endpoint.text, ": ",
                        std::strerror(err)));
      return;
    }
    s.connecting = false;
    if (s.tls != nullptr) s.tls->Read(nullptr, 0);  // the ClientHello
  }
  if (s.tls != nullptr) {
    if (s.sent == 0) {
      // Held by the engine until the handshake completes.
      const absl::Status written = s.tls->Write(request_);
      if (!written.ok()) {
        Fail(s, true, std::string(written.message()));
        return;
      }
      s.sent = request_.size();
    }
    FlushTls(s);
    return;
  }
  while (s.sent < request_.size()) {
    const ssize_t n = ::send(s.fd, request_.data() + s.sent,
                             request_.size() - s.sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0) {
      Fail(s, true, absl::StrCat("send: ", std::strerror(errno)));
      return;
    }
    s.sent += static_cast<size_t>(n);
  }
  epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.ptr = &s;
  ::epoll_ctl(epfd_, EPOLL_CTL_MOD, s.fd, &ev);
}

bool HttpWorker::FlushTls(HttpSlot& s) {
  s.tls->TakeOutput(&s.tls_out);
  while (s.tls_out_sent < s.tls_out.size()) {
    const ssize_t n = ::send(s.fd, s.tls_out.data() + s.tls_out_sent,
                             s.tls_out.size() - s.tls_out_sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!s.want_out) SetInterest(s, true);
      return true;
    }
    if (n < 0) {
      Fail(s, true, absl::StrCat("send: ", std::strerror(errno)));
      return false;
    }
    s.tls_out_sent += static_cast<size_t>(n);
  }
  s.tls_out.clear();
  s.tls_out_sent = 0;
  if (s.want_out) SetInterest(s, false);
  return true;
}

void HttpWorker::SetInterest(HttpSlot& s, bool want_out) {
  epoll_event ev = {};
  ev.events = EPOLLIN | (want_out ? EPOLLOUT : 0u);
  ev.data.ptr = &s;
  ::epoll_ctl(epfd_, EPOLL_CTL_MOD, s.fd, &ev);
  s.want_out = want_out;
}

void HttpWorker::Evaluate(HttpSlot& s) {
  const int status = s.parser.status_code;
  if (s.measured) result_.body_bytes += static_cast<int64_t>(s.body);
  if (status < 200 || status > 299) {
    Fail(s, false, absl::StrCat("HTTP status ", status));
    return;
  }
  if (!s.has_length || s.body != s.announced) {
    Fail(s, false,
         s.has_length ? absl::StrCat("body of ", s.body, " bytes, announced ",
                                     s.announced)
                      : std::string("response without Content-Length"));
    return;
  }
  if (s.measured) {
    ++result_.good;
    result_.latency.Record(NowNanos() - s.origin_ns);
  }
  Finish(s, o_.keepalive && s.keep_alive);
}

bool HttpWorker::Parse(HttpSlot& s, const char* data, size_t n) {
  // n == 0 tells the parser about EOF (ends a body without a length).
  const size_t parsed = http_parser_execute(&s.parser, &settings_, data, n);
  const http_errno err = HTTP_PARSER_ERRNO(&s.parser);
  if (s.complete) {
    Evaluate(s);
    return false;
  }
  if (err != HPE_OK || parsed != n) {
    Fail(s, false, absl::StrCat("unparsable response: ", http_errno_name(err)));
    return false;
  }
  if (n == 0) {
    Fail(s, !s.headers_done,
         s.headers_done ? "connection closed mid-body"
                        : "connection closed before a response");
    return false;
  }
  return true;
}

void HttpWorker::OnReadable(HttpSlot& s) {
  if (s.tls != nullptr) {
    OnReadableTls(s);
    return;
  }
  char buf[16384];
  for (;;) {
    const ssize_t n = ::recv(s.fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0) {
      Fail(s, true, absl::StrCat("receive: ", std::strerror(errno)));
      return;
    }
    if (!s.active) {
      // Bytes (or EOF) on an idle keep-alive connection: the server closed
      // it or sent something unasked. Either way, drop it.
      Close(s);
      return;
    }
    if (!Parse(s, buf, static_cast<size_t>(n))) return;
  }
}

void HttpWorker::OnReadableTls(HttpSlot& s) {
  char buf[16384];
  char plain[16384];
  // Bounded: epoll is level-triggered, so what is left signals again.
  for (int reads = 0; reads < 64; ++reads) {
    const ssize_t n = ::recv(s.fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0) {
      Fail(s, true, absl::StrCat("receive: ", std::strerror(errno)));
      return;
    }
    if (n == 0) {
      s.tls->FeedEof();
    } else {
      s.tls->Feed(absl::string_view(buf, static_cast<size_t>(n)));
    }
    // Everything the engine can decrypt now, then whatever it has to say
    // (handshake messages, alerts).
    for (;;) {
      const size_t got = s.tls->Read(plain, sizeof(plain));
      if (got == 0) break;
      if (!s.active) {
        // Bytes on an idle keep-alive connection: drop it.
        Close(s);
        return;
      }
      if (!Parse(s, plain, got)) return;
    }
    const tls::TlsSession::State state = s.tls->state();
    if (state == tls::TlsSession::State::kHandshaking ||
        state == tls::TlsSession::State::kOpen) {
      if (!FlushTls(s)) return;
      if (n > 0) continue;
      Fail(s, true, "connection closed during the TLS handshake");
      return;
    }
    if (!s.active) {
      Close(s);
      return;
    }
    if (state == tls::TlsSession::State::kFailed) {
      const std::string why(s.tls->status().message());
      if (FlushTls(s)) Fail(s, true, why);  // after our alert, if any
      return;
    }
    // The server's end of the stream (close_notify or not).
    Parse(s, plain, 0);
    return;
  }
}

void HttpWorker::CheckTimeouts(int64_t now) {
  const int64_t timeout_ns = int64_t{o_.timeout_ms} * 1000000;
  for (HttpSlot& s : slots_) {
    if (s.active && now - s.started_ns > timeout_ns) {
      Fail(s, true,
           absl::StrCat("no complete response within ", o_.timeout_ms, " ms"));
    }
  }
}

void HttpWorker::Poll(int64_t deadline_ns) {
  epoll_event events[256];
  const int64_t wait_ns =
      std::min(std::max<int64_t>(deadline_ns - NowNanos(), 0), kMaxWaitNs);
  const int n = WaitNs(epfd_, events, 256, wait_ns);
  for (int i = 0; i < n; ++i) {
    HttpSlot& s = *static_cast<HttpSlot*>(events[i].data.ptr);
    if (s.fd < 0) continue;
    if (events[i].events & (EPOLLOUT | EPOLLERR)) {
      if (s.connecting || s.sent < request_.size() || !s.tls_out.empty()) {
        OnWritable(s);
      }
    }
    if (s.fd >= 0 && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
      OnReadable(s);
    }
  }
  const int64_t now = NowNanos();
  if (now - last_timeout_check_ns_ > kMaxWaitNs) {
    last_timeout_check_ns_ = now;
    CheckTimeouts(now);
  }
}

}  // namespace baton::client
