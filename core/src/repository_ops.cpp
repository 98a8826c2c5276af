#include "satoru/repository_ops.hpp"

#include "satoru/disk_headroom.hpp"
#include "satoru/files.hpp"
#include "satoru/identity.hpp"
#include "satoru/restic.hpp"
#include "satoru/sqlite_check.hpp"
#include "satoru/time.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>

namespace satoru {

namespace {

/// "target 1792a625 of site demo-site" for a forget group's tags.
std::string describe_group(const config& cfg, const std::vector<std::string>& tags,
                           std::string* target_hash) {
  std::string site_uuid, hash;
  for (const auto& t : tags) {
    if (t.rfind("site=", 0) == 0) site_uuid = t.substr(5);
    if (t.rfind("target=", 0) == 0) hash = t.substr(7);
  }
  *target_hash = hash;
  for (const auto& s : cfg.sites)
    if (s.uuid == site_uuid)
      for (const auto& t : s.targets)
        if (t.hash == hash) return fmt::format("{} of site {}", t.path, s.name);
  return fmt::format("target {} of site {}", hash.empty() ? "?" : hash,
                     site_uuid.empty() ? "?" : site_uuid);
}

} // namespace

namespace {

/// forget with `policy` over satoru's snapshots (grouped by tags, so that
/// every target keeps its own history), then prune, on one repository;
/// events under `step` ("retention", "offsite_retention").
retention_result forget_and_prune(const config& cfg, restic_client& repo,
                                  const retention_policy& policy, const std::string& step,
                                  event_sink& events, const cancel_token& cancel) {
  retention_result out;
  repo.report_to(&events);
  const auto where = redact_repository(repo.repository().location);
  auto fail = [&](const std::string& which, const std::string& message) {
    out.error = message;
    events.emit("fail", which, "", message, {});
    return out;
  };
  auto exists = repo.exists(cancel);
  if (!exists) return fail(step, exists.err().message);
  if (!*exists) {
    events.emit("ok", step, "", where + " has no snapshots yet", {});
    out.ok = true;
    return out;
  }
  // A restic killed with the daemon leaves its lock, which would make forget
  // and prune wait; only locks of our dead processes (and those restic calls
  // stale: 30 minutes without a refresh) are removed. forget and prune wait
  // for anyone else's.
  if (auto r = repo.clear_dead_locks(cancel); !r)
    return fail(step + ".unlock", r.err().message);

  auto groups = repo.forget(policy.restic_flags(), {"satoru"}, "tags", cancel);
  if (!groups) return fail(step + ".forget", groups.err().message);
  for (const auto& g : *groups) {
    std::string hash;
    auto what = describe_group(cfg, g.tags, &hash);
    out.kept += g.kept;
    out.removed += g.removed;
    boost::json::array removed_ids;
    for (const auto& id : g.removed_ids)
      removed_ids.push_back(boost::json::value(id));
    events.emit("ok", step + ".forget", hash,
                fmt::format("{}: kept {}, removed {}", what, g.kept, g.removed),
                {{"kept", g.kept}, {"removed", g.removed}, {"removed_ids", removed_ids}});
  }

  auto before = repo.stats(cancel);
  if (!before) return fail(step + ".stats", before.err().message);
  if (auto r = repo.prune(cancel); !r) return fail(step + ".prune", r.err().message);
  auto after = repo.stats(cancel);
  if (!after) return fail(step + ".stats", after.err().message);
  out.size_after = after->total_size;
  out.freed_bytes = std::max<std::int64_t>(0, before->total_size - after->total_size);
  events.emit("ok", step + ".prune", "",
              fmt::format("{}: kept {} and removed {} snapshots; prune freed {} (now {})",
                          where, out.kept, out.removed,
                          format_bytes(static_cast<std::uint64_t>(out.freed_bytes)),
                          format_bytes(static_cast<std::uint64_t>(out.size_after))),
              {{"kept", out.kept},
               {"removed", out.removed},
               {"freed_bytes", out.freed_bytes},
               {"size_bytes", out.size_after}});
  out.ok = true;
  return out;
}

} // namespace

retention_result run_retention(const config& cfg, event_sink& events,
                               const cancel_token& cancel) {
  auto local = local_restic(cfg);
  return forget_and_prune(cfg, local, cfg.retention, "retention", events, cancel);
}

retention_result run_offsite_retention(const config& cfg, event_sink& events,
                                       const cancel_token& cancel) {
  auto remote_repo = offsite_repository(cfg);
  if (!remote_repo) {
    retention_result out;
    out.error = "no restic_b2_repository is configured";
    events.emit("fail", "offsite_retention", "", out.error, {});
    return out;
  }
  restic_client remote{*remote_repo, std::chrono::seconds{cfg.sync_timeout_seconds}};
  auto out = forget_and_prune(cfg, remote, cfg.b2_retention, "offsite_retention", events,
                              cancel);
  if (!out.ok)
    // A run whose remote went away leaves its lock there: ours to remove now
    // that its process is gone (short deadline: the remote may still be down).
    (void)restic_client{*remote_repo, std::chrono::seconds{20}}.clear_dead_locks(
        cancel_token{});
  return out;
}

repository_check run_check(const config& cfg, bool offsite, event_sink& events,
                           const cancel_token& cancel) {
  repository_check out;
  const std::string step = offsite ? "offsite_check" : "check";
  auto repo = offsite ? offsite_repository(cfg) : local_repository(cfg);
  if (!repo) {
    out.error = "no restic_b2_repository is configured";
    events.emit("fail", step, "", out.error, {});
    return out;
  }
  restic_client client{*repo, std::chrono::seconds{offsite ? cfg.sync_timeout_seconds
                                                           : cfg.restic_timeout_seconds}};
  client.report_to(&events);
  const auto where = redact_repository(repo->location);
  auto fail = [&](const std::string& message) {
    out.error = fmt::format("restic check of {} failed: {}", where, message);
    events.emit("fail", step, "", out.error, {});
    return out;
  };
  auto exists = client.exists(cancel);
  if (!exists) return fail(exists.err().message);
  if (!*exists) {
    events.emit("ok", step, "", where + " does not exist yet: nothing to check", {});
    out.ok = true;
    return out;
  }
  if (auto r = client.clear_dead_locks(cancel); !r) return fail(r.err().message);
  const auto started = now_ms();
  if (auto r = client.check(cancel, cfg.check_read_data_subset); !r) {
    // restic says "Fatal: repository contains errors" (and lists them) when
    // the data is damaged; anything else (a lock, the link) may pass later.
    out.damaged = r.err().message.find("contains errors") != std::string::npos ||
                  r.err().message.find("error: ") != std::string::npos;
    return fail(r.err().message);
  }
  out.ok = true;
  events.emit("ok", step, "",
              fmt::format("restic check of {} passed in {} (read {} of the data)", where,
                          format_duration(now_ms() - started),
                          cfg.check_read_data_subset),
              {{"read_data_subset", cfg.check_read_data_subset}});
  return out;
}

namespace {

/// Files and their bytes in a restored tree, hard links counted each time
/// (as `restic ls` lists them).
std::pair<std::int64_t, std::int64_t> count_files(const std::filesystem::path& root) {
  std::int64_t files = 0, bytes = 0;
  std::error_code ec;
  for (std::filesystem::recursive_directory_iterator it(root, ec), end; !ec && it != end;
       it.increment(ec)) {
    auto st = it->symlink_status(ec);
    if (!ec && std::filesystem::is_regular_file(st)) {
      ++files;
      bytes += static_cast<std::int64_t>(it->file_size(ec));
    }
  }
  return {files, bytes};
}

/// What a restored directory target must hold: the snapshot's own count.
std::string verify_directory(const restic_client& client, const snapshot_info& snap,
                             const std::string& restored, const cancel_token& cancel,
                             boost::json::object& data) {
  auto listed = client.ls(snap.id, cancel);
  if (!listed) return "cannot list the snapshot: " + listed.err().message;
  std::int64_t want_files = 0, want_bytes = 0;
  for (const auto& n : *listed)
    if (n.type == "file") {
      ++want_files;
      want_bytes += n.size;
    }
  auto [files, bytes] = count_files(restored);
  data = {{"files", files},
          {"bytes", bytes},
          {"snapshot_files", want_files},
          {"snapshot_bytes", want_bytes}};
  if (files != want_files || bytes != want_bytes)
    return fmt::format(
        "restored {} files, {} bytes; the snapshot holds {} files, {} bytes", files,
        bytes, want_files, want_bytes);
  return {};
}

/// What a restored database must be: sound, with every table of the staged
/// copy it was snapshotted from (when that is readable).
std::string verify_database(const std::string& db, const std::string& staged,
                            boost::json::object& data) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(db, ec))
    return "the snapshot holds no " + std::filesystem::path(db).filename().string();
  auto verdict = sqlite_integrity_check(db);
  data["integrity_check"] = verdict;
  if (verdict != "ok")
    return "PRAGMA integrity_check: " + verdict.substr(0, verdict.find('\n'));
  auto tables = sqlite_tables(db);
  if (!tables) return tables.err().message;
  data["tables"] = static_cast<std::int64_t>(tables->size());
  if (auto had = sqlite_tables(staged))
    for (const auto& t : *had)
      if (!std::binary_search(tables->begin(), tables->end(), t))
        return "table " + t + " of the staged copy is missing";
  return {};
}

} // namespace

