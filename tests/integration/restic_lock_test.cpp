// Locks of the dead, with the real restic 0.14: which locks satoru removes
// (only its own dead processes'), which it never touches (live processes,
// other hosts, other users' even when their PID is gone), exclusive commands
// waiting for a live lock, root working on another user's repository as
// that user, and a daemon
// killed with -9 inside restic backup, forget, prune and copy that comes
// back and runs retention and `restic check` with no operator step.

#include "rclone_server.hpp"
#include "satoru_env.hpp"

#include "satoru/plugin_host.hpp"
#include "satoru/process.hpp"
#include "satoru/restic.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace satoru;
using namespace satoru::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

/// The locks in a local repository's `locks` folder. restic writes a lock
/// as `<id>-tmp-<n>` and renames it; a writer killed before the rename
/// leaves that file, which restic ignores (it is no lock: `list locks`,
/// `check` and `prune` pass beside it), so it is not counted.
std::size_t locks_in(const std::string& dir) {
  std::error_code ec;
  std::size_t n = 0;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    n += contains(it->path().filename().string(), "-tmp-") ? 0 : 1;
  return n;
}

/// In a forked child: becomes the command of `spec` (its environment added,
/// as its run_as user).
[[noreturn]] void exec_spec(process_spec& spec) {
  if (spec.run_as && become_user(*spec.run_as) != 0) ::_exit(126);
  for (const auto& [k, v] : spec.env)
    ::setenv(k.c_str(), v.c_str(), 1);
  std::vector<char*> argv;
  for (auto& a : spec.argv)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execvp(argv[0], argv.data());
  ::_exit(127);
}

/// A restic of the test's own that holds a lock: `backup --stdin` blocks
/// reading a pipe that only the test can close. Optionally in its own UTS
/// namespace with another host name (a lock "of another host").
class lock_holder_process {
public:
  /// Starts it; waits until `locks_dir` holds one more lock than before.
  lock_holder_process(const restic_client& client, const std::string& locks_dir,
                      const std::string& other_host = {},
                      std::optional<process_user> as = std::nullopt) {
    auto spec = client.command({"backup", "--stdin", "--stdin-filename", "held"});
    EXPECT_TRUE(spec) << (spec ? "" : spec.err().message);
    if (!spec) return;
    std::string password;
    if (as && !as->keep_capabilities)
      // That user may not read our password file: the value, in its environment.
      for (auto& [key, value] : spec->env)
        if (key == "RESTIC_PASSWORD_FILE" && !value.empty()) {
          std::ifstream in(value);
          std::getline(in, password);
          value.clear();
        }
    if (!password.empty()) spec->env.emplace_back("RESTIC_PASSWORD", password);
    if (as) spec->run_as = std::move(as);
    int fds[2];
    if (::pipe(fds) != 0) return;
    int report[2]; // the child says whether its namespace worked
    if (::pipe(report) != 0) return;
    const auto before = locks_in(locks_dir);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(fds[1]);
      ::close(report[0]);
      ::dup2(fds[0], 0);
      char ok = 1;
      if (!other_host.empty() &&
          (::unshare(CLONE_NEWUTS) != 0 ||
           ::sethostname(other_host.c_str(), other_host.size()) != 0))
        ok = 0;
      ssize_t ignored = ::write(report[1], &ok, 1);
      (void)ignored;
      ::close(report[1]);
      if (!ok) ::_exit(126);
      exec_spec(*spec);
    }
    ::close(fds[0]);
    ::close(report[1]);
    stdin_ = fds[1];
    char ok = 0;
    namespace_ok_ = ::read(report[0], &ok, 1) == 1 && ok == 1;
    ::close(report[0]);
    if (!namespace_ok_) {
      ::waitpid(pid_, nullptr, 0);
      pid_ = 0;
      return;
    }
    // The file appears before restic has written it; readable = really held.
    held_ = wait_until([&] { return locks_in(locks_dir) > before; }, 60s, 10ms) &&
            wait_until(
                [&] {
                  auto all = client.locks();
                  return all &&
                         std::any_of(all->begin(), all->end(),
                                     [&](const restic_lock& l) { return l.pid == pid_; });
                },
                60s, 50ms);
  }
  ~lock_holder_process() {
    if (stdin_ >= 0) ::close(stdin_);
    stdin_ = -1;
    kill9();
    reap();
  }
  bool namespace_ok() const { return namespace_ok_; }
  bool holds() const { return held_; }
  int pid() const { return pid_; }
  /// Closes its stdin: restic saves the (empty) snapshot and unlocks.
  void release() {
    if (stdin_ >= 0 && ::write(stdin_, "held\n", 5) != 5) ADD_FAILURE() << "cannot write";
    if (stdin_ >= 0) ::close(stdin_);
    stdin_ = -1;
  }
  /// SIGKILL without reaping: it stays a zombie until reap().
  void kill9() {
    if (pid_ > 0) ::kill(pid_, SIGKILL);
    siginfo_t info{};
    if (pid_ > 0) ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT);
  }
  int reap() {
    int status = 0;
    if (pid_ > 0) ::waitpid(pid_, &status, 0);
    pid_ = 0;
    return status;
  }

