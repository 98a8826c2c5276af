#include "satoru/actors/scheduler_actor.hpp"
#include "satoru/actors/site_actor.hpp"
#include "satoru/actors/store_actor.hpp"
#include "satoru/actors/supervisor_actor.hpp"
#include "satoru/identity.hpp"

#include "edge_host.hpp"

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <vector>

using namespace satoru;
using namespace satoru::actors;

namespace {

/// A site actor that also takes orders from the test: "finish job N with
/// this status" (promises must be delivered from inside the actor).
using fake_site_actor = site_actor::extend<caf::reacts_to<done_atom, std::int64_t, std::string>>;

/// What the fake site actors saw, in order; the test finishes their jobs.
struct site_log {
  std::vector<std::int64_t> started;                       ///< job ids in start order
  std::map<std::int64_t, caf::typed_response_promise<job_outcome>> open;
  std::map<std::int64_t, std::string> site_of;
  std::map<std::int64_t, fake_site_actor> actor_of;
};

struct fake_site_state {
  static inline const char* name = "fake_site";
};

/// Stands in for a site actor: records the job and leaves it running until
/// the test completes it.
fake_site_actor::behavior_type fake_site(fake_site_actor::stateful_pointer<fake_site_state> self,
                                         std::shared_ptr<site_log> log, std::string site) {
  return {
    [=](run_atom, const job_ticket& job, cancel_token) -> caf::result<job_outcome> {
      log->started.push_back(job.job_id);
      log->site_of[job.job_id] = site;
      auto rp = self->make_response_promise<job_outcome>();
      log->open[job.job_id] = rp;
      log->actor_of[job.job_id] = self;
      return rp;
    },
    [=](done_atom, std::int64_t job_id, const std::string& status) {
      auto it = log->open.find(job_id);
      if (it == log->open.end()) return;
      it->second.deliver(job_outcome{job_id, status, ""});
      log->open.erase(it);
    },
  };
}

site_config make_site(const std::string& name) {
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
  std::shared_ptr<store> db;       ///< the store actor's connection
  std::unique_ptr<store> check;    ///< the test's own connection
  runtime_config cfg;
  caf::actor_system sys{testing(cfg)};
  caf::scheduler::test_coordinator& sched =
    dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  std::shared_ptr<site_log> log = std::make_shared<site_log>();
  runtime_context ctx;
  store_actor store_handle;
  supervisor_actor supervisor;
  std::map<std::string, std::int64_t> site_ids;

  void start(int sites, int concurrency) {
    auto c = std::make_shared<config>();
    c->job_worker_concurrency = concurrency;
    for (int i = 0; i < sites; ++i) c->sites.push_back(make_site("s" + std::to_string(i)));
    ctx.cfg = c;
    ctx.owner = "test-owner";
    db = std::make_shared<store>(std::move(*store::open(tmp / "satoru.db")));
    check = std::make_unique<store>(std::move(*store::open(tmp / "satoru.db")));
    ASSERT_TRUE(db->sync_config(c->sites));
    for (auto& s : *check->list_sites()) site_ids[s.name] = s.id;
    store_handle = sys.spawn(store_behavior, db, ctx.owner, std::string{}, 3, std::int64_t{60000});
  }

  void spawn_supervisor() {
    auto l = log;
    site_factory factory = [l](caf::local_actor* parent, const site_config& site) {
      return caf::actor_cast<site_actor>(parent->spawn<caf::linked>(fake_site, l, site.name));
    };
    supervisor = sys.spawn(supervisor_behavior, ctx, store_handle, restic_actor{}, sync_actor{},
                           factory, std::int64_t{0});
    sched.run();
  }

  std::int64_t enqueue(job_type type, const std::string& site) {
    return check->enqueue(type, site_ids[site])->id;
  }

  /// Finishes a running job the way a site actor does, then lets the
  /// supervisor react.
  void complete(std::int64_t job_id) {
    ASSERT_TRUE(*check->finish_job(job_id, ctx.owner, job_status::success, ""));
    caf::anon_send(log->actor_of[job_id], done_atom::value, job_id, std::string{"success"});
    sched.run();
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
  for (int i = 0; i < 5; ++i) ids.push_back(enqueue(job_type::backup, "s" + std::to_string(i)));
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
  for (auto& [id, site] : log->site_of) sites.insert(site);
  EXPECT_EQ(sites.size(), 5u);
}

TEST_F(SupervisorActor, ClaimsJobsInFifoOrder) {
  start(4, 1);
  std::vector<std::int64_t> ids = {enqueue(job_type::backup, "s2"), enqueue(job_type::backup, "s0"),
                                   enqueue(job_type::preflight, "s3"),
                                   enqueue(job_type::backup, "s1")};
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
    caf::anon_send(log->actor_of[id], done_atom::value, id, std::string{"interrupted"});
  sched.run();
  EXPECT_EQ((**check->get_job(a)).status, job_status::interrupted);
  EXPECT_EQ((**check->get_job(b)).status, job_status::interrupted);
  // A new start queues them again.
  EXPECT_EQ(check->recover_jobs(3)->size(), 2u);
  EXPECT_EQ((**check->get_job(a)).status, job_status::queued);
}

TEST(BackupStatus, FollowsThePlan) {
  auto t = [](const char* s) {
    target_outcome o;
    o.status = s;
    return o;
  };
  EXPECT_EQ(backup_status({t("success"), t("success")}), "success");
  EXPECT_EQ(backup_status({t("success"), t("failed")}), "warning");
  EXPECT_EQ(backup_status({t("success"), t("warning")}), "warning");
  EXPECT_EQ(backup_status({t("failed"), t("failed")}), "failed");
  EXPECT_EQ(backup_status({}), "failed");
}

TEST(SchedulerJitter, SpreadsManySitesOverSeconds) {
  std::mt19937_64 rng{42};
  auto delays = jitter_delays(100, std::chrono::seconds{60}, rng);
  ASSERT_EQ(delays.size(), 100u);
  std::map<std::int64_t, int> per_second;
  for (auto d : delays) {
    EXPECT_GE(d.count(), 0);
    EXPECT_LT(d.count(), 25000);      // 100 sites × 250 ms
    ++per_second[d.count() / 1000];
  }
  int busiest = 0;
  for (auto& [sec, n] : per_second) busiest = std::max(busiest, n);
  EXPECT_LE(busiest, 15) << "100 sites must not start in the same second";
  EXPECT_GE(per_second.size(), 15u);
  auto few = jitter_delays(2, std::chrono::seconds{60}, rng);
  for (auto d : few) EXPECT_LT(d.count(), 500) << "a few sites start soon";
}
