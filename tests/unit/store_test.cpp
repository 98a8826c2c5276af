#include "satoru/identity.hpp"
#include "satoru/store.hpp"
#include "satoru/time.hpp"

#include "edge_host.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <sqlite3.h>

#include <chrono>
#include <set>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace satoru;
using satoru::testing::temp_dir;

namespace {

site_config make_site(const std::string& name,
                      std::vector<std::string> dirs = {"/srv/a"}) {
  site_config s;
  s.name = name;
  s.uuid = derive_site_uuid(name);
  s.host = "127.0.0.1";
  s.port = 22;
  s.user = "root";
  for (auto& d : dirs) {
    target_config t;
    t.mode = "directory";
    t.path = d;
    t.hash = target_hash(t.mode, t.path);
    s.targets.push_back(t);
  }
  return s;
}

std::string schema_dump(sqlite3* db) {
  std::string out;
  sqlite3_stmt* q = nullptr;
  sqlite3_prepare_v2(db, "SELECT type, name, sql FROM sqlite_master ORDER BY name", -1,
                     &q, nullptr);
  while (sqlite3_step(q) == SQLITE_ROW)
    for (int i = 0; i < 3; ++i)
      if (auto t = sqlite3_column_text(q, i))
        out += reinterpret_cast<const char*>(t), out += "\n";
  sqlite3_finalize(q);
  return out;
}

struct StoreTest : ::testing::Test {
  temp_dir tmp{"satoru-store"};
  std::string path = tmp / "state/satoru.db";
  store db = std::move(store::open(path).value());

  std::int64_t site_id(const std::string& name) { return (*db.find_site(name))->id; }
};

} // namespace

namespace satoru::detail {
/// The store's migrations (core/src/schema.cpp), for the migration test.
const std::vector<std::string>& schema_migrations();
} // namespace satoru::detail

TEST_F(StoreTest, NewDatabaseHasTheFiveTablesAtLatestVersion) {
  EXPECT_EQ(*db.schema_version(), store::latest_schema_version());
  auto dump = schema_dump(db.handle());
  for (auto table : {"sites", "site_targets", "jobs", "job_events", "sync_state"})
    EXPECT_NE(dump.find(std::string{"table\n"} + table + "\n"), std::string::npos)
        << table;
  for (auto index : {"jobs_next_queued", "jobs_of_site", "job_events_of_job"})
    EXPECT_NE(dump.find(index), std::string::npos) << index;
}

TEST_F(StoreTest, MigratingAgainChangesNothing) {
  auto before = schema_dump(db.handle());
  ASSERT_TRUE(db.migrate());
  auto reopened = store::open(path);
  ASSERT_TRUE(reopened);
  EXPECT_EQ(schema_dump(reopened->handle()), before);
  EXPECT_EQ(*reopened->schema_version(), store::latest_schema_version());
}

TEST_F(StoreTest, OpensInWalModeWithForeignKeys) {
  sqlite3_stmt* q = nullptr;
  sqlite3_prepare_v2(db.handle(), "PRAGMA journal_mode", -1, &q, nullptr);
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(q, 0)), "wal");
  sqlite3_finalize(q);
  sqlite3_prepare_v2(db.handle(), "PRAGMA foreign_keys", -1, &q, nullptr);
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(q, 0), 1);
  sqlite3_finalize(q);
}

