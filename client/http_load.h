// Client library header: htstress-style HTTP load — several threads, each
// with its own epoll and a number of concurrent connections, until a total
// number of requests is done.
#ifndef BATON_CLIENT_HTTP_LOAD_H_
#define BATON_CLIENT_HTTP_LOAD_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "client/histogram.h"
#include "client/net.h"
#include "lib/tls/tls_context.h"

namespace baton::client {

struct HttpLoadOptions {
  Endpoint endpoint;
  std::string host_header = "localhost";
  std::string path = "/";
  int threads = 1;
  int connections = 10;      // concurrent, per thread
  int64_t requests = 10000;  // total
  // false: HTTP/1.0, a new connection per request (htstress);
  // true: HTTP/1.1 keep-alive, connections reused while the server agrees.
  bool keepalive = false;
  int timeout_ms = 5000;
  std::atomic<int64_t>* progress = nullptr;  // completed requests
  // When set (a client context), every connection speaks TLS (HTTPS): each
  // new connection's handshake happens before its first response, so it
  // counts in that request's latency (every request's without keepalive).
  std::shared_ptr<const tls::TlsContext> tls;
};

struct HttpLoadResult {
  int64_t good = 0;    // 2xx, complete body of the announced length
  int64_t bad = 0;     // anything else the server answered
  int64_t errors = 0;  // connect failures, resets, timeouts
  int64_t body_bytes = 0;
  double seconds = 0;
  Histogram latency;          // request sent to response complete, nanoseconds
  std::string first_problem;  // what the first bad answer or error was
  double rate() const { return seconds > 0 ? (good + bad) / seconds : 0; }
};

absl::StatusOr<HttpLoadResult> RunHttpLoad(const HttpLoadOptions& options);

}  // namespace baton::client

#endif  // BATON_CLIENT_HTTP_LOAD_H_
