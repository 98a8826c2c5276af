#include "satoru/actors/repository_access.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using satoru::actors::access_kind;
using satoru::actors::repository_access;

namespace {

/// Records which work started, in order.
struct recorder {
  explicit recorder(int max_snapshots = 8)
      : access(max_snapshots) {}
  repository_access access;
  std::vector<std::string> started;
  void submit(const std::string& name, bool exclusive) {
    submit(name, exclusive ? access_kind::exclusive : access_kind::shared);
  }
  void submit(const std::string& name, access_kind kind) {
    access.submit(kind, [this, name] { started.push_back(name); });
  }
};

} // namespace

TEST(RepositoryAccess, SharedWorkRunsSideBySide) {
  recorder r;
  r.submit("snapshot-a", false);
  r.submit("snapshot-b", false);
  r.submit("copy", false);
  EXPECT_EQ(r.started, (std::vector<std::string>{"snapshot-a", "snapshot-b", "copy"}));
  EXPECT_EQ(r.access.shared_running(), 3);
}

TEST(RepositoryAccess, RetentionWaitsForRunningSnapshotsAndThenRunsAlone) {
  recorder r;
  r.submit("snapshot-a", false);
  r.submit("snapshot-b", false);
  r.submit("retention", true);
  EXPECT_EQ(r.started.size(), 2u) << "retention must wait for both snapshots";
  r.access.done(access_kind::shared);
  EXPECT_EQ(r.started.size(), 2u);
  r.access.done(access_kind::shared);
  ASSERT_EQ(r.started.size(), 3u);
  EXPECT_EQ(r.started.back(), "retention");
  EXPECT_TRUE(r.access.exclusive_running());
  // Work arriving while retention runs waits; it is not refused.
  r.submit("snapshot-c", false);
  r.submit("copy", false);
  EXPECT_EQ(r.started.size(), 3u);
  EXPECT_EQ(r.access.waiting(), 2u);
  r.access.done(access_kind::exclusive);
  EXPECT_EQ(r.started, (std::vector<std::string>{"snapshot-a", "snapshot-b", "retention",
                                                 "snapshot-c", "copy"}));
}

TEST(RepositoryAccess, AWaitingRetentionIsNotStarvedByLaterSnapshots) {
  recorder r;
  r.submit("snapshot-a", false);
  r.submit("retention", true);
  r.submit("snapshot-b", false); // arrives after retention: queued behind it
  EXPECT_EQ(r.started, (std::vector<std::string>{"snapshot-a"}));
  r.access.done(access_kind::shared);
  EXPECT_EQ(r.started, (std::vector<std::string>{"snapshot-a", "retention"}));
  r.access.done(access_kind::exclusive);
  EXPECT_EQ(r.started,
            (std::vector<std::string>{"snapshot-a", "retention", "snapshot-b"}));
}

TEST(RepositoryAccess, ExclusiveWorkNeverOverlapsOtherExclusiveWork) {
  recorder r;
  r.submit("init", true);
  r.submit("retention", true);
  EXPECT_EQ(r.started, (std::vector<std::string>{"init"}));
  r.access.done(access_kind::exclusive);
  EXPECT_EQ(r.started, (std::vector<std::string>{"init", "retention"}));
}

TEST(RepositoryAccess, WorkWhoseJobEndedWhileItWaitedNeverStarts) {
  repository_access access;
  std::vector<std::string> started, dropped;
  access.submit(access_kind::exclusive, [&] { started.push_back("retention"); });
  satoru::cancel_token snapshot_job;
  access.submit(
      access_kind::shared, [&] { started.push_back("snapshot"); }, snapshot_job,
      [&] { dropped.push_back("snapshot"); });
  access.submit(access_kind::shared, [&] { started.push_back("copy"); });
  ASSERT_EQ(started, std::vector<std::string>{"retention"});
  // The snapshot's job timed out (its token is cancelled) while it waited.
  snapshot_job.cancel();
  access.sweep();
  EXPECT_EQ(dropped, std::vector<std::string>{"snapshot"}) << "answered at once";
  EXPECT_EQ(access.waiting(), 1u);
  access.done(access_kind::exclusive);
  EXPECT_EQ(started, (std::vector<std::string>{"retention", "copy"}))
      << "the cancelled snapshot never ran";
}

// restic 0.14 stalls a starting backup for ~42 s when another's lock file
// vanishes under its lock check: snapshots are bounded, the rest is not held
// up by them, and retention still waits for every snapshot queued before it.
TEST(RepositoryAccess, SnapshotsAreBoundedAndOtherSharedWorkPassesThem) {
  recorder r(2);
  r.submit("snapshot-a", access_kind::snapshot);
  r.submit("snapshot-b", access_kind::snapshot);
  r.submit("snapshot-c", access_kind::snapshot);
  r.submit("copy", access_kind::shared);
  EXPECT_EQ(r.started, (std::vector<std::string>{"snapshot-a", "snapshot-b", "copy"}));
  EXPECT_EQ(r.access.snapshots_running(), 2);
  EXPECT_EQ(r.access.shared_running(), 3);
  r.submit("retention", access_kind::exclusive);
  r.submit("listing", access_kind::shared);
  r.access.done(access_kind::shared); // the copy: no snapshot slot is free yet
  EXPECT_EQ(r.started.size(), 3u);
  r.access.done(access_kind::snapshot);
  EXPECT_EQ(r.started.back(), "snapshot-c");
  EXPECT_EQ(r.access.snapshots_running(), 2);
  r.access.done(access_kind::snapshot);
  r.access.done(access_kind::snapshot);
  EXPECT_EQ(r.started.back(), "retention") << "it waited for all three snapshots";
  EXPECT_TRUE(r.access.exclusive_running());
  r.access.done(access_kind::exclusive);
  EXPECT_EQ(r.started.back(), "listing");
  EXPECT_EQ(r.access.waiting(), 0u);
}

TEST(RepositoryAccess, AtLeastTwoSnapshotsAtOnceByDefault) {
  EXPECT_GE(repository_access::default_max_snapshots(), 2);
  EXPECT_EQ(repository_access(0).max_snapshots(), 1);
}
