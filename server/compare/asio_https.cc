// //server/compare:asio_https — an HTTPS server on Boost.Asio that answers
// every request with a fixed body, the baseline //server:http
// --response_size --tls_cert is compared against. For comparison only.
//
// Written the way a competent Asio user would for a benchmark: a session
// object per connection kept alive by shared_ptr, an
// asio::ssl::stream<tcp::socket>, async_handshake, then an HTTP/1.1
// keep-alive loop of async_read_until "\r\n\r\n" into a per-session string
// and one async_write of the whole response (head and body in one buffer,
// so one TLS record and one send for small bodies). TCP_NODELAY, no strand:
// a session has at most one operation outstanding. A connection that is to
// close (Connection: close, HTTP/1.0 without keep-alive, a bad request)
// ends with async_shutdown: close_notify, then the client's. No timeouts,
// as in asio_echo.
//
// The SSL context: TLS 1.2 minimum (as baton's), OpenSSL's default cipher
// suites, no session cache and no tickets, so every new connection is a
// full handshake.
//
// Two threading models, chosen by --model:
//   shared      one io_context run by --threads threads (Asio's thread-pool
//               recommendation: one thread in epoll, completions on one
//               shared queue);
//   per_thread  one io_context per thread, each with its own acceptor bound
//               to the same port with SO_REUSEPORT (the loop-per-thread
//               design).
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "lib/cli/parse_flags.h"
#include "lib/net/address.h"
#include "lib/net/endpoint.h"
#include "server/flags.h"

DEFINE_string(model, "shared",
              "shared: one io_context run by all threads; per_thread: one "
              "io_context and one SO_REUSEPORT acceptor per thread");
DEFINE_string(tls_cert, "",
              "the server's certificate chain (PEM); required, with --tls_key");
DEFINE_string(tls_key, "",
              "the private key (PEM, unencrypted) of --tls_cert; required");
DEFINE_int64(response_size, 128,
             "body bytes of every response (0..1073741824)");

namespace {
bool ValidateModel(const char* flag, const std::string& value) {
  if (value == "shared" || value == "per_thread") return true;
  std::fprintf(stderr, "--%s=%s: must be shared or per_thread\n", flag,
               value.c_str());
  return false;
}
bool ValidateResponseSize(const char* flag, int64_t value) {
  if (value >= 0 && value <= (int64_t{1} << 30)) return true;
  std::fprintf(stderr, "--%s=%lld: must be in 0..1073741824 bytes\n", flag,
               static_cast<long long>(value));
  return false;
}
}  // namespace
DEFINE_validator(model, &ValidateModel);
DEFINE_validator(response_size, &ValidateResponseSize);

namespace {

namespace ssl = boost::asio::ssl;
using boost::asio::ip::tcp;

// The longest request head read; a longer one is answered 400 and closed.
constexpr size_t kMaxHead = 16 << 10;

// What a request head asks for.
struct Request {
  bool valid = false;
  bool head_method = false;  // HEAD: no body in the answer
  bool keep_alive = false;
  bool chunked = false;  // a chunked body: answered, then the connection ends
  uint64_t content_length = 0;
};

// Parses `head` (request line and header lines, ending in "\r\n\r\n").
Request ParseRequest(absl::string_view head) {
  Request request;
  std::vector<absl::string_view> lines =
      absl::StrSplit(head.substr(0, head.size() - 4), "\r\n");
  std::vector<absl::string_view> start =
      absl::StrSplit(lines[0], ' ', absl::SkipEmpty());
  if (start.size() != 3) return request;
  bool http11;
  if (start[2] == "HTTP/1.1") {
    http11 = true;
  } else if (start[2] == "HTTP/1.0") {
    http11 = false;
  } else {
    return request;
  }
  request.head_method = start[0] == "HEAD";
  bool close = false;
  bool keep_alive = false;
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == absl::string_view::npos || colon == 0) return request;
    const absl::string_view name = lines[i].substr(0, colon);
    const absl::string_view value =
        absl::StripAsciiWhitespace(lines[i].substr(colon + 1));
    if (absl::EqualsIgnoreCase(name, "Connection")) {
      for (absl::string_view token : absl::StrSplit(value, ',')) {
        token = absl::StripAsciiWhitespace(token);
        close |= absl::EqualsIgnoreCase(token, "close");
        keep_alive |= absl::EqualsIgnoreCase(token, "keep-alive");
      }
    } else if (absl::EqualsIgnoreCase(name, "Content-Length")) {
      if (!absl::SimpleAtoi(value, &request.content_length)) return request;
    } else if (absl::EqualsIgnoreCase(name, "Transfer-Encoding")) {
      request.chunked = true;
    }
  }
  request.keep_alive = !close && (http11 || keep_alive) && !request.chunked;
  request.valid = true;
  return request;
}

