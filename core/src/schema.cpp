#include "store_impl.hpp"

namespace satoru::detail {

/// Append-only: a released migration is never edited, a change is a new entry.
/// Timestamps are Unix milliseconds; 0 means "never".
const std::vector<std::string>& schema_migrations() {
  static const std::vector<std::string> migrations = {
      // 1: the five tables of the contract (docs/reference.md) plus daemon liveness.
      R"sql(
CREATE TABLE sites (
  id                INTEGER PRIMARY KEY,
  name              TEXT    NOT NULL UNIQUE,
  uuid              TEXT    NOT NULL UNIQUE,
  host              TEXT    NOT NULL,
  port              INTEGER NOT NULL,
  user              TEXT    NOT NULL,
  enabled           INTEGER NOT NULL DEFAULT 1,
  health            TEXT    NOT NULL DEFAULT 'unknown'
                    CHECK (health IN ('unknown', 'ok', 'warning', 'failed')),
  health_reason     TEXT    NOT NULL DEFAULT '',
  last_preflight_at INTEGER NOT NULL DEFAULT 0,
  last_backup_at    INTEGER NOT NULL DEFAULT 0,
  last_success_at   INTEGER NOT NULL DEFAULT 0,
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL
);
CREATE TABLE site_targets (
  id               INTEGER PRIMARY KEY,
  site_id          INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
  target_hash      TEXT    NOT NULL,
  mode             TEXT    NOT NULL,
  path             TEXT    NOT NULL,
  enabled          INTEGER NOT NULL DEFAULT 1,
  last_status      TEXT    NOT NULL DEFAULT '',
  last_error       TEXT    NOT NULL DEFAULT '',
  last_bytes       INTEGER NOT NULL DEFAULT 0,
  last_files       INTEGER NOT NULL DEFAULT 0,
  last_duration_ms INTEGER NOT NULL DEFAULT 0,
  last_scan_at     INTEGER NOT NULL DEFAULT 0,
  last_success_at  INTEGER NOT NULL DEFAULT 0,
  last_snapshot_id TEXT    NOT NULL DEFAULT '',
  last_data_added  INTEGER NOT NULL DEFAULT 0,
  UNIQUE (site_id, target_hash)
);
CREATE TABLE jobs (
  id           INTEGER PRIMARY KEY,
  site_id      INTEGER REFERENCES sites(id),  -- NULL for repository jobs
  type         TEXT    NOT NULL
               CHECK (type IN ('preflight', 'backup', 'retention', 'restic_sync')),
  status       TEXT    NOT NULL
               CHECK (status IN ('queued', 'running', 'success', 'warning', 'failed',
                                 'interrupted')),
  created_at   INTEGER NOT NULL,
  started_at   INTEGER NOT NULL DEFAULT 0,
  finished_at  INTEGER NOT NULL DEFAULT 0,
  heartbeat_at INTEGER NOT NULL DEFAULT 0,
  attempts     INTEGER NOT NULL DEFAULT 0,
  error        TEXT    NOT NULL DEFAULT '',
  owner        TEXT    NOT NULL DEFAULT '',
  lease_until  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_next_queued ON jobs (status, id);
CREATE INDEX jobs_of_site ON jobs (site_id, id);
CREATE TABLE job_events (
  id      INTEGER PRIMARY KEY,
  job_id  INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  ts      INTEGER NOT NULL,
  level   TEXT    NOT NULL,
  step    TEXT    NOT NULL,
  target  TEXT    NOT NULL DEFAULT '',
  message TEXT    NOT NULL,
  data    TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX job_events_of_job ON job_events (job_id, id);
CREATE TABLE sync_state (
  repository       TEXT    PRIMARY KEY,
  last_attempt_at  INTEGER NOT NULL DEFAULT 0,
  last_success_at  INTEGER NOT NULL DEFAULT 0,
  status           TEXT    NOT NULL DEFAULT '',
  error            TEXT    NOT NULL DEFAULT '',
  snapshots_copied INTEGER NOT NULL DEFAULT 0,
  offsite_lag      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE nodes (
  owner          TEXT    PRIMARY KEY,
  pid            INTEGER NOT NULL,
  started_at     INTEGER NOT NULL,
  heartbeat_at   INTEGER NOT NULL,
  stopped_at     INTEGER NOT NULL DEFAULT 0,
  metrics_listen TEXT    NOT NULL DEFAULT ''
);
)sql",
      // 2: when the last successful off-site copy started; local snapshots
      // taken after it are the ones not yet off-site (the offsite lag).
      R"sql(
ALTER TABLE sync_state ADD COLUMN last_success_started_at INTEGER NOT NULL DEFAULT 0;
)sql",
      // 3: the job lifecycle. `epoch` is the fencing token of a lease (it grows
      // with every claim, across all jobs); retries wait for `next_attempt_at`
      // and use their own budget (`failed_attempts`), apart from recoveries of
      // jobs whose process died (`recoveries`); a retry of a backup pulls only
      // `retry_targets` (comma-separated hashes) and remembers the worst status
      // of the targets already done (`carried_status`).
      R"sql(
ALTER TABLE jobs ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN next_attempt_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN failed_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN recoveries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN retry_targets TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN carried_status TEXT NOT NULL DEFAULT '';
CREATE INDEX jobs_epoch ON jobs (epoch);
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE status IN ('success', 'warning', 'failed');
)sql",
      // 4: job types for off-site retention, repository checks and restore
      // drills, and when a drill last verified each target (and which
      // snapshot). SQLite cannot change a CHECK constraint, so `jobs` is rebuilt,
      // and job_events with it: its copy references the new table (the renames
      // carry the reference along), so dropping the old tables, which cascades
      // under foreign_keys=ON, deletes no event.
      R"sql(
CREATE TABLE jobs_v4 (
  id           INTEGER PRIMARY KEY,
  site_id      INTEGER REFERENCES sites(id),  -- NULL for repository jobs
  type         TEXT    NOT NULL
               CHECK (type IN ('preflight', 'backup', 'retention', 'restic_sync',
                               'offsite_retention', 'check', 'offsite_check',
                               'restore_drill')),
  status       TEXT    NOT NULL
               CHECK (status IN ('queued', 'running', 'success', 'warning', 'failed',
                                 'interrupted')),
  created_at   INTEGER NOT NULL,
  started_at   INTEGER NOT NULL DEFAULT 0,
  finished_at  INTEGER NOT NULL DEFAULT 0,
  heartbeat_at INTEGER NOT NULL DEFAULT 0,
  attempts     INTEGER NOT NULL DEFAULT 0,
  error        TEXT    NOT NULL DEFAULT '',
  owner        TEXT    NOT NULL DEFAULT '',
  lease_until  INTEGER NOT NULL DEFAULT 0,
  epoch           INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL DEFAULT 0,
  failed_attempts INTEGER NOT NULL DEFAULT 0,
  recoveries      INTEGER NOT NULL DEFAULT 0,
  retry_targets   TEXT NOT NULL DEFAULT '',
  carried_status  TEXT NOT NULL DEFAULT ''
);
INSERT INTO jobs_v4 (id, site_id, type, status, created_at, started_at, finished_at,
                     heartbeat_at, attempts, error, owner, lease_until, epoch,
                     next_attempt_at, failed_attempts, recoveries, retry_targets,
                     carried_status)
  SELECT id, site_id, type, status, created_at, started_at, finished_at, heartbeat_at,
         attempts, error, owner, lease_until, epoch, next_attempt_at, failed_attempts,
         recoveries, retry_targets, carried_status FROM jobs;
CREATE TABLE job_events_v4 (
  id      INTEGER PRIMARY KEY,
  job_id  INTEGER NOT NULL REFERENCES jobs_v4(id) ON DELETE CASCADE,
  ts      INTEGER NOT NULL,
  level   TEXT    NOT NULL,
  step    TEXT    NOT NULL,
  target  TEXT    NOT NULL DEFAULT '',
  message TEXT    NOT NULL,
  data    TEXT    NOT NULL DEFAULT ''
);
INSERT INTO job_events_v4 SELECT id, job_id, ts, level, step, target, message, data
  FROM job_events;
DROP TABLE job_events;
DROP TABLE jobs;
ALTER TABLE jobs_v4 RENAME TO jobs;
ALTER TABLE job_events_v4 RENAME TO job_events;
CREATE INDEX jobs_next_queued ON jobs (status, id);
CREATE INDEX jobs_of_site ON jobs (site_id, id);
CREATE INDEX jobs_epoch ON jobs (epoch);
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE status IN ('success', 'warning', 'failed');
CREATE INDEX job_events_of_job ON job_events (job_id, id);
ALTER TABLE site_targets ADD COLUMN last_verified_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE site_targets ADD COLUMN last_verified_snapshot TEXT NOT NULL DEFAULT '';
)sql",
      // 5: the live progress of running steps, for the CLI (`run --wait`, `job
      // --follow`, `jobs`, `sites`): one row per step of a running job and
      // target ('' for repository work such as the off-site copy), upserted
      // at most once a second; `ended_at` is set with the step's last values
      // when it ends, and the job's rows are deleted when its attempt ends.
      // No foreign key: rows are deleted with their attempt, and a rebuild of
      // `jobs` (as in 4) must not need to carry them along.
      R"sql(
CREATE TABLE job_progress (
  job_id      INTEGER NOT NULL,
  target      TEXT    NOT NULL,
  step        TEXT    NOT NULL,
  bytes_done  INTEGER NOT NULL DEFAULT 0,
  bytes_total INTEGER NOT NULL DEFAULT 0,
  files_done  INTEGER NOT NULL DEFAULT 0,
  files_total INTEGER NOT NULL DEFAULT 0,
  fraction    REAL    NOT NULL DEFAULT -1,
  rate_bytes_per_s REAL NOT NULL DEFAULT 0,
  eta_seconds INTEGER NOT NULL DEFAULT -1,
  changed_at  INTEGER NOT NULL DEFAULT 0,
  updated_at  INTEGER NOT NULL,
  ended_at    INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (job_id, target, step)
) WITHOUT ROWID;
)sql",
      // 6: restore jobs (a snapshot put back on its edge host) and what a job is
      // asked to do beyond its type (`params`, a JSON object: the restore's
      // target, snapshot, paths and flags). Rebuilt like 4 for the CHECK
      // (job_progress, 5, has no foreign key and stays as it is).
      R"sql(
CREATE TABLE jobs_v6 (
  id           INTEGER PRIMARY KEY,
  site_id      INTEGER REFERENCES sites(id),  -- NULL for repository jobs
  type         TEXT    NOT NULL
               CHECK (type IN ('preflight', 'backup', 'retention', 'restic_sync',
                               'offsite_retention', 'check', 'offsite_check',
                               'restore_drill', 'restore')),
  status       TEXT    NOT NULL
               CHECK (status IN ('queued', 'running', 'success', 'warning', 'failed',
                                 'interrupted')),
  created_at   INTEGER NOT NULL,
  started_at   INTEGER NOT NULL DEFAULT 0,
  finished_at  INTEGER NOT NULL DEFAULT 0,
  heartbeat_at INTEGER NOT NULL DEFAULT 0,
  attempts     INTEGER NOT NULL DEFAULT 0,
  error        TEXT    NOT NULL DEFAULT '',
  owner        TEXT    NOT NULL DEFAULT '',
  lease_until  INTEGER NOT NULL DEFAULT 0,
  epoch           INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL DEFAULT 0,
  failed_attempts INTEGER NOT NULL DEFAULT 0,
  recoveries      INTEGER NOT NULL DEFAULT 0,
  retry_targets   TEXT NOT NULL DEFAULT '',
  carried_status  TEXT NOT NULL DEFAULT '',
  params          TEXT NOT NULL DEFAULT ''
);
INSERT INTO jobs_v6 (id, site_id, type, status, created_at, started_at, finished_at,
                     heartbeat_at, attempts, error, owner, lease_until, epoch,
                     next_attempt_at, failed_attempts, recoveries, retry_targets,
                     carried_status)
  SELECT id, site_id, type, status, created_at, started_at, finished_at, heartbeat_at,
         attempts, error, owner, lease_until, epoch, next_attempt_at, failed_attempts,
         recoveries, retry_targets, carried_status FROM jobs;
CREATE TABLE job_events_v6 (
  id      INTEGER PRIMARY KEY,
  job_id  INTEGER NOT NULL REFERENCES jobs_v6(id) ON DELETE CASCADE,
  ts      INTEGER NOT NULL,
  level   TEXT    NOT NULL,
  step    TEXT    NOT NULL,
  target  TEXT    NOT NULL DEFAULT '',
  message TEXT    NOT NULL,
  data    TEXT    NOT NULL DEFAULT ''
);
INSERT INTO job_events_v6 SELECT id, job_id, ts, level, step, target, message, data
  FROM job_events;
DROP TABLE job_events;
DROP TABLE jobs;
ALTER TABLE jobs_v6 RENAME TO jobs;
ALTER TABLE job_events_v6 RENAME TO job_events;
CREATE INDEX jobs_next_queued ON jobs (status, id);
CREATE INDEX jobs_of_site ON jobs (site_id, id);
CREATE INDEX jobs_epoch ON jobs (epoch);
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE status IN ('success', 'warning', 'failed');
CREATE INDEX job_events_of_job ON job_events (job_id, id);
)sql",
      // 7: a job can be cancelled (`cancelled`, a status the CHECK must
      // allow, so `jobs` is rebuilt as in 4 and 6); `cancel_requested_at`
      // is how `satoru cancel` in another process asks the one running the
      // job to stop it; `requested_by` is who asked for a job ("" = the
      // daemon's schedule); `confirmed_by` on a restore dry run is the job
      // its console confirmation queued (a confirmation is used once).
      R"sql(
