#pragma once

#include <cstdint>
#include <string>

namespace satoru {

/// Wall-clock time in milliseconds since the Unix epoch; all timestamps in
/// the database use it.
std::int64_t now_ms();

/// "2026-11-26T06:05:22Z" (UTC, second precision) or "-" for 0.
std::string format_time(std::int64_t ms);

/// "1h 02m", "3.2 s", "450 ms".
std::string format_duration(std::int64_t ms);

/// "1.5 MiB"
std::string format_bytes(std::uint64_t bytes);

} // namespace satoru
