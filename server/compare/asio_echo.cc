// //server/compare:asio_echo — the same echo server written on Boost.Asio, the
// baseline baton is compared against. For comparison only.
//
// Written the way a competent Asio user would: a session object per
// connection kept alive by shared_ptr, async_read_some into a per-session
// buffer and async_write of exactly what was read, TCP_NODELAY, no strand (a
// session has at most one operation outstanding, so none is needed). Two
// threading models, chosen by --io_contexts:
//   shared      one io_context run by --threads threads (Asio's own
//               leader/followers: one thread in epoll, completions on one
//               shared queue) — the model baton competes with;
//   per_thread  one io_context per thread, each with its own acceptor bound
//               to the same port with SO_REUSEPORT, so the kernel spreads
//               connections and each stays on one thread (the
//               "io_context-per-CPU" design of Asio's HTTP server 2 example
//               and of asio#164).
// --address=unix:/path (or unix:@name) serves a Unix stream socket with
// asio::local::stream_protocol instead, with the same per-connection objects
// and the same two threading models: shared as above; per_thread gives each
// io_context its own acceptor on a duplicate of the one listening socket
// (SO_REUSEPORT does not spread Unix connections), so idle threads race to
// accept. The socket file is handled as baton's (a stale one replaced, a
// live one refused, ours removed on exit).
// --slow_us etc. (server/compare/slow_rule.h) delay marked messages for the
// head-of-line benchmark.
#include <fcntl.h>
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <array>
#include <boost/asio.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "baton/reactor.h"
#include "lib/internal/unix_listener.h"
#include "lib/net/address.h"
#include "server/compare/slow_rule_flags.h"
#include "server/flags.h"

DEFINE_string(io_contexts, "shared",
              "shared: one io_context run by all threads; per_thread: one "
              "io_context and one SO_REUSEPORT acceptor per thread");

namespace {
bool ValidateIoContexts(const char* flag, const std::string& value) {
  if (value == "shared" || value == "per_thread") return true;
  std::fprintf(stderr, "--%s=%s: must be shared or per_thread\n", flag,
               value.c_str());
  return false;
}
}  // namespace
DEFINE_validator(io_contexts, &ValidateIoContexts);

namespace {

using boost::asio::ip::tcp;
using unix_stream = boost::asio::local::stream_protocol;

// One connection; `Protocol` is tcp or local::stream_protocol.
template <typename Protocol>
class Session : public std::enable_shared_from_this<Session<Protocol>> {
 public:
  Session(typename Protocol::socket socket, const baton::SlowRule* slow)
      : socket_(std::move(socket)), slow_(slow) {}

  void Start() {
    if constexpr (std::is_same_v<Protocol, tcp>) {
      boost::system::error_code ignored;
      socket_.set_option(tcp::no_delay(true), ignored);
    }
    Read();
  }

 private:
  void Read() {
    auto self = this->shared_from_this();
    socket_.async_read_some(
        boost::asio::buffer(buffer_),
        [this, self](const boost::system::error_code& ec, size_t n) {
          if (ec) return;
          if (slow_ != nullptr) slow_->Apply({buffer_.data(), n});
          Write(n);
        });
  }

  void Write(size_t n) {
    auto self = this->shared_from_this();
    boost::asio::async_write(
        socket_, boost::asio::buffer(buffer_.data(), n),
        [this, self](const boost::system::error_code& ec, size_t) {
          if (!ec) Read();
        });
  }

  typename Protocol::socket socket_;
  const baton::SlowRule* const slow_;  // null: no delays
  std::array<char, 64 << 10> buffer_;
};

template <typename Protocol>
class Server {
 public:
  // With `reuse_port`, several Servers (one per io_context) bind one port.
  Server(boost::asio::io_context& io, const tcp::endpoint& endpoint,
         bool reuse_port, const baton::SlowRule* slow)
      : acceptor_(io), slow_(slow) {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    if (reuse_port) {
      acceptor_.set_option(
          boost::asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(
              true));
    }
    acceptor_.bind(endpoint);
    acceptor_.listen(1024);
    Accept();
  }

  // Accepts on `listen_fd`, a listening socket made elsewhere (it takes
  // ownership).
  Server(boost::asio::io_context& io, int listen_fd,
         const baton::SlowRule* slow)
      : acceptor_(io), slow_(slow) {
    acceptor_.assign(Protocol(), listen_fd);
    Accept();
  }

  typename Protocol::endpoint local_endpoint() const {
    return acceptor_.local_endpoint();
  }
  void Close() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  }

