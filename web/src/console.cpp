#include "satoru/web/console.hpp"

#include "satoru/state_json.hpp"
#include "satoru/time.hpp"
#include "satoru/web/detail_pages.hpp"
#include "satoru/web/fleet.hpp"
#include "satoru/web/http_text.hpp"
#include "satoru/web/page.hpp"
#include "satoru/web/password.hpp"
#include "satoru/web/responses.hpp"
#include "satoru/web/site_jobs.hpp"
#include "satoru/web/snapshot_pages.hpp"
#include "satoru/web/users_file.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/none.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

namespace satoru::web {

namespace http = boost::beast::http;

namespace {

template <class Field> std::string_view header(const http_request& req, Field f) {
  auto it = req.find(f);
  if (it == req.end()) return {};
  return {it->value().data(), it->value().size()};
}

/// The header a session's scripts send its CSRF token in.
constexpr const char* csrf_header = "X-CSRF-Token";

constexpr std::string_view api_prefix = "/api/v1/";

} // namespace

bool is_api(std::string_view path) {
  return path.substr(0, api_prefix.size()) == api_prefix;
}

bool reads_repository(const http_request& req) {
  auto path = split_target({req.target().data(), req.target().size()}).first;
  if (is_api(path)) path = path.substr(api_prefix.size() - 1);
  constexpr std::string_view sites = "/sites/", targets = "/targets/";
  return path == "/repository" ||
         (path.substr(0, sites.size()) == sites &&
          path.find(targets, sites.size()) != std::string_view::npos);
}

namespace {

/// The host of a Host header or of web_listen, without port or brackets, in
/// lower case ("[::1]:9465" -> "::1").
std::string host_name_of(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    auto end = host.find(']');
    return std::string(host.substr(1, end == std::string_view::npos ? 0 : end - 1));
  }
  auto colon = host.rfind(':');
  if (colon != std::string_view::npos &&
      host.find_first_not_of("0123456789", colon + 1) == std::string_view::npos)
    host = host.substr(0, colon);
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  std::string out(host);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

} // namespace

bool host_allowed(std::string_view host, const config& cfg) {
  // HTTP/1.1 clients always send one; a client without is not a browser
  // sent here by another site's page.
  if (host.empty()) return true;
  auto name = host_name_of(host);
  // DNS rebinding needs a name the attacker's DNS answers: an address is
  // not one (whatever address a wildcard web_listen was reached by).
  boost::system::error_code ec;
  boost::asio::ip::make_address(name, ec);
  if (!ec) return true;
  if (name == "localhost" || name == host_name_of(cfg.web_listen)) return true;
  return std::find(cfg.web_allowed_hosts.begin(), cfg.web_allowed_hosts.end(), name) !=
         cfg.web_allowed_hosts.end();
}

/// API clients, and page requests with ?format=json or Accept: application/json.
bool wants_json(const http_request& req) {
  auto [path, query] = split_target({req.target().data(), req.target().size()});
  if (is_api(path)) return true;
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
  // Pages carry their CSS inline; scripts only from the console itself
  // (assets/job.js), never inline, so escaped text cannot become one.
  res.set("Content-Security-Policy",
          "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; "
          "connect-src 'self'; form-action 'self'; "
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

http_response redirect(const http_request& req, const std::string& location) {
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

http_response json_ok(const http_request& req, http::status status,
                      const boost::json::value& body) {
  return respond(req, status, "application/json", boost::json::serialize(body) + "\n");
}

/// A request a browser session may have been tricked into: from another
/// site's page (Origin), or without the session's CSRF token (from the
/// X-CSRF-Token header, else `form_token`). API tokens are not sent by
/// browsers on their own, so a bearer request is never a forgery.
std::optional<http_response> refuse_forgery(const http_request& req, const principal& who,
                                            std::string_view form_token) {
  if (who.bearer) return std::nullopt;
  if (cross_site(req)) return failure(req, http::status::forbidden, "cross-site request");
  auto token = header(req, csrf_header);
  if (token.empty()) token = form_token;
  if (token.empty() || !constant_time_equal(token, who.csrf))
    return failure(req, http::status::forbidden, "missing or wrong CSRF token");
  return std::nullopt;
}

std::string requester_of(const principal& who) {
  return (who.bearer ? "api:" : "console:") + who.name;
}

/// Every request that changes state: an operator's, and no forgery.
std::optional<http_response> refuse_change(const http_request& req, const principal& who,
                                           std::string_view form_token) {
  if (who.role != role::operator_)
    return failure(req, http::status::forbidden,
                   "only operators may do this; " + who.name + " is a viewer");
  return refuse_forgery(req, who, form_token);
}

http_response queue_failure(const http_request& req, const error& why) {
  if (why.code == errc::not_found)
    return failure(req, http::status::not_found, why.message);
  spdlog::error("web console: {}", why.message);
  return failure(req, http::status::internal_server_error,
                 "the job cannot be queued; see the daemon's log");
}

namespace {

std::string_view query_of(const http_request& req) {
  return split_target({req.target().data(), req.target().size()}).second;
}

} // namespace

namespace {
/// The job id of "{id}/cancel", the rest of a job's cancel path.
std::optional<std::int64_t> cancel_path_id(std::string_view rest) {
  constexpr std::string_view suffix = "/cancel";
  if (rest.size() <= suffix.size() || rest.substr(rest.size() - suffix.size()) != suffix)
    return std::nullopt;
  return parse_id(rest.substr(0, rest.size() - suffix.size()));
}
} // namespace

std::optional<std::int64_t> parse_id(std::string_view text) {
  if (text.empty() || text.size() > 18) return std::nullopt;
  std::int64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  if (n <= 0) return std::nullopt;
  return n;
}

namespace {
/// ?sort=&order=&health=&q= of the fleet page, its JSON and /api/v1/sites.
expected<fleet_query> fleet_query_of(const http_request& req) {
  auto args = parse_form(query_of(req));
  if (!args) return error{errc::invalid_argument, "malformed query"};
  return parse_fleet_query(*args);
}

/// What a request to queue a job asks for: the API sends JSON {"type": …};
/// the pages' buttons post a form with the type and the session's CSRF token.
struct job_request {
  bool api = false;
  bool malformed = false; ///< an API body that is not a JSON object
  std::string type, csrf;
};

job_request read_job_request(const http_request& req) {
  job_request out;
  out.api = is_api(split_target({req.target().data(), req.target().size()}).first);
  if (!out.api) {
    if (auto form = parse_form(req.body())) {
      out.type = (*form)["type"];
      out.csrf = (*form)["csrf"];
    }
    return out;
  }
  boost::json::error_code ec;
  auto body = boost::json::parse(req.body(), ec);
  const auto* obj = body.if_object();
  out.malformed = ec || obj == nullptr;
  if (obj != nullptr)
    if (const auto* v = obj->if_contains("type"); v != nullptr && v->is_string())
      out.type = std::string(v->get_string());
  return out;
}

/// A queued job's answer: the pages' forms go on to the job's page, the API
/// gets 202 with the job and its Location.
http_response queued_answer(const http_request& req, bool api, const enqueue_result& job,
                            const std::string& site, job_type type) {
  if (!api) return redirect(req, "/jobs/" + std::to_string(job.id));
  boost::json::object out{{"id", job.id},
                          {"site", site},
                          {"type", to_string(type)},
                          {"existing", job.existing}};
  auto res = json_ok(req, http::status::accepted, out);
  res.set(http::field::location,
          std::string(api_prefix) + "jobs/" + std::to_string(job.id));
  return res;
}

/// The limiter's name for API token attempts: no user name can look like it.
const std::string token_attempts = "\x01(API token)";

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

console::console(std::shared_ptr<const config> cfg, console_options options,
                 std::shared_ptr<snapshot_pages> pages)
    : options_(options)
    , figures_(std::make_shared<repository_figures_source>(options.daemon_metrics))
    , cfg_(std::move(cfg))
    , sessions_(options.sessions)
    , limiter_(options.logins)
    , snapshots_(pages ? std::move(pages) : std::make_shared<snapshot_pages>()) {}

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

console_answer console::respond_to(const http_request& req, const std::string& client,
                                   std::int64_t now_ms) {
  if (auto refused = refuse_host(req)) return std::move(*refused);
  auto [path, query] = split_target({req.target().data(), req.target().size()});
  constexpr std::string_view jobs = "jobs/", events = "/events";
  auto rest = is_api(path) ? path.substr(api_prefix.size()) : std::string_view{};
  if (rest.substr(0, jobs.size()) == jobs && rest.size() > jobs.size() + events.size() &&
      rest.substr(rest.size() - events.size()) == events) {
    auto auth = authenticate(req, client, now_ms);
    if (auto* refusal = std::get_if<http_response>(&auth))
      return {std::move(*refusal), {}};
    if (req.method() != http::verb::get)
      return {json_error(req, http::status::method_not_allowed, "use GET"), {}};
    auto id =
        parse_id(rest.substr(jobs.size(), rest.size() - jobs.size() - events.size()));
    if (!id) return {json_error(req, http::status::not_found, "no such job"), {}};
    // A reconnecting EventSource sends the id of the last event it got.
    std::int64_t after = 0;
    if (auto last = header(req, "Last-Event-ID"); !last.empty()) {
      auto parsed = parse_id(last);
      if (!parsed)
        return {json_error(req, http::status::bad_request,
                           "Last-Event-ID: must be an event id (a positive number)"),
                {}};
      after = *parsed;
    }
    auto answer = job_events(req, *id, after);
    answer.authenticated = true;
    return answer;
  }
  return dispatch(req, client, now_ms);
}

console_answer console::job_events(const http_request& req, std::int64_t id,
                                   std::int64_t after_event_id) const {
  auto found = read_api(req, [&](store* db) -> expected<api_answer> {
    if (db == nullptr) return api_answer{http::status::not_found, {}, "no job", {}};
    auto job = db->get_job(id);
    if (!job) return job.err();
    if (!*job)
      return api_answer{http::status::not_found, {}, "no job " + std::to_string(id), {}};
    return api_answer{};
  });
  if (found.result() != http::status::ok) return {std::move(found), {}};
  auto res = respond(req, http::status::ok, "text/event-stream", "");
  // The body runs until the job ends; the connection closes then.
  res.content_length(boost::none);
  res.keep_alive(false);
  res.set("X-Accel-Buffering", "no"); // a proxy must not hold events back
  return {std::move(res), std::make_shared<job_event_stream>(
                              current_config()->database_path, id, after_event_id)};
}

http_response console::handle(const http_request& req, const std::string& client,
                              std::int64_t now_ms) {
  if (auto refused = refuse_host(req)) return std::move(*refused);
  return dispatch(req, client, now_ms).response;
}

std::optional<http_response> console::refuse_host(const http_request& req) const {
  if (host_allowed(header(req, http::field::host), *current_config()))
    return std::nullopt;
  return failure(req, http::status::misdirected_request,
                 "Host: not a name of this console (an address, localhost, or a name "
                 "of web_allowed_hosts)");
}

console_answer console::dispatch(const http_request& req, const std::string& client,
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
  auto auth = authenticate(req, client, now_ms);
  if (auto* refusal = std::get_if<http_response>(&auth)) return std::move(*refusal);
  auto answer = route(req, path, std::get<principal>(auth), now_ms);
  answer.authenticated = true;
  return answer;
}

console_answer console::route(const http_request& req, std::string_view path,
                              const principal& who, std::int64_t now_ms) {
  bool get = req.method() == http::verb::get || req.method() == http::verb::head;
  bool post = req.method() == http::verb::post;
  if (auto answer = snapshots_->route(req, path, who, *current_config()))
    return std::move(*answer);
  if (is_api(path)) return api(req, path, who);
  if (path == "/logout") {
    if (post) return logout(req, who);
    return failure(req, http::status::method_not_allowed, "use POST");
  }
  if (path == "/") {
    if (!get) return failure(req, http::status::method_not_allowed, "use GET");
    return fleet_page(req, who, now_ms);
  }
  if (path == "/repository") {
    if (!get) return failure(req, http::status::method_not_allowed, "use GET");
    return repository_page(req, who, now_ms);
  }
  if (path == "/repository/jobs") {
    if (!post) return failure(req, http::status::method_not_allowed, "use POST");
    return post_repository_job(req, who);
  }
  if (path == "/assets/job.js") {
    if (!get) return failure(req, http::status::method_not_allowed, "use GET");
    return respond(req, http::status::ok, "text/javascript; charset=utf-8",
                   std::string(job_script()));
  }
  constexpr std::string_view sites = "/sites/", jobs_suffix = "/jobs", jobs = "/jobs/";
  if (path.substr(0, sites.size()) == sites) {
    auto rest = path.substr(sites.size());
    bool queue = rest.size() > jobs_suffix.size() &&
                 rest.substr(rest.size() - jobs_suffix.size()) == jobs_suffix;
    if (queue) rest = rest.substr(0, rest.size() - jobs_suffix.size());
    auto site = url_decode(rest);
    if (!site) return failure(req, http::status::bad_request, "malformed site name");
    if (queue) {
      if (!post) return failure(req, http::status::method_not_allowed, "use POST");
      return post_site_job(req, *site, who);
    }
    if (!get) return failure(req, http::status::method_not_allowed, "use GET");
    return site_page(req, *site, who);
  }
  if (path.substr(0, jobs.size()) == jobs) {
    auto rest = path.substr(jobs.size());
    if (auto id = cancel_path_id(rest)) {
      if (!post) return failure(req, http::status::method_not_allowed, "use POST");
      return post_cancel(req, *id, who);
    }
    if (!get) return failure(req, http::status::method_not_allowed, "use GET");
    auto id = parse_id(rest);
    if (!id) return failure(req, http::status::not_found, "no such job");
    return read_api(req, [&](store* db) -> expected<api_answer> {
      auto job = get_job(db, *id);
      if (!job || !job->error.empty() || wants_json(req)) return job;
      job->html = job_html(job->body.as_object(), who.name,
                           who.role == role::operator_ ? who.csrf : std::string{});
      return job;
    });
  }
  return failure(req, http::status::not_found, "no such page");
}

http_response console::site_page(const http_request& req, const std::string& site,
                                 const principal& who) {
  return read_api(req, [&](store* db) -> expected<api_answer> {
    auto found = get_sites(db, site);
    if (!found || !found->error.empty() || wants_json(req)) return found;
    auto jobs = get_jobs(db, site, 20);
    if (!jobs) return jobs.err();
    bool may_act = who.role == role::operator_;
    found->html = site_html(found->body.as_object(), jobs->body.as_array(), who.name,
                            may_act ? who.csrf : std::string{});
    return found;
  });
}

std::variant<principal, http_response> console::authenticate(const http_request& req,
                                                             const std::string& client,
                                                             std::int64_t now_ms) {
  auto [path, query] = split_target({req.target().data(), req.target().size()});
  constexpr std::string_view scheme = "Bearer ";
  auto authorization = header(req, http::field::authorization);
  if (is_api(path) && authorization.substr(0, scheme.size()) == scheme)
    return bearer(req, authorization.substr(scheme.size()), client, now_ms);
  auto id = cookie_value(header(req, http::field::cookie), session_cookie);
  if (auto s = sessions_.find(id, now_ms)) {
    // The users file decides at every request: a session ends at once when
    // its user is removed or gets a new password or role.
    auto user = user_named(s->user);
    if (user && credential_fingerprint(*user) == s->credential)
      return principal{s->user, user->role, false, s->csrf};
    sessions_.remove(id);
    spdlog::info("web console: session of {} ended: the user was {} in the users file",
                 loggable_name(s->user), user ? "changed" : "removed");
  }
  if (is_api(path) || wants_json(req))
    return json_error(req, http::status::unauthorized, "log in first");
  return redirect(req, "/login");
}

std::optional<web_credential> console::user_named(const std::string& name) const {
  auto users = load_users(current_config()->web_users_file, true);
  if (!users) {
    spdlog::error("web console: {}", users.err().message);
    return std::nullopt;
  }
  for (auto& u : *users)
    if (u.name == name) return std::move(u);
  return std::nullopt;
}

std::variant<principal, http_response> console::bearer(const http_request& req,
                                                       std::string_view token,
                                                       const std::string& client,
                                                       std::int64_t now_ms) {
  auto cfg = current_config();
  std::vector<web_credential> tokens;
  if (!cfg->web_tokens_file.empty()) {
    auto loaded = load_credentials(credential_kind::token, cfg->web_tokens_file, true);
    if (!loaded) {
      spdlog::error("web console: {}", loaded.err().message);
      return json_error(req, http::status::internal_server_error,
                        "the tokens file cannot be read; see the daemon's log");
    }
    tokens = std::move(*loaded);
  }
  // A valid token is checked first and never refused: others' failures
  // from the same address (a shared proxy) must not lock it out. Tokens are
  // too long to guess, but a client trying many is still limited and
  // logged like one trying passwords.
  auto found = match_token(tokens, token);
  if (found) return principal{found->name, found->role, true, {}};
  if (limiter_.retry_after(client, token_attempts, now_ms) > 0)
    return json_error(req, http::status::too_many_requests,
                      "too many failed logins; try again later");
  limiter_.record_failure(client, token_attempts, now_ms);
  spdlog::warn("web console: unknown API token from {}", client);
  auto res = json_error(req, http::status::unauthorized, "unknown API token");
  res.set(http::field::www_authenticate, "Bearer");
  return res;
}

http_response console::login(const http_request& req, const std::string& client,
                             std::int64_t now_ms) {
  if (cross_site(req)) return failure(req, http::status::forbidden, "cross-site request");
  auto form = parse_form(req.body());
  if (!form) return failure(req, http::status::bad_request, "malformed form");
  std::string name = (*form)["user"];
  const std::string& password = (*form)["password"];
  if (auto wait = limiter_.retry_after(client, name, now_ms); wait > 0) {
    spdlog::warn("web console: login for {} from {} refused: too many failed logins",
                 loggable_name(name), client);
    auto res = failure(req, http::status::too_many_requests,
                       "too many failed logins; try again later");
    res.set(http::field::retry_after, std::to_string((wait + 999) / 1000));
    return res;
  }

  auto cfg = current_config();
  auto users = load_users(cfg->web_users_file, true);
  if (!users) {
    spdlog::error("web console: {}", users.err().message);
    return failure(req, http::status::internal_server_error,
                   "the users file cannot be read; see the daemon's log");
  }
  auto user = std::find_if(users->begin(), users->end(),
                           [&](const web_credential& u) { return u.name == name; });
  bool ok = verify_password(password, user != users->end() ? user->hash : dummy_hash());
  if (!ok || user == users->end()) {
    limiter_.record_failure(client, name, now_ms);
    spdlog::warn("web console: failed login for {} from {}", loggable_name(name), client);
    if (wants_json(req))
      return json_error(req, http::status::unauthorized, "wrong name or password");
    return html(req, http::status::unauthorized, login_page("Wrong name or password."));
  }
  limiter_.record_success(client, name);
  auto id =
      sessions_.create(user->name, user->role, now_ms, credential_fingerprint(*user));
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

http_response console::logout(const http_request& req, const principal& who) {
  auto form = parse_form(req.body());
  if (auto refused = refuse_forgery(req, who, form ? (*form)["csrf"] : ""))
    return *refused;
  sessions_.remove(cookie_value(header(req, http::field::cookie), session_cookie));
  auto res = redirect(req, "/login");
  res.set(http::field::set_cookie, cookie_header("", 0));
  return res;
}

http_response console::fleet_page(const http_request& req, const principal& who,
                                  std::int64_t now_ms) {
  auto query = fleet_query_of(req);
  if (!query) return failure(req, http::status::bad_request, query.err().message);
  auto f = read_fleet(*current_config(), now_ms);
  if (!f) {
    spdlog::error("web console: {}", f.err().message);
    return failure(req, http::status::internal_server_error,
                   "the database cannot be read; see the daemon's log");
  }
  if (wants_json(req))
    return respond(req, http::status::ok, "application/json",
                   boost::json::serialize(fleet_json(*f, *query)) + "\n");
  return html(req, http::status::ok, fleet_html(*f, *query, who.name, who.csrf));
}

http_response console::api(const http_request& req, std::string_view path,
                           const principal& who) {
  bool get = req.method() == http::verb::get || req.method() == http::verb::head;
  bool post = req.method() == http::verb::post;
  auto rest = path.substr(api_prefix.size());
  if (rest == "session") {
    if (!get) return json_error(req, http::status::method_not_allowed, "use GET");
    boost::json::object body{{"name", who.name},
                             {"role", to_string(who.role)},
                             {"bearer", who.bearer},
                             {"csrf_token", who.csrf}};
    return json_ok(req, http::status::ok, body);
  }
  // sites/{site}/jobs
  constexpr std::string_view sites = "sites/", jobs = "/jobs";
  if (rest.substr(0, sites.size()) == sites && rest.size() > sites.size() + jobs.size() &&
      rest.substr(rest.size() - jobs.size()) == jobs) {
    auto site =
        url_decode(rest.substr(sites.size(), rest.size() - sites.size() - jobs.size()));
    if (!site) return json_error(req, http::status::bad_request, "malformed site name");
    if (!post) return json_error(req, http::status::method_not_allowed, "use POST");
    return post_site_job(req, *site, who);
  }
  if (rest == "repository/jobs") {
    if (!post) return json_error(req, http::status::method_not_allowed, "use POST");
    return post_repository_job(req, who);
  }
  if (rest.substr(0, 5) == "jobs/")
    if (auto id = cancel_path_id(rest.substr(5))) {
      if (!post) return json_error(req, http::status::method_not_allowed, "use POST");
      return post_cancel(req, *id, who);
    }
  if (!get) return json_error(req, http::status::method_not_allowed, "use GET");
  if (rest == "repository") return repository_page(req, who, satoru::now_ms());
  if (rest == "sites") {
    auto query = fleet_query_of(req);
    if (!query) return json_error(req, http::status::bad_request, query.err().message);
    return read_api(req, [&](store* db) -> expected<api_answer> {
      auto all = get_sites(db, "");
      if (!all) return all;
      // No sort, filter or search: every site in config order, as `satoru
      // sites --json`, with no second read for the fleet's figures.
      if (query->sort.empty() && !query->descending && query->health.empty() &&
          query->search.empty())
        return all;
      auto f = read_fleet(*current_config(), db, satoru::now_ms());
      if (!f) return f.err();
      all->body = select_sites_json(all->body.as_array(), *f, *query);
      return all;
    });
  }
  if (rest.substr(0, sites.size()) == sites) {
    auto site = url_decode(rest.substr(sites.size()));
    if (!site) return json_error(req, http::status::bad_request, "malformed site name");
    return read_api(req, [&](store* db) { return get_sites(db, *site); });
  }
  if (rest == "jobs") {
    auto args = parse_form(query_of(req));
    if (!args) return json_error(req, http::status::bad_request, "malformed query");
    int limit = 20;
    if (auto it = args->find("limit"); it != args->end()) {
      auto n = parse_id(it->second);
      if (!n || *n > 1000)
        return json_error(req, http::status::bad_request, "?limit: must be 1 to 1000");
      limit = static_cast<int>(*n);
    }
    std::string site = args->count("site") ? args->at("site") : "";
    return read_api(req, [&](store* db) { return get_jobs(db, site, limit); });
  }
  constexpr std::string_view job = "jobs/";
  if (rest.substr(0, job.size()) == job) {
    auto id = parse_id(rest.substr(job.size()));
    if (!id) return json_error(req, http::status::not_found, "no such job");
    return read_api(req, [&](store* db) { return get_job(db, *id); });
  }
  return json_error(req, http::status::not_found, "no such API path");
}

http_response
console::read_api(const http_request& req,
                  const std::function<expected<api_answer>(store* db)>& read) const {
  auto db = store::open_read_only(current_config()->database_path);
  if (!db && db.err().code != errc::not_found) {
    spdlog::error("web console: {}", db.err().message);
    return failure(req, http::status::internal_server_error,
                   "the database cannot be read; see the daemon's log");
  }
  auto answer = read(db ? &*db : nullptr);
  if (!answer) {
    spdlog::error("web console: {}", answer.err().message);
    return failure(req, http::status::internal_server_error,
                   "the database cannot be read; see the daemon's log");
  }
  if (!answer->error.empty()) return failure(req, answer->status, answer->error);
  if (!answer->html.empty()) return html(req, answer->status, std::move(answer->html));
  return json_ok(req, answer->status, answer->body);
}

expected<console::api_answer> console::get_sites(store* db,
                                                 const std::string& site) const {
  auto cfg = current_config();
  auto all = sites_json(*cfg, db);
  if (!all) return all.err();
  if (site.empty()) return api_answer{http::status::ok, std::move(*all), {}, {}};
  for (auto& s : *all)
    if (s.as_object().at("name").as_string() == site)
      return api_answer{http::status::ok, std::move(s), {}, {}};
  return api_answer{
      http::status::not_found, {}, "no site \"" + site + "\" in the config", {}};
}

expected<console::api_answer> console::get_jobs(store* db, const std::string& site,
                                                int limit) const {
  job_filter filter;
  filter.limit = limit;
  if (!site.empty()) {
    auto cfg = current_config();
    bool configured = std::any_of(cfg->sites.begin(), cfg->sites.end(),
                                  [&](const site_config& s) { return s.name == site; });
    if (!configured)
      return api_answer{http::status::not_found,
                        {},
                        "?site: no site \"" + site + "\" in the config",
                        {}};
    filter.site_id = -1; // never backed up: no jobs
    if (db != nullptr) {
      auto row = db->find_site(site);
      if (!row) return row.err();
      if (*row) filter.site_id = (*row)->id;
    }
  }
  auto jobs = jobs_json(db, filter);
  if (!jobs) return jobs.err();
  return api_answer{http::status::ok, std::move(*jobs), {}, {}};
}

expected<console::api_answer> console::get_job(store* db, std::int64_t id) const {
  auto job = job_detail_json(db, id);
  if (!job) return job.err();
  if (!*job)
    return api_answer{http::status::not_found, {}, "no job " + std::to_string(id), {}};
  return api_answer{http::status::ok, std::move(**job), {}, {}};
}

http_response console::post_site_job(const http_request& req, const std::string& site,
                                     const principal& who) {
  auto asked = read_job_request(req);
  if (auto refused = refuse_change(req, who, asked.csrf)) return *refused;
  if (asked.malformed)
    return json_error(req, http::status::bad_request,
                      "request body: must be a JSON object like {\"type\": \"backup\"}");
  std::optional<job_type> type;
  if (asked.type == "backup" || asked.type == "preflight")
    type = parse_job_type(asked.type);
  if (!type)
    return failure(req, http::status::bad_request,
                   "request body: /type: must be \"backup\" or \"preflight\"");
  auto queued = queue_site_job(*current_config(), site, *type, {}, requester_of(who));
  if (!queued) return queue_failure(req, queued.err());
  spdlog::info("web console: {} queued a {} of {} (job {})", who.name, to_string(*type),
               site, queued->id);
  return queued_answer(req, asked.api, *queued, site, *type);
}

http_response console::post_cancel(const http_request& req, std::int64_t id,
                                   const principal& who) {
  auto asked = read_job_request(req);
  if (auto refused = refuse_change(req, who, asked.csrf)) return *refused;
  // No database yet: no job (and none is created here).
  if (!store::open_read_only(current_config()->database_path))
    return failure(req, http::status::not_found, "no job " + std::to_string(id));
  auto writable = store::open(current_config()->database_path);
  auto done = writable ? writable->request_cancel(id, requester_of(who))
                       : expected<cancel_result>(writable.err());
  if (!done && done.err().code == errc::not_found)
    return failure(req, http::status::not_found, done.err().message);
  if (!done) {
    spdlog::error("web console: {}", done.err().message);
    return failure(req, http::status::internal_server_error,
                   "the job cannot be cancelled; see the daemon's log");
  }
  if (done->already_ended)
    return failure(req, http::status::conflict,
                   fmt::format("job {} already ended ({}); nothing to cancel", id,
                               to_string(done->status)));
  spdlog::info("web console: {} cancelled job {}{}", who.name, id,
               done->asked ? " (it runs; its process stops it)" : "");
  if (!asked.api) return redirect(req, "/jobs/" + std::to_string(id));
  boost::json::object out{
      {"id", id}, {"status", to_string(done->status)}, {"cancel_requested", true}};
  auto res = json_ok(req, http::status::accepted, out);
  res.set(http::field::location, std::string(api_prefix) + "jobs/" + std::to_string(id));
  return res;
}

http_response console::repository_page(const http_request& req, const principal& who,
                                       std::int64_t now_ms) {
  auto cfg = current_config();
  auto figures = figures_->read(*cfg, now_ms);
  return read_api(req, [&](store* db) -> expected<api_answer> {
    auto repo = repository_json(*cfg, db, figures, now_ms);
    if (!repo) return repo.err();
    api_answer answer{http::status::ok, std::move(*repo), {}, {}};
    if (!wants_json(req))
      answer.html = repository_html(answer.body.as_object(), who.name,
                                    who.role == role::operator_ ? who.csrf : "");
    return answer;
  });
}

http_response console::post_repository_job(const http_request& req,
                                           const principal& who) {
  auto asked = read_job_request(req);
  if (auto refused = refuse_change(req, who, asked.csrf)) return *refused;
  auto type = asked.malformed ? std::nullopt : repository_job_type(asked.type);
  if (!type)
    return failure(req, http::status::bad_request,
                   "request body: /type: must be \"sync\", \"prune\" or \"check\"");
  auto queued = enqueue_repository_job(*current_config(), *type);
  if (!queued) {
    // A sync without an off-site repository: the config says so.
    if (queued.err().code == errc::invalid_argument)
      return failure(req, http::status::conflict, queued.err().message);
    spdlog::error("web console: {}", queued.err().message);
    return failure(req, http::status::internal_server_error,
                   "the job cannot be queued; see the daemon's log");
  }
  spdlog::info("web console: {} queued a {} job (job {})", who.name, to_string(*type),
               queued->id);
  return queued_answer(req, asked.api, *queued, "", *type);
}

} // namespace satoru::web
