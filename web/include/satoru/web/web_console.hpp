#pragma once

#include "satoru/config.hpp"
#include "satoru/error.hpp"
#include "satoru/web/console.hpp"
#include "satoru/web/server.hpp"

#include <memory>

namespace satoru::web {

/// The console as the daemon runs it: the routes and their server.
class web_console {
public:
  /// Serves the console when the config sets web_listen; nullptr when it
  /// does not. An address that cannot be bound is an error. `m`: the
  /// daemon's metrics, whose repository figures the repository page shows.
  static expected<std::unique_ptr<web_console>>
  start(const config& cfg, std::shared_ptr<const metrics> m = nullptr);

  /// A reloaded config: new sites and users file now; a new web_listen only
  /// at the next start.
  void reload(const config& cfg);

private:
  web_console(std::string listen, std::shared_ptr<console> routes,
              std::unique_ptr<web_server> server);
  std::string listen_;
  std::shared_ptr<console> routes_;
  std::unique_ptr<web_server> server_;
};

} // namespace satoru::web