TEST_F(StoreTest, CreatesPrivateFileAndFolder) {
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  ASSERT_EQ(::stat((tmp / "state").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700);
}

TEST_F(StoreTest, RefusesADatabaseFromANewerSatoru) {
  ASSERT_EQ(
      sqlite3_exec(db.handle(), "PRAGMA user_version = 999", nullptr, nullptr, nullptr),
      SQLITE_OK);
  auto again = store::open(path);
  ASSERT_FALSE(again);
  EXPECT_NE(again.err().message.find("newer than this satoru"), std::string::npos);
}

TEST_F(StoreTest, TargetsBySiteReadsEverySitesTargetsAsListTargetsDoes) {
  ASSERT_TRUE(db.sync_config({make_site("a", {"/srv/a", "/srv/b"}), make_site("b"),
                              make_site("c", {"/srv/c"})}));
  auto all = db.targets_by_site();
  ASSERT_TRUE(all) << all.err().message;
  ASSERT_EQ(all->size(), 3u);
  for (const auto& name : {"a", "b", "c"}) {
    auto id = site_id(name);
    auto one = *db.list_targets(id);
    ASSERT_EQ(all->at(id).size(), one.size()) << name;
    for (std::size_t i = 0; i < one.size(); ++i) {
      EXPECT_EQ(all->at(id)[i].id, one[i].id);
      EXPECT_EQ(all->at(id)[i].path, one[i].path);
    }
  }
  EXPECT_EQ(all->at(site_id("a")).size(), 2u);
}

TEST_F(StoreTest, SyncConfigUpsertsAndDisablesRemovedSitesKeepingHistory) {
  ASSERT_TRUE(db.sync_config({make_site("a", {"/srv/a", "/srv/b"}), make_site("b")}));
  auto a = site_id("a");
  ASSERT_TRUE(db.enqueue(job_type::backup, a));
  ASSERT_EQ(db.list_sites()->size(), 2u);
  EXPECT_EQ((*db.find_site("a"))->target_count, 2);

  // "a" loses a target, "b" disappears.
  ASSERT_TRUE(db.sync_config({make_site("a", {"/srv/a"})}));
  auto sites = *db.list_sites();
  ASSERT_EQ(sites.size(), 1u);
  EXPECT_EQ(sites[0].name, "a");
  EXPECT_EQ(sites[0].target_count, 1);
  EXPECT_EQ(sites[0].id, a);
  auto all = *db.list_sites(true);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_FALSE(all[1].enabled);
  EXPECT_EQ(db.list_targets(a)->size(), 2u); // history kept
  EXPECT_EQ(db.list_jobs({a, std::nullopt, 10})->size(), 1u);

  // Coming back re-enables the same row.
  ASSERT_TRUE(db.sync_config({make_site("a", {"/srv/a"}), make_site("b")}));
  EXPECT_EQ(db.list_sites()->size(), 2u);
}

TEST_F(StoreTest, SyncConfigWritesNothingForAnUnchangedConfigAndEverythingForAChange) {
  auto a = make_site("a", {"/srv/a", "/srv/b"});
  auto b = make_site("b");
  ASSERT_TRUE(db.sync_config({a, b}));
  // Every write of sync_config stamps updated_at; mark the rows to see one.
  auto mark = [&] {
    ASSERT_EQ(sqlite3_exec(db.handle(), "UPDATE sites SET updated_at = 1", nullptr,
                           nullptr, nullptr),
              SQLITE_OK);
  };
  auto rewritten = [&] {
    sqlite3_stmt* q = nullptr;
    sqlite3_prepare_v2(db.handle(), "SELECT COUNT(*) FROM sites WHERE updated_at <> 1",
                       -1, &q, nullptr);
    sqlite3_step(q);
    auto n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return n;
  };
  mark();
  // The same sites in another order: nothing written (`satoru run SITE` on a
  // fleet must not rewrite every site on every call).
  ASSERT_TRUE(db.sync_config({b, a}));
  EXPECT_EQ(rewritten(), 0);

  // Any change of what the database keeps is written.
  auto changed = [&](std::vector<site_config> sites) {
    mark();
    EXPECT_TRUE(db.sync_config(sites));
    return rewritten() > 0;
  };
  auto moved = a;
  moved.host = "10.0.0.9";
  EXPECT_TRUE(changed({moved, b}));
  EXPECT_EQ((*db.find_site("a"))->host, "10.0.0.9");
  auto port = moved;
  port.port = 2222;
  EXPECT_TRUE(changed({port, b}));
  auto user = port;
  user.user = "backup";
  EXPECT_TRUE(changed({user, b}));
  EXPECT_FALSE(changed({user, b})) << "unchanged again";
  // A target added, then removed: the target rows follow.
  auto more = make_site("a", {"/srv/a", "/srv/b", "/srv/c"});
  more.host = user.host;
  more.port = user.port;
  more.user = user.user;
  EXPECT_TRUE(changed({more, b}));
  EXPECT_EQ((*db.find_site("a"))->target_count, 3);
  auto fewer = more;
  fewer.targets.pop_back();
  EXPECT_TRUE(changed({fewer, b}));
  EXPECT_EQ((*db.find_site("a"))->target_count, 2);
  // A site removed, and back.
  EXPECT_TRUE(changed({fewer}));
  EXPECT_EQ(db.list_sites()->size(), 1u);
  EXPECT_TRUE(changed({fewer, b}));
  EXPECT_EQ(db.list_sites()->size(), 2u);
  // A renamed site (same uuid).
  auto renamed = b;
  renamed.name = "b2";
  EXPECT_TRUE(changed({fewer, renamed}));
  EXPECT_TRUE(db.find_site("b2")->has_value());
}

TEST_F(StoreTest, EnqueueReturnsTheQueuedJobInsteadOfADuplicate) {
  ASSERT_TRUE(db.sync_config({make_site("a"), make_site("b")}));
  auto first = *db.enqueue(job_type::backup, site_id("a"));
  auto again = *db.enqueue(job_type::backup, site_id("a"));
  EXPECT_FALSE(first.existing);
  EXPECT_TRUE(again.existing);
  EXPECT_EQ(first.id, again.id);
  EXPECT_NE(db.enqueue(job_type::preflight, site_id("a"))->id, first.id);
  EXPECT_NE(db.enqueue(job_type::backup, site_id("b"))->id, first.id);
  EXPECT_NE(db.enqueue(job_type::retention, 0)->id, first.id);
}

namespace {

job_outcome ended(job_status status, std::string error = "",
                  failure_kind failure = failure_kind::none) {
  job_outcome o;
  o.status = status;
  o.error = std::move(error);
  o.failure = failure;
  return o;
}

} // namespace

TEST_F(StoreTest, ClaimsFifoOneJobPerSiteUpToTheCap) {
  ASSERT_TRUE(db.sync_config({make_site("a"), make_site("b"), make_site("c")}));
  auto a1 = db.enqueue(job_type::preflight, site_id("a"))->id;
  auto a2 = db.enqueue(job_type::backup, site_id("a"))->id;
  auto b1 = db.enqueue(job_type::backup, site_id("b"))->id;
  auto c1 = db.enqueue(job_type::backup, site_id("c"))->id;

  auto j1 = *db.claim_next("me", 10000, 2);
  ASSERT_TRUE(j1);
  EXPECT_EQ(j1->id, a1);
  EXPECT_EQ(j1->status, job_status::running);
  EXPECT_EQ(j1->attempts, 1);
  auto j2 = *db.claim_next("me", 10000, 2);
  ASSERT_TRUE(j2);
  EXPECT_EQ(j2->id, b1) << "a2 waits: site a is busy";
  EXPECT_FALSE(*db.claim_next("me", 10000, 2)) << "cap of 2 reached";

  ASSERT_TRUE(*db.finish_job(*j1, ended(job_status::success)));
  auto j3 = *db.claim_next("me", 10000, 2);
  ASSERT_TRUE(j3);
  EXPECT_EQ(j3->id, a2);
  ASSERT_TRUE(*db.finish_job(*j2, ended(job_status::success)));
  auto j4 = *db.claim_next("me", 10000, 2, {site_id("c")});
  EXPECT_FALSE(j4) << "busy_sites are skipped";
  EXPECT_EQ((*db.claim_next("me", 10000, 2))->id, c1);
}

TEST_F(StoreTest, FinishRequiresTheLeaseHolder) {
  ASSERT_TRUE(db.sync_config({make_site("a")}));
  auto id = db.enqueue(job_type::backup, site_id("a"))->id;
  auto lease = **db.claim_next("me", 10000, 1);
  auto other = lease;
  other.owner = "someone-else";
  EXPECT_FALSE(*db.finish_job(other, ended(job_status::success)));
  auto stale = lease;
  stale.epoch -= 1; // an earlier claim of the same owner
  EXPECT_FALSE(*db.finish_job(stale, ended(job_status::success)));
  EXPECT_TRUE(*db.finish_job(lease, ended(job_status::warning, "1 of 2 targets failed")));
  auto job = **db.get_job(id);
  EXPECT_EQ(job.status, job_status::warning);
  EXPECT_EQ(job.error, "1 of 2 targets failed");
  EXPECT_GT(job.finished_at, 0);
  auto events = *db.list_events(id);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.front().step, "queued");
  EXPECT_EQ(events.back().step, "finished");
}

