// Which restic locks satoru may remove: only those whose holder it can
// prove gone (this host, its own uid, no such process), and those restic
// itself calls stale (30 minutes without a refresh). Real processes (a
// live child, a zombie, a reaped one, another user's) for the probe;
// restic 0.14's own message texts for the conflict decoder.

#include "satoru/restic.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <sys/wait.h>
#include <unistd.h>

using namespace satoru;

namespace {

constexpr std::int64_t minute = 60 * 1000;
/// The uid satoru's restic runs as, in these cases.
constexpr std::int64_t own = 1000;
/// Another user's (root's restore, a person's restic).
constexpr std::int64_t other = 0;
constexpr std::int64_t t = 1'700'000'000'000;

restic_lock lock_of(const std::string& host, std::int64_t pid, std::int64_t time_ms,
                    std::int64_t uid = own) {
  restic_lock l;
  l.id = std::string(64, 'a');
  l.hostname = host;
  l.username = "satoru";
  l.pid = pid;
  l.uid = uid;
  l.time_ms = time_ms;
  return l;
}

process_probe alive(std::int64_t uid, std::int64_t started_ms,
                    std::string name = "restic") {
  process_probe p;
  p.exists = true;
  p.visible = true;
  p.uid = uid;
  p.started_ms = started_ms;
  p.name = std::move(name);
  return p;
}

/// A PID that exists but /proc does not show (ProtectProc=invisible).
process_probe hidden() {
  process_probe p;
  p.exists = true;
  return p;
}

/// classify_lock a minute after `lock` was written, as uid `own` on "here".
lock_holder judged(const restic_lock& lock, const process_probe& process,
                   std::int64_t now = t + minute) {
  return classify_lock(lock, "here", own, process, now);
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

TEST(ResticLockClassify, ALockOfAnotherHostWaitsUntilStale) {
  process_probe gone; // no such PID here: still not ours to judge
  EXPECT_EQ(judged(lock_of("other", 4242, t), gone), lock_holder::other_host);
  EXPECT_EQ(judged(lock_of("other", 4242, t), gone, t + 29 * minute),
            lock_holder::other_host);
  EXPECT_EQ(judged(lock_of("other", 4242, t), gone, t + 31 * minute), lock_holder::stale);
}

TEST(ResticLockClassify, AnUnknownHostNameMatchesNothing) {
  EXPECT_EQ(classify_lock(lock_of("", 4242, t), "", own, process_probe{}, t),
            lock_holder::other_host);
  EXPECT_EQ(classify_lock(lock_of("here", 4242, t), "", own, process_probe{}, t),
            lock_holder::other_host);
}

TEST(ResticLockClassify, AnotherUsersLockIsNeverTakenForDeadBeforeItIsStale) {
  // Its PID does not exist for us, is hidden from our /proc, or shows as
  // nobody (PrivateUsers=yes): none of it proves that restic gone.
  EXPECT_EQ(judged(lock_of("here", 4242, t, other), process_probe{}),
            lock_holder::other_user);
  EXPECT_EQ(judged(lock_of("here", 4242, t, other), hidden()), lock_holder::other_user);
  EXPECT_EQ(judged(lock_of("here", 4242, t, other), alive(65534, t - 5)),
            lock_holder::other_user);
  auto zombie = alive(other, t - 5);
  zombie.zombie = true;
  EXPECT_EQ(judged(lock_of("here", 4242, t, other), zombie), lock_holder::other_user);
  // restic's own rule: 30 minutes without a refresh.
  EXPECT_EQ(judged(lock_of("here", 4242, t, other), process_probe{}, t + 29 * minute),
            lock_holder::other_user);
  EXPECT_EQ(judged(lock_of("here", 4242, t, other), process_probe{}, t + 31 * minute),
            lock_holder::stale);
  EXPECT_TRUE(removable(lock_holder::stale));
  EXPECT_FALSE(removable(lock_holder::other_user));
}

TEST(ResticLockClassify, ALiveProcessOfOursIsNeverRemoved) {
  EXPECT_EQ(judged(lock_of("here", 4242, t), alive(own, t - 5)), lock_holder::live);
  // However old its lock: a visible restic of ours refreshes it (or is stopped).
  EXPECT_EQ(judged(lock_of("here", 4242, t), alive(own, t - 5), t + 600 * minute),
            lock_holder::live);
  // restic itself, started after the lock: clocks may lie, so it stays live.
  EXPECT_EQ(judged(lock_of("here", 4242, t), alive(own, t + 60 * minute)),
            lock_holder::live);
  // Not restic but started just after it: within the margin, so live.
  EXPECT_EQ(judged(lock_of("here", 4242, t), alive(own, t + 2000, "bash")),
            lock_holder::live);
  // A PID that exists but is hidden: not provably gone.
  EXPECT_EQ(judged(lock_of("here", 4242, t), hidden()), lock_holder::live);
  // A PID without a usable lock: not provably dead.
  EXPECT_EQ(judged(lock_of("here", 0, t), process_probe{}), lock_holder::live);
  EXPECT_FALSE(removable(lock_holder::live));
}

TEST(ResticLockClassify, AGoneOrZombieProcessOfOursIsDead) {
  EXPECT_EQ(judged(lock_of("here", 4242, t), process_probe{}), lock_holder::dead);
  auto zombie = alive(own, t - 5);
  zombie.zombie = true;
  EXPECT_EQ(judged(lock_of("here", 4242, t), zombie), lock_holder::dead);
  EXPECT_TRUE(removable(lock_holder::dead));
}

TEST(ResticLockClassify, APidReusedByAProcessOfOursIsDeadByAnyoneElseNot) {
  // Not restic, ours, and started long after the lock was written.
  EXPECT_EQ(judged(lock_of("here", 4242, t), alive(own, t + 60 * minute, "bash")),
            lock_holder::dead);
  // Another user's process has the PID now: that proves nothing (it may be
  // our restic as a user namespace maps it); restic's 30 minutes apply.
  EXPECT_EQ(judged(lock_of("here", 4242, t), alive(other, t - 5)), lock_holder::live);
  EXPECT_EQ(judged(lock_of("here", 4242, t), alive(other, t - 5), t + 31 * minute),
            lock_holder::stale);
}

TEST(ResticLockProbe, SeesThisProcessAsAlive) {
  auto p = probe_process(::getpid());
  EXPECT_TRUE(p.exists);
  EXPECT_TRUE(p.visible);
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
  const auto me = static_cast<std::int64_t>(::getuid());
  auto lock = lock_of(lock_host_name(), pid, zombie.started_ms + 100, me);
  EXPECT_EQ(classify_lock(lock, lock_host_name(), me, zombie, lock.time_ms),
            lock_holder::dead);

  ASSERT_EQ(::waitpid(pid, nullptr, 0), pid);
  auto gone = probe_process(pid);
  EXPECT_FALSE(gone.exists);
  EXPECT_EQ(classify_lock(lock, lock_host_name(), me, gone, lock.time_ms),
            lock_holder::dead);
  // The same lock written by another uid: kept until stale.
  lock.uid = me + 1;
  EXPECT_EQ(classify_lock(lock, lock_host_name(), me, gone, lock.time_ms),
            lock_holder::other_user);
}

TEST(ResticLockProbe, ALiveChildsLockIsLive) {
  pid_t pid = sleeper();
  ASSERT_GT(pid, 0);
  auto p = probe_process(pid);
  const auto me = static_cast<std::int64_t>(::getuid());
  auto lock = lock_of(lock_host_name(), pid, p.started_ms + 100, me);
  EXPECT_EQ(classify_lock(lock, lock_host_name(), me, p, lock.time_ms),
            lock_holder::live);
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

TEST(ResticLockHolder, NamesPidUidHostAndTime) {
  auto lock = lock_of("vm", 4711, 1'796'699'520'000, 0);
  EXPECT_EQ(lock.holder(), "lock of PID 4711, uid 0, on host vm, held since "
                           "2026-12-08T03:12:00Z");
  lock.exclusive = true;
  EXPECT_EQ(lock.holder().rfind("exclusive lock of PID 4711", 0), 0u);
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
