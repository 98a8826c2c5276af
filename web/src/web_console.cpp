#include "satoru/web/web_console.hpp"

#include <spdlog/spdlog.h>

#include <sys/stat.h>

namespace satoru::web {

namespace {

void warn_without_users(const config& cfg) {
  struct stat st {};
  if (::stat(cfg.web_users_file.c_str(), &st) != 0)
    spdlog::warn("web console: {} does not exist yet: nobody can log in until "
                 "`satoru web-user add NAME --role viewer|operator` creates a user",
                 cfg.web_users_file);
}

} // namespace

web_console::web_console(std::string listen, std::shared_ptr<console> routes,
                         std::unique_ptr<web_server> server)
    : listen_(std::move(listen))
    , routes_(std::move(routes))
    , server_(std::move(server)) {}

expected<std::unique_ptr<web_console>>
web_console::start(const config& cfg, std::shared_ptr<const metrics> m) {
  if (cfg.web_listen.empty()) return std::unique_ptr<web_console>();
  bool https = !cfg.web_tls_certificate.empty();
  console_options options;
  options.secure_cookies = https;
  options.daemon_metrics = std::move(m);
  auto routes = std::make_shared<console>(std::make_shared<const config>(cfg), options);
  auto server = web_server::start(cfg.web_listen, routes, {},
                                  {cfg.web_tls_certificate, cfg.web_tls_key});
  if (!server) return server.err();
  spdlog::info("web console on {}://{}/", https ? "https" : "http", cfg.web_listen);
  warn_without_users(cfg);
  return std::unique_ptr<web_console>(
      new web_console(cfg.web_listen, std::move(routes), std::move(*server)));
}

void web_console::reload(const config& cfg) {
  routes_->set_config(std::make_shared<const config>(cfg));
  if (cfg.web_listen != listen_)
    spdlog::warn("web console: web_listen changed to \"{}\"; it stays on {} until the "
                 "daemon restarts",
                 cfg.web_listen, listen_);
  else
    warn_without_users(cfg);
}

} // namespace satoru::web
