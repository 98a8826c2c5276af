// Whose is a restic lock? The rules that decide which locks satoru may
// remove (those of its own dead processes, and stale ones) and the decoding of restic
// 0.14's "repository is already locked" message. Checked against restic
// 0.14.0 in tests/integration/restic_lock_test.cpp.

#include "satoru/restic.hpp"
#include "satoru/time.hpp"

#include <fmt/format.h>

#include <cctype>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <cerrno>
#include <csignal>

#include <unistd.h>

namespace satoru {
namespace {

/// A process that started this long after the lock's time cannot have
/// written it (restic writes its lock right after it starts). Generous,
/// because the two clocks compared are the lock holder's wall clock and
/// /proc's boot-relative start converted with ours (NTP steps move it).
constexpr std::int64_t reuse_margin_ms = 10 * 60 * 1000;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

/// Wall-clock Unix ms of the boot (/proc/stat btime), 0 if unknown.
std::int64_t boot_time_ms() {
  std::istringstream in(read_all("/proc/stat"));
  std::string key;
  std::int64_t value = 0;
  while (in >> key) {
    if (key == "btime" && in >> value) return value * 1000;
    in.ignore(LLONG_MAX, '\n');
  }
  return 0;
}

/// "1.065198464s", "11h32m41.00453619s", "350ms", "2µs": Go's
/// time.Duration.String(), in milliseconds; -1 if it is not one.
std::int64_t parse_go_duration(std::string_view text) {
  double total_ms = 0;
  std::size_t pos = 0;
  bool any = false;
  while (pos < text.size()) {
    std::size_t start = pos;
    while (pos < text.size() &&
           (std::isdigit(static_cast<unsigned char>(text[pos])) || text[pos] == '.'))
      ++pos;
    if (pos == start) return -1;
    double value =
        std::strtod(std::string(text.substr(start, pos - start)).c_str(), nullptr);
    std::size_t unit_start = pos;
    while (pos < text.size() && !std::isdigit(static_cast<unsigned char>(text[pos])))
      ++pos;
    auto unit = text.substr(unit_start, pos - unit_start);
    if (unit == "h")
      total_ms += value * 3'600'000;
    else if (unit == "m")
      total_ms += value * 60'000;
    else if (unit == "s")
      total_ms += value * 1000;
    else if (unit == "ms")
      total_ms += value;
    else if (unit == "us" || unit == "\u00b5s" || unit == "\u03bcs")
      total_ms += value / 1e3;
    else if (unit == "ns")
      total_ms += value / 1e6;
    else
      return -1;
    any = true;
  }
  return any ? static_cast<std::int64_t>(total_ms) : -1;
}

/// The word after `marker` in `text`, up to a space, newline or ')'.
std::string word_after(std::string_view text, std::string_view marker) {
  auto pos = text.find(marker);
  if (pos == std::string_view::npos) return {};
  pos += marker.size();
  auto end = text.find_first_of(" \n\r)", pos);
  return std::string(text.substr(pos, end == std::string_view::npos ? end : end - pos));
}

std::string describe_holder(bool exclusive, std::int64_t pid, const std::string& host,
                            std::int64_t age_ms) {
  std::string out =
      fmt::format("{}lock of PID {} on host {}", exclusive ? "exclusive " : "", pid,
                  host.empty() ? "?" : host);
  if (age_ms >= 0) out += ", " + format_duration(age_ms) + " old";
  return out;
}

} // namespace

std::string lock_conflict::describe() const {
  return describe_holder(exclusive, pid, hostname, age_ms);
}

std::string restic_lock::holder() const {
  return fmt::format("{}lock of PID {}, uid {}, on host {}, held since {}",
                     exclusive ? "exclusive " : "", pid, uid,
                     hostname.empty() ? "?" : hostname, format_time(time_ms));
}

process_probe probe_process(std::int64_t pid) {
  process_probe p;
  if (pid <= 0 || pid > INT_MAX) return p;
  // The kernel, not /proc, says whether a PID exists: ProtectProc=invisible
  // hides other users' processes from /proc, but kill() still answers EPERM
  // (not ESRCH) for them.
  p.exists = !(::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH);
  if (!p.exists) return p;
  const std::string dir = "/proc/" + std::to_string(pid);
  std::string stat = read_all(dir + "/stat");
  if (stat.empty()) return p;
  p.visible = true;
  // "pid (comm) state ppid ... starttime(22nd)": comm may hold spaces and
  // parentheses, so everything is counted from the last ')'.
  auto close = stat.rfind(')');
  auto open = stat.find('(');
  if (open != std::string::npos && close != std::string::npos && close > open)
    p.name = stat.substr(open + 1, close - open - 1);
  if (close != std::string::npos) {
    std::istringstream rest(stat.substr(close + 1));
    std::string field;
    std::vector<std::string> fields;
    while (rest >> field)
      fields.push_back(field);
    if (!fields.empty()) p.zombie = fields[0] == "Z" || fields[0] == "X";
    // fields[0] is field 3 (state), so field 22 (starttime) is fields[19].
    long ticks = ::sysconf(_SC_CLK_TCK);
    std::int64_t boot = boot_time_ms();
    if (fields.size() > 19 && ticks > 0 && boot > 0)
      p.started_ms = boot + std::strtoll(fields[19].c_str(), nullptr, 10) * 1000 / ticks;
  }
  std::istringstream status(read_all(dir + "/status"));
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("Uid:", 0) == 0) {
      std::istringstream uids(line.substr(4));
      std::int64_t real = -1;
      if (uids >> real) p.uid = real;
      break;
    }
  return p;
}