TEST_F(StoreTest, RecoversJobsOfADeadProcess) {
  ASSERT_TRUE(db.sync_config({make_site("a"), make_site("b")}));
  auto a = db.enqueue(job_type::backup, site_id("a"))->id;
  auto b = db.enqueue(job_type::backup, site_id("b"))->id;
  ASSERT_TRUE(*db.claim_next("dead", 1, 5)); // lease of 1 ms: expires at once
  ASSERT_TRUE(*db.claim_next("alive", 60000, 5));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));

  auto touched = *db.recover_jobs(3);
  ASSERT_EQ(touched, std::vector<std::int64_t>{a});
  auto job = **db.get_job(a);
  EXPECT_EQ(job.status, job_status::queued);
  EXPECT_EQ(job.attempts, 1);
  auto events = *db.list_events(a);
  EXPECT_EQ(events.back().step, "recovery");
  EXPECT_NE(events.back().message.find("queued again (recovery 1 of 3)"),
            std::string::npos);
  EXPECT_EQ(job.recoveries, 1);
  EXPECT_EQ(job.failed_attempts, 0) << "a recovery does not use up the retry budget";
  EXPECT_EQ((**db.get_job(b)).status, job_status::running);

  // The callback can declare a holder dead before its lease runs out.
  touched =
      *db.recover_jobs(3, [](const std::string& owner) { return owner != "alive"; });
  EXPECT_EQ(touched, std::vector<std::int64_t>{b});
}

TEST_F(StoreTest, InterruptedJobsAreRequeuedUntilRecoveriesRunOut) {
  ASSERT_TRUE(db.sync_config({make_site("a")}));
  auto id = db.enqueue(job_type::backup, site_id("a"))->id;
  for (int attempt = 1; attempt <= 4; ++attempt) {
    ASSERT_TRUE(*db.claim_next("me", 60000, 1)) << attempt;
    ASSERT_EQ(*db.interrupt_owned("me", "daemon stopping"), 1);
    EXPECT_EQ((**db.get_job(id)).status, job_status::interrupted);
    ASSERT_TRUE(db.recover_jobs(3));
  }
  auto job = **db.get_job(id);
  EXPECT_EQ(job.status, job_status::failed);
  EXPECT_NE(job.error.find("giving up after 3 recoveries"), std::string::npos);
}

TEST_F(StoreTest, RepositoryJobsRunOneOfEachTypeAtATime) {
  auto r1 = db.enqueue(job_type::retention, 0)->id;
  auto s1 = db.enqueue(job_type::restic_sync, 0)->id;
  auto claimed = *db.claim_repository_job(job_type::retention, "me", 60000);
  ASSERT_TRUE(claimed);
  EXPECT_EQ(claimed->id, r1);
  EXPECT_EQ(claimed->site_id, 0);
  auto r2 = db.enqueue(job_type::retention, 0)->id;
  EXPECT_NE(r2, r1);
  EXPECT_FALSE(*db.claim_repository_job(job_type::retention, "me", 60000));
  EXPECT_EQ((*db.claim_repository_job(job_type::restic_sync, "me", 60000))->id, s1);
  EXPECT_FALSE(*db.claim_next("me", 60000, 4))
      << "site claims never take repository jobs";
}