drill_result run_restore_drill(const config& cfg, const site_config& site,
                               const target_config& target, event_sink& events,
                               const cancel_token& cancel) {
  drill_result out;
  const auto what = fmt::format("{} of site {}", target.path, site.name);
  auto fail = [&](const std::string& message, const boost::json::object& data = {}) {
    out.error = fmt::format("restore drill of {}: {}", what, message);
    events.emit("fail", "drill", target.hash, out.error, data);
    return out;
  };
  auto client = local_restic(cfg);
  client.report_to(&events, target.hash);
  const auto tags = snapshot_tags(site.uuid, target.hash);
  auto list = client.snapshots(tags, cancel);
  if (!list) return fail(list.err().message);
  if (list->empty()) return fail("it has no snapshot");
  auto latest = *std::max_element(list->begin(), list->end(),
                                  [](const snapshot_info& a, const snapshot_info& b) {
                                    return a.unix_ms() < b.unix_ms();
                                  });
  out.snapshot_id = latest.id;

  auto made = scratch_folder::create(cfg.staging_root, ".satoru-drill-");
  if (!made) return fail(made.err().message);
  const scratch_folder scratch = std::move(*made);
  // The restore writes the snapshot's files into scratch space: refused up
  // front when that would break disk_min_free.
  auto listed = client.ls(latest.id, cancel);
  if (!listed)
    return fail("cannot list snapshot " + latest.short_id + ": " + listed.err().message);
  const std::int64_t needed = restore_bytes(*listed);
  if (auto problem = headroom_problem(cfg, scratch.path(), "scratch", needed);
      !problem.empty())
    return fail(problem);
  const auto started = now_ms();
  const std::string inner = latest.paths.size() == 1 ? latest.paths.front() : "";
  if (auto r = client.restore(latest.id, inner, scratch.path(), tags, cancel, {}, needed);
      !r)
    return fail("restore of snapshot " + latest.short_id + " failed: " + r.err().message);

  boost::json::object data;
  std::string problem;
  if (target.mode == "sqlite_dump") {
    const auto name = std::filesystem::path(target.path).filename().string();
    const auto staged =
        std::filesystem::path(staging_path(cfg.staging_root, site.uuid, target.hash)) /
        name;
    problem = verify_database(scratch.path() + "/" + name, staged.string(), data);
  } else {
    problem = verify_directory(client, latest, scratch.path(), cancel, data);
  }
  data["snapshot_id"] = latest.id;
  if (!problem.empty()) return fail("snapshot " + latest.short_id + ": " + problem, data);
  out.passed = true;
  events.emit("ok", "drill", target.hash,
              fmt::format("restored snapshot {} of {} into scratch space and verified it "
                          "in {}",
                          latest.short_id, what, format_duration(now_ms() - started)),
              data);
  return out;
}

