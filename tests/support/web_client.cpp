#include "web_client.hpp"

#include "openapi_check.hpp"
#include "satoru_env.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fstream>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace satoru::testing {

std::string http_reply::header(const std::string& name) const {
  auto at = head.find("\r\n" + name + ": ");
  if (at == std::string::npos) return {};
  at += name.size() + 4;
  return head.substr(at, head.find("\r\n", at) - at);
}

http_reply parse_reply(const std::string& raw) {
  http_reply reply;
  auto split = raw.find("\r\n\r\n");
  if (raw.size() < 12 || split == std::string::npos) return reply;
  reply.status = std::stoi(raw.substr(9, 3));
  reply.head = raw.substr(0, split + 2);
  reply.body = raw.substr(split + 4);
  return reply;
}

http_reply http(int port, const std::string& method, const std::string& target,
                const std::vector<std::string>& headers, const std::string& body,
                const std::string& content_type) {
  std::string req = method + " " + target +
                    " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                    "\r\nConnection: close\r\n";
  for (const auto& h : headers)
    req += h + "\r\n";
  if (!body.empty())
    req += "Content-Type: " + content_type +
           "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  // Pages that run restic (tree, download, snapshots, repository) take
  // seconds on a loaded machine: 5 s would read as "no reply".
  return parse_reply(http_exchange(port, req + "\r\n" + body, std::chrono::seconds{60}));
}

int connect_to_console(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{60, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string head_of_response(int fd, const std::string& request) {
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) < 0) return {};
  std::string got;
  char c;
  while (got.find("\r\n\r\n") == std::string::npos && ::recv(fd, &c, 1, 0) == 1)
    got += c;
  return got;
}

long resident_kib(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  while (status >> key) {
    if (key == "VmRSS:") {
      long kib = -1;
      status >> kib;
      return kib;
    }
    status.ignore(1 << 16, '\n');
  }
  return -1;
}

void expect_documented(const http_reply& reply, const std::string& path,
                       const std::string& method) {
  static const auto document = openapi_document();
  auto schema = response_schema(document, path, method, reply.status);
  if (schema.is_null()) return;
  boost::json::error_code ec;
  auto body = boost::json::parse(reply.body, ec);
  ASSERT_FALSE(ec) << method << " " << path << ": not JSON: " << reply.body;
  std::string problems;
  for (const auto& p : schema_problems(body, schema, document))
    problems += p + "\n";
  EXPECT_EQ(problems, "") << method << " " << path << " " << reply.status << ": "
                          << reply.body;
}

} // namespace satoru::testing
