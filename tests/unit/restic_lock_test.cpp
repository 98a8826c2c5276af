// Which restic locks satoru may remove: only those of its own dead
// processes. Real processes (a live child, a zombie, a reaped one) for the
// /proc probe; restic 0.14's own message texts for the conflict decoder.

#include "satoru/restic.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <sys/wait.h>
#include <unistd.h>

using namespace satoru;

namespace {

constexpr std::int64_t minute = 60 * 1000;

restic_lock lock_of(const std::string& host, std::int64_t pid, std::int64_t time_ms) {
  restic_lock l;
  l.id = std::string(64, 'a');
  l.hostname = host;
  l.username = "satoru";
  l.pid = pid;
  l.uid = 1000;
  l.time_ms = time_ms;
  return l;
}

process_probe alive(std::int64_t uid, std::int64_t started_ms,
                    std::string name = "restic") {
  process_probe p;
  p.exists = true;
  p.uid = uid;
  p.started_ms = started_ms;
  p.name = std::move(name);
  return p;
}

/// A forked child that sleeps until killed.
pid_t sleeper() {
  pid_t pid = ::fork();
  if (pid == 0) {
    for (;;)
      ::pause();
  }
  return pid;
}

} // namespace

TEST(ResticLockClassify, ALockOfAnotherHostIsNeverOurs) {
  const std::int64_t t = 1'700'000'000'000;
  process_probe gone; // no such PID here: still not ours to judge
  EXPECT_EQ(classify_lock(lock_of("other", 4242, t), "here", gone),
            lock_holder::other_host);
  EXPECT_EQ(classify_lock(lock_of("other", 4242, t - 600 * minute), "here", gone),
            lock_holder::other_host);
}

TEST(ResticLockClassify, AnUnknownHostNameMatchesNothing) {
  EXPECT_EQ(classify_lock(lock_of("", 4242, 1), "", process_probe{}),
            lock_holder::other_host);
  EXPECT_EQ(classify_lock(lock_of("here", 4242, 1), "", process_probe{}),
            lock_holder::other_host);
}

TEST(ResticLockClassify, ALiveProcessOfThisHostIsNeverRemoved) {
  const std::int64_t t = 1'700'000'000'000;
  // However old the lock: restic refreshes it, and we never take a live one.
  EXPECT_EQ(classify_lock(lock_of("here", 4242, t), "here", alive(1000, t - 5)),
            lock_holder::live);
  EXPECT_EQ(classify_lock(lock_of("here", 4242, t - 600 * minute), "here",
                          alive(1000, t - 601 * minute)),
            lock_holder::live);
  // restic itself, started after the lock: clocks may lie, so it stays live.
  EXPECT_EQ(classify_lock(lock_of("here", 4242, t), "here", alive(1000, t + 60 * minute)),
            lock_holder::live);
  // A PID without a usable lock: not provably dead.
  EXPECT_EQ(classify_lock(lock_of("here", 0, t), "here", process_probe{}),
            lock_holder::live);
}

TEST(ResticLockClassify, AGoneOrZombieProcessOfThisHostIsDead) {
  const std::int64_t t = 1'700'000'000'000;
  EXPECT_EQ(classify_lock(lock_of("here", 4242, t), "here", process_probe{}),
            lock_holder::dead);
  auto zombie = alive(1000, t - 5);
  zombie.zombie = true;
  EXPECT_EQ(classify_lock(lock_of("here", 4242, t), "here", zombie), lock_holder::dead);
}

TEST(ResticLockClassify, AReusedPidIsDead) {
  const std::int64_t t = 1'700'000'000'000;
  // Another user's process now has the PID.
  EXPECT_EQ(classify_lock(lock_of("here", 4242, t), "here", alive(0, t - 5)),
            lock_holder::dead);
  // Not restic, and started long after the lock was written.
  EXPECT_EQ(classify_lock(lock_of("here", 4242, t), "here",
                          alive(1000, t + 60 * minute, "bash")),
            lock_holder::dead);
  // Not restic but started just after it: within the margin, so live.
  EXPECT_EQ(
      classify_lock(lock_of("here", 4242, t), "here", alive(1000, t + 2000, "bash")),
      lock_holder::live);
}