TEST_F(StoreTest, JobsOnTheOffsiteRepositoryNeverRunTogether) {
  auto copy = db.enqueue(job_type::restic_sync, 0)->id;
  auto prune = db.enqueue(job_type::offsite_retention, 0)->id;
  db.enqueue(job_type::offsite_check, 0);
  db.enqueue(job_type::check, 0);
  auto running = *db.claim_repository_job(job_type::restic_sync, "me", 60000);
  ASSERT_TRUE(running);
  EXPECT_EQ(running->id, copy);
  EXPECT_FALSE(*db.claim_repository_job(job_type::offsite_retention, "me", 60000));
  EXPECT_FALSE(*db.claim_repository_job(job_type::offsite_check, "me", 60000));
  EXPECT_TRUE(*db.claim_repository_job(job_type::check, "me", 60000))
      << "the local repository's check is not held back by the copy";
  EXPECT_FALSE(*db.claim_job(prune, "another process", 60000))
      << "nor by id (`prune --offsite --wait` in a process without a daemon)";
  job_outcome done;
  done.status = job_status::success;
  ASSERT_TRUE(*db.finish_job(*running, done));
  auto next = *db.claim_repository_job(job_type::offsite_retention, "me", 60000);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->id, prune);
  EXPECT_EQ(next->type, job_type::offsite_retention);
}

TEST_F(StoreTest, TheJobTypesMigrationKeepsEveryJobAndEvent) {
  // A database at schema 3 (before the job types of checks, drills and
  // off-site retention) with a job and its events.
  const std::string old_path = tmp / "old.db";
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(old_path.c_str(), &raw), SQLITE_OK);
  for (std::size_t i = 0; i < 3; ++i)
    ASSERT_EQ(sqlite3_exec(raw, detail::schema_migrations()[i].c_str(), nullptr, nullptr,
                           nullptr),
              SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(raw,
                   "PRAGMA user_version = 3;"
                   "INSERT INTO jobs (id, type, status, created_at, epoch) VALUES "
                   "(7, 'retention', 'success', 1, 3);"
                   "INSERT INTO job_events (job_id, ts, level, step, message) VALUES "
                   "(7, 2, 'ok', 'retention', 'kept 1'), (7, 3, 'ok', "
                   "'retention.prune', 'freed')",
                   nullptr, nullptr, nullptr),
      SQLITE_OK);
  sqlite3_close(raw);
  auto migrated = store::open(old_path);
  ASSERT_TRUE(migrated) << migrated.err().message;
  EXPECT_EQ(*migrated->schema_version(), store::latest_schema_version());
  auto job = *migrated->get_job(7);
  ASSERT_TRUE(job);
  EXPECT_EQ(job->type, job_type::retention);
  EXPECT_EQ(job->epoch, 3);
  EXPECT_EQ(migrated->list_events(7)->size(), 2u);
  EXPECT_TRUE(migrated->enqueue(job_type::restore_drill, 0)) << "a new type is accepted";
  EXPECT_EQ(schema_dump(migrated->handle()), schema_dump(db.handle()))
      << "a migrated database has the schema of a new one";
}

TEST_F(StoreTest, SitesDueForBackupFollowTheIntervalAndSkipQueued) {
  ASSERT_TRUE(db.sync_config({make_site("a"), make_site("b")}));
  EXPECT_EQ(db.sites_due_for_backup(3600000)->size(), 2u); // never backed up
  ASSERT_TRUE(db.enqueue(job_type::backup, site_id("a")));
  auto due = *db.sites_due_for_backup(3600000);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].name, "b");
  // A finished backup an hour ago is due again with a 1 h interval.
  ASSERT_EQ(sqlite3_exec(
                db.handle(),
                "UPDATE jobs SET status = 'success', created_at = created_at - 3600001",
                nullptr, nullptr, nullptr),
            SQLITE_OK);
  EXPECT_EQ(db.sites_due_for_backup(3600000)->size(), 2u);
  EXPECT_EQ(db.sites_due_for_backup(7200000)->size(), 1u);
}

TEST_F(StoreTest, DaemonLivenessFollowsHeartbeats) {
  EXPECT_FALSE(*db.live_daemon(10000));
  ASSERT_TRUE(db.node_heartbeat("node-1", 42, "127.0.0.1:9464"));
  EXPECT_EQ(**db.live_daemon(10000), "node-1");
  ASSERT_TRUE(db.node_stopped("node-1"));
  EXPECT_FALSE(*db.live_daemon(10000));
}

TEST_F(StoreTest, SyncStateRoundTrips) {
  auto empty = *db.get_sync_state("rest:http://127.0.0.1:1/repo");
  EXPECT_EQ(empty.last_success_at, 0);
  sync_state_row row = empty;
  row.status = "success";
  row.last_attempt_at = 10;
  row.last_success_at = 11;
  row.snapshots_copied = 4;
  row.offsite_lag = 1;
  ASSERT_TRUE(db.put_sync_state(row));
  auto back = *db.get_sync_state(row.repository);
  EXPECT_EQ(back.status, "success");
  EXPECT_EQ(back.snapshots_copied, 4);
  EXPECT_EQ(back.offsite_lag, 1);
}

