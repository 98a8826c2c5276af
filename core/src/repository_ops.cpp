#include "satoru/repository_ops.hpp"

#include "satoru/restic.hpp"
#include "satoru/time.hpp"

#include <fmt/format.h>

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

retention_result run_retention(const config& cfg, event_sink& events,
                               const cancel_token& cancel) {
  retention_result out;
  auto local = local_restic(cfg);
  local.report_to(&events);
  auto fail = [&](const std::string& step, const std::string& message) {
    out.error = message;
    events.emit("fail", step, "", message, {});
    return out;
  };
  auto exists = local.exists(cancel);
  if (!exists) return fail("retention", exists.err().message);
  if (!*exists) {
    events.emit("ok", "retention", "", "the local repository has no snapshots yet", {});
    out.ok = true;
    return out;
  }
  // A restic killed with the daemon leaves its lock, which would make forget
  // and prune wait; only locks of our dead processes (and what restic calls
  // stale) are removed. forget and prune wait for anyone else's.
  if (auto r = local.clear_dead_locks(cancel); !r)
    return fail("retention.unlock", r.err().message);

  auto flags = cfg.retention.restic_flags();
  auto groups = local.forget(flags, {"satoru"}, "tags", cancel);
  if (!groups) return fail("retention.forget", groups.err().message);
  for (const auto& g : *groups) {
    std::string hash;
    auto what = describe_group(cfg, g.tags, &hash);
    out.kept += g.kept;
    out.removed += g.removed;
    boost::json::array removed_ids;
    for (const auto& id : g.removed_ids)
      removed_ids.push_back(boost::json::value(id));
    events.emit("ok", "retention.forget", hash,
                fmt::format("{}: kept {}, removed {}", what, g.kept, g.removed),
                {{"kept", g.kept}, {"removed", g.removed}, {"removed_ids", removed_ids}});
  }

  auto before = local.stats(cancel);
  if (!before) return fail("retention.stats", before.err().message);
  if (auto r = local.prune(cancel); !r) return fail("retention.prune", r.err().message);
  auto after = local.stats(cancel);
  if (!after) return fail("retention.stats", after.err().message);
  out.size_after = after->total_size;
  out.freed_bytes = std::max<std::int64_t>(0, before->total_size - after->total_size);
  events.emit(
      "ok", "retention.prune", "",
      fmt::format("kept {} and removed {} snapshots; prune freed {} (repository now {})",
                  out.kept, out.removed,
                  format_bytes(static_cast<std::uint64_t>(out.freed_bytes)),
                  format_bytes(static_cast<std::uint64_t>(out.size_after))),
      {{"kept", out.kept},
       {"removed", out.removed},
       {"freed_bytes", out.freed_bytes},
       {"size_bytes", out.size_after}});
  out.ok = true;
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
      lines.push_back(fmt::format("removed the {} from {} (that process is gone)",
                                  l.describe(now), where));
    for (const auto& l : r->left)
      lines.push_back(fmt::format(
          "the {} in {} is of a dead process but this backend cannot remove one lock; "
          "restic unlock removes it when it is 30 minutes old",
          l.describe(now), where));
  }
  return lines;
}

repository_overview inspect_repository(const config& cfg, std::int64_t since_ms,
                                       const cancel_token& cancel) {
  repository_overview out;
  auto local = local_restic(cfg);
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