CREATE TABLE jobs_v7 (
  id           INTEGER PRIMARY KEY,
  site_id      INTEGER REFERENCES sites(id),  -- NULL for repository jobs
  type         TEXT    NOT NULL
               CHECK (type IN ('preflight', 'backup', 'retention', 'restic_sync',
                               'offsite_retention', 'check', 'offsite_check',
                               'restore_drill', 'restore')),
  status       TEXT    NOT NULL
               CHECK (status IN ('queued', 'running', 'success', 'warning', 'failed',
                                 'interrupted', 'cancelled')),
  created_at   INTEGER NOT NULL,
  started_at   INTEGER NOT NULL DEFAULT 0,
  finished_at  INTEGER NOT NULL DEFAULT 0,
  heartbeat_at INTEGER NOT NULL DEFAULT 0,
  attempts     INTEGER NOT NULL DEFAULT 0,
  error        TEXT    NOT NULL DEFAULT '',
  owner        TEXT    NOT NULL DEFAULT '',
  lease_until  INTEGER NOT NULL DEFAULT 0,
  epoch           INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL DEFAULT 0,
  failed_attempts INTEGER NOT NULL DEFAULT 0,
  recoveries      INTEGER NOT NULL DEFAULT 0,
  retry_targets   TEXT NOT NULL DEFAULT '',
  carried_status  TEXT NOT NULL DEFAULT '',
  params          TEXT NOT NULL DEFAULT '',
  requested_by        TEXT    NOT NULL DEFAULT '',
  cancel_requested_at INTEGER NOT NULL DEFAULT 0,
  confirmed_by        INTEGER NOT NULL DEFAULT 0
);
INSERT INTO jobs_v7 (id, site_id, type, status, created_at, started_at, finished_at,
                     heartbeat_at, attempts, error, owner, lease_until, epoch,
                     next_attempt_at, failed_attempts, recoveries, retry_targets,
                     carried_status, params)
  SELECT id, site_id, type, status, created_at, started_at, finished_at, heartbeat_at,
         attempts, error, owner, lease_until, epoch, next_attempt_at, failed_attempts,
         recoveries, retry_targets, carried_status, params FROM jobs;
CREATE TABLE job_events_v7 (
  id      INTEGER PRIMARY KEY,
  job_id  INTEGER NOT NULL REFERENCES jobs_v7(id) ON DELETE CASCADE,
  ts      INTEGER NOT NULL,
  level   TEXT    NOT NULL,
  step    TEXT    NOT NULL,
  target  TEXT    NOT NULL DEFAULT '',
  message TEXT    NOT NULL,
  data    TEXT    NOT NULL DEFAULT ''
);
INSERT INTO job_events_v7 SELECT id, job_id, ts, level, step, target, message, data
  FROM job_events;
DROP TABLE job_events;
DROP TABLE jobs;
ALTER TABLE jobs_v7 RENAME TO jobs;
ALTER TABLE job_events_v7 RENAME TO job_events;
CREATE INDEX jobs_next_queued ON jobs (status, id);
CREATE INDEX jobs_of_site ON jobs (site_id, id);
CREATE INDEX jobs_epoch ON jobs (epoch);
CREATE INDEX jobs_finished ON jobs (finished_at)
  WHERE status IN ('success', 'warning', 'failed', 'cancelled');
CREATE INDEX job_events_of_job ON job_events (job_id, id);
)sql",
  };
  return migrations;
}

} // namespace satoru::detail
