// Public header: the leader/followers epoll reactor.
//
// One Reactor owns one epoll instance shared by N worker threads under the
// Leader/Followers pattern: exactly one thread (the leader) waits in
// epoll_wait; when it returns with events it keeps one, puts the others in
// a ready queue that every free thread takes from, gives up the role (a
// sleeping thread is woken only if there is one), and then handles the
// event it kept. A handler that blocks holds up its own connection only.
// Sockets are armed with EPOLLONESHOT and re-armed after their handler; see
// connection.h for the handler contract. Timers, posted tasks and Stop() travel
// through the same epoll (timerfd, eventfd).
//
// Threads: every method is safe to call from any thread, including from
// inside handlers and tasks, except Wait() and the destructor, which must not
// be called from a reactor thread (they join the workers).
//
// Lifetime: the Reactor owns its threads, listeners, connections and their
// handlers. It must outlive every HandlerFactory call and every callback,
// which it guarantees by joining its threads in Wait() / the destructor.
#ifndef BATON_REACTOR_H_
#define BATON_REACTOR_H_

#if __cplusplus < 201703L
#error \
    "baton needs C++17: compile code that includes baton headers with -std=c++17 (Bazel's default is older)"
#endif

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "baton/connection.h"
#include "baton/counters.h"
#include "baton/reactor_limits.h"
#include "baton/tls.h"