TEST(ResticLockProbe, SeesThisProcessAsAlive) {
  auto p = probe_process(::getpid());
  EXPECT_TRUE(p.exists);
  EXPECT_FALSE(p.zombie);
  EXPECT_EQ(p.uid, static_cast<std::int64_t>(::getuid()));
  EXPECT_GT(p.started_ms, 0);
  EXPECT_FALSE(p.name.empty());
}

TEST(ResticLockProbe, AKilledChildIsAZombieUntilReapedThenGone) {
  pid_t pid = sleeper();
  ASSERT_GT(pid, 0);
  auto live = probe_process(pid);
  EXPECT_TRUE(live.exists);
  EXPECT_FALSE(live.zombie);

  ::kill(pid, SIGKILL);
  // Not reaped yet: a zombie (what a restic killed with its daemon is under
  // an init that does not reap). Wait for the state without reaping.
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT), 0);
  auto zombie = probe_process(pid);
  EXPECT_TRUE(zombie.exists);
  EXPECT_TRUE(zombie.zombie);
  auto lock = lock_of(lock_host_name(), pid, zombie.started_ms + 100);
  lock.uid = static_cast<std::int64_t>(::getuid());
  EXPECT_EQ(classify_lock(lock, lock_host_name(), zombie), lock_holder::dead);

  ASSERT_EQ(::waitpid(pid, nullptr, 0), pid);
  auto gone = probe_process(pid);
  EXPECT_FALSE(gone.exists);
  EXPECT_EQ(classify_lock(lock, lock_host_name(), gone), lock_holder::dead);
}

TEST(ResticLockProbe, ALiveChildsLockIsLive) {
  pid_t pid = sleeper();
  ASSERT_GT(pid, 0);
  auto p = probe_process(pid);
  auto lock = lock_of(lock_host_name(), pid, p.started_ms + 100);
  lock.uid = static_cast<std::int64_t>(::getuid());
  EXPECT_EQ(classify_lock(lock, lock_host_name(), p), lock_holder::live);
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

TEST(ResticLockHost, IsTheKernelsHostName) {
  char buf[256] = {};
  ASSERT_EQ(::gethostname(buf, sizeof buf - 1), 0);
  EXPECT_EQ(lock_host_name(), std::string(buf));
}

TEST(ResticLockConflict, DecodesResticsExclusiveLockMessage) {
  // restic 0.14.0's stderr when `prune` meets a running `check`.
  const std::string err =
      "unable to create lock in backend: repository is already locked exclusively by "
      "PID 7396 on vm by root (UID 0, GID 0)\n"
      "lock was created at 2026-11-28 06:46:38 (1.065198464s ago)\n"
      "storage ID f4e67cb1\n"
      "the `unlock` command can be used to remove stale locks\n";
  auto c = parse_lock_conflict(err);
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->exclusive);
  EXPECT_EQ(c->pid, 7396);
  EXPECT_EQ(c->hostname, "vm");
  EXPECT_EQ(c->age_ms, 1065);
  EXPECT_EQ(c->storage_id, "f4e67cb1");
  EXPECT_EQ(c->describe(), "exclusive lock of PID 7396 on host vm, 1.1 s old");
}

TEST(ResticLockConflict, DecodesASharedLockWithALongAge) {
  const std::string err =
      "unable to create lock in backend: repository is already locked by PID 34 on "
      "e6c74f26c33b by satoru (UID 1000, GID 1000)\n"
      "lock was created at 2025-10-26 07:46:54 (11h32m41.00453619s ago)\n"
      "storage ID 405aaee2\n";
  auto c = parse_lock_conflict(err);
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->exclusive);
  EXPECT_EQ(c->pid, 34);
  EXPECT_EQ(c->hostname, "e6c74f26c33b");
  EXPECT_EQ(c->age_ms, (11 * 3600 + 32 * 60 + 41) * 1000 + 4);
  EXPECT_EQ(c->storage_id, "405aaee2");
}

TEST(ResticLockConflict, OtherErrorsAreNoConflict) {
  EXPECT_FALSE(parse_lock_conflict("Fatal: wrong password or no key found\n"));
  EXPECT_FALSE(parse_lock_conflict("repository is already locked by PID x on y"));
}
