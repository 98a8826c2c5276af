#include "satoru/store.hpp"
#include "satoru/time.hpp"
#include "store_impl.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <tuple>

namespace satoru {

namespace {

constexpr const char* site_columns =
    "s.id, s.name, s.uuid, s.host, s.port, s.user, s.enabled, s.health, s.health_reason, "
    "s.last_preflight_at, s.last_backup_at, s.last_success_at, "
    "(SELECT COUNT(*) FROM site_targets t WHERE t.site_id = s.id AND t.enabled = 1)";

site_row read_site(const detail::statement& q) {
  site_row r;
  r.id = q.int64(0);
  r.name = q.text(1);
  r.uuid = q.text(2);
  r.host = q.text(3);
  r.port = static_cast<int>(q.int64(4));
  r.user = q.text(5);
  r.enabled = q.int64(6) != 0;
  r.health = q.text(7);
  r.health_reason = q.text(8);
  r.last_preflight_at = q.int64(9);
  r.last_backup_at = q.int64(10);
  r.last_success_at = q.int64(11);
  r.target_count = static_cast<int>(q.int64(12));
  return r;
}

expected<std::vector<site_row>> collect_sites(sqlite3* db, detail::statement& q) {
  std::vector<site_row> out;
  for (;;) {
    int rc = q.step();
    if (rc == SQLITE_DONE) return out;
    if (rc != SQLITE_ROW)
      return error{errc::database, std::string{"database: "} + sqlite3_errmsg(db)};
    out.push_back(read_site(q));
  }
}

expected<void> upsert_site(sqlite3* db, const site_config& site, std::int64_t now,
                           std::int64_t& site_id) {
  // A removed site may still hold this name under another uuid: move it aside
  // so that its history stays and the new site can take the name.
  {
    SATORU_PREPARE(q, db,
                   "UPDATE sites SET name = name || ' (removed ' || id || ')' "
                   "WHERE name = ? AND uuid <> ?");
    q.bind(1, site.name).bind(2, site.uuid);
    if (auto r = q.run(); !r) return r;
  }
  SATORU_PREPARE(q, db,
                 "INSERT INTO sites (name, uuid, host, port, user, enabled, created_at, "
                 "updated_at) VALUES (?,?,?,?,?,1,?,?) ON CONFLICT (uuid) DO UPDATE SET "
                 "name = excluded.name, host = excluded.host, port = excluded.port, "
                 "user = excluded.user, enabled = 1, updated_at = excluded.updated_at "
                 "RETURNING id");
  q.bind(1, site.name).bind(2, site.uuid).bind(3, site.host).bind(4, site.port);
  q.bind(5, site.user).bind(6, now).bind(7, now);
  if (q.step() != SQLITE_ROW)
    return error{errc::database,
                 fmt::format("saving site {}: {}", site.name, sqlite3_errmsg(db))};
  site_id = q.int64(0);
  return {};
}

expected<void> upsert_targets(sqlite3* db, const site_config& site,
                              std::int64_t site_id) {
  for (const auto& t : site.targets) {
    SATORU_PREPARE(q, db,
                   "INSERT INTO site_targets (site_id, target_hash, mode, path, enabled) "
                   "VALUES (?,?,?,?,1) ON CONFLICT (site_id, target_hash) DO UPDATE SET "
                   "enabled = 1, mode = excluded.mode, path = excluded.path");
    q.bind(1, site_id).bind(2, t.hash).bind(3, t.mode).bind(4, t.path);
    if (auto r = q.run(); !r) return r;
  }
  // Targets no longer configured keep their history but are disabled.
  SATORU_PREPARE(all, db, "SELECT id, target_hash FROM site_targets WHERE site_id = ?");
  all.bind(1, site_id);
  std::set<std::string> wanted;
  for (const auto& t : site.targets)
    wanted.insert(t.hash);
  std::vector<std::int64_t> stale;
  while (all.step() == SQLITE_ROW)
    if (!wanted.count(all.text(1))) stale.push_back(all.int64(0));
  for (auto id : stale) {
    SATORU_PREPARE(q, db, "UPDATE site_targets SET enabled = 0 WHERE id = ?");
    q.bind(1, id);
    if (auto r = q.run(); !r) return r;
  }
  return {};
}

/// Whether the enabled sites and targets in the database are exactly the
/// configured ones (what sync_config would write, updated_at aside). A read:
/// it takes no write lock, so `satoru run SITE` beside a busy daemon does not
/// queue for one to rewrite every site of a fleet that did not change.
bool stored_config_matches(sqlite3* db, const std::vector<site_config>& sites) {
  using site_key = std::tuple<std::string, std::string, std::string, std::int64_t,
                              std::string>; // uuid, name, host, port, user
  using target_key = std::tuple<std::string, std::string, std::string,
                                std::string>; // uuid, hash, mode, path
  std::set<site_key> want_sites, have_sites;
  std::set<target_key> want_targets, have_targets;
  for (const auto& site : sites) {
    want_sites.emplace(site.uuid, site.name, site.host, site.port, site.user);
    for (const auto& t : site.targets)
      want_targets.emplace(site.uuid, t.hash, t.mode, t.path);
  }
  detail::statement q{db,
                      "SELECT uuid, name, host, port, user FROM sites WHERE enabled = 1"};
  if (!q.ok()) return false;
  for (int rc; (rc = q.step()) != SQLITE_DONE;) {
    if (rc != SQLITE_ROW) return false;
    have_sites.emplace(q.text(0), q.text(1), q.text(2), q.int64(3), q.text(4));
  }
  if (have_sites != want_sites) return false;
  detail::statement t{db,
                      "SELECT s.uuid, t.target_hash, t.mode, t.path FROM site_targets t "
                      "JOIN sites s ON s.id = t.site_id "
                      "WHERE s.enabled = 1 AND t.enabled = 1"};
  if (!t.ok()) return false;
  for (int rc; (rc = t.step()) != SQLITE_DONE;) {
    if (rc != SQLITE_ROW) return false;
    have_targets.emplace(t.text(0), t.text(1), t.text(2), t.text(3));
  }
  return have_targets == want_targets;
}

} // namespace

expected<void> store::sync_config(const std::vector<site_config>& sites) {
  auto db = impl_->db.get();
  // Unchanged (the usual case): nothing to write. Any difference, or a
  // failed read, takes the full write below.
  if (stored_config_matches(db, sites)) return {};
  return detail::with_write_transaction(impl_->db, [&]() -> expected<void> {
    auto now = now_ms();
    std::vector<std::int64_t> kept;
    for (const auto& site : sites) {
      std::int64_t id = 0;
      if (auto r = upsert_site(db, site, now, id); !r) return r;
      if (auto r = upsert_targets(db, site, id); !r) return r;
      kept.push_back(id);
    }
    SATORU_PREPARE(all, db, "SELECT id FROM sites WHERE enabled = 1");
    std::vector<std::int64_t> gone;
    while (all.step() == SQLITE_ROW) {
      auto id = all.int64(0);
      if (std::find(kept.begin(), kept.end(), id) == kept.end()) gone.push_back(id);
    }
    for (auto id : gone) {
      SATORU_PREPARE(q, db, "UPDATE sites SET enabled = 0, updated_at = ? WHERE id = ?");
      q.bind(1, now).bind(2, id);
      if (auto r = q.run(); !r) return r;
    }
    return {};
  });
}

expected<std::vector<site_row>> store::list_sites(bool include_disabled) {
  auto sql = fmt::format("SELECT {} FROM sites s {} ORDER BY s.name", site_columns,
                         include_disabled ? "" : "WHERE s.enabled = 1");
  SATORU_PREPARE(q, impl_->db.get(), sql);
  return collect_sites(impl_->db.get(), q);
}

expected<std::optional<site_row>> store::find_site(const std::string& name) {
  SATORU_PREPARE(q, impl_->db.get(),
                 fmt::format("SELECT {} FROM sites s WHERE s.name = ?", site_columns));
  q.bind(1, name);
  auto rows = collect_sites(impl_->db.get(), q);
  if (!rows) return rows.err();
  if (rows->empty()) return std::optional<site_row>{};
  return std::optional<site_row>{rows->front()};
}

expected<std::optional<site_row>> store::get_site(std::int64_t id) {
  SATORU_PREPARE(q, impl_->db.get(),
                 fmt::format("SELECT {} FROM sites s WHERE s.id = ?", site_columns));
  q.bind(1, id);
  auto rows = collect_sites(impl_->db.get(), q);
  if (!rows) return rows.err();
  if (rows->empty()) return std::optional<site_row>{};
  return std::optional<site_row>{rows->front()};
}

namespace {

constexpr const char* target_columns =
    "SELECT id, site_id, target_hash, mode, path, enabled, last_status, "
    "last_error, last_bytes, last_files, last_duration_ms, last_scan_at, "
    "last_success_at, last_snapshot_id, last_data_added, last_verified_at, "
    "last_verified_snapshot FROM site_targets ";

target_row read_target(detail::statement& q) {
  target_row t;
  t.id = q.int64(0);
  t.site_id = q.int64(1);
  t.target_hash = q.text(2);
  t.mode = q.text(3);
  t.path = q.text(4);
  t.enabled = q.int64(5) != 0;
  t.last_status = q.text(6);
  t.last_error = q.text(7);
  t.last_bytes = q.int64(8);
  t.last_files = q.int64(9);
  t.last_duration_ms = q.int64(10);
  t.last_scan_at = q.int64(11);
  t.last_success_at = q.int64(12);
  t.last_snapshot_id = q.text(13);
  t.last_data_added = q.int64(14);
  t.last_verified_at = q.int64(15);
  t.last_verified_snapshot = q.text(16);
  return t;
}

} // namespace

expected<std::vector<target_row>> store::list_targets(std::int64_t site_id) {
  SATORU_PREPARE(q, impl_->db.get(),
                 std::string{target_columns} + "WHERE site_id = ? ORDER BY id");
  q.bind(1, site_id);
  std::vector<target_row> out;
  for (;;) {
    int rc = q.step();
    if (rc == SQLITE_DONE) return out;
    if (rc != SQLITE_ROW) return impl_->db.last_error("reading site_targets");
    out.push_back(read_target(q));
  }
}

expected<std::map<std::int64_t, std::vector<target_row>>> store::targets_by_site() {
  SATORU_PREPARE(q, impl_->db.get(),
                 std::string{target_columns} + "ORDER BY site_id, id");
  std::map<std::int64_t, std::vector<target_row>> out;
  for (;;) {
    int rc = q.step();
    if (rc == SQLITE_DONE) return out;
    if (rc != SQLITE_ROW) return impl_->db.last_error("reading site_targets");
    auto row = read_target(q);
    out[row.site_id].push_back(std::move(row));
  }
}

expected<std::optional<target_row>> store::next_drill_target() {
  SATORU_PREPARE(q, impl_->db.get(),
                 std::string{target_columns} +
                     "WHERE enabled = 1 AND last_success_at > 0 AND site_id IN (SELECT "
                     "id FROM sites WHERE enabled = 1) ORDER BY last_verified_at, "
                     "site_id, id LIMIT 1");
  int rc = q.step();
  if (rc == SQLITE_DONE) return std::optional<target_row>{};
  if (rc != SQLITE_ROW) return impl_->db.last_error("reading site_targets");
  return std::optional<target_row>{read_target(q)};
}

expected<bool> store::record_drill(const job_row& lease, std::int64_t site_id,
                                   const std::string& target_hash, bool passed,
                                   const std::string& snapshot_id, std::int64_t at) {
  auto db = impl_->db.get();
  return detail::with_write_transaction(impl_->db, [&]() -> expected<bool> {
    auto holds = holds_lease(lease);
    if (!holds || !*holds) return holds;
    if (!passed) return true; // a failed drill leaves the last good one standing
    SATORU_PREPARE(q, db,
                   "UPDATE site_targets SET last_verified_at = ?, "
                   "last_verified_snapshot = ? WHERE site_id = ? AND target_hash = ?");
    q.bind(1, at).bind(2, snapshot_id).bind(3, site_id).bind(4, target_hash);
    if (auto r = q.run(); !r) return r.err();
    return true;
  });
}

expected<bool> store::record_target(const job_row& lease, const target_result& result) {
  auto db = impl_->db.get();
  return detail::with_write_transaction(impl_->db, [&]() -> expected<bool> {
    auto holds = holds_lease(lease);
    if (!holds || !*holds) return holds;
    auto now = now_ms();
    bool good = result.status != job_status::failed;
    SATORU_PREPARE(
        q, db,
        "UPDATE site_targets SET last_status = ?, last_error = ?, last_bytes = ?, "
        "last_files = ?, last_duration_ms = ?, last_scan_at = ?, "
        "last_success_at = CASE WHEN ? THEN ? ELSE last_success_at END, "
        "last_snapshot_id = CASE WHEN ? <> '' THEN ? ELSE last_snapshot_id END, "
        "last_data_added = ? WHERE site_id = ? AND target_hash = ?");
    q.bind(1, to_string(result.status)).bind(2, result.error).bind(3, result.bytes);
    q.bind(4, result.files).bind(5, result.duration_ms).bind(6, now);
    q.bind(7, good ? 1 : 0).bind(8, now);
    q.bind(9, result.snapshot_id)
        .bind(10, result.snapshot_id)
        .bind(11, result.data_added);
    q.bind(12, lease.site_id).bind(13, result.target_hash);
    if (auto r = q.run(); !r) return r.err();
    return true;
  });
}

expected<std::vector<site_row>> store::sites_due_for_backup(std::int64_t interval_ms) {
  SATORU_PREPARE(
      q, impl_->db.get(),
      fmt::format("SELECT {} FROM sites s WHERE s.enabled = 1 AND NOT EXISTS "
                  "(SELECT 1 FROM jobs j WHERE j.site_id = s.id AND j.type = "
                  "'backup' AND j.status IN ('queued', 'running')) AND "
                  "COALESCE((SELECT MAX(created_at) FROM jobs j WHERE j.site_id = "
                  "s.id AND j.type = 'backup'), 0) + ? <= ? ORDER BY s.id",
                  site_columns));
  q.bind(1, interval_ms).bind(2, now_ms());
  return collect_sites(impl_->db.get(), q);
}

} // namespace satoru
