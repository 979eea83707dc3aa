// //server:asio_echo — the same echo server written on Boost.Asio, the
// baseline baton is compared against. For comparison only.
//
// Written the way a competent Asio user would: one io_context run by
// --threads threads, a session object per connection kept alive by
// shared_ptr, async_read_some into a per-session buffer and async_write of
// exactly what was read, TCP_NODELAY, no strand (a session has at most one
// operation outstanding, so none is needed).
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <array>
#include <boost/asio.hpp>
#include <memory>
#include <thread>
#include <vector>

#include "lib/net/address.h"
#include "server/flags.h"

namespace {

using boost::asio::ip::tcp;

class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(tcp::socket socket) : socket_(std::move(socket)) {}

  void Start() {
    boost::system::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    Read();
  }

 private:
  void Read() {
    auto self = shared_from_this();
    socket_.async_read_some(
        boost::asio::buffer(buffer_),
        [this, self](const boost::system::error_code& ec, size_t n) {
          if (!ec) Write(n);
        });
  }

  void Write(size_t n) {
    auto self = shared_from_this();
    boost::asio::async_write(
        socket_, boost::asio::buffer(buffer_.data(), n),
        [this, self](const boost::system::error_code& ec, size_t) {
          if (!ec) Read();
        });
  }

  tcp::socket socket_;
  std::array<char, 64 << 10> buffer_;
};

class Server {
 public:
  Server(boost::asio::io_context& io, const tcp::endpoint& endpoint)
      : acceptor_(io) {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(1024);
    Accept();
  }

  tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }
  void Close() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  }

 private:
  void Accept() {
    acceptor_.async_accept([this](const boost::system::error_code& ec,
                                  tcp::socket socket) {
      if (ec == boost::asio::error::operation_aborted) return;
      if (!ec) std::make_shared<Session>(std::move(socket))->Start();
      // Keep accepting after transient errors (EMFILE included); Asio
      // itself offers nothing smarter.
      Accept();
    });
  }

  tcp::acceptor acceptor_;
};

}  // namespace

int main(int argc, char** argv) {
  if (!baton::flags::InitServer(
          &argc, &argv,
          "echo server on Boost.Asio (comparison baseline)\n"
          "usage: asio_echo [--port=N] [--address=A] [--threads=N]")) {
    return 2;
  }
  const sigset_t stop_signals = baton::flags::BlockStopSignals();
  const int threads = FLAGS_threads > 0
                          ? FLAGS_threads
                          : std::max(1u, std::thread::hardware_concurrency());

  boost::asio::io_context io(threads);
  std::unique_ptr<Server> server;
  try {
    server = std::make_unique<Server>(
        io, tcp::endpoint(boost::asio::ip::make_address(FLAGS_address),
                          static_cast<uint16_t>(FLAGS_port)));
  } catch (const boost::system::system_error& e) {
    LOG(ERROR) << "cannot listen on "
               << baton::net::JoinHostPort(FLAGS_address, FLAGS_port) << ": "
               << e.what();
    return 1;
  }
  auto work = boost::asio::make_work_guard(io);
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) pool.emplace_back([&io] { io.run(); });
  LOG(INFO) << "listening on "
            << baton::net::JoinHostPort(FLAGS_address,
                                        server->local_endpoint().port())
            << " with " << threads << " threads";

  const int signal = baton::flags::WaitForSignal(stop_signals);
  LOG(INFO) << "signal " << signal << ": stopping";
  boost::asio::post(io, [&] { server->Close(); });
  work.reset();
  io.stop();
  for (auto& t : pool) t.join();
  LOG(INFO) << "stopped";
  return 0;
}
