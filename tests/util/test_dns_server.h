// A tiny DNS server on 127.0.0.1 for tests of host name lookups: it answers
// A and AAAA questions from a table the test fills, NXDOMAIN for any other
// name, and never answers names marked silent. Nothing leaves the machine.
#ifndef BATON_TESTS_UTIL_TEST_DNS_SERVER_H_
#define BATON_TESTS_UTIL_TEST_DNS_SERVER_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace baton::testing {

class TestDnsServer {
 public:
  // Binds a UDP socket on 127.0.0.1 (port chosen by the kernel) and starts
  // answering on a thread of its own.
  TestDnsServer();
  ~TestDnsServer();
  TestDnsServer(const TestDnsServer&) = delete;
  TestDnsServer& operator=(const TestDnsServer&) = delete;

  // `name` resolves to these literals (IPv4 ones as A records, IPv6 ones as
  // AAAA), in this order, each with a TTL of `ttl_seconds`.
  void Add(const std::string& name, std::vector<std::string> addresses,
           uint32_t ttl_seconds = 60);
  // Questions about `name` are counted and never answered.
  void AddSilent(const std::string& name);
  // Like Add, but the answers wait until ReleaseHeld.
  void AddHeld(const std::string& name, std::vector<std::string> addresses);
  // Sends the answers held so far, and answers later questions at once.
  void ReleaseHeld();

  int port() const { return port_; }
  // For ReactorOptions::dns_servers: "127.0.0.1:PORT".
  std::string servers() const;
  // Questions received about `name` (any type).
  int queries(const std::string& name) const;

 private:
  void Serve();
  std::string Answer(const std::string& query);
  // Keeps a question about a held name for ReleaseHeld; false otherwise.
  bool Hold(const std::string& query, const std::string& from);

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::map<std::string, std::vector<std::string>> names_;
  std::map<std::string, uint32_t> ttls_;  // 60 s for names not in it
  std::set<std::string> silent_;
  std::set<std::string> held_names_;
  bool released_ = false;
  struct Held {
    std::string query;
    std::string from;  // sockaddr bytes
  };
  std::vector<Held> held_;
  std::map<std::string, int> queries_;
  std::thread thread_;
};

}  // namespace baton::testing

#endif  // BATON_TESTS_UTIL_TEST_DNS_SERVER_H_
