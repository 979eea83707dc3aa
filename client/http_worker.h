// Client library header (internal to the HTTP load): one load thread's
// connections and their I/O — connect, TLS, send the request, parse and
// check the response — on the thread's own epoll. What to send when is the
// caller's: the closed loop in http_load.cc, the paced one in
// paced_load.cc. Not thread-safe: one HttpWorker per thread.
#ifndef BATON_CLIENT_HTTP_WORKER_H_
#define BATON_CLIENT_HTTP_WORKER_H_

#include <http_parser.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "client/http_load.h"
#include "lib/tls/tls_session.h"

namespace baton::client {

// The first problem any thread saw, for the report.
struct HttpProblems {
  std::mutex mu;
  std::string first;

  void Note(const std::string& problem) {
    std::lock_guard<std::mutex> lock(mu);
    if (first.empty()) first = problem;
  }
};

// A connection slot: at most one request in flight on it.
struct HttpSlot {
  int fd = -1;
  bool connecting = false;
  bool active = false;     // a request is in flight
  bool measured = false;   // it counts in the result
  size_t sent = 0;         // request bytes handed to the socket (or engine)
  int64_t origin_ns = 0;   // its latency runs from here
  int64_t started_ns = 0;  // when it was started (its timeout runs from here)
  int64_t ended_ns = 0;    // when its last request ended (0: none yet)
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

class HttpWorker {
 public:
  // `slots` connections; the request is HTTP/1.0 without keepalive,
  // HTTP/1.1 keep-alive with it, HTTP/1.1 "Connection: close" with rate.
  HttpWorker(const HttpLoadOptions& o, HttpProblems* problems, int slots);
  ~HttpWorker();
  HttpWorker(const HttpWorker&) = delete;
  HttpWorker& operator=(const HttpWorker&) = delete;

  std::vector<HttpSlot>& slots() { return slots_; }
  // Starts a request on an idle slot: on its open keep-alive connection,
  // else on a new one. Latency runs from `origin_ns`; `measured`: it
  // counts in result(). A failure to start ends it at once (in Finished).
  void Start(HttpSlot& s, int64_t origin_ns, bool measured);
  // Waits for socket events until `deadline_ns` at the latest (at most
  // 50 ms), serves them and fails requests past their timeout.
  void Poll(int64_t deadline_ns);
  // The slots whose request ended since the last call: free again.
  std::vector<HttpSlot*> TakeFinished();
  int active() const { return active_; }
  HttpLoadResult& result() { return result_; }
  // When the last measured request ended (0: none did).
  int64_t last_measured_end_ns() const { return last_measured_end_ns_; }

 private:
  void Finish(HttpSlot& s, bool reusable);
  void Fail(HttpSlot& s, bool is_error, const std::string& why);
  void OnWritable(HttpSlot& s);
  void OnReadable(HttpSlot& s);
  void OnReadableTls(HttpSlot& s);
  // Feeds response bytes to the parser (n == 0: the server's end of the
  // stream); false once the request is settled (evaluated or failed).
  bool Parse(HttpSlot& s, const char* data, size_t n);
  // Sends the engine's ciphertext (the request, handshake messages);
  // false if the connection failed.
  bool FlushTls(HttpSlot& s);
  void SetInterest(HttpSlot& s, bool want_out);
  void Evaluate(HttpSlot& s);
  void Close(HttpSlot& s);
  void CheckTimeouts(int64_t now);

  const HttpLoadOptions& o_;
  HttpProblems* problems_;
  http_parser_settings settings_;
  std::string request_;
  int epfd_ = -1;
  int active_ = 0;
  std::vector<HttpSlot> slots_;
  std::vector<HttpSlot*> finished_;
  HttpLoadResult result_;
  int64_t last_measured_end_ns_ = 0;
  int64_t last_timeout_check_ns_ = 0;
};

// The run's clock: when it started, and the window whose requests count
// in a time-bound run (warm-up before it).
struct HttpRunClock {
  int64_t start_ns = 0;
  int64_t measure_ns = 0;  // start + warm-up
  int64_t end_ns = 0;      // measure + duration
};

// Thread `index` of o.threads: sends the requests of the run scheduled at
// clock.start_ns + i / o.rate with i = index (mod o.threads) and before
// clock.end_ns, then waits for the last answers (paced_load.cc).
void RunPaced(const HttpLoadOptions& o, const HttpRunClock& clock, int index,
              HttpWorker* worker);

}  // namespace baton::client

#endif  // BATON_CLIENT_HTTP_WORKER_H_
