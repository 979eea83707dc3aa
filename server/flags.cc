// Internal (servers): the common server flags, flag validators and signal
// helpers.
#include "server/flags.h"

#include <fcntl.h>
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "baton/reactor_limits.h"
#include "lib/cli/parse_flags.h"
#include "lib/cli/validators.h"
#include "lib/net/address.h"
#include "lib/net/endpoint.h"
#include "lib/net/lookup.h"

DEFINE_int32(port, 12345,
             "TCP port to listen on (0 picks a free port); must not be given "
             "with a unix: --address");
DEFINE_string(address, "127.0.0.1",
              "IPv4 or IPv6 address, or host name, to listen on (a name is "
              "looked up once at start-up; its first address is used), or a "
              "Unix socket: unix:/path (a socket file: a stale one nobody "
              "listens on is replaced, ours is removed on exit) or unix:@name "
              "(Linux's abstract namespace)");
DEFINE_string(dns_servers, "",
              "DNS servers for host names in --address (and the proxy's "
              "--upstream), as IP[:PORT],...; empty: /etc/resolv.conf "
              "(/etc/hosts is read first either way)");
DEFINE_string(unix_mode, "",
              "with --address=unix:/path: the socket file's permission bits "
              "in octal, e.g. 0660 (empty: 0777 minus the umask)");
DEFINE_bool(tls_session_resumption, true,
            "with --tls_cert: let returning clients resume TLS sessions "
            "(session tickets and cache); false makes every handshake a full "
            "one and issues no tickets");
DEFINE_int32(tls_handshake_threads, 0,
             "with --tls_cert: threads of their own for TLS handshakes, at a "
             "lower priority than the workers, so a request on an open "
             "connection runs ahead of a handshake in progress "
             "(ReactorOptions::tls_handshake_threads); 0: handshakes run on "
             "the workers");
DEFINE_int32(tls_handshake_nice, 3,
             "how much lower the handshake threads run: added to their nice "
             "value (1..19)");
DEFINE_int32(tls_handshake_max_wait_ms, 10,
             "with --tls_handshake_threads: a handshake step that waited this "
             "long for them is run by a worker instead, so a busy server "
             "cannot starve new clients (0: never)");
DEFINE_int32(threads, 0,
             "worker threads (0: one per CPU); poll_echo, select_echo and "
             "thread_echo choose their own threading and ignore it");

namespace {

bool ValidateThreads(const char* flag, int32_t value) {
  return baton::cli::ValidateInRange(flag, value, 0, baton::kReactorMaxThreads,
                                     " (0: one per CPU)");
}

bool ValidateHandshakeThreads(const char* flag, int32_t value) {
  return baton::cli::ValidateInRange(flag, value, 0, baton::kReactorMaxThreads,
                                     " (0: handshakes run on the workers)");
}

bool ValidateHandshakeNice(const char* flag, int32_t value) {
  return baton::cli::ValidateInRange(flag, value, 1,
                                     baton::kReactorMaxHandshakeNice);
}

bool ValidateHandshakeMaxWait(const char* flag, int32_t value) {
  return baton::cli::ValidateInRange(flag, value, 0, 3600 * 1000,
                                     " milliseconds (0: never)");
}

}  // namespace

DEFINE_validator(port, &baton::cli::ValidatePort<baton::cli::PortUse::kListen>);
DEFINE_validator(address, &baton::cli::ValidateAddressOrUnix);
DEFINE_validator(threads, &ValidateThreads);
DEFINE_validator(tls_handshake_threads, &ValidateHandshakeThreads);
DEFINE_validator(tls_handshake_nice, &ValidateHandshakeNice);
DEFINE_validator(tls_handshake_max_wait_ms, &ValidateHandshakeMaxWait);

namespace baton::flags {

bool ValidateMaxEvents(const char* flag, int32_t value) {
  return cli::ValidateInRange(flag, value, 1, kReactorMaxEvents);
}

bool ValidateRounds(const char* flag, int32_t value) {
  return cli::ValidateInRange(flag, value, kReactorUnboundedRereads,
                              kReactorMaxRereadRounds, " (-1: no bound)");
}

bool ValidateReadBufferSize(const char* flag, int64_t value) {
  return cli::ValidateInRange(
      flag, value, static_cast<int64_t>(kReactorMinReadBufferSize),
      static_cast<int64_t>(kReactorMaxReadBufferSize), " bytes");
}

bool ValidateDeferSeconds(const char* flag, int32_t value) {
  return cli::ValidateInRange(flag, value, 0, 60, " seconds");
}

namespace {

// --address with a host name looked up (blocking): its first address as a
// literal; a literal or a unix: address as it is.
absl::StatusOr<std::string> AddressFlagLiteral() {
  if (net::IsAddressLiteral(FLAGS_address) ||
      net::IsUnixEndpoint(FLAGS_address)) {
    return FLAGS_address;
  }
  absl::StatusOr<std::string> literal =
      net::LookupHostBlocking(FLAGS_address, FLAGS_dns_servers);
  if (!literal.ok()) {
    return absl::Status(literal.status().code(),
                        absl::StrCat("--address=", FLAGS_address, ": ",
                                     literal.status().message()));
  }
  return literal;
}

// OK if `path` can be opened for reading; else why not, naming `flag`.
absl::Status CheckReadable(const char* flag, const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, "=", path, ": cannot read: ", std::strerror(err)));
  }
  ::close(fd);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<const TlsServerOptions>> TlsFromFlags(
    const std::string& cert, const std::string& key) {
  if (cert.empty() && key.empty()) return nullptr;
  if (cert.empty() || key.empty()) {
    return absl::InvalidArgumentError(
        "--tls_cert and --tls_key go together: give both or neither");
  }
  if (absl::Status s = CheckReadable("tls_cert", cert); !s.ok()) return s;
  if (absl::Status s = CheckReadable("tls_key", key); !s.ok()) return s;
  auto options = std::make_shared<TlsServerOptions>();
  options->certificate_chain_file = cert;
  options->private_key_file = key;
  options->session_resumption = FLAGS_tls_session_resumption;
  return options;
}