 private:
  void Accept() {
    acceptor_.async_accept([this](const boost::system::error_code& ec,
                                  typename Protocol::socket socket) {
      if (ec == boost::asio::error::operation_aborted) return;
      if (!ec) {
        std::make_shared<Session<Protocol>>(std::move(socket), slow_)->Start();
      }
      // Keep accepting after transient errors (EMFILE included); Asio
      // itself offers nothing smarter.
      Accept();
    });
  }

  typename Protocol::acceptor acceptor_;
  const baton::SlowRule* const slow_;
};

}  // namespace

int main(int argc, char** argv) {
  if (!baton::flags::InitServer(
          &argc, &argv,
          (std::string("echo server on Boost.Asio (comparison baseline)\n"
                       "usage: asio_echo [--port=N] [--address=A|unix:/path] "
                       "[--threads=N] [--io_contexts=shared|per_thread]\n") +
           baton::kSlowRuleUsage)
              .c_str())) {
    return 2;
  }
  const sigset_t stop_signals = baton::flags::BlockStopSignals();
  const int threads = baton::flags::ThreadCount();
  const bool per_thread = FLAGS_io_contexts == "per_thread";
  const baton::SlowRule* slow = baton::ActiveSlowRule();

  // shared: one io_context with a concurrency hint of `threads`;
  // per_thread: `threads` io_contexts with hint 1 (no locking needed inside).
  std::vector<std::unique_ptr<boost::asio::io_context>> ios;
  for (int i = 0; i < (per_thread ? threads : 1); ++i) {
    ios.push_back(
        std::make_unique<boost::asio::io_context>(per_thread ? 1 : threads));
  }
  absl::StatusOr<baton::ListenOptions> listen = baton::flags::ListenFromFlags();
  if (!listen.ok()) {
    LOG(ERROR) << listen.status().message();
    return 2;
  }
  std::vector<std::unique_ptr<Server<tcp>>> servers;
  std::vector<std::unique_ptr<Server<unix_stream>>> unix_servers;
  baton::internal::UnixSocketFile unix_file;  // removed on exit
  tcp::endpoint endpoint;
  std::string where;
  try {
    if (listen->unix_path.empty()) {
      endpoint = tcp::endpoint(boost::asio::ip::make_address(listen->address),
                               static_cast<uint16_t>(listen->port));
      for (auto& io : ios) {
        servers.push_back(
            std::make_unique<Server<tcp>>(*io, endpoint, per_thread, slow));
        // --port=0: the others join the port the first one got.
        endpoint.port(servers.front()->local_endpoint().port());
      }
      where = baton::net::JoinHostPort(listen->address, endpoint.port());
    } else {
      absl::StatusOr<baton::internal::UnixListener> unix =
          baton::internal::CreateUnixListener(listen->unix_path, 1024,
                                              listen->unix_mode);
      if (!unix.ok()) {
        LOG(ERROR) << unix.status().message();
        return 1;
      }
      unix_file = std::move(unix->file);
      const int fd = unix->fd.Release();
      for (size_t i = 0; i < ios.size(); ++i) {
        const int own = i == 0 ? fd : ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (own < 0) {
          PLOG(ERROR) << "dup";
          return 1;
        }
        unix_servers.push_back(
            std::make_unique<Server<unix_stream>>(*ios[i], own, slow));
      }
      where = baton::net::UnixAddressString(listen->unix_path);
    }
  } catch (const boost::system::system_error& e) {
    LOG(ERROR) << "cannot listen on "
               << baton::flags::ListenText(*listen, listen->port) << ": "
               << e.what();
    return 1;
  }
  std::vector<
      boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>
      work;
  for (auto& io : ios) work.push_back(boost::asio::make_work_guard(*io));
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) {
    boost::asio::io_context* io = ios[per_thread ? i : 0].get();
    pool.emplace_back([io] { io->run(); });
  }
  LOG(INFO) << "listening on " << where << " with " << threads << " threads, "
            << (per_thread ? "one io_context per thread"
                           : "one shared io_context");

  const int signal = baton::flags::WaitForSignal(stop_signals);
  LOG(INFO) << "signal " << signal << ": stopping";
  for (size_t i = 0; i < ios.size(); ++i) {
    if (!servers.empty()) {
      Server<tcp>* server = servers[i].get();
      boost::asio::post(*ios[i], [server] { server->Close(); });
    } else {
      Server<unix_stream>* server = unix_servers[i].get();
      boost::asio::post(*ios[i], [server] { server->Close(); });
    }
  }
  work.clear();
  for (auto& io : ios) io->stop();
  for (auto& t : pool) t.join();
  if (slow != nullptr) LOG(INFO) << slow->Summary();
  LOG(INFO) << "stopped";
  return 0;
}