private:
  int pid_ = 0;
  int stdin_ = -1;
  bool held_ = false;
  bool namespace_ok_ = true;
};

struct recorded_event {
  std::string level, step, message;
  boost::json::object data;
};

class recording_sink final : public event_sink {
public:
  std::function<void()> on_event;
  std::vector<recorded_event> events;
  void emit(const std::string& level, const std::string& step, const std::string&,
            const std::string& message, const boost::json::object& data) override {
    events.push_back({level, step, message, data});
    if (on_event) on_event();
  }
};

restic_repository repository_at(const satoru_env& env, const std::string& location) {
  restic_repository r;
  r.location = location;
  r.password = secret_source::from_file(env.password_file());
  r.cache_dir = env.path("cache");
  return r;
}

/// A local repository with one small snapshot.
restic_client local_client(const satoru_env& env) {
  restic_client c{repository_at(env, env.path("repo")), 5min};
  EXPECT_TRUE(c.ensure()); // satoru_env has made it
  fs::create_directories(env.path("data"));
  std::ofstream(env.path("data/f")) << "some data";
  EXPECT_TRUE(c.backup(env.path("data"), {"satoru"}, "satoru"));
  return c;
}

} // namespace

TEST(ResticLocks, ResticsUnlockKeepsAZombiesLockOursRemovesIt) {
  satoru_env env;
  auto client = local_client(env);
  const auto locks = env.path("repo/locks");
  lock_holder_process holder{client, locks};
  ASSERT_TRUE(holder.holds());
  holder.kill9(); // a zombie, like a restic killed with its daemon under an init that
                  // does not reap
  ASSERT_EQ(locks_in(locks), 1u);

  // restic 0.14's own rule: same host and kill(pid, 0) works -> not stale.
  ASSERT_TRUE(client.unlock());
  EXPECT_EQ(locks_in(locks), 1u) << "restic 0.14 now removes a zombie's lock itself";
  auto plain = restic(env, env.path("repo"), {"check"});
  EXPECT_NE(plain.exit_code, 0)
      << "restic check must not pass a lock: " << plain.out << plain.err;

  recording_sink sink;
  client.report_to(&sink);
  auto cleaned = client.clear_dead_locks();
  ASSERT_TRUE(cleaned) << cleaned.err().message;
  ASSERT_EQ(cleaned->removed.size(), 1u);
  EXPECT_EQ(cleaned->removed[0].pid, holder.pid());
  EXPECT_EQ(cleaned->removed[0].hostname, lock_host_name());
  EXPECT_EQ(locks_in(locks), 0u);
  ASSERT_FALSE(sink.events.empty());
  EXPECT_TRUE(contains(sink.events[0].message,
                       "lock of PID " + std::to_string(holder.pid()) + ", uid " +
                           std::to_string(::geteuid()) + ", on host " + lock_host_name()))
      << sink.events[0].message;
  EXPECT_TRUE(contains(sink.events[0].message, "that process of ours is gone"))
      << sink.events[0].message;
  client.report_to(nullptr);
  EXPECT_TRUE(client.check());
}