// A deferred BEGIN that reads and then writes after another connection
// committed fails at once with SQLITE_BUSY, whatever busy_timeout says. Our
// writes start with BEGIN IMMEDIATE and wait instead.
TEST_F(StoreTest, WritesWaitForAnotherWriterInsteadOfFailing) {
  ASSERT_TRUE(db.sync_config({make_site("a")}));
  auto other = std::move(*store::open(path, 5000));

  // 1. The failure mode we avoid, shown with raw SQL on two connections.
  ASSERT_EQ(sqlite3_exec(other.handle(), "BEGIN", nullptr, nullptr, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other.handle(), "SELECT COUNT(*) FROM jobs", nullptr, nullptr,
                         nullptr),
            SQLITE_OK);
  ASSERT_TRUE(db.enqueue(job_type::backup, site_id("a"))); // commits a write meanwhile
  auto started = std::chrono::steady_clock::now();
  int rc = sqlite3_exec(other.handle(),
                        "INSERT INTO jobs (type, status, created_at) "
                        "VALUES ('retention', 'queued', 0)",
                        nullptr, nullptr, nullptr);
  EXPECT_EQ(rc & 0xff, SQLITE_BUSY);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2))
      << "the upgrade fails at once, not after busy_timeout";
  sqlite3_exec(other.handle(), "ROLLBACK", nullptr, nullptr, nullptr);

  // 2. Ours: another connection holds the write lock for 500 ms; claim waits.
  std::atomic<bool> held{false};
  std::thread holder([&] {
    sqlite3_exec(other.handle(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    sqlite3_exec(other.handle(), "UPDATE sites SET health = 'ok'", nullptr, nullptr,
                 nullptr);
    held = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    sqlite3_exec(other.handle(), "COMMIT", nullptr, nullptr, nullptr);
  });
  while (!held)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  started = std::chrono::steady_clock::now();
  auto claimed = db.claim_next("me", 60000, 1);
  auto waited = std::chrono::steady_clock::now() - started;
  holder.join();
  ASSERT_TRUE(claimed) << claimed.err().message;
  EXPECT_TRUE(*claimed);
  EXPECT_GE(waited, std::chrono::milliseconds(200));
}

// Two processes claiming from one database: every job is claimed exactly once.
TEST_F(StoreTest, TwoProcessesNeverClaimTheSameJob) {
  std::vector<site_config> sites;
  for (int i = 0; i < 40; ++i)
    sites.push_back(make_site("s" + std::to_string(i)));
  ASSERT_TRUE(db.sync_config(sites));
  for (auto& s : *db.list_sites()) {
    auto b = db.enqueue(job_type::backup, s.id);
    ASSERT_TRUE(b) << b.err().message;
    auto p = db.enqueue(job_type::preflight, s.id);
    ASSERT_TRUE(p) << p.err().message;
  }
  int start_gate[2];
  ASSERT_EQ(pipe(start_gate), 0);
  std::vector<pid_t> children;
  for (int p = 0; p < 2; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(start_gate[1]);
      // Opened before the gate: a slow open (a loaded machine, ASan) must
      // not let the other process take every job before this one starts.
      auto mine = store::open(path, 10000);
      if (!mine) _exit(10);
      char go;
      if (read(start_gate[0], &go, 1) != 0) _exit(9); // both start when the gate closes
      auto owner = "proc-" + std::to_string(p);
      for (int idle = 0; idle < 200;) {
        auto job = mine->claim_next(owner, 60000, 4);
        if (!job) _exit(11);
        if (!*job) {
          ++idle;
          usleep(2000);
          continue;
        }
        usleep(3000); // a little work, so that the other process gets its turn
        if (!*mine->finish_job(**job, job_outcome{job_status::success, "", {}, {}, {}}))
          _exit(12);
      }
      _exit(0);
    }
    children.push_back(pid);
  }
  close(start_gate[0]);
  close(start_gate[1]);
  for (auto pid : children) {
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  auto jobs = *db.list_jobs({std::nullopt, std::nullopt, 1000});
  ASSERT_EQ(jobs.size(), 80u);
  std::set<std::string> owners;
  for (auto& j : jobs) {
    EXPECT_EQ(j.status, job_status::success) << j.id;
    EXPECT_EQ(j.attempts, 1) << "job " << j.id << " was claimed more than once";
    owners.insert(j.owner);
  }
  EXPECT_EQ(owners.size(), 2u) << "both processes took part";
}

TEST_F(StoreTest, EveryClaimGetsAGreaterEpoch) {
  ASSERT_TRUE(db.sync_config({make_site("a"), make_site("b")}));
  db.enqueue(job_type::backup, site_id("a"));
  db.enqueue(job_type::backup, site_id("b"));
  auto first = **db.claim_next("me", 60000, 5);
  auto second = **db.claim_next("me", 60000, 5);
  EXPECT_GT(first.epoch, 0);
  EXPECT_GT(second.epoch, first.epoch);
}

TEST_F(StoreTest, AStaleLeaseWritesNoResult) {
  ASSERT_TRUE(db.sync_config({make_site("a")}));
  auto id = db.enqueue(job_type::backup, site_id("a"))->id;
  auto stale = **db.claim_next("me", 1, 1); // its lease lapses at once
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(*db.recover_jobs(3), std::vector<std::int64_t>{id});
  auto fresh = **db.claim_next("other", 60000, 1);
  ASSERT_EQ(fresh.id, id);
  EXPECT_GT(fresh.epoch, stale.epoch);

  // The worker of the first claim still runs: nothing it writes lands.
  EXPECT_FALSE(*db.holds_lease(stale));
  EXPECT_EQ(*db.add_event(id, "ok", "pull", "", "late", "", stale.epoch), 0);
  target_result late;
  late.target_hash = "0123456789abcdef";
  late.status = job_status::success;
  EXPECT_FALSE(*db.record_target(stale, late));
  EXPECT_FALSE(*db.finish_job(stale, ended(job_status::success)));
  EXPECT_FALSE(*db.retry_job(stale, ended(job_status::failed), now_ms(), 1000));
  for (const auto& e : *db.list_events(id))
    EXPECT_NE(e.message, "late");
  // The holder of the new lease writes.
  EXPECT_TRUE(*db.holds_lease(fresh));
  EXPECT_GT(*db.add_event(id, "ok", "pull", "", "current", "", fresh.epoch), 0);
  EXPECT_TRUE(*db.finish_job(fresh, ended(job_status::success)));
  EXPECT_EQ((**db.get_job(id)).status, job_status::success);
  EXPECT_EQ((**db.find_site("a")).health, "ok");
}

TEST_F(StoreTest, RenewsOnlyTheGivenLeasesAndNamesTheLostOnes) {
  ASSERT_TRUE(db.sync_config({make_site("a"), make_site("b")}));
  db.enqueue(job_type::backup, site_id("a"));
  db.enqueue(job_type::backup, site_id("b"));
  auto kept = **db.claim_next("me", 1000, 5);
  auto other = **db.claim_next("me", 1000, 5);
  auto before = (**db.get_job(other.id)).lease_until;
  auto gone = kept;
  gone.epoch += 100; // a lease we no longer hold
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto lost = *db.renew_leases("me", {kept, gone}, 60000);
  EXPECT_EQ(lost, std::vector<std::int64_t>{kept.id}) << "the stale copy is lost";
  EXPECT_GT((**db.get_job(kept.id)).lease_until, before + 50000);
  EXPECT_EQ((**db.get_job(other.id)).lease_until, before) << "not ours to renew";
}

TEST_F(StoreTest, ARetryWaitsForItsTimeAndKeepsItsTargets) {
  ASSERT_TRUE(db.sync_config({make_site("a")}));
  auto id = db.enqueue(job_type::backup, site_id("a"))->id;
  auto lease = **db.claim_next("me", 60000, 1);
  auto outcome = ended(job_status::warning, "b: link down", failure_kind::transient);
  outcome.retry_targets = {"bbbbbbbbbbbbbbbb"};
  outcome.carried_status = job_status::success;
  auto at = now_ms() + 3600 * 1000;
  ASSERT_TRUE(*db.retry_job(lease, outcome, at, 3600 * 1000));
  auto job = **db.get_job(id);
  EXPECT_EQ(job.status, job_status::queued);
  EXPECT_EQ(job.failed_attempts, 1);
  EXPECT_EQ(job.next_attempt_at, at);
  EXPECT_EQ(job.retry_targets, std::vector<std::string>{"bbbbbbbbbbbbbbbb"});
  ASSERT_TRUE(job.carried_status);
  EXPECT_EQ(*job.carried_status, job_status::success);
  EXPECT_EQ((**db.find_site("a")).health, "warning");
  EXPECT_EQ(db.pending_retries()->size(), 1u);
  EXPECT_FALSE(*db.claim_next("me", 60000, 1)) << "not due yet";
  EXPECT_FALSE(*db.claim_job(id, "me", 60000)) << "not in process either";
  EXPECT_TRUE(db.sites_due_for_backup(0)->empty()) << "the scheduler does not pile on";
  // Asking for the job again runs it now.
  auto again = *db.enqueue(job_type::backup, site_id("a"));
  EXPECT_TRUE(again.existing);
  EXPECT_EQ(again.id, id);
  auto retried = **db.claim_next("me", 60000, 1);
  EXPECT_EQ(retried.id, id);
  EXPECT_EQ(retried.attempts, 2);
  EXPECT_EQ(retried.retry_targets, std::vector<std::string>{"bbbbbbbbbbbbbbbb"});
}

TEST_F(StoreTest, OldHistoryIsDeletedInBatchesAndRunningJobsStay) {
  ASSERT_TRUE(db.sync_config({make_site("a"), make_site("b")}));
  std::vector<std::int64_t> finished;
  for (int i = 0; i < 5; ++i) {
    db.enqueue(job_type::backup, site_id("a"));
    auto lease = **db.claim_next("me", 60000, 1);
    ASSERT_TRUE(*db.finish_job(lease, ended(job_status::success)));
    finished.push_back(lease.id);
  }
  auto running = db.enqueue(job_type::backup, site_id("b"))->id;
  ASSERT_TRUE(*db.claim_next("me", 60000, 1));
  auto later = now_ms() + 1000;
  EXPECT_EQ(*db.prune_history(later, 3), 3);
  EXPECT_EQ(*db.prune_history(later, 3), 2);
  EXPECT_EQ(*db.prune_history(later, 3), 0);
  for (auto id : finished) {
    EXPECT_FALSE(*db.get_job(id));
    EXPECT_TRUE(db.list_events(id)->empty());
  }
  EXPECT_TRUE(*db.get_job(running)) << "a running job is never history";
}

TEST_F(StoreTest, TheDatabaseStaysFlatWhenHistoryIsBounded) {
  // 10 sites backed up hourly for 60 simulated days, 10 days of history
  // kept: the file stops growing once the first days are deleted.
  std::vector<site_config> sites;
  for (int i = 0; i < 10; ++i)
    sites.push_back(make_site("s" + std::to_string(i)));
  ASSERT_TRUE(db.sync_config(sites));
  const std::int64_t day = 24 * 3600 * 1000;
  auto page_count = [&] {
    std::int64_t pages = 0;
    sqlite3_exec(
        db.handle(), "PRAGMA page_count",
        [](void* out, int, char** values, char**) {
          *static_cast<std::int64_t*>(out) = std::stoll(values[0]);
          return 0;
        },
        &pages, nullptr);
    return pages;
  };
  std::int64_t at_day_20 = 0;
  for (int d = 0; d < 60; ++d) {
    ASSERT_EQ(sqlite3_exec(db.handle(), "BEGIN", nullptr, nullptr, nullptr), SQLITE_OK);
    for (int h = 0; h < 24; ++h)
      for (int s = 1; s <= 10; ++s) {
        auto t = d * day + h * 3600 * 1000;
        auto sql = "INSERT INTO jobs (site_id, type, status, created_at, started_at, "
                   "finished_at) VALUES (" +
                   std::to_string(s) + ", 'backup', 'success', " + std::to_string(t) +
                   ", " + std::to_string(t) + ", " + std::to_string(t + 60000) + ")";
        ASSERT_EQ(sqlite3_exec(db.handle(), sql.c_str(), nullptr, nullptr, nullptr),
                  SQLITE_OK);
        auto job = sqlite3_last_insert_rowid(db.handle());
        for (int e = 0; e < 8; ++e) {
          auto ev = "INSERT INTO job_events (job_id, ts, level, step, message) VALUES (" +
                    std::to_string(job) + ", " + std::to_string(t) +
                    ", 'ok', 'pull', 'pulled /srv/data (120 files, 4.2 MiB over the "
                    "wire)')";
          ASSERT_EQ(sqlite3_exec(db.handle(), ev.c_str(), nullptr, nullptr, nullptr),
                    SQLITE_OK);
        }
      }
    ASSERT_EQ(sqlite3_exec(db.handle(), "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
    // The daemon's sweep of that day, in batches of 500.
    while (*db.prune_history((d + 1) * day - 10 * day, 500) == 500) {
    }
    if (d == 20) at_day_20 = page_count();
  }
  auto at_day_60 = page_count();
  EXPECT_LE(at_day_60, at_day_20 + at_day_20 / 20)
      << "pages at day 20: " << at_day_20 << ", at day 60: " << at_day_60;
}

TEST_F(StoreTest, AReadOnlyStoreReadsAndNeverWrites) {
  ASSERT_TRUE(db.sync_config({make_site("a")}));
  db.enqueue(job_type::backup, site_id("a"));
  auto ro = store::open_read_only(path);
  ASSERT_TRUE(ro) << ro.err().message;
  EXPECT_EQ(ro->list_sites()->size(), 1u);
  EXPECT_EQ(ro->list_jobs({})->size(), 1u);
  EXPECT_FALSE(ro->enqueue(job_type::backup, site_id("a")));
  EXPECT_EQ(store::open_read_only(tmp / "missing.db").err().code, errc::not_found);
}

TEST_F(StoreTest, LiveProgressIsOneRowPerStepFencedAndGoneWithItsAttempt) {
  ASSERT_TRUE(db.sync_config({make_site("a")}));
  auto id = db.enqueue(job_type::backup, site_id("a"))->id;
  auto lease = **db.claim_next("me", 60000, 1);
  progress p;
  p.step = "pull";
  p.bytes_total = 4000;
  for (std::uint64_t done : {1000, 2000, 3000}) {
    p.bytes_done = done;
    p.fraction = done / 4000.0;
    ASSERT_TRUE(*db.put_progress(id, lease.epoch, "t1", p));
  }
  auto rows = *db.list_progress(id);
  ASSERT_EQ(rows.size(), 1u) << "upserted, no history";
  EXPECT_EQ(rows[0].now.bytes_done, 3000u);
  EXPECT_DOUBLE_EQ(rows[0].now.fraction, 0.75);
  EXPECT_EQ(rows[0].ended_at, 0);

  // A worker of an earlier claim shows nothing.
  EXPECT_FALSE(*db.put_progress(id, lease.epoch - 1, "t1", p));
  // The step's end keeps its last values; the next step is a row of its own.
  p.bytes_done = 4000;
  p.fraction = 1;
  ASSERT_TRUE(*db.put_progress(id, lease.epoch, "t1", p, true));
  p.step = "snapshot";
  p.bytes_done = 10;
  ASSERT_TRUE(*db.put_progress(id, lease.epoch, "t1", p));
  rows = *db.list_progress();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].now.step, "pull");
  EXPECT_GT(rows[0].ended_at, 0);
  EXPECT_DOUBLE_EQ(rows[0].now.fraction, 1.0);
  EXPECT_EQ(rows[1].now.step, "snapshot");

  // The attempt's end deletes them.
  ASSERT_TRUE(*db.retry_job(lease, ended(job_status::failed, "x"), now_ms(), 1000));
  EXPECT_TRUE(db.list_progress()->empty());
  EXPECT_TRUE(db.list_progress(id)->empty());
  // Not while it waits for its retry either.
  EXPECT_FALSE(*db.put_progress(id, lease.epoch, "t1", p));

  // A finished job keeps the last values of its ended steps for its
  // followers (not in the list of running work), and only a while.
  auto again = **db.claim_next("me", 60000, 1);
  ASSERT_EQ(again.id, id);
  p.step = "pull";
  ASSERT_TRUE(*db.put_progress(id, again.epoch, "t1", p, true));
  p.step = "snapshot";
  ASSERT_TRUE(*db.put_progress(id, again.epoch, "t1", p));
  ASSERT_TRUE(*db.finish_job(again, ended(job_status::success)));
  EXPECT_TRUE(db.list_progress()->empty());
  rows = *db.list_progress(id);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].now.step, "pull");
  ASSERT_TRUE(db.recover_jobs(3));
  EXPECT_EQ(db.list_progress(id)->size(), 1u) << "finished just now: kept";
  sqlite3_exec(db.handle(), "UPDATE jobs SET finished_at = finished_at - 11000", nullptr,
               nullptr, nullptr);
  ASSERT_TRUE(db.recover_jobs(3));
  EXPECT_TRUE(db.list_progress(id)->empty());
}

