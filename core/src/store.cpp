#include "satoru/store.hpp"
#include "satoru/time.hpp"
#include "store_impl.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace satoru {

namespace fs = std::filesystem;

std::string make_owner_id() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  std::random_device rd;
  return fmt::format("{}:{}:{:08x}", host, getpid(), rd());
}

// -- lifecycle -----------------------------------------------------------------

store::store(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
store::~store() = default;
store::store(store&&) noexcept = default;
store& store::operator=(store&&) noexcept = default;
sqlite3* store::handle() const { return impl_->db.get(); }

int store::latest_schema_version() {
  return static_cast<int>(detail::schema_migrations().size());
}

expected<store> store::open(const std::string& path, int busy_timeout_ms) {
  std::error_code ec;
  auto parent = fs::path(path).parent_path();
  if (!parent.empty() && !fs::exists(parent, ec)) {
    fs::create_directories(parent, ec);
    if (ec)
      return error{errc::io, fmt::format("cannot create database folder {}: {}",
                                         parent.string(), ec.message())};
    ::chmod(parent.c_str(), 0700);
  }
  // Create the file ourselves so that it is 0600 whatever the umask.
  if (!fs::exists(path, ec)) {
    int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0)
      return error{errc::io,
                   fmt::format("cannot create database {}: {}", path, std::strerror(errno))};
    ::close(fd);
  }
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  detail::connection db{raw};
  if (rc != SQLITE_OK)
    return error{errc::database, fmt::format("cannot open database {}: {}", path,
                                             raw ? sqlite3_errmsg(raw) : "out of memory")};
  sqlite3_busy_timeout(raw, busy_timeout_ms);
  sqlite3_extended_result_codes(raw, 1);
  if (auto r = db.exec("PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; "
                       "PRAGMA synchronous=NORMAL;");
      !r)
    return error{errc::database, fmt::format("database {}: {}", path, r.err().message)};
  auto s = store{std::make_unique<impl>(impl{std::move(db)})};
  if (auto r = s.migrate(); !r)
    return error{errc::database, fmt::format("database {}: {}", path, r.err().message)};
  return s;
}

expected<store> store::open_read_only(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec))
    return error{errc::not_found,
                 fmt::format("database {} does not exist yet (no job has run)", path)};
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  detail::connection db{raw};
  if (rc != SQLITE_OK)
    return error{errc::database, fmt::format("cannot open database {}: {}", path,
                                             raw ? sqlite3_errmsg(raw) : "out of memory")};
  sqlite3_busy_timeout(raw, 10000);
  sqlite3_extended_result_codes(raw, 1);
  auto s = store{std::make_unique<impl>(impl{std::move(db)})};
  auto version = s.schema_version();
  if (!version)
    return error{errc::database, fmt::format("database {}: {}", path, version.err().message)};
  if (*version != latest_schema_version())
    return error{errc::invalid_argument,
                 fmt::format("database {} has schema version {}, this satoru reads {}: "
                             "start `satoru daemon` once to migrate it",
                             path, *version, latest_schema_version())};
  return s;
}

expected<int> store::schema_version() {
  SATORU_PREPARE(q, impl_->db.get(), "PRAGMA user_version");
  if (q.step() != SQLITE_ROW) return impl_->db.last_error("reading user_version");
  return static_cast<int>(q.int64(0));
}

expected<void> store::migrate() {
  const auto& migrations = detail::schema_migrations();
  return detail::with_write_transaction(impl_->db, [&]() -> expected<void> {
    auto version = schema_version();
    if (!version) return version.err();
    if (*version > static_cast<int>(migrations.size()))
      return error{errc::database,
                   fmt::format("schema version {} is newer than this satoru ({}); "
                               "upgrade satoru",
                               *version, migrations.size())};
    for (auto i = static_cast<std::size_t>(*version); i < migrations.size(); ++i) {
      if (auto r = impl_->db.exec(migrations[i]); !r)
        return error{errc::database,
                     fmt::format("migration {} failed: {}", i + 1, r.err().message)};
      if (auto r = impl_->db.exec(fmt::format("PRAGMA user_version = {}", i + 1)); !r)
        return r.err();
    }
    return {};
  });
}