TEST(ResticLocks, ALiveLockIsKeptAndPruneWaitsForItNamingItsHolder) {
  satoru_env env;
  auto client = local_client(env);
  lock_holder_process holder{client, env.path("repo/locks")};
  ASSERT_TRUE(holder.holds());

  auto cleaned = client.clear_dead_locks();
  ASSERT_TRUE(cleaned) << cleaned.err().message;
  EXPECT_TRUE(cleaned->removed.empty());
  ASSERT_EQ(cleaned->kept.size(), 1u);
  EXPECT_EQ(locks_in(env.path("repo/locks")), 1u);

  // prune needs the exclusive lock: it waits, says whose lock it met, and
  // goes on once the holder is done (released when prune reports the wait).
  recording_sink sink;
  sink.on_event = [&] { holder.release(); };
  client.report_to(&sink);
  auto pruned = client.prune();
  EXPECT_TRUE(pruned) << pruned.err().message;
  ASSERT_FALSE(sink.events.empty());
  const auto& e = sink.events.front();
  EXPECT_EQ(e.step, "restic.lock");
  EXPECT_TRUE(contains(e.message, "restic prune is waiting for the lock of PID " +
                                      std::to_string(holder.pid()) + ", uid " +
                                      std::to_string(::geteuid()) + ", on host " +
                                      lock_host_name() + ", held since "))
      << e.message;
  EXPECT_EQ(e.data.at("pid").as_int64(), holder.pid());
  EXPECT_EQ(e.data.at("uid").as_int64(), static_cast<std::int64_t>(::geteuid()));
  EXPECT_EQ(holder.reap(), 0) << "the holder's backup must have finished normally";
}

TEST(ResticLocks, AnotherHostsDeadLockIsNeverRemoved) {
  satoru_env env;
  auto client = local_client(env);
  lock_holder_process holder{client, env.path("repo/locks"), "satoru-elsewhere"};
  if (!holder.namespace_ok())
    GTEST_SKIP() << "no UTS namespaces here (needs CAP_SYS_ADMIN)";
  ASSERT_TRUE(holder.holds());
  holder.kill9();
  holder.reap(); // gone for good: still another host's lock
  auto cleaned = client.clear_dead_locks();
  ASSERT_TRUE(cleaned) << cleaned.err().message;
  EXPECT_TRUE(cleaned->removed.empty());
  ASSERT_EQ(cleaned->kept.size(), 1u);
  EXPECT_EQ(cleaned->kept[0].hostname, "satoru-elsewhere");
  EXPECT_EQ(locks_in(env.path("repo/locks")), 1u);
}

namespace {

/// The `satoru` system user the package creates (the tests' machine has it).
process_user service_user() {
  auto r = run_process(process_spec{{"id", "-u", "satoru"}});
  auto g = run_process(process_spec{{"id", "-g", "satoru"}});
  process_user u;
  u.uid = r && r->ok() ? static_cast<unsigned>(std::stoul(r->out)) : 65534;
  u.gid = g && g->ok() ? static_cast<unsigned>(std::stoul(g->out)) : 65534;
  u.groups = {u.gid};
  return u;
}

} // namespace