offsite_result run_offsite_copy(const config& cfg, event_sink& events,
                                const cancel_token& cancel) {
  offsite_result out;
  auto remote_repo = offsite_repository(cfg);
  if (!remote_repo) {
    out.error = "no restic_b2_repository is configured";
    events.emit("fail", "sync", "", out.error, {});
    return out;
  }
  auto local_repo = local_repository(cfg);
  auto where = redact_repository(remote_repo->location);
  std::chrono::seconds timeout{cfg.sync_timeout_seconds};
  restic_client remote{*remote_repo, timeout};
  remote.report_to(&events);
  auto local = local_restic(cfg);
  local.report_to(&events);
  auto fail = [&](const std::string& step, const std::string& message) {
    out.error = fmt::format("off-site copy to {} failed: {}", where, message);
    events.emit("fail", step, "", out.error, {});
    // A copy whose remote went away exits without removing its lock there:
    // ours to remove now that its process is gone. Short deadline: the
    // remote may still be down (then the next copy does it).
    restic_client cleaner{*remote_repo, std::chrono::seconds{20}};
    cleaner.report_to(&events);
    (void)cleaner.clear_dead_locks(cancel_token{});
    return out;
  };

  auto local_exists = local.exists(cancel);
  if (!local_exists)
    return fail("sync", "local repository: " + local_exists.err().message);
  if (!*local_exists) {
    out.ok = true;
    events.emit("ok", "sync", "",
                "the local repository has no snapshots yet; nothing to copy", {});
    return out;
  }
  auto remote_exists = remote.exists(cancel);
  if (!remote_exists) return fail("sync.remote", remote_exists.err().message);
  if (!*remote_exists) {
    // Same chunker parameters as the local repository, or every copy would
    // re-chunk and store the data twice.
    if (auto r = remote.init(&local_repo, cancel); !r)
      return fail("sync.init", r.err().message);
    events.emit(
        "ok", "sync.init", "",
        "initialised " + where + " with the local repository's chunker parameters", {});
  } else if (auto r = remote.clear_dead_locks(cancel); !r) {
    return fail("sync.unlock", r.err().message);
  }
  auto started = now_ms();
  auto copied = remote.copy_from(local_repo, cancel);
  if (!copied) return fail("sync.copy", copied.err().message);
  out.copied = *copied;

  // What is still only here: local snapshots the remote knows neither by id
  // nor as the original of a copy.
  auto mine = local.snapshots({"satoru"}, cancel);
  auto theirs = remote.snapshots({"satoru"}, cancel);
  if (mine && theirs) {
    std::set<std::string> known;
    for (const auto& s : *theirs) {
      known.insert(s.id);
      if (!s.original.empty()) known.insert(s.original);
    }
    for (const auto& s : *mine)
      out.lag += known.count(s.id) ? 0 : 1;
  }
  out.ok = true;
  events.emit("ok", "sync.copy", "",
              fmt::format("copied {} new snapshot(s) to {} in {}; {} not yet off-site",
                          out.copied, where, format_duration(now_ms() - started),
                          out.lag),
              {{"copied", out.copied}, {"offsite_lag", out.lag}});
  return out;
}

