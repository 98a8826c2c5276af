#include "satoru/web/console.hpp"

#include "satoru/web/fleet.hpp"
#include "satoru/web/http_text.hpp"
#include "satoru/web/page.hpp"
#include "satoru/web/password.hpp"
#include "satoru/web/users_file.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace satoru::web {

namespace http = boost::beast::http;

namespace {

std::string_view header(const http_request& req, http::field f) {
  auto it = req.find(f);
  if (it == req.end()) return {};
  return {it->value().data(), it->value().size()};
}

bool wants_json(const http_request& req) {
  auto [path, query] = split_target({req.target().data(), req.target().size()});
  if (auto form = parse_form(query); form && form->count("format"))
    if (form->at("format") == "json") return true;
  return header(req, http::field::accept).find("application/json") !=
         std::string_view::npos;
}

http_response respond(const http_request& req, http::status status,
                      const char* content_type, std::string body) {
  http_response res{status, req.version()};
  res.set(http::field::content_type, content_type);
  res.set(http::field::cache_control, "no-store");
  res.set("X-Content-Type-Options", "nosniff");
  // Not "no-referrer": under it browsers send `Origin: null` with the
  // console's own form posts, which the cross-site check must refuse.
  res.set("Referrer-Policy", "same-origin");
  res.set("X-Frame-Options", "DENY");
  // Pages carry their CSS inline and no scripts at all.
  res.set("Content-Security-Policy",
          "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
          "frame-ancestors 'none'; base-uri 'none'");
  res.keep_alive(req.keep_alive());
  if (req.method() != http::verb::head) res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

http_response json_error(const http_request& req, http::status status,
                         const std::string& message) {
  boost::json::object body{{"error", message}};
  return respond(req, status, "application/json", boost::json::serialize(body) + "\n");
}

http_response html(const http_request& req, http::status status, std::string body) {
  return respond(req, status, "text/html; charset=utf-8", std::move(body));
}

http_response redirect(const http_request& req, const char* location) {
  auto res = respond(req, http::status::see_other, "text/plain; charset=utf-8", "");
  res.set(http::field::location, location);
  return res;
}

/// A text-or-JSON error, as the client asked.
http_response failure(const http_request& req, http::status status,
                      const std::string& message) {
  if (wants_json(req)) return json_error(req, status, message);
  return respond(req, status, "text/plain; charset=utf-8", message + "\n");
}

/// POSTs from another site's page are refused; a client that sends no
/// Origin (curl, scripts) is not a browser tricked into it.
bool cross_site(const http_request& req) {
  auto origin = header(req, http::field::origin);
  return !origin.empty() && !same_origin(origin, header(req, http::field::host));
}

/// A user name as it may appear in the log: only names that could be valid.
std::string loggable_name(const std::string& name) {
  return valid_user_name(name) ? "\"" + name + "\"" : "(not a valid name)";
}

/// Compared against when the user does not exist, so that an unknown name
/// costs the same scrypt work as a wrong password.
const std::string& dummy_hash() {
  static const std::string hash = [] {
    auto h = hash_password("not a password");
    return h ? *h : std::string();
  }();
  return hash;
}

} // namespace

console::console(std::shared_ptr<const config> cfg, console_options options)
    : options_(options)
    , cfg_(std::move(cfg))
    , sessions_(options.sessions)
    , limiter_(options.logins) {}

void console::set_config(std::shared_ptr<const config> cfg) {
  std::lock_guard lock(config_mutex_);
  cfg_ = std::move(cfg);
}

std::string console::cookie_header(const std::string& id,
                                   std::int64_t max_age_seconds) const {
  std::string cookie =
      std::string(session_cookie) + "=" + id +
      "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" + std::to_string(max_age_seconds);
  if (options_.secure_cookies) cookie += "; Secure";
  return cookie;
}

std::shared_ptr<const config> console::current_config() const {
  std::lock_guard lock(config_mutex_);
  return cfg_;
}

http_response console::handle(const http_request& req, const std::string& client,
                              std::int64_t now_ms) {
  auto [path, query] = split_target({req.target().data(), req.target().size()});
  bool get = req.method() == http::verb::get || req.method() == http::verb::head;
  bool post = req.method() == http::verb::post;
  if (path == "/healthz") {
    if (!get) return failure(req, http::status::method_not_allowed, "use GET");
    return respond(req, http::status::ok, "text/plain; charset=utf-8", "ok\n");
  }
  if (path == "/login") {
    if (get) return html(req, http::status::ok, login_page(""));
    if (post) return login(req, client, now_ms);
    return failure(req, http::status::method_not_allowed, "use GET or POST");
  }
  if (path == "/logout") {
    if (post) return logout(req);
    return failure(req, http::status::method_not_allowed, "use POST");
  }
  auto id = cookie_value(header(req, http::field::cookie), session_cookie);
  auto s = sessions_.find(id, now_ms);
  if (!s) {
    if (wants_json(req))
      return json_error(req, http::status::unauthorized, "log in first");
    return redirect(req, "/login");
  }
  if (path == "/") {
    if (!get) return failure(req, http::status::method_not_allowed, "use GET");
    return fleet_page(req, *s, now_ms);
  }
  return failure(req, http::status::not_found, "no such page");
}

http_response console::login(const http_request& req, const std::string& client,
                             std::int64_t now_ms) {
  if (cross_site(req)) return failure(req, http::status::forbidden, "cross-site request");
  if (auto wait = limiter_.retry_after(client, now_ms); wait > 0) {
    spdlog::warn("web console: login from {} refused: too many failed logins", client);
    auto res = failure(req, http::status::too_many_requests,
                       "too many failed logins; try again later");
    res.set(http::field::retry_after, std::to_string((wait + 999) / 1000));
    return res;
  }
  auto form = parse_form(req.body());
  if (!form) return failure(req, http::status::bad_request, "malformed form");
  std::string name = (*form)["user"];
  const std::string& password = (*form)["password"];

  auto cfg = current_config();
  auto users = load_users(cfg->web_users_file, true);
  if (!users) {
    spdlog::error("web console: {}", users.err().message);
    return failure(req, http::status::internal_server_error,
                   "the users file cannot be read; see the daemon's log");
  }
  auto user = std::find_if(users->begin(), users->end(),
                           [&](const web_user& u) { return u.name == name; });
  bool ok = verify_password(password,
                            user != users->end() ? user->password_hash : dummy_hash());
  if (!ok || user == users->end()) {
    limiter_.record_failure(client, now_ms);
    spdlog::warn("web console: failed login for {} from {}", loggable_name(name), client);
    if (wants_json(req))
      return json_error(req, http::status::unauthorized, "wrong name or password");
    return html(req, http::status::unauthorized, login_page("Wrong name or password."));
  }
  limiter_.record_success(client);
  auto id = sessions_.create(user->name, user->role, now_ms);
  if (!id) {
    spdlog::error("web console: {}", id.err().message);
    return failure(req, http::status::internal_server_error, "cannot create a session");
  }
  spdlog::info("web console: {} ({}) logged in from {}", loggable_name(user->name),
               to_string(user->role), client);
  auto res = redirect(req, "/");
  res.set(http::field::set_cookie,
          cookie_header(*id, options_.sessions.absolute_ms / 1000));
  return res;
}

http_response console::logout(const http_request& req) {
  if (cross_site(req)) return failure(req, http::status::forbidden, "cross-site request");
  sessions_.remove(cookie_value(header(req, http::field::cookie), session_cookie));
  auto res = redirect(req, "/login");
  res.set(http::field::set_cookie, cookie_header("", 0));
  return res;
}

http_response console::fleet_page(const http_request& req, const session& s,
                                  std::int64_t now_ms) {
  auto f = read_fleet(*current_config(), now_ms);
  if (!f) {
    spdlog::error("web console: {}", f.err().message);
    return failure(req, http::status::internal_server_error,
                   "the database cannot be read; see the daemon's log");
  }
  if (wants_json(req))
    return respond(req, http::status::ok, "application/json",
                   boost::json::serialize(fleet_json(*f)) + "\n");
  return html(req, http::status::ok, fleet_html(*f, s.user));
}

} // namespace satoru::web