// The Date header's value, formatted once per second per thread.
const std::string& CurrentDate() {
  thread_local time_t cached_second = 0;
  thread_local std::string cached;
  const time_t now = ::time(nullptr);
  if (now != cached_second) {
    cached_second = now;
    cached = absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", absl::FromTimeT(now),
                              absl::UTCTimeZone());
  }
  return cached;
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, ssl::context& context, const std::string* body)
      : stream_(std::move(socket), context), body_(body) {}

  void Start() {
    boost::system::error_code ignored;
    stream_.next_layer().set_option(tcp::no_delay(true), ignored);
    auto self = shared_from_this();
    stream_.async_handshake(ssl::stream_base::server,
                            [this, self](const boost::system::error_code& ec) {
                              if (!ec) ReadRequest();
                            });
  }

 private:
  void ReadRequest() {
    auto self = shared_from_this();
    boost::asio::async_read_until(
        stream_, boost::asio::dynamic_buffer(in_, kMaxHead), "\r\n\r\n",
        [this, self](const boost::system::error_code& ec, size_t head_size) {
          if (ec == boost::asio::error::not_found) {
            Respond(400, false);  // the head does not fit kMaxHead
            return;
          }
          if (ec) return;  // the client went away (or broke TLS)
          const Request request =
              ParseRequest(absl::string_view(in_.data(), head_size));
          in_.erase(0, head_size);
          if (!request.valid) {
            Respond(400, false);
            return;
          }
          head_method_ = request.head_method;
          keep_alive_ = request.keep_alive;
          DiscardBody(request.content_length);
        });
  }

  // Drops `remaining` request body bytes (some may be in in_ already),
  // then answers.
  void DiscardBody(uint64_t remaining) {
    const size_t buffered = static_cast<size_t>(
        std::min<uint64_t>(remaining, static_cast<uint64_t>(in_.size())));
    in_.erase(0, buffered);
    remaining -= buffered;
    if (remaining == 0) {
      Respond(200, keep_alive_);
      return;
    }
    auto self = shared_from_this();
    in_.resize(kMaxHead);
    stream_.async_read_some(
        boost::asio::buffer(in_),
        [this, self, remaining](const boost::system::error_code& ec, size_t n) {
          if (ec) return;
          in_.resize(n);  // the bytes read; those past the body are kept
          DiscardBody(remaining);
        });
  }

  void Respond(int status, bool keep_alive) {
    const bool with_body = status == 200 && !head_method_;
    const uint64_t length = status == 200 ? body_->size() : 0;
    out_.clear();
    absl::StrAppend(&out_, "HTTP/1.1 ",
                    status == 200 ? "200 OK" : "400 Bad Request",
                    "\r\nServer: asio\r\nDate: ", CurrentDate(),
                    "\r\nContent-Length: ", length,
                    "\r\nContent-Type: text/plain\r\nConnection: ",
                    keep_alive ? "keep-alive" : "close", "\r\n\r\n");
    if (with_body) out_ += *body_;
    auto self = shared_from_this();
    boost::asio::async_write(
        stream_, boost::asio::buffer(out_),
        [this, self, keep_alive](const boost::system::error_code& ec, size_t) {
          if (ec) return;
          if (keep_alive) {
            ReadRequest();
          } else {
            Shutdown();
          }
        });
  }

  // close_notify, then wait for the client's (or its end of the stream);
  // the socket closes when the last handler lets go of the session.
  void Shutdown() {
    auto self = shared_from_this();
    stream_.async_shutdown([this, self](const boost::system::error_code&) {
      boost::system::error_code ignored;
      stream_.lowest_layer().close(ignored);
    });
  }

  ssl::stream<tcp::socket> stream_;
  const std::string* const body_;  // the fixed response body
  std::string in_;                 // request bytes not yet handled
  std::string out_;                // the response being written
  bool head_method_ = false;
  bool keep_alive_ = false;
};

class Server {
 public:
  // With `reuse_port`, several Servers (one per io_context) bind one port.
  Server(boost::asio::io_context& io, const tcp::endpoint& endpoint,
         bool reuse_port, ssl::context& context, const std::string* body)
      : acceptor_(io), context_(context), body_(body) {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    if (reuse_port) {
      acceptor_.set_option(
          boost::asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(
              true));
    }
    acceptor_.bind(endpoint);
    acceptor_.listen(1024);
    Accept();
  }

  tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }
  void Close() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  }

 private:
  void Accept() {
    acceptor_.async_accept([this](const boost::system::error_code& ec,
                                  tcp::socket socket) {
      if (ec == boost::asio::error::operation_aborted) return;
      if (!ec) {
        std::make_shared<Session>(std::move(socket), context_, body_)->Start();
      }
      // Keep accepting after transient errors (EMFILE included).
      Accept();
    });
  }

  tcp::acceptor acceptor_;
  ssl::context& context_;
  const std::string* const body_;
};

