#pragma once

namespace satoru {

/// Site health as docs/reference.md defines it: ok when the last job passed, warning
/// when some targets failed, failed when the site or all its targets failed.
inline constexpr const char* health_unknown = "unknown";
inline constexpr const char* health_ok = "ok";
inline constexpr const char* health_warning = "warning";
inline constexpr const char* health_failed = "failed";

} // namespace satoru
