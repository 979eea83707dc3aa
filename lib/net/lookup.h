// Internal header (project-wide: servers, clients, tests): a blocking host
// name lookup for a program's start-up, on c-ares like Reactor::Connect's
// lookups, so that both honour the same files and the same server option.
#ifndef BATON_NET_LOOKUP_H_
#define BATON_NET_LOOKUP_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace baton::net {

// The first address of `host` as a literal ("127.0.0.1", "::1"). A literal
// is returned as is; a host name (IsHostName) is looked up: /etc/hosts,
// then the DNS servers of /etc/resolv.conf, or `dns_servers` if not empty
// (as ReactorOptions::dns_servers: "127.0.0.1:5353,[::1]:53"); the order
// is getaddrinfo's. BLOCKS until the lookup ends or `timeout` passes: for
// servers' --address and clients' --host at start-up, never on a reactor
// thread. NOT_FOUND: the name does not exist or has no address;
// DEADLINE_EXCEEDED: no answer in time; INVALID_ARGUMENT: `host` is
// neither a literal nor a host name. Messages start "resolve HOST: ".
absl::StatusOr<std::string> LookupHostBlocking(
    absl::string_view host, const std::string& dns_servers = "",
    absl::Duration timeout = absl::Seconds(10));

}  // namespace baton::net

#endif  // BATON_NET_LOOKUP_H_