TEST_F(StoreTest, ARestoreIsASiteJobOfItsOwnThatWaitsForTheSitesBackup) {
  ASSERT_TRUE(db.sync_config({make_site("a")}));
  auto a = site_id("a");
  auto backup = *db.enqueue(job_type::backup, a);
  const std::string params = R"({"target":"t1","snapshot":"abc","apply":false})";
  auto first = *db.enqueue(job_type::restore, a, params);
  auto second = *db.enqueue(job_type::restore, a, params);
  EXPECT_FALSE(first.existing);
  EXPECT_NE(first.id, second.id) << "two restore requests are two jobs";
  auto running = *db.claim_next("me", 10000, 4);
  ASSERT_TRUE(running);
  EXPECT_EQ(running->id, backup.id);
  EXPECT_FALSE(*db.claim_next("other", 10000, 4)) << "the site runs its backup";
  job_outcome done;
  done.status = job_status::success;
  ASSERT_TRUE(*db.finish_job(*running, done));
  auto restore = *db.claim_next("me", 10000, 4);
  ASSERT_TRUE(restore);
  EXPECT_EQ(restore->type, job_type::restore);
  EXPECT_EQ(restore->params, params);
  done.status = job_status::failed;
  done.error = "the edge host is down";
  ASSERT_TRUE(*db.finish_job(*restore, done));
  EXPECT_EQ((*db.find_site("a"))->health, "ok")
      << "a restore says nothing about the site's backups";
}

