// Internal (servers): ServeUntilSignal.
#include "server/serve.h"

#include <gflags/gflags.h>
#include <glog/logging.h>

#include "absl/time/clock.h"
#include "lib/cli/validators.h"
#include "lib/net/address.h"
#include "server/flags.h"

DEFINE_int64(drain_timeout_ms, 5000,
             "on SIGINT/SIGTERM, give open connections this long to finish "
             "sending before they are cut (a second signal cuts at once)");
DEFINE_validator(drain_timeout_ms, &baton::cli::ValidateNonNegative<int64_t>);
DEFINE_int64(max_connections, 100000,
             "connections beyond this are accepted and closed at once");
DEFINE_validator(max_connections, &baton::cli::ValidatePositive<int64_t>);

namespace baton::flags {

int ServeUntilSignal(
    const ReactorOptions& options, const ListenOptions& listen,
    const std::function<HandlerFactory(Reactor*)>& make_factory,
    const sigset_t& stop_signals, const std::string& what) {
  absl::StatusOr<std::unique_ptr<Reactor>> reactor = Reactor::Create(options);
  if (!reactor.ok()) {
    LOG(ERROR) << "bad options: " << reactor.status();
    return 2;
  }
  absl::StatusOr<int> port =
      (*reactor)->Listen(listen, make_factory(reactor->get()));
  if (!port.ok()) {
    LOG(ERROR) << "cannot listen on " << ListenText(listen, listen.port) << ": "
               << port.status().message();
    return 1;
  }
  if (absl::Status s = (*reactor)->Start(); !s.ok()) {
    LOG(ERROR) << "cannot start: " << s;
    return 1;
  }
  LOG(INFO) << "listening on " << ListenText(listen, *port) << " " << what
            << " with " << (*reactor)->options().threads << " threads";
  const int signal = WaitForSignal(stop_signals);
  LOG(INFO) << "signal " << signal << ": draining "
            << (*reactor)->connection_count() << " connections (up to "
            << FLAGS_drain_timeout_ms << " ms)";
  (*reactor)->Drain();
  const absl::Time start = absl::Now();
  const absl::Time deadline =
      start + absl::Milliseconds(FLAGS_drain_timeout_ms);
  while ((*reactor)->connection_count() > 0 && absl::Now() < deadline) {
    if (WaitForSignalFor(stop_signals, absl::Milliseconds(10)) > 0) {
      LOG(INFO) << "second signal: cutting connections now";
      break;
    }
  }
  LOG(INFO) << "drained for " << absl::Now() - start << "; "
            << (*reactor)->connection_count() << " connections left to cut";
  (*reactor)->Stop();
  (*reactor)->Wait();
  LOG(INFO) << "stopped; " << (*reactor)->Counters().ToString();
  return 0;
}

}  // namespace baton::flags
