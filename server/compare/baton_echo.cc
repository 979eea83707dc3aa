// //server/compare:baton_echo — //server:echo plus the head-of-line
// benchmark's slow rule: the same server, flags and logs, and --slow_us,
// --slow_mode and --slow_byte (server/compare/slow_rule_flags.h) delay the
// marked messages on the handling thread before they are echoed. For
// tools/compare.sh only; the product is //server:echo.
#include <glog/logging.h>

#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "baton/connection.h"
#include "server/compare/slow_rule.h"
#include "server/compare/slow_rule_flags.h"
#include "server/echo_handler.h"
#include "server/echo_main.h"

namespace {

// EchoHandler that applies the rule to what it read first. The rule must
// outlive the handler.
class SlowEchoHandler : public baton::EchoHandler {
 public:
  explicit SlowEchoHandler(const baton::SlowRule& slow) : slow_(slow) {}

  void OnData(baton::Connection& conn, absl::string_view data) override {
    slow_.Apply(data);
    EchoHandler::OnData(conn, data);
  }

 private:
  const baton::SlowRule& slow_;
};

}  // namespace

int main(int argc, char** argv) {
  baton::EchoMainHooks hooks;
  hooks.usage = std::string(
                    "echo server on baton's leader/followers epoll reactor, "
                    "with the head-of-line benchmark's slow rule\n"
                    "usage: baton_echo [--port=N] [--address=A] [--threads=N] "
                    "...\n") +
                baton::kSlowRuleUsage;
  const baton::SlowRule* slow = nullptr;
  hooks.handlers = [&slow]() -> baton::HandlerFactory {
    slow = baton::ActiveSlowRule();  // logs the rule if on
    if (slow == nullptr) return baton::EchoHandlerFactory();
    return [slow] { return std::make_unique<SlowEchoHandler>(*slow); };
  };
  hooks.on_stop = [&slow] {
    if (slow != nullptr) LOG(INFO) << slow->Summary();
  };
  return baton::EchoMain(argc, argv, hooks);
}