namespace baton {

namespace internal {
class ReactorCore;
class ReactorTestPeer;
}  // namespace internal

struct ReactorOptions {
  // Worker threads sharing the epoll instance; 0 means one per CPU.
  int threads = 0;
  // Events taken per epoll_wait by the leader (all but one go to the
  // shared ready queue).
  int max_events = 64;
  // Accepted connections beyond this are closed at once (and counted).
  size_t max_connections = 1 << 20;
  // Connections with no read or write activity for this long are closed by a
  // periodic sweep (khttpd's timer). Zero disables the sweep.
  absl::Duration idle_timeout = absl::ZeroDuration();
  // Connections with output queued that could not send a single byte for
  // this long (the peer stopped reading) are aborted by the same sweep; this
  // limit replaces idle_timeout while output is queued. Zero: such
  // connections fall under idle_timeout alone.
  absl::Duration write_timeout = absl::ZeroDuration();
  // While more than this many bytes are queued for a connection, the reactor
  // stops reading from it, so a peer that does not read its replies cannot
  // grow memory without bound. Reading resumes when the backlog drains below
  // half of it.
  size_t output_high_water = 4 << 20;
  // How long a closing connection keeps draining unread input after its
  // output was flushed (see Connection::Close) before it is closed anyway.
  absl::Duration linger_timeout = absl::Seconds(2);
  // Most input one connection may retain (Connection::Retain) while it
  // waits for the rest of a message. A handler that retains more is closed
  // with RESOURCE_EXHAUSTED ("retained input limit"), so a peer that never
  // finishes a message cannot grow memory past this plus one read
  // (read_buffer_size).
  size_t max_retained_input = 1 << 20;
  // Size of each thread's read buffer; one read(2) per event fills at most
  // this much (a full buffer is read again, up to a small bound).
  size_t read_buffer_size = 64 << 10;
  // Request/response connections are usually answered again by the time the
  // other ready work has been handled. A connection that just read data is
  // queued behind that work and read once more before it is re-armed: a
  // hit saves an epoll_ctl and an epoll_wait per message. This bounds how
  // many times in a row; -1 (kReactorUnboundedRereads, the default): for
  // as long as each re-read finds data. A bound sends every (N+1)th message
  // through epoll, where it waits up to a pass longer than the re-read
  // ones (docs/leader_follower.md, "Re-reads have no round limit").
  // The connection stays claimed (and disarmed) meanwhile, so the ONESHOT
  // contract is unchanged; connections whose re-reads miss fall back to an
  // immediate re-arm. 0 disables.
  int reread_rounds = kReactorUnboundedRereads;
  // A connection whose handler relayed what it read to another connection
  // (Reactor::Write, as a proxy does) will next have input once the answer
  // comes back, as a Write to it. Instead of re-arming it, the reactor
  // keeps it claimed and disarmed ("parked", held by no thread) until that
  // Write (or any request) arrives and is served, then reads it after the
  // other ready work like a re-read: a relayed round trip then needs no
  // epoll_ctl. A parked connection whose Write does not come is read after
  // a few passes of the ready queue (or a 1 ms leader wait that found
  // nothing while other threads run handlers), and re-armed at once when
  // every thread runs out of work; one that keeps waiting for its bound is
  // parked ever more rarely (docs/leader_follower.md, "Parking relayed
  // connections"). Needs reread_rounds != 0.
  bool park_relays = true;
  // Name prefix for worker threads (visible in top -H, gdb).
  std::string thread_name = "baton";
  // DNS servers for Connect's host names, as "IP[:PORT]" items separated by
  // commas ("127.0.0.1:5353,[::1]:53"). Empty (the default): the system's
  // resolver configuration (/etc/resolv.conf). /etc/hosts is read first
  // either way.
  std::string dns_servers;
  // Connect keeps the answers of its host name lookups, per reactor, for
  // the next connects to the same name: a DNS answer for its records'
  // smallest TTL, a hosts file answer (which has no TTL) for 5 s, a name
  // that does not exist (NOT_FOUND) for 2 s, each for at most this long.
  // Server failures and timeouts are not kept. Zero disables the cache.
  // Connects to one name that wait for its lookup at the same time share
  // one query, with or without the cache; closing one of them leaves the
  // query running for the others. Counters: dns_cache_hits,
  // dns_cache_misses, dns_lookups.
  absl::Duration dns_cache_max_ttl = absl::Seconds(60);
  // Most names the cache keeps; a new one drops the least recently used.
  size_t dns_cache_max_names = 1024;
  // > 0: TLS handshake steps (and STARTTLS upgrades) run on this many
  // threads of their own at a lower priority, not on the worker that took
  // their event: a worker woken for a short request then preempts a
  // handshake in progress (about 1 ms of CPU for RSA-2048) instead of
  // sharing the core with it by time slices. The connection's claim goes
  // with each step; the step that completes the handshake runs OnOpen
  // there. 0 (the default): on the workers. New clients wait longer under
  // load (docs/leader_follower.md). Counter: tls_handshake_steps_deferred.
  int tls_handshake_threads = 0;
  // Added to their nice value, 1..19 (capped at 19; no privilege needed):
  // a handshake's share of a busy core, about half a worker's at +3.
  int tls_handshake_nice = 3;
  // A step that waited this long for them goes to the next free worker, so
  // busy workers cannot starve new clients. Positive; InfiniteDuration:
  // never. Counter: tls_handshake_steps_overdue.
  absl::Duration tls_handshake_max_wait = absl::Milliseconds(10);
};

struct ListenOptions {
  // IPv4 or IPv6 literal ("127.0.0.1", "::1", "0.0.0.0"). Listen takes no
  // host names: it runs on any thread, including reactor threads, and a
  // lookup may block. A program that listens on a name resolves it before
  // (the servers' --address does, with c-ares, at start-up).
  std::string address = "127.0.0.1";
  // 0 picks a free port; Listen returns the one bound.
  int port = 0;
  // Non-empty: listen on this Unix domain stream socket instead of TCP
  // (`address` is ignored, `port` must be 0 and Listen returns 0). A file
  // path ("/run/echo.sock"), or '@' and a name in Linux's abstract
  // namespace ("@echo": no file, no permissions). A socket file left at the
  // path by a run that did not remove it (nobody listens on it) is
  // replaced; a path someone listens on is ALREADY_EXISTS, a path that is
  // not a socket FAILED_PRECONDITION (both left alone). The file is removed
  // when the listener shuts (Stop, Drain, StopAccepting, destruction), if
  // the path still names the file this listener created. The connection
  // contract is the same as over TCP; reuse_port and defer_accept_seconds
  // are TCP options and INVALID_ARGUMENT here.
  std::string unix_path;
  // For a unix_path file: its permission bits (e.g. 0660), set with chmod
  // after bind and before listen, so they hold before any client can
  // connect. -1 leaves what bind made (0777 minus the umask). Must be -1
  // for an abstract name and for TCP.
  int unix_mode = -1;
  int backlog = 1024;
  bool reuse_port = false;
  // > 0: for protocols where the client speaks first (HTTP). The kernel
  // hands over a connection only once its first bytes have arrived
  // (TCP_DEFER_ACCEPT; a silent client is held for about this many seconds,
  // then accepted anyway), and the reactor reads them at accept time instead
  // of waiting for a first epoll event. Saves an epoll round trip per
  // connection; silent connections cost no slot while held.
  int defer_accept_seconds = 0;
  // Non-null: a TLS listener. Listen builds the TLS context once (a bad
  // certificate, key or option is its error). Each accepted connection
  // handshakes first; OnOpen runs once the handshake completes, and a
  // connection whose handshake fails or times out
  // (TlsServerOptions::handshake_timeout) is closed without OnOpen or
  // OnClose (counted as tls_handshake_failures). The handler sees plaintext
  // only; Write, SendFile, Close and ShutdownWrite encrypt (Close and
  // ShutdownWrite send close_notify first). An input that ends without
  // close_notify closes with DATA_LOSS. Reactor::Write (from another
  // thread or another connection's handler) works as on a plain
  // connection: the plaintext is queued (pending_output counts it) and the
  // thread serving the connection encrypts it, in order with the
  // handler's own writes.
  std::shared_ptr<const TlsServerOptions> tls;
};

// An outbound connection (Reactor::Connect).
struct ConnectOptions {
  // The peer: an IPv4 or IPv6 literal ("127.0.0.1", "::1"), connected to
  // as is, or a host name ("localhost", "db.internal"), looked up on the
  // reactor's own epoll (c-ares: /etc/hosts, then the DNS servers of
  // /etc/resolv.conf or ReactorOptions::dns_servers) without blocking a
  // thread. Every address of the name is tried in the order returned (IPv6
  // and IPv4, sorted as getaddrinfo does): an attempt tries them one after
  // the other, each with `timeout`, and fails when all have failed. Retries
  // reuse the addresses of the one lookup. Answers are cached per reactor
  // (ReactorOptions::dns_cache_max_ttl): a connect to a name looked up
  // recently starts at once, like one to a literal.
  std::string address = "127.0.0.1";
  // 1..65535.
  int port = 0;
  // Non-empty: connect to this Unix domain stream socket instead (a file
  // path, or '@' and an abstract name; see ListenOptions::unix_path);
  // `address` is ignored and `port` must be 0. A listener whose backlog is
  // full refuses at once (EAGAIN) instead of keeping the attempt waiting:
  // that attempt fails with UNAVAILABLE and counts as one of max_attempts.
  std::string unix_path;
  // A host name's lookup fails with DEADLINE_EXCEEDED "resolve NAME: timed
  // out after ..." if it has not finished by then. Must be positive.
  absl::Duration resolve_timeout = absl::Seconds(10);
  // Each attempt fails with DEADLINE_EXCEEDED if not connected by then.
  // Must be positive; absl::InfiniteDuration() means no deadline (the
  // attempt waits for the kernel's own connect timeout).
  absl::Duration timeout = absl::Seconds(10);
  // Attempts in all (1: no retry). After a failed attempt (refused,
  // unreachable, timed out) the next starts after a back-off drawn
  // uniformly from [b/2, b], where b = initial_backoff * 2^(attempt-1),
  // capped at max_backoff (a back-off too long for the clock, such as an
  // infinite one, never ends: only Close, Drain or Stop end the wait). A
  // back-off that ends after Drain or Stop starts no new attempt: the
  // connection ends with OnClose(CANCELLED).
  int max_attempts = 1;
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  // Non-null: TLS over the connection. Connect builds the TLS context (a
  // bad option is its error) once per options object and reactor: reusing
  // one object reads its CA file, certificate and key once (it must not
  // change afterwards); a new object is built anew. Once connected, the client
  // handshakes (TlsClientOptions::handshake_timeout) and OnOpen runs when that
  // completes; a failed or timed-out handshake ends with OnClose(status)
  // and no OnOpen, as a failed connect does. Then as for a TLS listener's
  // connections (ListenOptions::tls).
  std::shared_ptr<const TlsClientOptions> tls;
};

using TimerId = uint64_t;

class Reactor {
 public:
  // Validates `options` and creates the epoll instance; threads start with
  // Start(). Sets SIGPIPE to SIG_IGN if it still has its default action
  // (sendfile cannot suppress it per call); other handlers are left alone.
  static absl::StatusOr<std::unique_ptr<Reactor>> Create(
      const ReactorOptions& options);