namespace {
/// A restore request's params: applying (`--yes`) or a dry run.
std::string restore_params(bool apply) {
  return std::string{R"({"target_hash":"0123456789abcdef","snapshot_id":"s","apply":)"} +
         (apply ? "true" : "false") + "}";
}
} // namespace

TEST_F(StoreTest, AnApplyingRestoreCutShortEndsFailedWhereADryRunIsQueuedAgain) {
  ASSERT_TRUE(db.sync_config({make_site("a"), make_site("b")}));
  auto apply = db.enqueue(job_type::restore, site_id("a"), restore_params(true))->id;
  auto dry = db.enqueue(job_type::restore, site_id("b"), restore_params(false))->id;
  ASSERT_TRUE(*db.claim_next("dead", 1, 5)); // both with leases that lapse at once
  ASSERT_TRUE(*db.claim_next("dead", 1, 5));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto touched = *db.recover_jobs(3);
  EXPECT_EQ(touched.size(), 2u);
  auto applied = **db.get_job(apply);
  EXPECT_EQ(applied.status, job_status::failed);
  EXPECT_NE(applied.error.find(not_applied_again), std::string::npos) << applied.error;
  EXPECT_EQ((**db.get_job(dry)).status, job_status::queued);

  // A shutdown (or a reload) ends it the same way: never `interrupted`,
  // which the next start would queue again.
  auto again = db.enqueue(job_type::restore, site_id("a"), restore_params(true))->id;
  ASSERT_TRUE(*db.claim_job(again, "me", 60000));
  ASSERT_EQ(*db.interrupt_owned("me", "interrupted: satoru stopped while the job ran"),
            1);
  auto stopped = **db.get_job(again);
  EXPECT_EQ(stopped.status, job_status::failed);
  EXPECT_NE(stopped.error.find(not_applied_again), std::string::npos) << stopped.error;
  ASSERT_TRUE(db.recover_jobs(3));
  EXPECT_EQ((**db.get_job(again)).status, job_status::failed);
}

