#include "satoru/web/site_jobs.hpp"

#include <algorithm>

namespace satoru::web {

expected<enqueue_result> queue_site_job(const config& cfg, const std::string& site,
                                        job_type type, const std::string& params) {
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
  return db->enqueue(type, (*row)->id, params);
}

} // namespace satoru::web