  // Stops and joins (see Stop and Wait). Must not run on a reactor thread.
  ~Reactor();

  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // Binds and listens on `options.address`:`options.port` (or on
  // `options.unix_path`); each accepted connection gets a handler from
  // `factory`. Returns the bound port (0 for a Unix socket).
  // Callable before or after Start().
  absl::StatusOr<int> Listen(const ListenOptions& options,
                             HandlerFactory factory);

  // Takes ownership of a connected socket `fd` (it is made non-blocking and
  // close-on-exec) and serves it with a handler from `factory`. On error the
  // fd is closed.
  absl::StatusOr<ConnectionId> Adopt(int fd, HandlerFactory factory);

  // Opens an outbound TCP connection to `options.address`:`options.port`
  // (or a Unix socket connection to `options.unix_path`) and serves it with
  // a handler from `factory`; safe from any thread, including handlers.
  // Returns the connection's id at once (it stays the same across
  // retries); the lookup of a host name and the connect itself complete on
  // reactor threads through the same epoll (non-blocking connect, EPOLLOUT,
  // SO_ERROR).
  //   * connected: OnOpen, then the usual callbacks;
  //   * failed for good (every attempt refused, unreachable or timed out;
  //     Close / Abort / Drain / Stop while connecting or resolving): OnClose
  //     with the reason and no OnOpen before it: UNAVAILABLE "connect
  //     HOST:PORT: Connection refused", DEADLINE_EXCEEDED "connect
  //     HOST:PORT: timed out" (HOST:PORT is "unix:PATH" for a Unix socket),
  //     CANCELLED "reactor stopped" / "reactor draining" / "closed while
  //     connecting". For a host name the reason lists every address tried
  //     and why it failed ("connect NAME:PORT: 127.0.0.2:PORT: Connection
  //     refused; 127.0.0.1:PORT: ..."), or says why the lookup failed:
  //     NOT_FOUND "connect NAME:PORT: resolve NAME: Domain name not found",
  //     DEADLINE_EXCEEDED "... resolve NAME: timed out after ...". No
  //     descriptor outlives the attempt.
  // Bytes given to Write(id) before the connection is up are queued and
  // sent once it is. Errors here (bad address or options, reactor stopping
  // or draining, max_connections reached) mean no handler was created.
  absl::StatusOr<ConnectionId> Connect(const ConnectOptions& options,
                                       HandlerFactory factory);

