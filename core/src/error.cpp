#include "satoru/error.hpp"

namespace satoru {

const char* to_string(errc code) {
  switch (code) {
    case errc::ok: return "ok";
    case errc::invalid_argument: return "invalid_argument";
    case errc::not_found: return "not_found";
    case errc::io: return "io";
    case errc::database: return "database";
    case errc::ssh: return "ssh";
    case errc::host_key: return "host_key";
    case errc::timeout: return "timeout";
    case errc::cancelled: return "cancelled";
    case errc::remote: return "remote";
    case errc::tool: return "tool";
    case errc::plugin: return "plugin";
    case errc::busy: return "busy";
    case errc::auth: return "auth";
    case errc::integrity: return "integrity";
  }
  return "unknown";
}

} // namespace satoru
