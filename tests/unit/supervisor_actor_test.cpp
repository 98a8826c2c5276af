#include "satoru/actors/scheduler_actor.hpp"
#include "satoru/actors/site_actor.hpp"
#include "satoru/actors/store_actor.hpp"
#include "satoru/actors/supervisor_actor.hpp"
#include "satoru/identity.hpp"
#include "satoru/time.hpp"

#include "edge_host.hpp"

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <vector>

using namespace satoru;
using namespace satoru::actors;

namespace {

/// A site actor that also takes orders from the test: "end job N with this
/// outcome" (promises must be delivered from inside the actor), or "crash".
using fake_site_actor =
    site_actor::extend<caf::reacts_to<done_atom, std::int64_t, job_outcome>,
                       caf::reacts_to<shutdown_atom>>;

/// What the fake site actors saw, in order; the test ends their jobs.
struct site_log {
  std::vector<std::int64_t> started; ///< job ids in start order
  std::map<std::int64_t, caf::typed_response_promise<job_outcome>> open;
  std::map<std::int64_t, std::string> site_of;
  std::map<std::int64_t, fake_site_actor> actor_of;
  std::map<std::int64_t, cancel_token> token_of;
  std::map<std::int64_t, job_row> lease_of;
};

struct fake_site_state {
  static inline const char* name = "fake_site";
};

/// Stands in for a site actor: records the job and leaves it running until
/// the test ends it.
fake_site_actor::behavior_type
fake_site(fake_site_actor::stateful_pointer<fake_site_state> self,
          std::shared_ptr<site_log> log, std::string site) {
  return {
      [=](run_atom, const job_row& job, cancel_token token) -> caf::result<job_outcome> {
        log->started.push_back(job.id);
        log->site_of[job.id] = site;
        auto rp = self->make_response_promise<job_outcome>();
        log->open[job.id] = rp;
        log->actor_of[job.id] = self;
        log->token_of[job.id] = token;
        log->lease_of[job.id] = job;
        return rp;
      },
      [=](expire_atom, cancel_token token) { token.cancel(); },
      [=](done_atom, std::int64_t job_id, const job_outcome& outcome) {
        auto it = log->open.find(job_id);
        if (it == log->open.end()) return;
        it->second.deliver(outcome);
        log->open.erase(it);
      },
      [=](shutdown_atom) {
        // A crash drops the actor's state, its open promises with it (the
        // requester hears of a broken promise).
        for (auto it = log->open.begin(); it != log->open.end();)
          it = log->site_of[it->first] == site ? log->open.erase(it) : std::next(it);
        self->quit(caf::sec::runtime_error);
      },
  };
}

job_outcome outcome(job_status status, failure_kind failure = failure_kind::none,
                    std::string error = "") {
  return job_outcome{status, std::move(error), failure, {}, std::nullopt};
}

site_config site_named(const std::string& name) {
  site_config s;
  s.name = name;
  s.uuid = derive_site_uuid(name);
  s.host = "127.0.0.1";
  s.user = "root";
  return s;
}

struct SupervisorActor : ::testing::Test {
  static caf::actor_system_config& testing(caf::actor_system_config& cfg) {
    cfg.set("scheduler.policy", caf::atom("testing"));
    return cfg;
  }

  satoru::testing::temp_dir tmp{"satoru-supervisor"};
  std::shared_ptr<store> db;    ///< the store actor's connection
  std::unique_ptr<store> check; ///< the test's own connection
  runtime_config cfg;
  caf::actor_system sys{testing(cfg)};
  caf::scheduler::test_coordinator& sched =
      dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  std::shared_ptr<site_log> log = std::make_shared<site_log>();
  runtime_context ctx;
  store_actor store_handle;
  supervisor_actor supervisor;
  std::map<std::string, std::int64_t> site_ids;

  void start(int sites, int concurrency, int busy_timeout_ms = 10000) {
    auto c = std::make_shared<config>();
    c->job_worker_concurrency = concurrency;
    c->retry_max_attempts = 3;
    c->retry_initial_delay_seconds = 0; // retries are due at once
    c->retry_max_delay_seconds = 0;
    for (int i = 0; i < sites; ++i)
      c->sites.push_back(site_named("s" + std::to_string(i)));
    ctx.cfg = c;
    ctx.owner = "test-owner";
    db = std::make_shared<store>(
        std::move(*store::open(tmp / "satoru.db", busy_timeout_ms)));
    check = std::make_unique<store>(std::move(*store::open(tmp / "satoru.db")));
    ASSERT_TRUE(db->sync_config(c->sites));
    for (auto& s : *check->list_sites())
      site_ids[s.name] = s.id;
    store_handle =
        sys.spawn(store_behavior, db, ctx.owner, std::string{}, 3, ctx.lease_ms);
  }