  // Starts the worker threads. Fails if already started or stopped.
  absl::Status Start();

  // Starts a graceful shutdown and returns at once; any thread, idempotent.
  // Listeners stop accepting; every open connection is closed once its
  // queued output has been sent (as Connection::Close, so idle ones close
  // at once and none loses a reply to a reset), and connections that open
  // from now on are closed the same way. connection_count() falls to zero
  // as they go; then, or at the caller's deadline, Stop() cuts the rest.
  void Drain();

  // Listeners stop accepting (as in Drain: connects to them are refused
  // from now on) and Listen fails; everything else goes on: open
  // connections are left alone and Connect still works. For a server that
  // ends its connections itself (a proxy lets each pair finish its
  // transfer, then cuts what is left). Any thread, idempotent; Drain and
  // Stop imply it.
  void StopAccepting();

  // Asks the reactor to stop: listeners close at once, running handlers
  // finish, workers exit, then every remaining connection is closed (OnClose
  // with a CANCELLED status). Returns immediately; idempotent.
  void Stop();

  // Blocks until a Stop() has completed: workers joined, every connection
  // closed, every handler destroyed. Returns at once if never started.
  void Wait();

  // True once Stop() has been called.
  bool stopping() const;

  // Runs `task` on a reactor thread. Returns false (and drops the task) once
  // the reactor is stopping.
  bool Post(std::function<void()> task);

