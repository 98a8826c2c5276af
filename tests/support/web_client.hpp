#pragma once

#include <string>
#include <vector>

namespace satoru::testing {

/// One HTTP answer of the web console.
struct http_reply {
  int status = 0;
  std::string head; ///< status line and headers
  std::string body;
  /// The value of header `name` ("" when absent).
  std::string header(const std::string& name) const;
};

/// A raw response split into status, head and body (status 0: none).
http_reply parse_reply(const std::string& raw);

/// One HTTP/1.1 request on a fresh connection to 127.0.0.1:port.
http_reply http(int port, const std::string& method, const std::string& target,
                const std::vector<std::string>& headers = {},
                const std::string& body = "",
                const std::string& content_type = "application/x-www-form-urlencoded");

/// Expects an API answer to be what docs/openapi.json says `method` of
/// `path` (as the document spells it) answers with its status.
void expect_documented(const http_reply& reply, const std::string& path,
                       const std::string& method);

} // namespace satoru::testing