// -- sync state ----------------------------------------------------------------

expected<sync_state_row> store::get_sync_state(const std::string& repository) {
  SATORU_PREPARE(q, impl_->db.get(),
                 "SELECT last_attempt_at, last_success_at, status, error, snapshots_copied, "
                 "offsite_lag, last_success_started_at FROM sync_state WHERE repository = ?");
  q.bind(1, repository);
  sync_state_row row;
  row.repository = repository;
  int rc = q.step();
  if (rc == SQLITE_ROW) {
    row.last_attempt_at = q.int64(0);
    row.last_success_at = q.int64(1);
    row.status = q.text(2);
    row.error = q.text(3);
    row.snapshots_copied = q.int64(4);
    row.offsite_lag = q.int64(5);
    row.last_success_started_at = q.int64(6);
  } else if (rc != SQLITE_DONE) {
    return impl_->db.last_error("reading sync_state");
  }
  return row;
}

expected<void> store::put_sync_state(const sync_state_row& row) {
  SATORU_PREPARE(q, impl_->db.get(),
                 "INSERT INTO sync_state (repository, last_attempt_at, last_success_at, "
                 "status, error, snapshots_copied, offsite_lag, last_success_started_at) "
                 "VALUES (?,?,?,?,?,?,?,?) "
                 "ON CONFLICT (repository) DO UPDATE SET last_attempt_at = excluded."
                 "last_attempt_at, last_success_at = excluded.last_success_at, status = "
                 "excluded.status, error = excluded.error, snapshots_copied = excluded."
                 "snapshots_copied, offsite_lag = excluded.offsite_lag, "
                 "last_success_started_at = excluded.last_success_started_at");
  q.bind(1, row.repository).bind(2, row.last_attempt_at).bind(3, row.last_success_at);
  q.bind(4, row.status).bind(5, row.error).bind(6, row.snapshots_copied);
  q.bind(7, row.offsite_lag).bind(8, row.last_success_started_at);
  return q.run();
}

// -- daemon liveness -----------------------------------------------------------

expected<void> store::node_heartbeat(const std::string& owner, int pid,
                                     const std::string& metrics_listen) {
  auto now = now_ms();
  SATORU_PREPARE(q, impl_->db.get(),
                 "INSERT INTO nodes (owner, pid, started_at, heartbeat_at, metrics_listen) "
                 "VALUES (?,?,?,?,?) ON CONFLICT (owner) DO UPDATE SET heartbeat_at = "
                 "excluded.heartbeat_at, stopped_at = 0");
  q.bind(1, owner).bind(2, pid).bind(3, now).bind(4, now).bind(5, metrics_listen);
  return q.run();
}

expected<void> store::node_stopped(const std::string& owner) {
  SATORU_PREPARE(q, impl_->db.get(), "UPDATE nodes SET stopped_at = ? WHERE owner = ?");
  q.bind(1, now_ms()).bind(2, owner);
  return q.run();
}

expected<std::optional<std::string>> store::live_daemon(std::int64_t max_age_ms) {
  SATORU_PREPARE(q, impl_->db.get(),
                 "SELECT owner FROM nodes WHERE stopped_at = 0 AND heartbeat_at >= ? "
                 "ORDER BY heartbeat_at DESC LIMIT 1");
  q.bind(1, now_ms() - max_age_ms);
  int rc = q.step();
  if (rc == SQLITE_ROW) return std::optional<std::string>{q.text(0)};
  if (rc != SQLITE_DONE) return impl_->db.last_error("reading nodes");
  return std::optional<std::string>{};
}

} // namespace satoru