// The server's SSL context from --tls_cert and --tls_key; false after
// logging why not.
bool SetUpContext(ssl::context& context) {
  SSL_CTX* ctx = context.native_handle();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_num_tickets(ctx, 0);  // TLS 1.3 sends none either
  try {
    context.use_certificate_chain_file(FLAGS_tls_cert);
  } catch (const boost::system::system_error& e) {
    LOG(ERROR) << "--tls_cert=" << FLAGS_tls_cert
               << ": no valid PEM certificate (" << e.what() << ")";
    return false;
  }
  try {
    context.use_private_key_file(FLAGS_tls_key, ssl::context::pem);
  } catch (const boost::system::system_error& e) {
    LOG(ERROR) << "--tls_key=" << FLAGS_tls_key
               << ": no valid unencrypted PEM private key matching --tls_cert"
               << " (" << e.what() << ")";
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  baton::cli::SetFlagDefault("port", "8443");
  if (!baton::flags::InitServer(
          &argc, &argv,
          "HTTPS server on Boost.Asio answering every request with a fixed "
          "body (comparison baseline)\n"
          "usage: asio_https --tls_cert=PEM --tls_key=PEM [--port=N] "
          "[--address=A] [--threads=N] [--model=shared|per_thread] "
          "[--response_size=N]")) {
    return 2;
  }
  if (baton::net::IsUnixEndpoint(FLAGS_address)) {
    LOG(ERROR) << "--address=" << FLAGS_address
               << ": this server listens on TCP only";
    return 2;
  }
  if (FLAGS_tls_cert.empty() || FLAGS_tls_key.empty()) {
    LOG(ERROR) << "--tls_cert and --tls_key are required";
    return 2;
  }
  // Missing or unreadable files, named by flag.
  absl::StatusOr<std::shared_ptr<const baton::TlsServerOptions>> files =
      baton::flags::TlsFromFlags(FLAGS_tls_cert, FLAGS_tls_key);
  if (!files.ok()) {
    LOG(ERROR) << files.status().message();
    return 2;
  }
  ssl::context context(ssl::context::tls_server);
  if (!SetUpContext(context)) return 2;

  const sigset_t stop_signals = baton::flags::BlockStopSignals();
  const int threads = baton::flags::ThreadCount();
  const bool per_thread = FLAGS_model == "per_thread";
  const std::string body(static_cast<size_t>(FLAGS_response_size), 'x');

  // shared: one io_context with a concurrency hint of `threads`;
  // per_thread: `threads` io_contexts with hint 1 (no locking needed inside).
  std::vector<std::unique_ptr<boost::asio::io_context>> ios;
  for (int i = 0; i < (per_thread ? threads : 1); ++i) {
    ios.push_back(
        std::make_unique<boost::asio::io_context>(per_thread ? 1 : threads));
  }
  std::vector<std::unique_ptr<Server>> servers;
  tcp::endpoint endpoint;
  try {
    endpoint = tcp::endpoint(boost::asio::ip::make_address(FLAGS_address),
                             static_cast<uint16_t>(FLAGS_port));
    for (auto& io : ios) {
      servers.push_back(
          std::make_unique<Server>(*io, endpoint, per_thread, context, &body));
      // --port=0: the others join the port the first one got.
      endpoint.port(servers.front()->local_endpoint().port());
    }
  } catch (const boost::system::system_error& e) {
    LOG(ERROR) << "cannot listen on "
               << baton::net::JoinHostPort(FLAGS_address, FLAGS_port) << ": "
               << e.what();
    return 1;
  }
  std::vector<
      boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>
      work;
  for (auto& io : ios) work.push_back(boost::asio::make_work_guard(*io));
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) {
    boost::asio::io_context* io = ios[per_thread ? i : 0].get();
    pool.emplace_back([io] { io->run(); });
  }
  LOG(INFO) << "listening on "
            << baton::net::JoinHostPort(FLAGS_address, endpoint.port())
            << " with " << threads << " threads, "
            << (per_thread ? "one io_context per thread"
                           : "one shared io_context")
            << " (HTTPS, " << body.size() << "-byte bodies)";

  const int signal = baton::flags::WaitForSignal(stop_signals);
  LOG(INFO) << "signal " << signal << ": stopping";
  for (size_t i = 0; i < ios.size(); ++i) {
    Server* server = servers[i].get();
    boost::asio::post(*ios[i], [server] { server->Close(); });
  }
  work.clear();
  for (auto& io : ios) io->stop();
  for (auto& t : pool) t.join();
  // Sessions still open go with their io_context's pending handlers,
  // before the servers, the body and the SSL context they use.
  servers.clear();
  ios.clear();
  LOG(INFO) << "stopped";
  return 0;
}
