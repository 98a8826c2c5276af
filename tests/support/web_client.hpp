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

/// A TCP connection to 127.0.0.1:port that reads time out after 60 s (-1
/// when it cannot connect); the caller closes it.
int connect_to_console(int port);

/// Sends `request` on `fd` and reads the response up to the end of its
/// head, leaving the body in the socket ("" when nothing came).
std::string head_of_response(int fd, const std::string& request);

/// The resident memory of process `pid` in KiB (VmRSS), -1 when unknown.
long resident_kib(int pid);

/// Expects an API answer to be what docs/openapi.json says `method` of
/// `path` (as the document spells it) answers with its status.
void expect_documented(const http_reply& reply, const std::string& path,
                       const std::string& method);

} // namespace satoru::testing