  // Runs `fn` on a reactor thread after `delay` (once) or every `period`.
  // Returns 0 if the reactor is stopping. Deadlines saturate: a delay of
  // absl::InfiniteDuration() (or one too long for the clock, about 292
  // years) means never (the timer only waits to be cancelled); a zero or
  // negative delay means now. RunEvery
  // needs a positive, finite period: otherwise it returns 0 and `fn` never
  // runs. Each next run is scheduled `period` after the previous one
  // started, so a stalled reactor runs no burst of catch-up callbacks.
  // These callbacks run inline on the thread that takes the timer wake-up,
  // one after another (unlike Connection::RunAfter timers, which are
  // queued for any free thread).
  TimerId RunAfter(absl::Duration delay, std::function<void()> fn);
  TimerId RunEvery(absl::Duration period, std::function<void()> fn);
  // Cancels a timer made by RunAfter / RunEvery: it never starts again.
  // Returns true if it had not been cancelled or finished and its callback
  // is not running on another thread right now (a callback cancelling its
  // own timer gets true); false otherwise. A callback already running is
  // not waited for, so after `false` the caller must not free what a
  // running callback uses. Only ids from RunAfter / RunEvery are
  // recognised: given a Connection::RunAfter id it returns false and that
  // timer still runs (cancel it with Connection::CancelTimer).
  bool CancelTimer(TimerId id);

  // Queues bytes for connection `id` / closes it after pending output is
  // sent. Safe from any thread; false if `id` is stale. Write also returns
  // false (and drops the bytes) once the connection is closing, so that a
  // closing connection's queue drains even while writers keep writing.
  // From a handler (a reactor thread), when no other thread is serving
  // `id`, the bytes are handed to the kernel before Write returns, as far
  // as the socket takes them (no callback of `id` runs inside Write: its
  // OnDrained comes after the caller's callback); otherwise the thread
  // serving `id` sends them.
  bool Write(ConnectionId id, absl::string_view data);
  bool Close(ConnectionId id);
  // Closes `id` at once, discarding queued output.
  bool Abort(ConnectionId id);
  // Connection::ResumeReading / ShutdownWrite for `id`, from any thread
  // (served by the connection's owner, like Close). False if `id` is stale.
  bool ResumeReading(ConnectionId id);
  bool ShutdownWrite(ConnectionId id);
  // Bytes queued for `id` and not yet sent (0 if `id` is stale). A snapshot
  // read without a lock: for back-pressure decisions across connections.
  size_t pending_output(ConnectionId id) const;

  // Live connections (accepted, adopted or connecting, not yet closed).
  size_t connection_count() const;

  // Counters summed over all threads, and per thread (index = worker; the
  // TLS handshake threads, if any, after the workers).
  ReactorCounters Counters() const;
  std::vector<ReactorCounters> ThreadCounters() const;

  // Whether the calling thread is one of this reactor's workers.
  bool InReactorThread() const;

  const ReactorOptions& options() const;

 private:
  friend class internal::ReactorTestPeer;  // tests inject synthetic events
  explicit Reactor(std::unique_ptr<internal::ReactorCore> core);

  std::unique_ptr<internal::ReactorCore> core_;
};

}  // namespace baton

#endif  // BATON_REACTOR_H_