  void spawn_supervisor() {
    auto l = log;
    site_factory factory = [l](caf::local_actor* parent, const runtime_context&,
                               const site_config& site) {
      return caf::actor_cast<site_actor>(
          parent->spawn<caf::linked>(fake_site, l, site.name));
    };
    supervisor = sys.spawn(supervisor_behavior, ctx, store_handle, restic_actor{},
                           sync_actor{}, factory, std::int64_t{0});
    sched.run();
  }

  std::int64_t enqueue(job_type type, const std::string& site) {
    return check->enqueue(type, site_ids[site])->id;
  }

  /// Ends a running job's attempt the way a site actor does, then lets the
  /// supervisor react (it writes the end).
  void complete(std::int64_t job_id, job_outcome result = outcome(job_status::success)) {
    caf::anon_send(log->actor_of[job_id], done_atom::value, job_id, result);
    sched.run();
  }

  job_row row(std::int64_t id) { return **check->get_job(id); }

  std::vector<std::string> steps(std::int64_t id) {
    std::vector<std::string> out;
    for (const auto& e : *check->list_events(id))
      out.push_back(e.step);
    return out;
  }

  void poll() {
    caf::anon_send(supervisor, poll_atom::value);
    sched.run();
  }

  ~SupervisorActor() override {
    if (supervisor) caf::anon_send_exit(supervisor, caf::exit_reason::kill);
    if (store_handle) caf::anon_send_exit(store_handle, caf::exit_reason::kill);
    sched.run();
  }
};

} // namespace

TEST_F(SupervisorActor, ASiteNeverRunsTwoJobsAtOnce) {
  start(2, 4);
  auto p = enqueue(job_type::preflight, "s0");
  auto b = enqueue(job_type::backup, "s0");
  spawn_supervisor();
  poll();
  ASSERT_EQ(log->started, (std::vector<std::int64_t>{p}));
  complete(p);
  ASSERT_EQ(log->started, (std::vector<std::int64_t>{p, b}));
}

TEST_F(SupervisorActor, RunsAtMostTheConfiguredNumberOfJobs) {
  start(5, 2);
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 5; ++i)
    ids.push_back(enqueue(job_type::backup, "s" + std::to_string(i)));
  spawn_supervisor();
  poll();
  EXPECT_EQ(log->open.size(), 2u);
  complete(ids[0]);
  EXPECT_EQ(log->open.size(), 2u);
  EXPECT_EQ(log->started.size(), 3u);
  complete(ids[1]);
  complete(ids[2]);
  complete(ids[3]);
  EXPECT_EQ(log->started.size(), 5u);
  EXPECT_EQ(log->open.size(), 1u);
  // Sites differ, so they ran side by side up to the cap.
  std::set<std::string> sites;
  for (auto& [id, site] : log->site_of)
    sites.insert(site);
  EXPECT_EQ(sites.size(), 5u);
}

TEST_F(SupervisorActor, ClaimsJobsInFifoOrder) {
  start(4, 1);
  std::vector<std::int64_t> ids = {
      enqueue(job_type::backup, "s2"), enqueue(job_type::backup, "s0"),
      enqueue(job_type::preflight, "s3"), enqueue(job_type::backup, "s1")};
  spawn_supervisor();
  poll();
  for (auto id : ids) {
    ASSERT_EQ(log->started.back(), id);
    complete(id);
  }
  EXPECT_EQ(log->started, ids);
}

TEST_F(SupervisorActor, DuplicateRequestsRunOnce) {
  start(1, 2);
  auto first = enqueue(job_type::backup, "s0");
  auto second = enqueue(job_type::backup, "s0");
  EXPECT_EQ(first, second);
  spawn_supervisor();
  poll();
  complete(first);
  poll();
  EXPECT_EQ(log->started, (std::vector<std::int64_t>{first}));
  EXPECT_TRUE(log->open.empty());
}

