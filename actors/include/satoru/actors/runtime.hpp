#pragma once

#include "satoru/actors/interfaces.hpp"
#include "satoru/config.hpp"
#include "satoru/metrics.hpp"
#include "satoru/plugin_loader.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/allowed_unsafe_message_type.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace satoru::actors {

/// What every actor of the runtime shares. Immutable: a reload sends a new
/// one (reload_atom), and work already started keeps the one it was given.
struct runtime_context {
  std::shared_ptr<const config> cfg;
  std::shared_ptr<plugin_registry> plugins;
  std::shared_ptr<satoru::metrics> metrics;
  std::string owner; ///< lease holder id of this process
  /// The 0700 folder of the site jobs' ssh master sockets (ssh_control.hpp);
  /// empty = one OpenSSH connection per rsync.
  std::string control_socket_dir;
  /// Timer periods (tests shorten them).
  std::chrono::milliseconds poll_period{500};
  std::chrono::milliseconds heartbeat_period{2000};
  std::chrono::milliseconds scheduler_period{30000};
  std::int64_t lease_ms = 30000;
  int max_recoveries = 3; ///< recoveries of a job whose process died before it fails
};

/// The actor system config with our message types registered.
class runtime_config : public caf::actor_system_config {
public:
  runtime_config();
};

} // namespace satoru::actors

/// Sent only between actors of one process (a reload), never serialized.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(satoru::actors::runtime_context)
