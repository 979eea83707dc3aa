// //server:http — a small HTTP/1.1 server on baton (khttpd-style): static
// files with sendfile, directory listings, and a fixed-size response mode
// for benchmarks.
//
//   bazel run //server:http -- --root=/var/www --port=8081
//   bazel run //server:http -- --response_size=128
#include <fcntl.h>
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "baton/reactor.h"
#include "lib/cli/parse_flags.h"
#include "lib/cli/validators.h"
#include "server/flags.h"
#include "server/httpd/http_handler.h"
#include "server/serve.h"

DEFINE_string(root, ".", "document root for files and listings");
DEFINE_string(tls_cert, "",
              "serve HTTPS: the server's certificate chain (PEM); needs "
              "--tls_key");
DEFINE_string(tls_key, "",
              "serve HTTPS: the private key (PEM, unencrypted) of --tls_cert");
DEFINE_int64(tls_handshake_timeout_ms, 10000,
             "with --tls_cert: close a connection whose TLS handshake has not "
             "completed this long after it was accepted");
DEFINE_int64(response_size, -1,
             "answer every GET with a body of this many bytes instead of "
             "serving files (-1: serve files)");
DEFINE_int64(keepalive_timeout_ms, 5000,
             "close connections with no traffic for this long");
DEFINE_int64(write_timeout_ms, 10000,
             "abort connections whose responses could not be sent for this "
             "long because the client stopped reading");
DEFINE_int64(request_timeout_ms, 10000,
             "answer 408 and close when a request's headers are not complete "
             "this long after their first byte");
DEFINE_int64(body_timeout_ms, 10000,
             "answer 408 and close when a request's body is not complete this "
             "long after its headers, however steadily it trickles in (with "
             "--request_timeout_ms, bounds how long one request holds a "
             "connection)");
DEFINE_int64(max_body_bytes, 1 << 20,
             "largest request body read (bodies are read only to be skipped): "
             "a larger one is answered 413 and the connection closed, before "
             "it is sent when Content-Length announces it (0: no bodies)");
DEFINE_bool(serve_dotfiles, false,
            "serve and list files and directories whose names start with "
            "'.' (.git, .env); off: 404, also when reached through a "
            "symbolic link, and left out of listings");
DEFINE_int32(defer_accept_seconds, 1,
             "accept a connection once its request has arrived and read it "
             "at once (TCP_DEFER_ACCEPT); a silent client is accepted after "
             "about this long anyway (0: accept at connect; TCP only: not "
             "used with a unix: --address)");

namespace {
bool ValidResponseSize(const char* flag, int64_t v) {
  if (v >= -1 && v <= (int64_t{1} << 30)) return true;
  std::fprintf(stderr, "--%s=%lld: must be -1 (files) or 0..1 GiB\n", flag,
               static_cast<long long>(v));
  return false;
}

// A request deadline: 1 ms .. 1 hour.
bool ValidRequestTimeout(const char* flag, int64_t v) {
  if (v >= 1 && v <= 3600 * 1000) return true;
  std::fprintf(stderr, "--%s=%lld: must be in 1..3600000 ms (1 hour)\n", flag,
               static_cast<long long>(v));
  return false;
}

// The plaintext answer to a plain HTTP request sent to the HTTPS port (as
// nginx answers it); the connection is closed after it.
std::string PlainHttpResponse() {
  const std::string body =
      "400 Bad Request: a plain HTTP request was sent to an HTTPS port\n";
  return absl::StrCat(
      "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
      "Content-Length: ",
      body.size(), "\r\nConnection: close\r\n\r\n", body);
}

bool ValidMaxBodyBytes(const char* flag, int64_t v) {
  if (v >= 0 && v <= (int64_t{1} << 40)) return true;
  std::fprintf(stderr, "--%s=%lld: must be in 0..1 TiB (0: no bodies)\n", flag,
               static_cast<long long>(v));
  return false;
}
}  // namespace