/// Under the unit (ProtectProc=invisible, PrivateUsers=yes) another user's
/// live restic looks exactly like this: its PID does not exist for us. Its
/// lock waits for restic's 30 minutes; it is never removed early.
TEST(ResticLocks, AnotherUsersLockIsKeptEvenWhenItsPidIsGone) {
  satoru_env env;
  auto client = local_client(env);
  const auto user = service_user();
  ASSERT_NE(user.uid, ::geteuid());
  // A repository that user may write too (restic 0.14 has no ACLs of its own).
  ASSERT_EQ(run_shell("chmod -R a+rwX '" + env.path("repo") + "' '" + env.path("cache") +
                      "' && chmod a+rx '" + env.path("") + "'"),
            0);
  const auto locks = env.path("repo/locks");
  lock_holder_process holder{client, locks, {}, user};
  ASSERT_TRUE(holder.holds());
  holder.kill9();
  holder.reap(); // gone for good: still not ours to judge

  recording_sink sink;
  client.report_to(&sink);
  auto cleaned = client.clear_dead_locks();
  ASSERT_TRUE(cleaned) << cleaned.err().message;
  EXPECT_TRUE(cleaned->removed.empty());
  ASSERT_EQ(cleaned->kept.size(), 1u);
  EXPECT_EQ(cleaned->kept[0].uid, static_cast<std::int64_t>(user.uid));
  EXPECT_EQ(locks_in(locks), 1u) << "another user's lock was removed early";

  // prune waits for it, naming it, until its deadline: never goes past it.
  restic_client impatient{client.repository(), 3s};
  impatient.report_to(&sink);
  auto pruned = impatient.prune();
  ASSERT_FALSE(pruned);
  EXPECT_EQ(pruned.err().code, errc::busy) << pruned.err().message;
  ASSERT_FALSE(sink.events.empty());
  EXPECT_TRUE(contains(sink.events.back().message,
                       "restic prune is waiting for the lock of PID " +
                           std::to_string(cleaned->kept[0].pid) + ", uid " +
                           std::to_string(user.uid)))
      << sink.events.back().message;
  EXPECT_EQ(locks_in(locks), 1u);
}