namespace {

/// Only for a lock of this host and of our uid: is its writer provably gone?
bool holder_gone(const restic_lock& lock, std::int64_t own_uid,
                 const process_probe& process) {
  if (!process.exists) return true;
  if (!process.visible) return false;
  if (process.zombie) return true;
  // The PID belongs to a process of ours that is not restic and started
  // long after the lock was written: reused. Someone else's process (or
  // one whose uid we cannot see) is never taken for proof.
  bool looks_like_restic = process.name.find("restic") != std::string::npos;
  return process.uid == own_uid && !looks_like_restic && process.started_ms > 0 &&
         lock.time_ms > 0 && process.started_ms > lock.time_ms + reuse_margin_ms;
}

} // namespace

lock_holder classify_lock(const restic_lock& lock, const std::string& this_host,
                          std::int64_t own_uid, const process_probe& process,
                          std::int64_t now_ms) {
  // An empty host name matches nothing: restic writes "" when it could not
  // read its own, and then nobody can tell where the lock came from.
  const bool here = !this_host.empty() && lock.hostname == this_host;
  const bool ours = here && lock.pid > 0 && lock.uid == own_uid;
  if (ours && holder_gone(lock, own_uid, process)) return lock_holder::dead;
  // A visible restic of ours is alive and refreshing: never taken, even
  // when its lock looks old (a stopped process, a clock that jumped).
  if (ours && process.visible && process.uid == own_uid) return lock_holder::live;
  if (lock.time_ms > 0 && now_ms - lock.time_ms > restic_stale_lock_ms)
    return lock_holder::stale;
  if (!here) return lock_holder::other_host;
  return ours || lock.pid <= 0 ? lock_holder::live : lock_holder::other_user;
}

std::string lock_host_name() {
  // Go's os.Hostname reads this file first, then falls back to uname.
  std::string name = read_all("/proc/sys/kernel/hostname");
  while (!name.empty() && (name.back() == '\n' || name.back() == '\r'))
    name.pop_back();
  if (!name.empty()) return name;
  char buf[HOST_NAME_MAX + 1] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return {};
  return buf;
}

std::optional<lock_conflict> parse_lock_conflict(std::string_view text) {
  constexpr std::string_view marker = "repository is already locked ";
  auto pos = text.find(marker);
  if (pos == std::string_view::npos) return std::nullopt;
  auto rest = text.substr(pos + marker.size());
  lock_conflict c;
  c.exclusive = rest.rfind("exclusively ", 0) == 0;
  auto pid = word_after(rest, "by PID ");
  if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  c.pid = std::strtoll(pid.c_str(), nullptr, 10);
  c.hostname = word_after(rest, pid + " on ");
  auto ago = rest.find(" ago)");
  if (ago != std::string_view::npos) {
    auto open = rest.rfind('(', ago);
    if (open != std::string_view::npos)
      c.age_ms = parse_go_duration(rest.substr(open + 1, ago - open - 1));
  }
  c.storage_id = word_after(rest, "storage ID ");
  return c;
}

} // namespace satoru
