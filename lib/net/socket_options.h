// Internal header (project-wide: lib, servers, clients, tests): socket
// options every TCP endpoint of the project sets the same way.
#ifndef BATON_NET_SOCKET_OPTIONS_H_
#define BATON_NET_SOCKET_OPTIONS_H_

namespace baton::net {

// Disables Nagle's algorithm (TCP_NODELAY); request/response protocols want
// every write sent at once. Setting it also pushes out anything Nagle or
// MSG_MORE is holding back. Failure (e.g. `fd` is not TCP) is ignored.
void SetNoDelay(int fd);

}  // namespace baton::net

#endif  // BATON_NET_SOCKET_OPTIONS_H_