std::vector<std::string> clear_dead_locks_at_start(const config& cfg, bool offsite,
                                                   const cancel_token& cancel) {
  std::vector<std::string> lines;
  std::vector<restic_repository> repos;
  if (!offsite)
    repos.push_back(local_repository(cfg));
  else if (auto remote = offsite_repository(cfg))
    repos.push_back(*remote);
  for (const auto& repo : repos) {
    const auto where = redact_repository(repo.location);
    restic_client client{repo, std::chrono::seconds{60}};
    auto exists = client.exists(cancel);
    if (!exists) {
      lines.push_back(
          fmt::format("cannot check the locks of {}: {}", where, exists.err().message));
      continue;
    }
    if (!*exists) continue;
    auto r = client.clear_dead_locks(cancel);
    if (!r) {
      lines.push_back(
          fmt::format("cannot clear the locks of {}: {}", where, r.err().message));
      continue;
    }
    const auto now = now_ms();
    for (const auto& l : r->removed)
      lines.push_back(fmt::format("removed the {} from {} ({})", l.holder(), where,
                                  now - l.time_ms > restic_stale_lock_ms
                                      ? "stale: not refreshed for 30 minutes"
                                      : "that process of ours is gone"));
    for (const auto& l : r->left)
      lines.push_back(fmt::format(
          "the {} in {} is of a dead process but this backend cannot remove one lock; "
          "restic unlock removes it when it is 30 minutes old",
          l.holder(), where));
  }
  return lines;
}

expected<void> check_repository_job(const config& cfg, job_type type) {
  if (is_site_job(type))
    return error{errc::invalid_argument, std::string(to_string(type)) +
                                             " is a job of a site, not of a repository"};
  if (uses_offsite(type) && !cfg.restic_b2_repository)
    return error{errc::invalid_argument,
                 cfg.file +
                     ": /restic_b2_repository: not set; there is no off-site repository"};
  return {};
}

expected<enqueue_result> queue_repository_job(const config& cfg, store& db,
                                              job_type type) {
  if (auto ok = check_repository_job(cfg, type); !ok) return ok.err();
  return db.enqueue(type, 0);
}

repository_overview inspect_repository(const config& cfg, std::int64_t since_ms,
                                       const cancel_token& cancel) {
  repository_overview out;
  auto local = local_restic(cfg);
  local.read_without_lock();
  auto exists = local.exists(cancel);
  if (!exists || !*exists) {
    out.ok = exists.has_value();
    if (!exists) out.error = exists.err().message;
    return out;
  }
  auto snaps = local.snapshots({"satoru"}, cancel);
  if (!snaps) {
    out.error = snaps.err().message;
    return out;
  }
  for (const auto& s : *snaps) {
    ++out.per_site[s.tag_value("site")];
    out.newer_than += s.unix_ms() > since_ms ? 1 : 0;
  }
  auto stats = local.stats(cancel);
  if (!stats) {
    out.error = stats.err().message;
    return out;
  }
  out.size = stats->total_size;
  out.ok = true;
  return out;
}

} // namespace satoru
