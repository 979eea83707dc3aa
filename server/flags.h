// Internal header (servers): the flags every server takes (--port,
// --address, --threads), flag validators and signal helpers shared by the
// servers' main()s.
#ifndef BATON_SERVER_FLAGS_H_
#define BATON_SERVER_FLAGS_H_

#include <gflags/gflags.h>
#include <signal.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "baton/reactor.h"
#include "baton/tls.h"

// Defined (and validated) once in flags.cc for every server that links this
// library. A server whose port is not 12345 calls
// baton::cli::SetFlagDefault("port", "...") before InitServer.
DECLARE_int32(port);      // 0..65535, 0 picks a free port
DECLARE_string(address);  // a literal or unix:/path once InitServer ran
DECLARE_string(dns_servers);
DECLARE_string(unix_mode);  // octal file mode for a unix:/path address
DECLARE_int32(threads);     // 0..kReactorMaxThreads, 0: one per CPU

namespace baton::flags {

// gflags validators of the servers' own ranges (most from
// baton/reactor_limits.h), on cli::ValidateInRange: each prints
// "--flag=value: must be in lo..hi ..." on failure (gflags then exits with
// an error). The general ones (ValidatePositive, ValidatePort, ...) are in
// lib/cli/validators.h.
bool ValidateMaxEvents(const char* flag, int32_t value);
bool ValidateRounds(const char* flag, int32_t value);  // -1: no bound
bool ValidateReadBufferSize(const char* flag, int64_t value);
bool ValidateDeferSeconds(const char* flag, int32_t value);

// Parses flags with baton::cli::ParseFlags (--help shows the server's own
// flags first), logging to stderr by default, and starts glog. Returns false
// after logging why if positional arguments are left over, or if a host
// name in --address does not resolve (it is replaced by its first address).
bool InitServer(int* argc, char*** argv, const char* usage);

// ListenOptions for --address, --port and --unix_mode: a TCP address (a
// host name looked up, blocking, with --dns_servers: its first address)
// and port, or a Unix socket (--address=unix:/path or unix:@name). A --port
// given on the command line with a unix address, or --unix_mode without
// one, is INVALID_ARGUMENT (the message names the flags).
absl::StatusOr<ListenOptions> ListenFromFlags();

// A TLS listener's options from --tls_cert and --tls_key (the server's
// PEM certificate chain and private key) and --tls_session_resumption:
// null when both files are empty;
// INVALID_ARGUMENT naming the flag when only one is given or a file cannot
// be read. The certificate and key themselves are checked by Listen.
absl::StatusOr<std::shared_ptr<const TlsServerOptions>> TlsFromFlags(
    const std::string& cert, const std::string& key);

// --tls_handshake_threads, --tls_handshake_nice and
// --tls_handshake_max_wait_ms into `options` (ReactorOptions::
// tls_handshake_threads, tls_handshake_nice, tls_handshake_max_wait).
void HandshakeThreadsFromFlags(ReactorOptions* options);

// TLS options for a server's outgoing connections from --upstream_tls,
// --upstream_ca, --upstream_server_name and --upstream_tls_resumption: null
// when `enabled` is false (INVALID_ARGUMENT naming the flag if
// --upstream_ca, --upstream_server_name or --upstream_tls_resumption=false
// is given without it, or the CA file cannot be read). An empty
// `server_name` takes `default_name` (the upstream's host: a name is sent
// as SNI and checked, an IP literal is checked against the certificate's IP
// entries). The CA file's contents are checked by the TLS context built
// from the options.
absl::StatusOr<std::shared_ptr<const TlsClientOptions>> UpstreamTlsFromFlags(
    bool enabled, const std::string& ca, const std::string& server_name,
    bool resumption, const std::string& default_name);

// What a server listens on, for its log: "ADDR:PORT" with the bound
// `port`, or "unix:PATH".
std::string ListenText(const ListenOptions& listen, int port);

// --threads as a count: the flag, or one per CPU when it is 0.
int ThreadCount();

// Blocks SIGINT and SIGTERM in the calling thread (and threads it creates
// later) and ignores SIGPIPE. Returns the blocked set for WaitForSignal.
sigset_t BlockStopSignals();

// Waits for one of `signals`; returns its number.
int WaitForSignal(const sigset_t& signals);
// Like WaitForSignal, but gives up after `timeout` and returns 0.
int WaitForSignalFor(const sigset_t& signals, absl::Duration timeout);

}  // namespace baton::flags

#endif  // BATON_SERVER_FLAGS_H_
