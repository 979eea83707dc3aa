// Client library: HTTP load. Responses are parsed with http-parser.
#include "client/http_load.h"

#include <http_parser.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lib/tls/tls_session.h"

namespace baton::client {
namespace {

struct Conn {
  int fd = -1;
  bool connecting = false;
  bool active = false;  // a request is in flight
  size_t sent = 0;
  int64_t started_ns = 0;
  http_parser parser;
  // Filled by the parser callbacks.
  bool headers_done = false;
  bool has_length = false;
  uint64_t announced = 0;
  uint64_t body = 0;
  bool complete = false;
  bool keep_alive = false;
  // HTTPS only: the engine, the ciphertext not sent yet, and whether
  // EPOLLOUT is armed for it.
  std::unique_ptr<tls::TlsSession> tls;
  std::string tls_out;
  size_t tls_out_sent = 0;
  bool want_out = false;
};

struct Shared {
  std::atomic<int64_t> remaining;
  std::mutex mu;
  std::string first_problem;

  void Note(const std::string& problem) {
    std::lock_guard<std::mutex> lock(mu);
    if (first_problem.empty()) first_problem = problem;
  }
};

int OnHeadersComplete(http_parser* p) {
  Conn* c = static_cast<Conn*>(p->data);
  c->headers_done = true;
  c->has_length = (p->flags & F_CONTENTLENGTH) != 0;
  c->announced = c->has_length ? p->content_length : 0;
  return 0;
}

int OnBody(http_parser* p, const char*, size_t length) {
  static_cast<Conn*>(p->data)->body += length;
  return 0;
}

int OnMessageComplete(http_parser* p) {
  Conn* c = static_cast<Conn*>(p->data);
  c->complete = true;
  c->keep_alive = http_should_keep_alive(p) != 0;
  // Stop here: bytes after the response belong to no request of ours.
  http_parser_pause(p, 1);
  return 0;
}

class Worker {
 public:
  Worker(const HttpLoadOptions& o, Shared* shared) : o_(o), shared_(shared) {
    http_parser_settings_init(&settings_);
    settings_.on_headers_complete = OnHeadersComplete;
    settings_.on_body = OnBody;
    settings_.on_message_complete = OnMessageComplete;
    request_ = absl::StrCat(
        "GET ", o.path, o.keepalive ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n",
        "Host: ", o.host_header, "\r\nUser-Agent: baton-bench\r\n",
        o.keepalive ? "Connection: keep-alive\r\n" : "", "\r\n");
  }

  void Run();
  HttpLoadResult& result() { return result_; }

 private:
  bool StartRequest(Conn& c);
  void Finish(Conn& c, bool reusable);
  void Fail(Conn& c, bool is_error, const std::string& why);
  void OnWritable(Conn& c);
  void OnReadable(Conn& c);
  void OnReadableTls(Conn& c);
  // Feeds response bytes to the parser (n == 0: the server's end of the
  // stream); false once the request is settled (evaluated or failed).
  bool Parse(Conn& c, const char* data, size_t n);
  // Sends the engine's ciphertext (the request, handshake messages);
  // false if the connection failed.
  bool FlushTls(Conn& c);
  void SetInterest(Conn& c, bool want_out);
  void Evaluate(Conn& c);
  void Close(Conn& c);

