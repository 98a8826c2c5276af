#pragma once

#include "satoru/config.hpp"
#include "satoru/web/login_limiter.hpp"
#include "satoru/web/sessions.hpp"

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace satoru::web {

using http_request = boost::beast::http::request<boost::beast::http::string_body>;
using http_response = boost::beast::http::response<boost::beast::http::string_body>;

inline constexpr const char* session_cookie = "satoru_session";

struct console_options {
  session_limits sessions;
  login_limits logins;
  /// Adds Secure to the session cookie (set when the console is served
  /// over TLS; TLS serving is not built yet).
  bool secure_cookies = false;
};

/// The console's routes, apart from the transport: turns one request from
/// `client` (its address) into one response. Thread-safe. The users file
/// is read at each login, so `satoru web-user add` needs no restart.
class console {
public:
  console(std::shared_ptr<const config> cfg, console_options options = {});

  /// The config after a reload (the sites and the users file).
  void set_config(std::shared_ptr<const config> cfg);

  http_response handle(const http_request& req, const std::string& client,
                       std::int64_t now_ms);

private:
  std::shared_ptr<const config> current_config() const;
  /// Set-Cookie for the session id (an empty id with max age 0 ends it).
  std::string cookie_header(const std::string& id, std::int64_t max_age_seconds) const;
  http_response login(const http_request& req, const std::string& client,
                      std::int64_t now_ms);
  http_response logout(const http_request& req);
  http_response fleet_page(const http_request& req, const session& s,
                           std::int64_t now_ms);

  console_options options_;
  mutable std::mutex config_mutex_;
  std::shared_ptr<const config> cfg_;
  session_store sessions_;
  login_limiter limiter_;
};

} // namespace satoru::web