TEST_F(SupervisorActor, ShutdownMarksRunningJobsInterrupted) {
  start(2, 2);
  auto a = enqueue(job_type::backup, "s0");
  auto b = enqueue(job_type::backup, "s1");
  spawn_supervisor();
  poll();
  ASSERT_EQ(log->open.size(), 2u);
  caf::anon_send(supervisor, shutdown_atom::value);
  sched.run();
  // The fake sites answer like real ones do when their token is cancelled.
  for (auto id : {a, b})
    caf::anon_send(log->actor_of[id], done_atom::value, id,
                   outcome(job_status::interrupted));
  sched.run();
  EXPECT_EQ((**check->get_job(a)).status, job_status::interrupted);
  EXPECT_EQ((**check->get_job(b)).status, job_status::interrupted);
  // A new start queues them again.
  EXPECT_EQ(check->recover_jobs(3)->size(), 2u);
  EXPECT_EQ((**check->get_job(a)).status, job_status::queued);
}

TEST_F(SupervisorActor, TheSupervisorWritesTheEndAndTheSiteHealth) {
  start(1, 1);
  auto id = enqueue(job_type::backup, "s0");
  spawn_supervisor();
  poll();
  complete(id,
           outcome(job_status::warning, failure_kind::permanent, "one target failed"));
  auto job = row(id);
  EXPECT_EQ(job.status, job_status::warning);
  EXPECT_NE(job.error.find("permanent failure: not retried"), std::string::npos);
  auto site = **check->find_site("s0");
  EXPECT_EQ(site.health, "warning");
  EXPECT_GT(site.last_backup_at, 0);
  EXPECT_GT(site.last_success_at, 0) << "a warning is a backup that happened";
}

TEST_F(SupervisorActor, TransientFailuresAreRetriedUntilTheBudgetIsUsed) {
  start(1, 1);
  ctx.cfg = [&] {
    auto c = std::make_shared<config>(*ctx.cfg);
    c->retry_initial_delay_seconds = 3600; // a wait the test shortens itself
    c->retry_max_delay_seconds = 3600;
    return c;
  }();
  auto id = enqueue(job_type::backup, "s0");
  spawn_supervisor();
  poll();
  for (int attempt = 1; attempt <= 3; ++attempt) {
    ASSERT_EQ(log->started.size(), static_cast<std::size_t>(attempt));
    EXPECT_EQ(log->lease_of[id].attempts, attempt);
    complete(id,
             outcome(job_status::failed, failure_kind::transient, "connection refused"));
    if (attempt < 3) {
      auto job = row(id);
      EXPECT_EQ(job.status, job_status::queued) << "attempt " << attempt;
      EXPECT_EQ(job.failed_attempts, attempt);
      EXPECT_GT(job.next_attempt_at, 0);
      EXPECT_EQ(steps(id).back(), "retry");
      poll();
      EXPECT_EQ(log->started.size(), static_cast<std::size_t>(attempt))
          << "a retry waits for its time";
      ASSERT_EQ(sqlite3_exec(check->handle(), "UPDATE jobs SET next_attempt_at = 1",
                             nullptr, nullptr, nullptr),
                SQLITE_OK);
      poll();
    }
  }
  auto job = row(id);
  EXPECT_EQ(job.status, job_status::failed);
  EXPECT_NE(job.error.find("gave up after 3 attempts"), std::string::npos) << job.error;
  EXPECT_EQ(log->started.size(), 3u);
}

TEST_F(SupervisorActor, PermanentFailuresAreNotRetried) {
  start(1, 1);
  auto id = enqueue(job_type::backup, "s0");
  spawn_supervisor();
  poll();
  complete(id, outcome(job_status::failed, failure_kind::permanent, "host key changed"));
  poll();
  EXPECT_EQ(row(id).status, job_status::failed);
  EXPECT_EQ(log->started.size(), 1u);
}