void HandshakeThreadsFromFlags(ReactorOptions* options) {
  options->tls_handshake_threads = FLAGS_tls_handshake_threads;
  options->tls_handshake_nice = FLAGS_tls_handshake_nice;
  options->tls_handshake_max_wait =
      FLAGS_tls_handshake_max_wait_ms == 0
          ? absl::InfiniteDuration()
          : absl::Milliseconds(FLAGS_tls_handshake_max_wait_ms);
}

absl::StatusOr<std::shared_ptr<const TlsClientOptions>> UpstreamTlsFromFlags(
    bool enabled, const std::string& ca, const std::string& server_name,
    bool resumption, const std::string& default_name) {
  if (!enabled) {
    const char* orphan = !ca.empty()            ? "--upstream_ca"
                         : !server_name.empty() ? "--upstream_server_name"
                         : !resumption ? "--upstream_tls_resumption=false"
                                       : nullptr;
    if (orphan != nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(orphan, " needs --upstream_tls"));
    }
    return nullptr;
  }
  if (!ca.empty()) {
    if (absl::Status s = CheckReadable("upstream_ca", ca); !s.ok()) return s;
  }
  auto options = std::make_shared<TlsClientOptions>();
  options->ca_file = ca;
  options->server_name = server_name.empty() ? default_name : server_name;
  options->session_resumption = resumption;
  return options;
}

absl::StatusOr<ListenOptions> ListenFromFlags() {
  absl::StatusOr<std::string> address = AddressFlagLiteral();
  if (!address.ok()) return address.status();
  absl::StatusOr<net::Endpoint> where = net::ParseListenAddress(*address);
  if (!where.ok()) return where.status();
  ListenOptions listen;
  if (!where->is_unix()) {
    if (!FLAGS_unix_mode.empty()) {
      return absl::InvalidArgumentError(
          "--unix_mode needs a --address=unix:/path");
    }
    listen.address = where->host;
    listen.port = FLAGS_port;
    return listen;
  }
  if (!gflags::GetCommandLineFlagInfoOrDie("port").is_default) {
    return absl::InvalidArgumentError(
        absl::StrCat("--port=", FLAGS_port, " with --address=", FLAGS_address,
                     ": a Unix socket has no port (leave --port out)"));
  }
  listen.unix_path = where->unix_path;
  listen.port = 0;
  if (!FLAGS_unix_mode.empty()) {
    char* end = nullptr;
    const long mode = std::strtol(FLAGS_unix_mode.c_str(), &end, 8);
    if (*end != '\0' || mode < 0 || mode > 07777) {
      return absl::InvalidArgumentError(
          absl::StrCat("--unix_mode=", FLAGS_unix_mode,
                       ": want octal 0..07777 (e.g. 0660)"));
    }
    listen.unix_mode = static_cast<int>(mode);
  }
  return listen;
}

std::string ListenText(const ListenOptions& listen, int port) {
  return listen.unix_path.empty() ? net::JoinHostPort(listen.address, port)
                                  : net::UnixAddressString(listen.unix_path);
}

int ThreadCount() {
  if (FLAGS_threads > 0) return FLAGS_threads;
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

bool InitServer(int* argc, char*** argv, const char* usage) {
  gflags::SetUsageMessage(usage);
  FLAGS_logtostderr = true;
  cli::ParseFlags(argc, argv);
  google::InitGoogleLogging((*argv)[0]);
  if (*argc > 1) {
    LOG(ERROR) << "unexpected argument '" << (*argv)[1] << "' (see --help)";
    return false;
  }
  // A host name is looked up here, before any reactor runs (the lookup may
  // block); the server listens on its first address.
  absl::StatusOr<std::string> address = AddressFlagLiteral();
  if (!address.ok()) {
    LOG(ERROR) << address.status().message();
    return false;
  }
  if (*address != FLAGS_address) {
    LOG(INFO) << "--address=" << FLAGS_address << ": listening on " << *address;
    FLAGS_address = *address;
  }
  return true;
}

sigset_t BlockStopSignals() {
  signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int WaitForSignalFor(const sigset_t& signals, absl::Duration timeout) {
  const timespec ts = absl::ToTimespec(timeout);
  for (;;) {
    const int signal = sigtimedwait(&signals, nullptr, &ts);
    if (signal > 0) return signal;
    if (errno != EINTR) return 0;  // EAGAIN: timed out
  }
}

int WaitForSignal(const sigset_t& signals) {
  int signal = 0;
  while (sigwait(&signals, &signal) != 0) {
  }
  return signal;
}

}  // namespace baton::flags
