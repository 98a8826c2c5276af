#pragma once

#include "satoru/config.hpp"
#include "satoru/store.hpp"
#include "satoru/web/job_events.hpp"
#include "satoru/web/login_limiter.hpp"
#include "satoru/web/repository_pages.hpp"
#include "satoru/web/sessions.hpp"

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace satoru::web {

class snapshot_pages;

using http_request = boost::beast::http::request<boost::beast::http::string_body>;
using http_response = boost::beast::http::response<boost::beast::http::string_body>;

inline constexpr const char* session_cookie = "satoru_session";

struct console_options {
  session_limits sessions;
  login_limits logins;
  /// Adds Secure to the session cookie (set when the console is served
  /// over TLS).
  bool secure_cookies = false;
  /// The daemon's metrics: the repository page's size and snapshots come
  /// from them when they are known (null: a restic read instead).
  std::shared_ptr<const satoru::metrics> daemon_metrics;
};

/// Who sent a request: a logged-in browser session or an API token.
struct principal {
  std::string name; ///< the user's or the token's
  web::role role = role::viewer;
  bool bearer = false; ///< an API token, which needs no CSRF token
  std::string csrf;    ///< the session's CSRF token; empty for a bearer
};

/// A response body sent as it is read from a pipe (a file from `restic
/// dump`): the server reads a chunk, writes it, and only then reads the
/// next, so a slow client holds back the writer instead of filling memory.
class body_source {
public:
  virtual ~body_source() = default;
  /// The pipe's read end; owned by the source.
  virtual int fd() const = 0;
  /// After the last byte, or with `stop` when the client went away: an error
  /// when the writer failed (the response was then cut short).
  virtual expected<void> finish(bool stop) = 0;
};

/// Who asks for a job through the console: "console:NAME", or "api:NAME"
/// for an API token (a job's requested_by).
std::string requester_of(const principal& who);

/// A response, and for a stream (Server-Sent Events, a download) what goes
/// on after its head.
struct console_answer {
  console_answer() = default;
  console_answer(http_response r) // NOLINT: every route's plain answer
      : response(std::move(r)) {}
  console_answer(http_response r, std::shared_ptr<job_event_stream> e)
      : response(std::move(r))
      , events(std::move(e)) {}

  http_response response;
  std::shared_ptr<job_event_stream> events; ///< null: not an event stream
  /// Set: the body comes from here, `response` is its head (Content-Length
  /// set, the connection closes after).
  std::shared_ptr<body_source> body;
  /// The request carried a valid session or token: the server stops
  /// counting the connection as unauthenticated.
  bool authenticated = false;
};

/// Requests whose answer may run restic (snapshots, ls, dump, stats): the
/// server runs them on its bounded pool, never on its I/O threads.
bool reads_repository(const http_request& req);

/// Whether a request's Host header names this console: an IP address, the
/// host of web_listen, `localhost` or a name of web_allowed_hosts (any
/// port). A name that is none of them is another site's, resolved to us
/// (DNS rebinding); it gets 421.
bool host_allowed(std::string_view host, const config& cfg);

/// The console's routes, apart from the transport: turns one request from
/// `client` (its address) into one response. Thread-safe. The users file
/// is read at each login, so `satoru web-user add` needs no restart.
class console {
public:
  /// `pages`: the snapshot routes (null: over restic; tests pass their own).
  console(std::shared_ptr<const config> cfg, console_options options = {},
          std::shared_ptr<snapshot_pages> pages = nullptr);

  /// The config after a reload (the sites and the users file).
  void set_config(std::shared_ptr<const config> cfg);

  console_answer respond_to(const http_request& req, const std::string& client,
                            std::int64_t now_ms);
  /// respond_to() for everything but streams.
  http_response handle(const http_request& req, const std::string& client,
                       std::int64_t now_ms);

private:
  /// 421 unless host_allowed().
  std::optional<http_response> refuse_host(const http_request& req) const;
  /// Everything but event streams, the Host already checked.
  console_answer dispatch(const http_request& req, const std::string& client,
                          std::int64_t now_ms);
  /// The routes behind a login, for `who`.
  console_answer route(const http_request& req, std::string_view path,
                       const principal& who, std::int64_t now_ms);
  std::shared_ptr<const config> current_config() const;
  /// Set-Cookie for the session id (an empty id with max age 0 ends it).
  std::string cookie_header(const std::string& id, std::int64_t max_age_seconds) const;
  http_response login(const http_request& req, const std::string& client,
                      std::int64_t now_ms);
  http_response logout(const http_request& req, const principal& who);
  /// The session of the cookie, or under /api/ the token of an
  /// `Authorization: Bearer` header; else the response that refuses it.
  std::variant<principal, http_response>
  authenticate(const http_request& req, const std::string& client, std::int64_t now_ms);
  /// The users file's entry of `name` now; nullopt when it has no such
  /// user (or cannot be read).
  std::optional<web_credential> user_named(const std::string& name) const;
  std::variant<principal, http_response> bearer(const http_request& req,
                                                std::string_view token,
                                                const std::string& client,
                                                std::int64_t now_ms);
  http_response fleet_page(const http_request& req, const principal& who,
                           std::int64_t now_ms);
  http_response api(const http_request& req, std::string_view path, const principal& who);
  /// What a GET of the API answers: a JSON body, or an error message.
  struct api_answer {
    boost::beast::http::status status = boost::beast::http::status::ok;
    boost::json::value body;
    std::string error; ///< not empty: the answer is {"error": error}
    std::string html;  ///< not empty: a page made from `body`
  };
  /// Runs `read` on a read-only connection of its own (null when there is
  /// no database yet) and answers with what it returns.
  http_response
  read_api(const http_request& req,
           const std::function<expected<api_answer>(store* db)>& read) const;
  /// GET sites (all, `site` empty) or sites/{site}: `satoru sites --json`'s.
  expected<api_answer> get_sites(store* db, const std::string& site) const;
  /// GET jobs?site=&limit=: `satoru jobs --json`'s (`site` empty: all).
  expected<api_answer> get_jobs(store* db, const std::string& site, int limit) const;
  /// GET /sites/{site}: the site page (or its JSON).
  http_response site_page(const http_request& req, const std::string& site,
                          const principal& who);
  /// GET jobs/{id}: `satoru job ID --json`'s.
  expected<api_answer> get_job(store* db, std::int64_t id) const;
  /// GET /api/v1/jobs/{id}/events: the head of the job's event stream,
  /// which resumes after `after_event_id` (a reconnect's Last-Event-ID).
  console_answer job_events(const http_request& req, std::int64_t id,
                            std::int64_t after_event_id) const;
  /// POST /api/v1/sites/{site}/jobs (JSON) or /sites/{site}/jobs (the site
  /// page's form): queues a backup or preflight.
  http_response post_site_job(const http_request& req, const std::string& site,
                              const principal& who);

  /// POST /api/v1/jobs/{id}/cancel or /jobs/{id}/cancel (the job page's
  /// form): an operator stops a queued or running job (store::request_cancel).
  http_response post_cancel(const http_request& req, std::int64_t id,
                            const principal& who);

  /// GET /repository (or its JSON, or GET /api/v1/repository).
  http_response repository_page(const http_request& req, const principal& who,
                                std::int64_t now_ms);
  /// POST /api/v1/repository/jobs (JSON) or /repository/jobs (the page's
  /// form): queues a sync, prune or check.
  http_response post_repository_job(const http_request& req, const principal& who);

  console_options options_;
  std::shared_ptr<repository_figures_source> figures_;
  mutable std::mutex config_mutex_;
  std::shared_ptr<const config> cfg_;
  session_store sessions_;
  login_limiter limiter_;
  /// /sites/{site}/targets/{hash}/… and its API (snapshot_pages.hpp).
  std::shared_ptr<snapshot_pages> snapshots_;
};

} // namespace satoru::web