/// Root (an operator's `satoru restore`) on a repository the service user
/// owns: restic runs as that owner, keeping root's powers, so every file it
/// makes there is the owner's and the owner's restic can read its locks;
/// the restored files still get the snapshot's owners.
TEST(ResticLocks, RootWorksOnAnotherUsersRepositoryAsItsOwner) {
  ASSERT_EQ(::geteuid(), 0u) << "this is about root";
  satoru_env env;
  const auto user = service_user();
  ASSERT_EQ(run_shell("chmod a+rx '" + env.path("") + "' && mkdir -p '" +
                      env.path("cache") + "' && chown -R " + std::to_string(user.uid) +
                      ":" + std::to_string(user.gid) + " '" + env.path("repo") + "' '" +
                      env.path("cache") + "' '" + env.password_file() + "'"),
            0);
  restic_client client{repository_at(env, env.path("repo")), 5min};
  auto as = client.repository_user();
  ASSERT_TRUE(as) << "root must not run restic in another user's repository";
  EXPECT_EQ(as->uid, user.uid);
  EXPECT_EQ(client.lock_uid(), static_cast<std::int64_t>(user.uid));

  // Data only root may read, of another owner: the snapshot keeps the owner.
  fs::create_directories(env.path("data"));
  std::ofstream(env.path("data/f")) << "some data";
  ASSERT_EQ(::chown(env.path("data/f").c_str(), 4321, 4321), 0);
  ::chmod(env.path("data/f").c_str(), 0640);
  ::chmod(env.path("data").c_str(), 0700);
  ASSERT_TRUE(client.backup(env.path("data"), {"satoru"}, "satoru"));

  // Its lock, held: the owner's own restic reads it and is refused by it
  // (with root's lock it stalled reading, then pruned beside it).
  const auto locks = env.path("repo/locks");
  {
    lock_holder_process holder{client, locks}; // as client.command() says
    ASSERT_TRUE(holder.holds());
    EXPECT_TRUE(not_owned_by(locks, user.uid).empty());
    auto owners_prune = client.command({"prune"});
    ASSERT_TRUE(owners_prune);
    owners_prune->run_as = user; // the daemon: that user, no capabilities
    owners_prune->timeout = 60s;
    auto r = run_process(*owners_prune);
    ASSERT_TRUE(r) << r.err().message;
    EXPECT_NE(r->exit_code, 0) << "the owner's prune ran beside root's lock";
    EXPECT_TRUE(contains(r->err, "repository is already locked")) << r->err;
    auto cleaned = client.clear_dead_locks();
    ASSERT_TRUE(cleaned) << cleaned.err().message;
    EXPECT_TRUE(cleaned->removed.empty()) << "a live lock was removed";
    // Killed: a lock of the uid we run restic as, its process gone: ours to remove.
    holder.kill9();
    holder.reap();
    cleaned = client.clear_dead_locks();
    ASSERT_TRUE(cleaned) << cleaned.err().message;
    EXPECT_EQ(cleaned->removed.size(), 1u);
    EXPECT_EQ(locks_in(locks), 0u);
  }

  auto snaps = client.snapshots({"satoru"});
  ASSERT_TRUE(snaps && snaps->size() == 1);
  const auto target = env.path("restored");
  fs::create_directories(target);
  ASSERT_TRUE(client.restore(snaps->front().id, env.path("data"), target));
  struct stat st {};
  ASSERT_EQ(::stat((target + "/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 4321u) << "the restored file lost the snapshot's owner";
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  ASSERT_TRUE(client.prune());
  ASSERT_TRUE(client.check());

  const auto foreign = not_owned_by(env.path("repo"), user.uid);
  EXPECT_TRUE(foreign.empty()) << "owned by someone else: " << foreign.front();
  const auto foreign_cache = not_owned_by(env.path("cache"), user.uid);
  EXPECT_TRUE(foreign_cache.empty())
      << "owned by someone else: " << foreign_cache.front();
}

TEST(ResticLocks, ACancelledResticLeavesNoLock) {
  satoru_env env;
  auto client = local_client(env);
  const auto locks = env.path("repo/locks");
  bool cancelled = false;
  for (int attempt = 0; attempt < 5 && !cancelled; ++attempt) {
    // New data each time, enough that the backup still runs when its lock
    // appears (an unchanged folder would be done at once).
    fs::create_directories(env.path("big"));
    ASSERT_EQ(
        run_shell("head -c 100000000 /dev/urandom > '" + env.path("big/blob") + "'"), 0);
    cancel_token token;
    std::thread watcher{[&] {
      wait_until([&] { return locks_in(locks) > 0; }, 60s, 5ms);
      token.cancel();
    }};
    auto r = client.backup(env.path("big"), {"satoru"}, "satoru", token);
    watcher.join();
    cancelled = !r && r.err().code == errc::cancelled;
  }
  ASSERT_TRUE(cancelled) << "the backup always finished before its cancel";
  // restic 0.14 dies on SIGTERM without removing its lock; the client did.
  EXPECT_EQ(locks_in(locks), 0u);
  EXPECT_TRUE(client.check());
}

/// The daemon's metrics refresh reads with --no-lock: beside an exclusive
/// lock it still reads, and it leaves no lock of its own (a refresh killed
/// with a stopping daemon once left one that failed the next `restic check`).
TEST(ResticLocks, TheMetricsReadsTakeNoLockAndWorkBesideAnExclusiveOne) {
  satoru_env env;
  auto client = local_client(env);
  const auto locks = env.path("repo/locks");
  auto spec = client.command({"prune"});
  ASSERT_TRUE(spec);
  const pid_t pruner = ::fork();
  if (pruner == 0) {
    exec_spec(*spec);
  }
  // Stopped as soon as its exclusive lock is in place (restic writes a
  // `<id>-tmp-<n>` file first and renames it): prune now holds it.
  auto written = [&] {
    std::error_code ec;
    for (fs::directory_iterator it(locks, ec), end; !ec && it != end; it.increment(ec))
      if (!contains(it->path().filename().string(), "-tmp-") &&
          fs::file_size(it->path(), ec) > 0)
        return true;
    return ::waitpid(pruner, nullptr, WNOHANG) != 0; // ended: give up
  };
  const bool held = wait_until(written, 60s, 1ms) && ::kill(pruner, 0) == 0;
  ::kill(pruner, SIGSTOP);
  struct reaper {
    pid_t pid;
    ~reaper() {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } reap{pruner};
  ASSERT_TRUE(held) << "restic prune never wrote its lock";
  ASSERT_EQ(locks_in(locks), 1u);

  auto locked = client.snapshots({"satoru"});
  EXPECT_FALSE(locked) << "a plain read must meet prune's exclusive lock";

  client.read_without_lock();
  auto exists = client.exists();
  ASSERT_TRUE(exists) << exists.err().message;
  EXPECT_TRUE(*exists);
  auto snaps = client.snapshots({"satoru"});
  ASSERT_TRUE(snaps) << snaps.err().message;
  EXPECT_EQ(snaps->size(), 1u);
  auto stats = client.stats();
  ASSERT_TRUE(stats) << stats.err().message;
  EXPECT_GT(stats->total_size, 0);
  EXPECT_EQ(locks_in(locks), 1u) << "the reads must leave only prune's lock";
}

TEST(ResticLocks, AZombiesLockOnARestRemoteIsRemovedThere) {
  satoru_env env;
  rclone_server remote;
  ASSERT_TRUE(remote.start(env.path("b2"))) << remote.last_error();
  auto location = remote.repository("fleet");
  restic_client client{repository_at(env, location), 5min};
  ASSERT_TRUE(client.init());
  const auto locks = env.path("b2/fleet/locks");
  lock_holder_process holder{client, locks};
  ASSERT_TRUE(holder.holds());
  holder.kill9();
  ASSERT_TRUE(client.unlock());
  ASSERT_EQ(locks_in(locks), 1u) << "restic 0.14 now removes a zombie's lock itself";

  auto cleaned = client.clear_dead_locks();
  ASSERT_TRUE(cleaned) << cleaned.err().message;
  EXPECT_EQ(cleaned->removed.size(), 1u);
  EXPECT_TRUE(cleaned->left.empty());
  EXPECT_EQ(locks_in(locks), 0u);
  auto check = restic(env, location, {"check"});
  EXPECT_EQ(check.exit_code, 0) << check.err;
}

// --- the daemon killed with -9 inside restic ------------------------------

namespace {

/// A `restic` first in PATH that, once, stops inside the named subcommand
/// after restic took its lock (restic keeps running, stopped), and marks that
/// it did: the test then kills the daemon at exactly that point. Its settings
/// are written into the script: satoru gives its children only the
/// environment they need, so a variable of the test would not reach it.
void write_restic_shim(const std::string& dir, const std::string& stop_in,
                       const std::string& mark, const std::string& locks) {
  fs::create_directories(dir);
  const std::string real = find_in_path("restic");
  std::string script = R"SH(#!/bin/sh
SATORU_TEST_STOP_IN=@STOP_IN@
SATORU_TEST_MARK=@MARK@
SATORU_TEST_LOCKS=@LOCKS@
if [ "$1" = "$SATORU_TEST_STOP_IN" ] && [ ! -e "$SATORU_TEST_MARK" ]; then
  # A lock in place, not restic's `<id>-tmp-<n>` file before its rename.
  count() { find "$SATORU_TEST_LOCKS" -type f -size +0 ! -name '*-tmp-*' 2>/dev/null | wc -l; }
  before=$(count)
  REAL "$@" &
  child=$!
  while [ "$(count)" -le "$before" ]; do
    kill -0 $child 2>/dev/null || { wait $child; exit $?; }
    sleep 0.02
  done
  kill -STOP $child
  touch "$SATORU_TEST_MARK"
  wait $child
  exit $?
fi
exec REAL "$@"
)SH";
  auto fill = [&](const std::string& name, const std::string& value) {
    auto quoted = satoru::shell_quote(value);
    for (auto pos = script.find(name); pos != std::string::npos;
         pos = script.find(name, pos + quoted.size()))
      script.replace(pos, name.size(), quoted);
  };
  fill("REAL", real);
  fill("@STOP_IN@", stop_in);
  fill("@MARK@", mark);
  fill("@LOCKS@", locks);
  std::ofstream(dir + "/restic") << script;
  ::chmod((dir + "/restic").c_str(), 0755);
}

} // namespace

class KilledInsideRestic : public ::testing::TestWithParam<std::string> {};

TEST_P(KilledInsideRestic, NextStartRunsRetentionAndCheckWithNoOperatorStep) {
  const std::string subcommand = GetParam();
  satoru_env env;
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  rclone_server remote;
  ASSERT_TRUE(remote.start(env.path("b2"))) << remote.last_error();
  auto dir = host.remote_root() + "/data";
  ASSERT_EQ(host.sh("mkdir -p '" + dir + "' && head -c 1000000 /dev/urandom > '" + dir +
                    "/blob'"),
            0);
  env.add_site("edge", host, {{"directory", dir}});
  const auto offsite = remote.repository("fleet");
  env.config["restic_b2_repository"] = offsite;
  env.config["restic_retention_policy"] = {{"keep_last", 1}};
  env.write_config();
  // Snapshots to forget and prune, and an off-site repository to copy to.
  for (int i = 0; i < 2; ++i) {
    host.write_file(dir + "/n", std::to_string(i));
    ASSERT_EQ(env.run({"run", "edge", "--wait"}).exit_code, 0);
  }
  ASSERT_EQ(env.run({"sync", "--wait"}).exit_code, 0);
  // New data the backup takes a while to read, so that its lock lives long
  // enough for the shim to see it (an unchanged tree is done in milliseconds).
  if (subcommand == "backup") {
    ASSERT_EQ(host.sh("head -c 30000000 /dev/urandom > '" + dir + "/blob'"), 0);
  }

  const auto local_locks = env.path("repo/locks");
  const auto remote_locks = env.path("b2/fleet/locks");
  const auto watched = subcommand == "copy" ? remote_locks : local_locks;
  write_restic_shim(env.path("shim"), subcommand, env.path("stopped"), watched);
  scoped_env path{"PATH", env.path("shim") + ":" + std::getenv("PATH")};

  daemon_process daemon{env};
  daemon.start();
  const std::vector<std::string> job =
      subcommand == "backup" ? std::vector<std::string>{"run", "edge"}
      : subcommand == "copy" ? std::vector<std::string>{"sync"}
                             : std::vector<std::string>{"prune"};
  ASSERT_EQ(env.run(job).exit_code, 0);
  ASSERT_TRUE(wait_until([&] { return fs::exists(env.path("stopped")); }, 120s))
      << daemon.log();
  daemon.kill9();
  ASSERT_GE(locks_in(watched), 1u) << "restic's lock must be left behind by the kill";

  // The next start: the interrupted job runs again, retention runs, and
  // nobody unlocked anything by hand.
  daemon.start();
  auto retention = env.run({"prune", "--wait"});
  EXPECT_EQ(retention.exit_code, 0) << retention.out << retention.err << daemon.log();
  auto sync = env.run({"sync", "--wait"});
  EXPECT_EQ(sync.exit_code, 0) << sync.out << sync.err;
  EXPECT_EQ(daemon.stop(), 0);
  EXPECT_EQ(locks_in(local_locks), 0u);
  EXPECT_EQ(locks_in(remote_locks), 0u);
  auto local_check = restic(env, env.path("repo"), {"check"});
  EXPECT_EQ(local_check.exit_code, 0) << local_check.err;
  auto remote_check = restic(env, offsite, {"check"});
  EXPECT_EQ(remote_check.exit_code, 0) << remote_check.err;
}

INSTANTIATE_TEST_SUITE_P(ResticSubcommands, KilledInsideRestic,
                         ::testing::Values("backup", "forget", "prune", "copy"));