TEST_F(StoreTest, ACancelEndsAQueuedJobAtOnceAndAsksTheProcessOfARunningOne) {
  ASSERT_TRUE(db.sync_config({make_site("a"), make_site("b")}));
  auto queued = db.enqueue(job_type::backup, site_id("a"), "", "cli:root")->id;
  EXPECT_EQ((**db.get_job(queued)).requested_by, "cli:root");
  auto done = *db.request_cancel(queued, "cli:root");
  EXPECT_EQ(done.status, job_status::cancelled);
  EXPECT_FALSE(done.asked);
  EXPECT_EQ((**db.get_job(queued)).status, job_status::cancelled);
  EXPECT_TRUE(db.request_cancel(queued, "cli:root")->already_ended);
  EXPECT_EQ(db.request_cancel(999, "cli:root").err().code, errc::not_found);

  auto running = db.enqueue(job_type::backup, site_id("b"))->id;
  auto lease = **db.claim_next("me", 60000, 5);
  ASSERT_EQ(lease.id, running);
  EXPECT_TRUE(db.cancel_requests({running})->empty());
  auto asked = *db.request_cancel(running, "console:ana");
  EXPECT_TRUE(asked.asked);
  EXPECT_EQ((**db.get_job(running)).status, job_status::running);
  EXPECT_EQ(*db.cancel_requests({running}), std::vector<std::int64_t>{running});
  // Its attempt failed meanwhile: the cancel wins over the retry.
  job_outcome failed{job_status::failed,
                     "connection refused",
                     failure_kind::transient,
                     {},
                     std::nullopt};
  ASSERT_TRUE(*db.retry_job(lease, failed, now_ms() + 60000, 60000));
  auto ended = **db.get_job(running);
  EXPECT_EQ(ended.status, job_status::cancelled);
  EXPECT_EQ(ended.next_attempt_at, 0);
  EXPECT_EQ(db.list_jobs({site_id("b"), job_status::cancelled, 10})->size(), 1u);
  auto site = **db.find_site("b");
  EXPECT_EQ(site.health, health_unknown) << "a cancelled job says nothing of the site";
}
