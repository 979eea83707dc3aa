#include "tests/util/test_dns_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace baton::testing {
namespace {

constexpr uint16_t kTypeA = 1;
constexpr uint16_t kTypeAaaa = 28;

uint16_t Get16(const std::string& s, size_t at) {
  return static_cast<uint16_t>((static_cast<uint8_t>(s[at]) << 8) |
                               static_cast<uint8_t>(s[at + 1]));
}

void Put16(std::string* s, uint16_t v) {
  s->push_back(static_cast<char>(v >> 8));
  s->push_back(static_cast<char>(v & 0xff));
}

}  // namespace

TestDnsServer::TestDnsServer() {
  fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) std::abort();
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::perror("test dns server");
    std::abort();
  }
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { Serve(); });
}

TestDnsServer::~TestDnsServer() {
  stop_.store(true);
  thread_.join();
  ::close(fd_);
}

void TestDnsServer::Add(const std::string& name,
                        std::vector<std::string> addresses,
                        uint32_t ttl_seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  names_[name] = std::move(addresses);
  ttls_[name] = ttl_seconds;
}

void TestDnsServer::AddSilent(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  silent_.insert(name);
}

void TestDnsServer::AddHeld(const std::string& name,
                            std::vector<std::string> addresses) {
  std::lock_guard<std::mutex> lock(mu_);
  names_[name] = std::move(addresses);
  held_names_.insert(name);
}

void TestDnsServer::ReleaseHeld() {
  std::lock_guard<std::mutex> lock(mu_);
  released_ = true;
}

std::string TestDnsServer::servers() const {
  return "127.0.0.1:" + std::to_string(port_);
}

int TestDnsServer::queries(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = queries_.find(name);
  return it == queries_.end() ? 0 : it->second;
}

void TestDnsServer::Serve() {
  // Polls with a short timeout only to notice stop_; a bounded loop.
  while (!stop_.load()) {
    std::vector<Held> release;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (released_) release.swap(held_);
    }
    for (const Held& h : release) {
      const std::string reply = Answer(h.query);
      ::sendto(fd_, reply.data(), reply.size(), 0,
               reinterpret_cast<const sockaddr*>(h.from.data()),
               static_cast<socklen_t>(h.from.size()));
    }
    pollfd p = {fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char buf[1500];
    sockaddr_storage from;
    socklen_t from_len = sizeof(from);
    const ssize_t n = ::recvfrom(fd_, buf, sizeof(buf), 0,
                                 reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n <= 0) continue;
    if (Hold(std::string(buf, static_cast<size_t>(n)),
             std::string(reinterpret_cast<char*>(&from), from_len))) {
      continue;
    }
    const std::string reply = Answer(std::string(buf, static_cast<size_t>(n)));
    if (reply.empty()) continue;
    ::sendto(fd_, reply.data(), reply.size(), 0,
             reinterpret_cast<sockaddr*>(&from), from_len);
  }
}

bool TestDnsServer::Hold(const std::string& query, const std::string& from) {
  std::lock_guard<std::mutex> lock(mu_);
  if (released_) return false;
  for (const std::string& name : held_names_) {
    // The question's first label is enough to tell the test's names apart.
    const size_t label = name.find('.');
    const std::string first = name.substr(0, label);
    if (query.size() > 13 + first.size() &&
        static_cast<size_t>(query[12]) == first.size() &&
        query.compare(13, first.size(), first) == 0) {
      held_.push_back({query, from});
      ++queries_[name];
      return true;
    }
  }
  return false;
}

// The reply to one query ("" for none): the header and question echoed,
// then one answer per matching address.
std::string TestDnsServer::Answer(const std::string& query) {
  if (query.size() < 12 || Get16(query, 4) != 1) return "";
  std::string name;
  size_t at = 12;
  while (at < query.size() && query[at] != 0) {
    const size_t label = static_cast<uint8_t>(query[at]);
    if (label > 63 || at + 1 + label > query.size()) return "";
    if (!name.empty()) name.push_back('.');
    for (size_t i = 0; i < label; ++i) {
      name.push_back(static_cast<char>(
          std::tolower(static_cast<unsigned char>(query[at + 1 + i]))));
    }
    at += 1 + label;
  }
  if (at + 5 > query.size()) return "";
  const uint16_t type = Get16(query, at + 1);
  const size_t question_end = at + 5;

  std::vector<std::string> records;  // rdata of each answer
  bool known = false;
  uint32_t ttl = 60;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++queries_[name];
    if (silent_.count(name)) return "";
    auto it = names_.find(name);
    if (auto t = ttls_.find(name); t != ttls_.end()) ttl = t->second;
    if (it != names_.end()) {
      known = true;
      for (const std::string& text : it->second) {
        unsigned char bytes[16];
        if (type == kTypeA && inet_pton(AF_INET, text.c_str(), bytes) == 1) {
          records.emplace_back(reinterpret_cast<char*>(bytes), 4);
        } else if (type == kTypeAaaa &&
                   inet_pton(AF_INET6, text.c_str(), bytes) == 1) {
          records.emplace_back(reinterpret_cast<char*>(bytes), 16);
        }
      }
    }
  }
  std::string reply = query.substr(0, 2);  // id
  // QR, the query's opcode and RD, AA, RA; NXDOMAIN for an unknown name.
  const uint16_t flags = static_cast<uint16_t>(
      0x8000 | (Get16(query, 2) & 0x7900) | 0x0400 | 0x0080 | (known ? 0 : 3));
  Put16(&reply, flags);
  Put16(&reply, 1);
  Put16(&reply, static_cast<uint16_t>(records.size()));
  Put16(&reply, 0);
  Put16(&reply, 0);
  reply.append(query, 12, question_end - 12);
  for (const std::string& rdata : records) {
    Put16(&reply, 0xc00c);  // the name: a pointer to the question's
    Put16(&reply, type);
    Put16(&reply, 1);                                 // IN
    Put16(&reply, static_cast<uint16_t>(ttl >> 16));  // TTL
    Put16(&reply, static_cast<uint16_t>(ttl & 0xffff));
    Put16(&reply, static_cast<uint16_t>(rdata.size()));
    reply += rdata;
  }
  return reply;
}

}  // namespace baton::testing
