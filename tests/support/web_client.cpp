#include "web_client.hpp"

#include "openapi_check.hpp"
#include "satoru_env.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

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