DEFINE_validator(response_size, &ValidResponseSize);
DEFINE_validator(keepalive_timeout_ms, &baton::cli::ValidatePositive<int64_t>);
DEFINE_validator(request_timeout_ms, &ValidRequestTimeout);
DEFINE_validator(tls_handshake_timeout_ms, &ValidRequestTimeout);
DEFINE_validator(body_timeout_ms, &ValidRequestTimeout);
DEFINE_validator(max_body_bytes, &ValidMaxBodyBytes);
DEFINE_validator(write_timeout_ms, &baton::cli::ValidatePositive<int64_t>);
DEFINE_validator(defer_accept_seconds, &baton::flags::ValidateDeferSeconds);

int main(int argc, char** argv) {
  baton::cli::SetFlagDefault("port", "8081");
  if (!baton::flags::InitServer(
          &argc, &argv,
          "HTTP/1.1 server on baton\n"
          "usage: http [--root=DIR | --response_size=N] [--port=N] ...")) {
    return 2;
  }
  const sigset_t stop_signals = baton::flags::BlockStopSignals();
  int root_fd = -1;
  if (FLAGS_response_size < 0) {
    root_fd = ::open(FLAGS_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) {
      LOG(ERROR) << "--root=" << FLAGS_root << ": " << std::strerror(errno);
      return 2;
    }
  }
  baton::ReactorOptions options;
  options.threads = FLAGS_threads;
  baton::flags::HandshakeThreadsFromFlags(&options);
  options.idle_timeout = absl::Milliseconds(FLAGS_keepalive_timeout_ms);
  options.write_timeout = absl::Milliseconds(FLAGS_write_timeout_ms);
  options.max_connections = static_cast<size_t>(FLAGS_max_connections);
  options.thread_name = "http";
  baton::http::HttpConfig config;
  config.root_fd = root_fd;
  config.response_size = FLAGS_response_size;
  config.serve_dotfiles = FLAGS_serve_dotfiles;
  config.request_timeout = absl::Milliseconds(FLAGS_request_timeout_ms);
  config.body_timeout = absl::Milliseconds(FLAGS_body_timeout_ms);
  config.max_body_bytes = static_cast<uint64_t>(FLAGS_max_body_bytes);
  absl::StatusOr<baton::ListenOptions> listen = baton::flags::ListenFromFlags();
  if (!listen.ok()) {
    LOG(ERROR) << listen.status().message();
    return 2;
  }
  absl::StatusOr<std::shared_ptr<const baton::TlsServerOptions>> tls =
      baton::flags::TlsFromFlags(FLAGS_tls_cert, FLAGS_tls_key);
  if (!tls.ok()) {
    LOG(ERROR) << tls.status().message();
    return 2;
  }
  if (*tls != nullptr) {
    auto tls_options = std::make_shared<baton::TlsServerOptions>(**tls);
    tls_options->handshake_timeout =
        absl::Milliseconds(FLAGS_tls_handshake_timeout_ms);
    tls_options->plain_http_response = PlainHttpResponse();
    listen->tls = std::move(tls_options);
  }
  // TCP_DEFER_ACCEPT is a TCP option: a Unix listener does without it.
  if (listen->unix_path.empty()) {
    listen->defer_accept_seconds = FLAGS_defer_accept_seconds;
  }
  const int status = baton::flags::ServeUntilSignal(
      options, *listen,
      [&config](baton::Reactor* reactor) -> baton::HandlerFactory {
        config.reactor = reactor;
        return [&config] {
          return std::make_unique<baton::http::HttpHandler>(&config);
        };
      },
      stop_signals,
      FLAGS_response_size >= 0
          ? "(" + std::to_string(FLAGS_response_size) + "-byte bodies)"
          : "(files from " + FLAGS_root + ")");
  if (root_fd >= 0) ::close(root_fd);
  return status;
}
