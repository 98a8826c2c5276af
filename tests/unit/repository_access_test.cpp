#include "satoru/actors/repository_access.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using satoru::actors::repository_access;

namespace {

/// Records which work started, in order.
struct recorder {
  repository_access access;
  std::vector<std::string> started;
  void submit(const std::string& name, bool exclusive) {
    access.submit(exclusive, [this, name] { started.push_back(name); });
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
  r.access.done(false);
  EXPECT_EQ(r.started.size(), 2u);
  r.access.done(false);
  ASSERT_EQ(r.started.size(), 3u);
  EXPECT_EQ(r.started.back(), "retention");
  EXPECT_TRUE(r.access.exclusive_running());
  // Work arriving while retention runs waits; it is not refused.
  r.submit("snapshot-c", false);
  r.submit("copy", false);
  EXPECT_EQ(r.started.size(), 3u);
  EXPECT_EQ(r.access.waiting(), 2u);
  r.access.done(true);
  EXPECT_EQ(r.started, (std::vector<std::string>{"snapshot-a", "snapshot-b", "retention",
                                                 "snapshot-c", "copy"}));
}

TEST(RepositoryAccess, AWaitingRetentionIsNotStarvedByLaterSnapshots) {
  recorder r;
  r.submit("snapshot-a", false);
  r.submit("retention", true);
  r.submit("snapshot-b", false); // arrives after retention: queued behind it
  EXPECT_EQ(r.started, (std::vector<std::string>{"snapshot-a"}));
  r.access.done(false);
  EXPECT_EQ(r.started, (std::vector<std::string>{"snapshot-a", "retention"}));
  r.access.done(true);
  EXPECT_EQ(r.started,
            (std::vector<std::string>{"snapshot-a", "retention", "snapshot-b"}));
}

TEST(RepositoryAccess, ExclusiveWorkNeverOverlapsOtherExclusiveWork) {
  recorder r;
  r.submit("init", true);
  r.submit("retention", true);
  EXPECT_EQ(r.started, (std::vector<std::string>{"init"}));
  r.access.done(true);
  EXPECT_EQ(r.started, (std::vector<std::string>{"init", "retention"}));
}

TEST(RepositoryAccess, WorkWhoseJobEndedWhileItWaitedNeverStarts) {
  repository_access access;
  std::vector<std::string> started, dropped;
  access.submit(true, [&] { started.push_back("retention"); });
  satoru::cancel_token snapshot_job;
  access.submit(
      false, [&] { started.push_back("snapshot"); }, snapshot_job,
      [&] { dropped.push_back("snapshot"); });
  access.submit(false, [&] { started.push_back("copy"); });
  ASSERT_EQ(started, std::vector<std::string>{"retention"});
  // The snapshot's job timed out (its token is cancelled) while it waited.
  snapshot_job.cancel();
  access.sweep();
  EXPECT_EQ(dropped, std::vector<std::string>{"snapshot"}) << "answered at once";
  EXPECT_EQ(access.waiting(), 1u);
  access.done(true);
  EXPECT_EQ(started, (std::vector<std::string>{"retention", "copy"}))
      << "the cancelled snapshot never ran";
}
