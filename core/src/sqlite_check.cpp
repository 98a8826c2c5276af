#include "satoru/sqlite_check.hpp"

#include "satoru/process.hpp"

#include <algorithm>
#include <chrono>

namespace satoru {

namespace {

/// sqlite3 read-only on `db` running `sql`; its output without the last
/// newlines, or the failure as one line.
expected<std::string> run_sqlite(const std::string& db, const std::string& sql) {
  process_spec spec;
  spec.argv = {"sqlite3", "-init", "/dev/null", "-readonly", "-bail", "-batch", db, sql};
  spec.timeout = std::chrono::hours{1};
  auto r = run_process(spec);
  if (!r) return error{errc::tool, "cannot run sqlite3: " + r.err().message};
  std::string out = r->out;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r'))
    out.pop_back();
  if (!r->ok())
    return error{errc::integrity,
                 r->describe("sqlite3") + (out.empty() ? "" : ": " + out)};
  return out;
}

} // namespace

std::string sqlite_integrity_check(const std::string& db) {
  auto r = run_sqlite(db, "PRAGMA integrity_check");
  return r ? *r : r.err().message;
}

expected<std::vector<std::string>> sqlite_tables(const std::string& db) {
  auto r = run_sqlite(db, "SELECT name FROM sqlite_master WHERE type = 'table'");
  if (!r) return r.err();
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < r->size()) {
    auto end = r->find('\n', start);
    if (end == std::string::npos) end = r->size();
    if (end > start) out.push_back(r->substr(start, end - start));
    start = end + 1;
  }
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace satoru