  const HttpLoadOptions& o_;
  Shared* shared_;
  http_parser_settings settings_;
  std::string request_;
  int epfd_ = -1;
  int active_ = 0;
  std::vector<Conn> conns_;
  std::vector<Conn*> restart_;
  HttpLoadResult result_;
};

void Worker::Close(Conn& c) {
  if (c.tls != nullptr && c.fd >= 0 &&
      c.tls->state() == tls::TlsSession::State::kOpen) {
    // close_notify, best effort: the server then sees a clean end.
    c.tls->Close();
    std::string alert;
    c.tls->TakeOutput(&alert);
    (void)::send(c.fd, alert.data(), alert.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  if (c.fd >= 0) ::close(c.fd);  // also leaves the epoll set
  c.fd = -1;
  c.tls.reset();
  c.tls_out.clear();
  c.tls_out_sent = 0;
  c.want_out = false;
}

bool Worker::StartRequest(Conn& c) {
  if (shared_->remaining.fetch_sub(1) <= 0) return false;
  c.active = true;
  ++active_;
  c.sent = 0;
  c.started_ns = NowNanos();
  http_parser_init(&c.parser, HTTP_RESPONSE);
  c.parser.data = &c;
  c.headers_done = c.has_length = c.complete = c.keep_alive = false;
  c.announced = c.body = 0;
  if (c.fd < 0) {
    if (o_.tls != nullptr) {
      absl::StatusOr<std::unique_ptr<tls::TlsSession>> session =
          tls::TlsSession::Create(o_.tls);
      if (!session.ok()) {
        Fail(c, true, std::string(session.status().message()));
        return true;
      }
      c.tls = *std::move(session);
    }
    absl::StatusOr<int> fd = ConnectNonBlocking(o_.endpoint);
    if (!fd.ok()) {
      Fail(c, true, std::string(fd.status().message()));
      return true;
    }
    c.fd = *fd;
    c.connecting = true;
    c.want_out = true;
    epoll_event ev = {};
    ev.events = EPOLLOUT | EPOLLIN;
    ev.data.ptr = &c;
    ::epoll_ctl(epfd_, EPOLL_CTL_ADD, c.fd, &ev);
    return true;
  }
  OnWritable(c);
  return true;
}

void Worker::Fail(Conn& c, bool is_error, const std::string& why) {
  shared_->Note(why);
  if (is_error) {
    ++result_.errors;
  } else {
    ++result_.bad;
  }
  Close(c);
  Finish(c, false);
}

void Worker::Finish(Conn& c, bool reusable) {
  if (c.active) {
    c.active = false;
    --active_;
    if (o_.progress != nullptr) o_.progress->fetch_add(1);
  }
  if (!reusable) Close(c);
  // Started from the event loop, not from here: a server refusing every
  // connection would otherwise recurse once per request.
  restart_.push_back(&c);
}

void Worker::OnWritable(Conn& c) {
  if (c.connecting) {
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      Fail(c, true,
           absl::StrCat("connect to ", o_.endpoint.text, ": ",
                        std::strerror(err)));
      return;
    }
    c.connecting = false;
    if (c.tls != nullptr) c.tls->Read(nullptr, 0);  // the ClientHello
  }
  if (c.tls != nullptr) {
    if (c.sent == 0) {
      // Held by the engine until the handshake completes.
      const absl::Status written = c.tls->Write(request_);
      if (!written.ok()) {
        Fail(c, true, std::string(written.message()));
        return;
      }
      c.sent = request_.size();
    }
    FlushTls(c);
    return;
  }
  while (c.sent < request_.size()) {
    const ssize_t n = ::send(c.fd, request_.data() + c.sent,
                             request_.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0) {
      Fail(c, true, absl::StrCat("send: ", std::strerror(errno)));
      return;
    }
    c.sent += static_cast<size_t>(n);
  }
  epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.ptr = &c;
  ::epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
}

bool Worker::FlushTls(Conn& c) {
  c.tls->TakeOutput(&c.tls_out);
  while (c.tls_out_sent < c.tls_out.size()) {
    const ssize_t n = ::send(c.fd, c.tls_out.data() + c.tls_out_sent,
                             c.tls_out.size() - c.tls_out_sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!c.want_out) SetInterest(c, true);
      return true;
    }
    if (n < 0) {
      Fail(c, true, absl::StrCat("send: ", std::strerror(errno)));
      return false;
    }
    c.tls_out_sent += static_cast<size_t>(n);
  }
  c.tls_out.clear();
  c.tls_out_sent = 0;
  if (c.want_out) SetInterest(c, false);
  return true;
}

void Worker::SetInterest(Conn& c, bool want_out) {
  epoll_event ev = {};
  ev.events = EPOLLIN | (want_out ? EPOLLOUT : 0u);
  ev.data.ptr = &c;
  ::epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
  c.want_out = want_out;
}

void Worker::Evaluate(Conn& c) {
  const int status = c.parser.status_code;
  result_.body_bytes += static_cast<int64_t>(c.body);
  if (status < 200 || status > 299) {
    Fail(c, false, absl::StrCat("HTTP status ", status));
    return;
  }
  if (!c.has_length || c.body != c.announced) {
    Fail(c, false,
         c.has_length ? absl::StrCat("body of ", c.body, " bytes, announced ",
                                     c.announced)
                      : std::string("response without Content-Length"));
    return;
  }
  ++result_.good;
  result_.latency.Record(NowNanos() - c.started_ns);
  Finish(c, o_.keepalive && c.keep_alive);
}

bool Worker::Parse(Conn& c, const char* data, size_t n) {
  // n == 0 tells the parser about EOF (ends a body without a length).
  const size_t parsed = http_parser_execute(&c.parser, &settings_, data, n);
  const http_errno err = HTTP_PARSER_ERRNO(&c.parser);
  if (c.complete) {
    Evaluate(c);
    return false;
  }
  if (err != HPE_OK || parsed != n) {
    Fail(c, false, absl::StrCat("unparsable response: ", http_errno_name(err)));
    return false;
  }
  if (n == 0) {
    Fail(c, c.headers_done ? false : true,
         c.headers_done ? "connection closed mid-body"
                        : "connection closed before a response");
    return false;
  }
  return true;
}

void Worker::OnReadable(Conn& c) {
  if (c.tls != nullptr) {
    OnReadableTls(c);
    return;
  }
  char buf[16384];
  for (;;) {
    const ssize_t n = ::recv(c.fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0) {
      Fail(c, true, absl::StrCat("receive: ", std::strerror(errno)));
      return;
    }
    if (!c.active) {
      // Bytes (or EOF) on an idle keep-alive connection: the server closed
      // it or sent something unasked. Either way, drop it.
      Close(c);
      return;
    }
    if (!Parse(c, buf, static_cast<size_t>(n))) return;
  }
}

void Worker::OnReadableTls(Conn& c) {
  char buf[16384];
  char plain[16384];
  // Bounded: epoll is level-triggered, so what is left signals again.
  for (int reads = 0; reads < 64; ++reads) {
    const ssize_t n = ::recv(c.fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0) {
      Fail(c, true, absl::StrCat("receive: ", std::strerror(errno)));
      return;
    }
    if (n == 0) {
      c.tls->FeedEof();
    } else {
      c.tls->Feed(absl::string_view(buf, static_cast<size_t>(n)));
    }
    // Everything the engine can decrypt now, then whatever it has to say
    // (handshake messages, alerts).
    for (;;) {
      const size_t got = c.tls->Read(plain, sizeof(plain));
      if (got == 0) break;
      if (!c.active) {
        // Bytes on an idle keep-alive connection: drop it.
        Close(c);
        return;
      }
      if (!Parse(c, plain, got)) return;
    }
    const tls::TlsSession::State state = c.tls->state();
    if (state == tls::TlsSession::State::kHandshaking ||
        state == tls::TlsSession::State::kOpen) {
      if (!FlushTls(c)) return;
      if (n > 0) continue;
      Fail(c, true, "connection closed during the TLS handshake");
      return;
    }
    if (!c.active) {
      Close(c);
      return;
    }
    if (state == tls::TlsSession::State::kFailed) {
      const std::string why(c.tls->status().message());
      if (FlushTls(c)) Fail(c, true, why);  // after our alert, if any
      return;
    }
    // The server's end of the stream (close_notify or not).
    Parse(c, plain, 0);
    return;
  }
}

void Worker::Run() {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  conns_.resize(o_.connections);
  for (Conn& c : conns_) {
    if (!StartRequest(c)) break;
  }
  std::vector<epoll_event> events(256);
  const int64_t timeout_ns = int64_t{o_.timeout_ms} * 1000000;
  int64_t last_check = NowNanos();
  while (active_ > 0 || !restart_.empty()) {
    std::vector<Conn*> restart;
    restart.swap(restart_);
    for (Conn* c : restart) StartRequest(*c);
    if (active_ == 0) continue;
    const int n =
        ::epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), 50);
    for (int i = 0; i < n; ++i) {
      Conn& c = *static_cast<Conn*>(events[i].data.ptr);
      if (c.fd < 0) continue;
      if (events[i].events & (EPOLLOUT | EPOLLERR)) {
        if (c.connecting || c.sent < request_.size() || !c.tls_out.empty()) {
          OnWritable(c);
        }
      }
      if (c.fd >= 0 && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        OnReadable(c);
      }
    }
    const int64_t now = NowNanos();
    if (now - last_check > 50000000) {
      last_check = now;
      for (Conn& c : conns_) {
        if (c.active && now - c.started_ns > timeout_ns) {
          Fail(c, true,
               absl::StrCat("no complete response within ", o_.timeout_ms,
                            " ms"));
        }
      }
    }
  }
  for (Conn& c : conns_) Close(c);
  ::close(epfd_);
}

}  // namespace

absl::StatusOr<HttpLoadResult> RunHttpLoad(const HttpLoadOptions& options) {
  if (options.threads < 1 || options.connections < 1 || options.requests < 1) {
    return absl::InvalidArgumentError(
        "threads, connections and requests must be positive");
  }
  Shared shared;
  shared.remaining = options.requests;
  std::vector<std::unique_ptr<Worker>> workers;
  for (int t = 0; t < options.threads; ++t) {
    workers.push_back(std::make_unique<Worker>(options, &shared));
  }
  const int64_t start = NowNanos();
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { w->Run(); });
  for (auto& t : threads) t.join();
  HttpLoadResult result;
  result.seconds = static_cast<double>(NowNanos() - start) / 1e9;
  for (auto& w : workers) {
    HttpLoadResult& r = w->result();
    result.good += r.good;
    result.bad += r.bad;
    result.errors += r.errors;
    result.body_bytes += r.body_bytes;
    result.latency.Merge(r.latency);
  }
  result.first_problem = shared.first_problem;
  return result;
}

}  // namespace baton::client
