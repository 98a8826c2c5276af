#include "satoru/web/site_jobs.hpp"

#include <algorithm>

namespace satoru::web {

namespace {

/// A writable store and the database id of the configured site `site`.
expected<std::pair<store, std::int64_t>> site_in_database(const config& cfg,
                                                          const std::string& site) {
  bool configured = std::any_of(cfg.sites.begin(), cfg.sites.end(),
                                [&](const site_config& s) { return s.name == site; });
  if (!configured)
    return error{errc::not_found, "no site \"" + site + "\" in the config"};
  auto db = store::open(cfg.database_path);
  if (!db) return db.err();
  auto row = db->find_site(site);
  if (!row) return row.err();
  // The daemon writes configured sites into the database when it starts
  // or reloads; a site added since then is not there yet.
  if (!*row)
    return error{errc::not_found,
                 "site \"" + site + "\" is not in the database yet (reload the daemon)"};
  auto id = (*row)->id;
  return std::pair<store, std::int64_t>{std::move(*db), id};
}

} // namespace

expected<enqueue_result> queue_site_job(const config& cfg, const std::string& site,
                                        job_type type, const std::string& params,
                                        const std::string& requested_by) {
  auto found = site_in_database(cfg, site);
  if (!found) return found.err();
  return found->first.enqueue(type, found->second, params, requested_by);
}

expected<enqueue_result>
queue_confirmed_restore(const config& cfg, const std::string& site,
                        std::int64_t dry_run_id, const std::string& params,
                        const std::string& requested_by, std::int64_t now) {
  auto found = site_in_database(cfg, site);
  if (!found) return found.err();
  return found->first.enqueue_confirmed(dry_run_id, found->second, params, requested_by,
                                        now - confirmation_valid_ms);
}

} // namespace satoru::web
