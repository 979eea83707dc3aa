// A consumer program: includes every public header as "baton/...", starts a
// reactor, echoes one message over a socketpair, runs README's "Writing a
// server on baton" example (a line server with retention and a request
// deadline, and a client made with Reactor::Connect), and exits 0 on
// success.
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>
#include <memory>
#include <string>

#include "baton/connection.h"
#include "baton/counters.h"
#include "baton/reactor.h"

namespace {

class Echo : public baton::ConnectionHandler {
 public:
  void OnData(baton::Connection& conn, absl::string_view data) override {
    conn.Write(data);
  }
};

// --- README: "Writing a server on baton" (keep the two in step) ---------
// Answers each '\n'-terminated line with its length. A line may arrive in
// any number of pieces; it must be complete 5 s after its first byte.
class LineLength : public baton::ConnectionHandler {
 public:
  void OnData(baton::Connection& conn, absl::string_view data) override {
    size_t start = 0;  // `data` = what we retained last time + new bytes
    for (size_t end; (end = data.find('\n', start)) != data.npos;
         start = end + 1) {
      conn.Write(std::to_string(end - start) + "\n");
    }
    conn.Retain(data.size() - start);  // keep the incomplete line
    if (start == data.size()) {        // nothing pending: no deadline
      if (deadline_ != 0) conn.CancelTimer(deadline_);
      deadline_ = 0;
    } else if (deadline_ == 0) {  // runs under this connection's claim
      deadline_ = conn.RunAfter(absl::Seconds(5), [this](baton::Connection& c) {
        deadline_ = 0;
        c.Close();
      });
    }
  }

 private:
  baton::Connection::TimerId deadline_ = 0;
};

// A client made with Reactor::Connect: sends one line in two pieces and
// reports the answer, or why it never connected (OnClose without OnOpen).
class Asker : public baton::ConnectionHandler {
 public:
  explicit Asker(std::promise<std::string>* result) : result_(result) {}
  void OnOpen(baton::Connection& conn) override {
    conn.Write("hello, ");
    conn.Write("baton\n");
  }
  void OnData(baton::Connection& conn, absl::string_view data) override {
    answer_.append(data.data(), data.size());
    if (answer_.back() == '\n') conn.Close();
  }
  void OnClose(baton::Connection&, const absl::Status& reason) override {
    result_->set_value(reason.ok() ? answer_ : reason.ToString());
  }

 private:
  std::promise<std::string>* result_;
  std::string answer_;
};
// --- end of README example -------------------------------------------------

// Runs the README example on `reactor`; true if the answer is right.
bool LineExample(baton::Reactor& reactor) {
  auto port = reactor.Listen(baton::ListenOptions{},
                             [] { return std::make_unique<LineLength>(); });
  if (!port.ok()) return false;
  std::promise<std::string> result;
  baton::ConnectOptions to;
  to.address = "127.0.0.1";
  to.port = *port;
  to.timeout = absl::Seconds(5);
  if (!reactor.Connect(to, [&] { return std::make_unique<Asker>(&result); })
           .ok()) {
    return false;
  }
  std::future<std::string> answer = result.get_future();
  if (answer.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
    return false;
  }
  const std::string got = answer.get();
  std::printf("line example: %s", got.c_str());
  return got == "12\n";
}

}  // namespace

int main() {
  baton::ReactorOptions options;
  options.threads = 2;
  auto reactor = baton::Reactor::Create(options);
  if (!reactor.ok()) return 1;
  auto port = (*reactor)->Listen(baton::ListenOptions{},
                                 [] { return std::make_unique<Echo>(); });
  if (!port.ok() || !(*reactor)->Start().ok()) return 1;

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 1;
  if (!(*reactor)->Adopt(sv[0], [] { return std::make_unique<Echo>(); }).ok()) {
    return 1;
  }
  timeval tv = {10, 0};
  ::setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  const std::string message = "hello from a consumer repository";
  if (::write(sv[1], message.data(), message.size()) !=
      static_cast<ssize_t>(message.size())) {
    return 1;
  }
  std::string echoed;
  char buf[256];
  while (echoed.size() < message.size()) {
    const ssize_t n = ::read(sv[1], buf, sizeof(buf));
    if (n <= 0) return 1;
    echoed.append(buf, static_cast<size_t>(n));
  }
  ::close(sv[1]);
  if (!LineExample(**reactor)) return 1;
  (*reactor)->Stop();
  (*reactor)->Wait();
  const baton::ReactorCounters counters = (*reactor)->Counters();
  std::printf("echoed %zu bytes on port %d; %s\n", echoed.size(), *port,
              counters.ToString().c_str());
  return echoed == message ? 0 : 1;
}
