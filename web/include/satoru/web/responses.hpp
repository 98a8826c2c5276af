#pragma once

/// The console's response helpers (web/src/console.cpp), for route modules
/// beside it: every answer carries the same security headers, and every
/// state-changing request passes the same role, Origin and CSRF checks.

#include "satoru/web/console.hpp"

#include <boost/beast/http/status.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace satoru::web {

/// A positive decimal number (a job id, a limit); nullopt for anything else.
std::optional<std::int64_t> parse_id(std::string_view text);
/// Whether `path` is under /api/v1/.
bool is_api(std::string_view path);
/// API clients, and page requests with ?format=json or Accept: application/json.
bool wants_json(const http_request& req);
/// A response with the console's headers (no-store, CSP, nosniff, ...).
http_response respond(const http_request& req, boost::beast::http::status status,
                      const char* content_type, std::string body);
http_response json_error(const http_request& req, boost::beast::http::status status,
                         const std::string& message);
http_response html(const http_request& req, boost::beast::http::status status,
                   std::string body);
/// 303 See Other to `location`.
http_response redirect(const http_request& req, const std::string& location);
/// A text-or-JSON error, as the client asked.
http_response failure(const http_request& req, boost::beast::http::status status,
                      const std::string& message);
http_response json_ok(const http_request& req, boost::beast::http::status status,
                      const boost::json::value& body);
/// Whether a browser sent the request from another site's page.
bool cross_site(const http_request& req);
/// The refusal of a request a browser session may have been tricked into
/// (another Origin, a missing or wrong CSRF token: from X-CSRF-Token, else
/// `form_token`); nullopt when it is none, and always for API tokens.
std::optional<http_response> refuse_forgery(const http_request& req, const principal& who,
                                            std::string_view form_token);
/// The refusal of a state-changing request: not an operator's, or a forgery.
std::optional<http_response> refuse_change(const http_request& req, const principal& who,
                                           std::string_view form_token);

/// The answer when queuing a job failed: 404 naming an unknown site, else
/// 500 (the cause goes to the log, not to the client).
http_response queue_failure(const http_request& req, const error& why);

} // namespace satoru::web
