// Internal (servers): ServeUntilSignal.
#include "server/serve.h"

#include <glog/logging.h>

#include "server/flags.h"

namespace baton::flags {

int ServeUntilSignal(const ReactorOptions& options, const ListenOptions& listen,
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
    LOG(ERROR) << "cannot listen on " << listen.address << ":" << listen.port
               << ": " << port.status().message();
    return 1;
  }
  if (absl::Status s = (*reactor)->Start(); !s.ok()) {
    LOG(ERROR) << "cannot start: " << s;
    return 1;
  }
  LOG(INFO) << "listening on " << JoinHostPort(listen.address, *port) << " "
            << what << " with " << (*reactor)->options().threads
            << " threads";
  const int signal = WaitForSignal(stop_signals);
  LOG(INFO) << "signal " << signal << ": stopping, "
            << (*reactor)->connection_count() << " connections open";
  (*reactor)->Stop();
  (*reactor)->Wait();
  LOG(INFO) << "stopped; " << (*reactor)->Counters().ToString();
  return 0;
}

}  // namespace baton::flags