TEST_F(SupervisorActor, AnEndThatCannotBeWrittenIsWrittenLater) {
  start(2, 1, /*busy_timeout_ms=*/20);
  auto a = enqueue(job_type::backup, "s0");
  auto b = enqueue(job_type::backup, "s0");
  ASSERT_EQ(a, b);
  auto other = enqueue(job_type::backup, "s1");
  spawn_supervisor();
  poll();
  ASSERT_EQ(log->started, (std::vector<std::int64_t>{a}));
  // Another process holds the write lock: the end cannot be written now.
  ASSERT_EQ(sqlite3_exec(check->handle(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr),
            SQLITE_OK);
  complete(a);
  EXPECT_EQ(row(a).status, job_status::running);
  ASSERT_EQ(sqlite3_exec(check->handle(), "COMMIT", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sched.trigger_timeouts(); // the supervisor's retry of the write
  sched.run();
  EXPECT_EQ(row(a).status, job_status::success);
  // The slot is free again: the other site's job runs.
  EXPECT_EQ(log->started, (std::vector<std::int64_t>{a, other}));
}

TEST_F(SupervisorActor, AnEndNeverWrittenIsGivenUpAndRecovered) {
  ctx.lease_ms = 200;
  start(1, 1, /*busy_timeout_ms=*/20);
  auto id = enqueue(job_type::backup, "s0");
  spawn_supervisor();
  poll();
  ASSERT_EQ(sqlite3_exec(check->handle(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr),
            SQLITE_OK);
  complete(id);
  // The lease runs out (by the supervisor's own clock) while the write fails.
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  sched.trigger_timeouts();
  sched.run();
  ASSERT_EQ(sqlite3_exec(check->handle(), "COMMIT", nullptr, nullptr, nullptr),
            SQLITE_OK);
  EXPECT_EQ(row(id).status, job_status::running) << "nothing was written";
  // Given up: no more renewals, so the lease lapses and recovery takes it.
  auto before = row(id).lease_until;
  caf::anon_send(supervisor, heartbeat_atom::value);
  sched.run();
  EXPECT_EQ(row(id).lease_until, before) << "a given-up job's lease is not renewed";
  auto recovered = *check->recover_jobs(3);
  EXPECT_EQ(recovered, std::vector<std::int64_t>{id});
  poll();
  EXPECT_EQ(log->started, (std::vector<std::int64_t>{id, id})) << "the site runs again";
}

TEST_F(SupervisorActor, ALostLeaseCancelsTheJobAndWritesNothing) {
  start(1, 1);
  auto id = enqueue(job_type::backup, "s0");
  spawn_supervisor();
  poll();
  // Another process recovered the job and claimed it (a new epoch).
  ASSERT_EQ(sqlite3_exec(check->handle(),
                         "UPDATE jobs SET owner = 'elsewhere', epoch = epoch + 1",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  caf::anon_send(supervisor, heartbeat_atom::value);
  sched.run();
  EXPECT_TRUE(log->token_of[id].cancelled());
  complete(id, outcome(job_status::success));
  auto job = row(id);
  EXPECT_EQ(job.status, job_status::running);
  EXPECT_EQ(job.owner, "elsewhere");
}

TEST_F(SupervisorActor, RenewsOnlyTheLeasesOfJobsItRuns) {
  start(2, 1);
  auto mine = enqueue(job_type::backup, "s0");
  spawn_supervisor();
  poll();
  // A running row with our owner id that no actor of ours works on (say,
  // a finish that was given up): its lease must lapse.
  auto orphan_id = enqueue(job_type::backup, "s1");
  auto orphan = **check->claim_job(orphan_id, ctx.owner, 1000);
  auto before = row(orphan.id).lease_until;
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  caf::anon_send(supervisor, heartbeat_atom::value);
  sched.run();
  EXPECT_EQ(row(orphan.id).lease_until, before);
  EXPECT_GT(row(mine).lease_until, before);
}

TEST_F(SupervisorActor, ACrashedSiteActorIsReplacedAndItsJobRetried) {
  start(1, 1);
  auto id = enqueue(job_type::backup, "s0");
  spawn_supervisor();
  poll();
  auto crashed = log->actor_of[id];
  caf::anon_send(crashed, shutdown_atom::value);
  sched.run();
  // A crash is transient: the attempt failed and (no delay here) the retry
  // runs at once, on a new actor.
  EXPECT_EQ(row(id).failed_attempts, 1);
  auto history = steps(id);
  EXPECT_NE(std::find(history.begin(), history.end(), "retry"), history.end());
  ASSERT_EQ(log->started, (std::vector<std::int64_t>{id, id}));
  EXPECT_NE(log->actor_of[id], crashed) << "a new actor runs the site";
  complete(id);
  EXPECT_EQ(row(id).status, job_status::success);
}

TEST(BackupOutcome, FollowsThePlan) {
  auto t = [](const char* hash, job_status s, failure_kind f = failure_kind::none) {
    target_result r;
    r.target_hash = hash;
    r.status = s;
    r.failure = f;
    return r;
  };
  using js = job_status;
  EXPECT_EQ(backup_outcome({t("a", js::success), t("b", js::success)}, {}).status,
            js::success);
  EXPECT_EQ(backup_outcome({t("a", js::success), t("b", js::failed)}, {}).status,
            js::warning);
  EXPECT_EQ(backup_outcome({t("a", js::success), t("b", js::warning)}, {}).status,
            js::warning);
  EXPECT_EQ(backup_outcome({t("a", js::failed), t("b", js::failed)}, {}).status,
            js::failed);
  EXPECT_EQ(backup_outcome({}, {}).status, js::failed);
}

TEST(BackupOutcome, ARetryPullsOnlyTheTransientlyFailedTargets) {
  auto result = [](const char* hash, job_status status, failure_kind failure) {
    target_result r;
    r.target_hash = hash;
    r.status = status;
    r.failure = failure;
    return r;
  };
  auto ok = result("a", job_status::success, failure_kind::none);
  auto flaky = result("b", job_status::failed, failure_kind::transient);
  auto broken = result("c", job_status::failed, failure_kind::permanent);
  auto first = backup_outcome({ok, flaky, broken}, {});
  EXPECT_EQ(first.status, job_status::warning);
  EXPECT_EQ(first.failure, failure_kind::transient);
  EXPECT_EQ(first.retry_targets, std::vector<std::string>{"b"});
  ASSERT_TRUE(first.carried_status);
  EXPECT_EQ(*first.carried_status, job_status::warning) << "a ok, c failed";
  // The retry pulls b alone; a's success and c's failure carry forward.
  flaky.status = job_status::success;
  auto second = backup_outcome({flaky}, first.carried_status);
  EXPECT_EQ(second.status, job_status::warning);
  EXPECT_TRUE(second.retry_targets.empty());
  // All failed, only permanently: nothing to retry.
  auto none = backup_outcome({broken}, {});
  EXPECT_EQ(none.status, job_status::failed);
  EXPECT_EQ(none.failure, failure_kind::permanent);
}

TEST(SchedulerJitter, SpreadsManySitesOverSeconds) {
  std::mt19937_64 rng{42};
  auto delays = jitter_delays(100, std::chrono::seconds{60}, rng);
  ASSERT_EQ(delays.size(), 100u);
  std::map<std::int64_t, int> per_second;
  for (auto d : delays) {
    EXPECT_GE(d.count(), 0);
    EXPECT_LT(d.count(), 25000); // 100 sites × 250 ms
    ++per_second[d.count() / 1000];
  }
  int busiest = 0;
  for (auto& [sec, n] : per_second)
    busiest = std::max(busiest, n);
  EXPECT_LE(busiest, 15) << "100 sites must not start in the same second";
  EXPECT_GE(per_second.size(), 15u);
  auto few = jitter_delays(2, std::chrono::seconds{60}, rng);
  for (auto d : few)
    EXPECT_LT(d.count(), 500) << "a few sites start soon";
}

// A reload (SIGHUP) replaces the config under running jobs without touching
// them: each finishes on the actor it started on, with its first attempt;
// the jobs after it run on new actors, an added site's included.
TEST_F(SupervisorActor, AReloadLetsRunningJobsFinishAndGivesSitesNewActors) {
  start(2, 4);
  auto a = enqueue(job_type::backup, "s0");
  auto b = enqueue(job_type::backup, "s1");
  spawn_supervisor();
  poll();
  ASSERT_EQ(log->open.size(), 2u);

  // s1 removed while its job runs, s2 added.
  auto next = std::make_shared<config>(*ctx.cfg);
  next->sites = {site_named("s0"), site_named("s2")};
  ASSERT_TRUE(check->sync_config(next->sites));
  for (auto& s : *check->list_sites())
    site_ids[s.name] = s.id;
  auto reloaded = ctx;
  reloaded.cfg = next;
  caf::anon_send(supervisor, reload_atom::value, reloaded);
  sched.run();
  EXPECT_FALSE(log->token_of[a].cancelled());
  EXPECT_FALSE(log->token_of[b].cancelled());
  complete(a);
  complete(b);
  for (auto id : {a, b}) {
    EXPECT_EQ(row(id).status, job_status::success);
    EXPECT_EQ(row(id).attempts, 1);
  }

  auto again = enqueue(job_type::backup, "s0");
  auto added = enqueue(job_type::backup, "s2");
  poll();
  ASSERT_EQ(log->open.size(), 2u);
  EXPECT_NE(log->actor_of[again], log->actor_of[a]) << "s0 got a new actor";
  EXPECT_EQ(log->site_of[added], "s2");
  complete(again);
  complete(added);
  EXPECT_EQ(row(added).status, job_status::success);
}
