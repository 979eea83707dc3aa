// Example (public API only): a line protocol on baton, showing input
// retention and per-connection timers. Read it top to bottom.
//
// Protocol: the client sends lines ending in '\n'; each is answered with
// "<LINE IN UPPER CASE>\n". A request must be complete within
// `request_timeout` of its first byte, or the server answers
// "ERR request timeout\n" and closes. A line longer than the reactor's
// ReactorOptions::max_retained_input closes the connection
// (RESOURCE_EXHAUSTED), so a client that never sends '\n' cannot grow the
// server's memory.
#ifndef BATON_EXAMPLES_LINES_LINE_HANDLER_H_
#define BATON_EXAMPLES_LINES_LINE_HANDLER_H_

#include <cctype>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "baton/connection.h"

namespace baton::examples {

class LineHandler : public ConnectionHandler {
 public:
  explicit LineHandler(absl::Duration request_timeout)
      : request_timeout_(request_timeout) {}

  void OnData(Connection& conn, absl::string_view data) override {
    // `data` starts with whatever we retained last time, then the new bytes.
    size_t start = 0;
    for (size_t end; (end = data.find('\n', start)) != data.npos;
         start = end + 1) {
      Answer(conn, data.substr(start, end - start));
    }
    const size_t partial = data.size() - start;
    // Keep the incomplete line; it comes back at the front of `data` next
    // time. Nothing is copied when every line was complete.
    conn.Retain(partial);
    if (partial == 0) {
      StopDeadline(conn);
    } else if (deadline_ == 0) {
      // A request has begun: it must finish in time. The timer runs under
      // this connection's claim, never at the same time as OnData.
      deadline_ = conn.RunAfter(request_timeout_, [this](Connection& c) {
        deadline_ = 0;
        c.Write("ERR request timeout\n");
        c.Close();
      });
    }
  }

  // Timers are cancelled by the reactor when the connection closes; this
  // handler only forgets its id.
  void OnClose(Connection&, const absl::Status&) override { deadline_ = 0; }

 private:
  void Answer(Connection& conn, absl::string_view line) {
    std::string reply(line);
    for (char& c : reply) c = static_cast<char>(std::toupper(c));
    reply += '\n';
    conn.Write(reply);
    StopDeadline(conn);  // this request is done; the next one starts afresh
  }

  void StopDeadline(Connection& conn) {
    if (deadline_ != 0) conn.CancelTimer(deadline_);
    deadline_ = 0;
  }

  const absl::Duration request_timeout_;
  Connection::TimerId deadline_ = 0;
};

}  // namespace baton::examples

#endif  // BATON_EXAMPLES_LINES_LINE_HANDLER_H_
