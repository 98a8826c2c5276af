// satoru::restic_client against the real restic binary (0.14 on Debian 12),
// with temporary repositories and `rclone serve restic` as the REST remote.

#include "edge_host.hpp"
#include "rclone_server.hpp"
#include "satoru/restic.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace satoru;
using namespace satoru::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

constexpr auto restic_timeout = std::chrono::milliseconds(5min);

/// Incompressible bytes, so data_added reflects what was really stored.
std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string out(n, '\0');
  for (auto& c : out)
    c = static_cast<char>(gen() & 0xff);
  return out;
}

/// Relative path -> content ("<dir>" for folders) of everything under root.
std::map<std::string, std::string> contents_of(const std::string& root) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root);
       it != fs::recursive_directory_iterator(); ++it) {
    std::string rel = fs::relative(it->path(), root).string();
    out[rel] = it->is_directory() ? "<dir>" : read_file(it->path().string());
  }
  return out;
}

bool one_line(const std::string& text) {
  return !text.empty() && text.find('\n') == std::string::npos;
}

/// A temp folder with a password file (0600), a local repository path and
/// a cache folder, plus a staging-like layout for backups.
class ResticTest : public ::testing::Test {
protected:
  void SetUp() override {
    write_text(tmp_ / "password", "correct horse battery staple\n", 0600);
    repo_.location = tmp_ / "repo";
    repo_.password = secret_source::from_file(tmp_ / "password");
    repo_.cache_dir = tmp_ / "repo-cache";
  }

  restic_client client() const { return restic_client(repo_, restic_timeout); }

  /// Creates and initialises the local repository.
  restic_client ready_client() const {
    restic_client c = client();
    auto ok = c.init();
    EXPECT_TRUE(ok) << ok.err().message;
    return c;
  }

  /// A staging folder for a target with a few files.
  std::string make_staging(const std::string& target, unsigned seed) const {
    std::string dir = tmp_ / ("staging/site-a/" + target);
    write_text(dir + "/big.bin", random_bytes(300 * 1024, seed));
    write_text(dir + "/notes.txt", "target " + target + "\n");
    write_text(dir + "/sub/deeper/c.txt", "deep " + std::to_string(seed) + "\n");
    return dir;
  }

  temp_dir tmp_{"satoru-restic"};
  restic_repository repo_;
};

TEST_F(ResticTest, ResticVersionIsReported) {
  auto v = restic_client::version();
  ASSERT_TRUE(v) << v.err().message;
  EXPECT_EQ(v->rfind("restic ", 0), 0u) << *v;
}

TEST_F(ResticTest, ResticExistsIsFalseUntilInit) {
  auto c = client();
  auto before = c.exists();
  ASSERT_TRUE(before) << before.err().message;
  EXPECT_FALSE(*before);

  auto init = c.init();
  ASSERT_TRUE(init) << init.err().message;
  auto after = c.exists();
  ASSERT_TRUE(after) << after.err().message;
  EXPECT_TRUE(*after);
  // ensure() on an existing repository leaves it alone.
  EXPECT_TRUE(c.ensure());
  // The cache went where we said, not to ~/.cache.
  EXPECT_TRUE(fs::is_directory(repo_.cache_dir));
}

TEST_F(ResticTest, ResticEnsureInitialisesAMissingRepository) {
  auto c = client();
  auto ok = c.ensure();
  ASSERT_TRUE(ok) << ok.err().message;
  auto present = c.exists();
  ASSERT_TRUE(present) << present.err().message;
  EXPECT_TRUE(*present);
}

TEST_F(ResticTest, ResticWrongPasswordIsAnErrorNotMissing) {
  ready_client();
  write_text(tmp_ / "wrong", "not the password\n", 0600);
  restic_repository wrong = repo_;
  wrong.password = secret_source::from_file(tmp_ / "wrong");
  auto r = restic_client(wrong, restic_timeout).exists();
  ASSERT_FALSE(r) << "wrong password reported as exists=" << *r;
  EXPECT_EQ(r.err().code, errc::invalid_argument) << r.err().message;
  EXPECT_NE(r.err().message.find("wrong password"), std::string::npos) << r.err().message;
  EXPECT_TRUE(one_line(r.err().message)) << r.err().message;
}

TEST_F(ResticTest, ResticUnreachableRemoteIsAnErrorNotMissing) {
  // restic 0.14 prints "Is there a repository at the following location?"
  // for a refused connection too; that must not read as "missing".
  restic_repository remote = repo_;
  remote.location = "rest:http://127.0.0.1:" + std::to_string(free_port()) + "/repo";
  auto r = restic_client(remote, restic_timeout).exists();
  ASSERT_FALSE(r) << "unreachable server reported as exists=" << *r;
  EXPECT_NE(r.err().code, errc::not_found);
  EXPECT_TRUE(one_line(r.err().message)) << r.err().message;
}

TEST_F(ResticTest, ResticGroupOrWorldReadablePasswordFileIsRefused) {
  write_text(tmp_ / "loose", "pw\n", 0644);
  restic_repository loose = repo_;
  loose.password = secret_source::from_file(tmp_ / "loose");
  auto r = restic_client(loose, restic_timeout).init();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::invalid_argument) << r.err().message;
  EXPECT_FALSE(fs::exists(repo_.location));
}

TEST_F(ResticTest, ResticBackupReportsSummaryAndDeduplicates) {
  auto c = ready_client();
  std::string dir = make_staging("aa", 1);
  auto tags = snapshot_tags("site-uuid-1", "aa");

  auto first = c.backup(dir, tags, "edge-1");
  ASSERT_TRUE(first) << first.err().message;
  EXPECT_FALSE(first->snapshot_id.empty());
  EXPECT_EQ(first->files_new, 3);
  EXPECT_EQ(first->files_changed, 0);
  EXPECT_GT(first->data_added, 300 * 1024);
  EXPECT_EQ(first->total_files_processed, 3);
  EXPECT_GE(first->total_bytes_processed, 300 * 1024);
  EXPECT_GT(first->total_duration, 0.0);
  EXPECT_FALSE(first->warning);

  auto second = c.backup(dir, tags, "edge-1");
  ASSERT_TRUE(second) << second.err().message;
  EXPECT_NE(second->snapshot_id, first->snapshot_id);
  EXPECT_EQ(second->files_new, 0);
  EXPECT_EQ(second->files_unmodified, 3);
  // Unchanged data: nothing but (at most) a tree blob is stored again.
  EXPECT_LT(second->data_added, 4096) << second->data_added;

  auto snaps = c.snapshots(tags);
  ASSERT_TRUE(snaps) << snaps.err().message;
  ASSERT_EQ(snaps->size(), 2u);
  const auto& s = snaps->front();
  EXPECT_EQ(s.hostname, "edge-1");
  EXPECT_EQ(s.tags, tags);
  // Snapshot path = the staging folder as we named it (backup runs from inside it).
  ASSERT_EQ(s.paths.size(), 1u);
  EXPECT_EQ(s.paths.front(), dir);
  EXPECT_EQ(s.tag_value("site"), "site-uuid-1");
  EXPECT_EQ(s.tag_value("target"), "aa");
  EXPECT_EQ(s.tag_value("nope"), "");
  EXPECT_EQ(s.id.rfind(s.short_id, 0), 0u);
  EXPECT_EQ(s.short_id, first->snapshot_id);
}

TEST_F(ResticTest, ResticBackupOfUnreadableFileIsAWarning) {
  // Exit 3 needs a file restic cannot read. Tests run as root, and root reads
  // mode 000 files through CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH; so the
  // backup runs on a thread that dropped those from its capability bounding
  // set (inherited by the restic child across fork and exec, per thread, and
  // the thread ends afterwards: the rest of the test process keeps them).
  auto c = ready_client();
  std::string dir = make_staging("warn", 7);
  write_text(dir + "/locked.db", "unreadable", 0000);

  std::optional<expected<backup_summary>> result;
  std::string skip_reason;
  std::thread worker([&] {
    if (::geteuid() == 0) {
      for (int cap : {CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH})
        if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
          skip_reason =
              std::string("cannot drop capability bounding set (no CAP_SETPCAP?): ") +
              std::strerror(errno);
          return;
        }
    }
    result = c.backup(dir, snapshot_tags("site-a", "warn"), "edge-1");
  });
  worker.join();
  if (!skip_reason.empty()) GTEST_SKIP() << skip_reason;

  ASSERT_TRUE(result.has_value());
  ASSERT_TRUE(*result) << result->err().message;
  const backup_summary& s = result->value();
  EXPECT_TRUE(s.warning);
  EXPECT_FALSE(s.snapshot_id.empty()) << "exit 3 still saves a snapshot";
  EXPECT_NE(s.warning_message.find("locked.db"), std::string::npos) << s.warning_message;
  EXPECT_NE(s.warning_message.find("Permission denied"), std::string::npos)
      << s.warning_message;
  EXPECT_TRUE(one_line(s.warning_message)) << s.warning_message;
  auto snaps = c.snapshots(snapshot_tags("site-a", "warn"));
  ASSERT_TRUE(snaps);
  EXPECT_EQ(snaps->size(), 1u);
}

TEST_F(ResticTest, ResticSnapshotsFilterMatchesAllTags) {
  auto c = ready_client();
  std::string aa = make_staging("aa", 1), bb = make_staging("bb", 2);
  ASSERT_TRUE(c.backup(aa, snapshot_tags("site-1", "aa"), "edge-1"));
  ASSERT_TRUE(c.backup(bb, snapshot_tags("site-1", "bb"), "edge-1"));
  // Same target hash under another site: must not match site-1's filter.
  ASSERT_TRUE(c.backup(aa, snapshot_tags("site-2", "aa"), "edge-2"));

  auto only_aa = c.snapshots(snapshot_tags("site-1", "aa"));
  ASSERT_TRUE(only_aa) << only_aa.err().message;
  ASSERT_EQ(only_aa->size(), 1u);
  EXPECT_EQ(only_aa->front().tag_value("site"), "site-1");
  EXPECT_EQ(only_aa->front().tag_value("target"), "aa");

  auto site1 = c.snapshots({"satoru", "site=site-1"});
  ASSERT_TRUE(site1);
  EXPECT_EQ(site1->size(), 2u);
  auto all = c.snapshots();
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 3u);
  auto none = c.snapshots({"satoru", "site=site-3"});
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());

  auto bad = c.snapshots({"a,b"});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.err().code, errc::invalid_argument);
}

TEST_F(ResticTest, ResticRestoreBringsBackExactlyTheFiles) {
  auto c = ready_client();
  std::string dir = make_staging("aa", 3);
  auto tags = snapshot_tags("site-1", "aa");
  auto first = c.backup(dir, tags, "edge-1");
  ASSERT_TRUE(first) << first.err().message;
  auto original = contents_of(dir);

  // Change the data; the second snapshot becomes "latest".
  write_text(dir + "/notes.txt", "changed\n");
  write_text(dir + "/new.txt", "new\n");
  auto second = c.backup(dir, tags, "edge-1");
  ASSERT_TRUE(second) << second.err().message;
  auto changed = contents_of(dir);

  std::string out1 = tmp_ / "out1";
  auto r1 = c.restore(first->snapshot_id, dir, out1, tags);
  ASSERT_TRUE(r1) << r1.err().message;
  EXPECT_EQ(contents_of(out1), original);

  std::string out2 = tmp_ / "out2";
  auto r2 = c.restore("latest", dir, out2, tags);
  ASSERT_TRUE(r2) << r2.err().message;
  EXPECT_EQ(contents_of(out2), changed);

  // A subfolder lands as the target's contents, without its parents.
  std::string out3 = tmp_ / "out3";
  auto r3 = c.restore(first->snapshot_id, dir + "/sub", out3, tags);
  ASSERT_TRUE(r3) << r3.err().message;
  EXPECT_EQ(contents_of(out3), (std::map<std::string, std::string>{
                                   {"deeper", "<dir>"}, {"deeper/c.txt", "deep 3\n"}}));

  // Whole snapshot by "/" too.
  std::string out4 = tmp_ / "out4";
  ASSERT_TRUE(c.restore(first->snapshot_id, "/", out4));
  EXPECT_EQ(contents_of(out4), original);
}

TEST_F(ResticTest, ResticRestoreRefusesWrongSnapshotsAndPaths) {
  auto c = ready_client();
  std::string dir = make_staging("aa", 4);
  auto snap = c.backup(dir, snapshot_tags("site-1", "aa"), "edge-1");
  ASSERT_TRUE(snap) << snap.err().message;
  std::string out = tmp_ / "out";

  // An id of another target: refused, nothing written.
  auto other = c.restore(snap->snapshot_id, dir, out, snapshot_tags("site-1", "bb"));
  ASSERT_FALSE(other);
  EXPECT_EQ(other.err().code, errc::invalid_argument) << other.err().message;
  auto latest_none = c.restore("latest", dir, out, snapshot_tags("site-9", "zz"));
  ASSERT_FALSE(latest_none);
  EXPECT_EQ(latest_none.err().code, errc::not_found) << latest_none.err().message;
  auto unknown = c.restore("deadbeef", dir, out);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.err().code, errc::not_found) << unknown.err().message;
  auto flag = c.restore("--help", dir, out);
  ASSERT_FALSE(flag);
  EXPECT_EQ(flag.err().code, errc::invalid_argument);
  auto elsewhere = c.restore(snap->snapshot_id, "/etc", out);
  ASSERT_FALSE(elsewhere);
  EXPECT_EQ(elsewhere.err().code, errc::not_found) << elsewhere.err().message;
  auto missing_sub = c.restore(snap->snapshot_id, dir + "/no-such", out);
  ASSERT_FALSE(missing_sub);
  EXPECT_EQ(missing_sub.err().code, errc::not_found) << missing_sub.err().message;
  // The private folder of the subfolder restore is gone again.
  if (fs::exists(out))
    for (const auto& e : fs::directory_iterator(out))
      ADD_FAILURE() << "left behind: " << e.path();
}

TEST_F(ResticTest, ResticForgetKeepsLastPerGroupThenPruneAndCheckPass) {
  auto c = ready_client();
  std::string aa = make_staging("aa", 5), bb = make_staging("bb", 6);
  auto tags_aa = snapshot_tags("site-1", "aa"), tags_bb = snapshot_tags("site-1", "bb");
  for (int i = 0; i < 2; ++i) {
    write_text(aa + "/round.txt", std::to_string(i));
    write_text(bb + "/round.txt", std::to_string(i));
    ASSERT_TRUE(c.backup(aa, tags_aa, "edge-1"));
    ASSERT_TRUE(c.backup(bb, tags_bb, "edge-1"));
  }
  auto single = c.backup(aa, snapshot_tags("site-2", "aa"), "edge-2");
  ASSERT_TRUE(single);
  auto aa_before = c.snapshots(tags_aa);
  ASSERT_TRUE(aa_before);
  ASSERT_EQ(aa_before->size(), 2u);

  auto groups = c.forget({"--keep-last", "1"}, {"satoru"}, "tags");
  ASSERT_TRUE(groups) << groups.err().message;
  ASSERT_EQ(groups->size(), 3u);
  std::int64_t removed = 0;
  for (const auto& g : *groups) {
    EXPECT_EQ(g.kept, 1);
    removed += g.removed;
    EXPECT_EQ(static_cast<std::size_t>(g.removed), g.removed_ids.size());
    if (g.tags == tags_aa) {
      EXPECT_EQ(g.removed, 1);
      // The older aa snapshot went.
      auto older = std::min_element(aa_before->begin(), aa_before->end(),
                                    [](auto& x, auto& y) { return x.time < y.time; });
      ASSERT_EQ(g.removed_ids.size(), 1u);
      EXPECT_EQ(g.removed_ids.front(), older->id);
    }
  }
  EXPECT_EQ(removed, 2);
  auto all = c.snapshots();
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 3u);

  // A filter matching nothing: restic prints nothing at all.
  auto nothing = c.forget({"--keep-last", "1"}, {"satoru", "site=none"}, "tags");
  ASSERT_TRUE(nothing) << nothing.err().message;
  EXPECT_TRUE(nothing->empty());
  // --prune never rides along; no filter = refused.
  EXPECT_FALSE(c.forget({"--keep-last", "1", "--prune"}, {"satoru"}, "tags"));
  EXPECT_FALSE(c.forget({"--keep-last", "1"}, {}, "tags"));

  auto pruned = c.prune();
  ASSERT_TRUE(pruned) << pruned.err().message;
  auto checked = c.check();
  ASSERT_TRUE(checked) << checked.err().message;
  auto unlocked = c.unlock();
  ASSERT_TRUE(unlocked) << unlocked.err().message;
  auto stats = c.stats();
  ASSERT_TRUE(stats) << stats.err().message;
  EXPECT_GT(stats->total_size, 300 * 1024);
  EXPECT_GT(stats->total_blob_count, 0);
  EXPECT_EQ(stats->snapshots_count, 3);
}

TEST_F(ResticTest, ResticCheckReportsDamageInOneLine) {
  auto c = ready_client();
  ASSERT_TRUE(c.backup(make_staging("aa", 8), snapshot_tags("s", "aa"), "h"));
  // Delete the data pack (the largest pack file): check must fail and say
  // which. Not a tree pack: check reads those, and restic retries a failed
  // read for about 90 s before giving up.
  std::string victim;
  std::uintmax_t largest = 0;
  for (const auto& e : fs::recursive_directory_iterator(repo_.location + "/data"))
    if (e.is_regular_file() && e.file_size() > largest) {
      largest = e.file_size();
      victim = e.path().string();
    }
  ASSERT_FALSE(victim.empty());
  fs::remove(victim);
  auto r = c.check();
  ASSERT_FALSE(r);
  EXPECT_TRUE(one_line(r.err().message)) << r.err().message;
  EXPECT_NE(r.err().message.find("repository contains errors"), std::string::npos)
      << r.err().message;
  EXPECT_NE(r.err().message.find(fs::path(victim).filename().string()), std::string::npos)
      << r.err().message;
}

TEST_F(ResticTest, ResticCopyToRestRemoteCopiesOnlyNewSnapshots) {
  auto local = ready_client();
  ASSERT_TRUE(local.backup(make_staging("aa", 9), snapshot_tags("s1", "aa"), "edge-1"));
  ASSERT_TRUE(local.backup(make_staging("bb", 10), snapshot_tags("s1", "bb"), "edge-1"));

  rclone_server server;
  ASSERT_TRUE(server.start(tmp_ / "remote")) << server.last_error();
  restic_repository remote_repo = repo_;
  remote_repo.location = server.repository("satoru");
  restic_client remote(remote_repo, restic_timeout);

  auto exists = remote.exists();
  ASSERT_TRUE(exists) << exists.err().message;
  EXPECT_FALSE(*exists) << "a missing REST repository reads as missing";
  auto init = remote.ensure(&repo_);
  ASSERT_TRUE(init) << init.err().message;

  // Same chunker parameters, so copies deduplicate against later backups.
  auto polynomial = [](const restic_client& c) {
    auto spec = c.command({"cat", "config"});
    EXPECT_TRUE(spec);
    auto r = run_process(*spec);
    EXPECT_TRUE(r && r->ok());
    auto v = boost::json::parse(r->out);
    return std::string(v.as_object().at("chunker_polynomial").as_string());
  };
  EXPECT_EQ(polynomial(local), polynomial(remote));

  auto copied = remote.copy_from(repo_);
  ASSERT_TRUE(copied) << copied.err().message;
  EXPECT_EQ(*copied, 2);
  auto again = remote.copy_from(repo_);
  ASSERT_TRUE(again) << again.err().message;
  EXPECT_EQ(*again, 0);

  ASSERT_TRUE(local.backup(make_staging("aa", 11), snapshot_tags("s1", "aa"), "edge-1"));
  auto third = remote.copy_from(repo_);
  ASSERT_TRUE(third) << third.err().message;
  EXPECT_EQ(*third, 1);

  auto remote_snaps = remote.snapshots(snapshot_tags("s1", "aa"));
  ASSERT_TRUE(remote_snaps) << remote_snaps.err().message;
  ASSERT_EQ(remote_snaps->size(), 2u);
  auto local_snaps = local.snapshots(snapshot_tags("s1", "aa"));
  ASSERT_TRUE(local_snaps);
  for (const auto& s : *remote_snaps) {
    EXPECT_FALSE(s.original.empty());
    EXPECT_TRUE(std::any_of(local_snaps->begin(), local_snaps->end(),
                            [&](const snapshot_info& l) { return l.id == s.original; }));
  }

  // The remote dying is an error, not "0 copied".
  server.kill();
  auto dead = remote.exists();
  ASSERT_FALSE(dead);
  EXPECT_NE(dead.err().code, errc::not_found);
}

TEST_F(ResticTest, ResticSecretsNeverReachArgvOrMessages) {
  const std::string password = "pw-7f3a9c-never-in-argv";
  const std::string b2_key = "b2key-0c1d2e-never-in-argv";
  scoped_env pw_var("SATORU_TEST_RESTIC_PASSWORD", password);
  scoped_env key_var("SATORU_TEST_B2_KEY", b2_key);
  write_text(tmp_ / "b2id", "b2-account-id\n", 0600);

  restic_repository repo;
  repo.location =
      "rest:http://user:url-secret-99@127.0.0.1:" + std::to_string(free_port()) + "/repo";
  repo.password = secret_source::from_env("SATORU_TEST_RESTIC_PASSWORD");
  repo.b2_account_id = secret_source::from_file(tmp_ / "b2id");
  repo.b2_account_key = secret_source::from_env("SATORU_TEST_B2_KEY");
  restic_client c(repo, restic_timeout);

  auto spec = c.command({"snapshots", "--json"}, {}, &repo_);
  ASSERT_TRUE(spec) << spec.err().message;
  for (const auto& arg : spec->argv) {
    EXPECT_EQ(arg.find(password), std::string::npos) << arg;
    EXPECT_EQ(arg.find(b2_key), std::string::npos) << arg;
    EXPECT_EQ(arg.find("url-secret-99"), std::string::npos) << arg;
    EXPECT_EQ(arg.find("b2-account-id"), std::string::npos) << arg;
    EXPECT_NE(arg, "-r");
    EXPECT_NE(arg, "--password-file");
  }
  std::map<std::string, std::string> env(spec->env.begin(), spec->env.end());
  EXPECT_EQ(env["RESTIC_REPOSITORY"], repo.location);
  EXPECT_EQ(env["RESTIC_PASSWORD"], password);
  EXPECT_EQ(env["RESTIC_PASSWORD_FILE"], "");
  EXPECT_EQ(env["B2_ACCOUNT_ID"], "b2-account-id");
  EXPECT_EQ(env["B2_ACCOUNT_KEY"], b2_key);
  EXPECT_EQ(env["RESTIC_FROM_REPOSITORY"], repo_.location);
  EXPECT_EQ(env["RESTIC_FROM_PASSWORD_FILE"], repo_.password.location());
  EXPECT_EQ(env["RESTIC_FROM_PASSWORD"], "");
  EXPECT_EQ(env["RESTIC_PASSWORD_COMMAND"], "");
  EXPECT_EQ(env["RESTIC_REPOSITORY_FILE"], "");

  // A failing call (nothing listens) names the repository without its
  // credentials and never echoes a secret.
  auto r = c.snapshots();
  ASSERT_FALSE(r);
  const std::string& msg = r.err().message;
  EXPECT_TRUE(one_line(msg)) << msg;
  for (const auto& secret : {password, b2_key, std::string("url-secret-99")})
    EXPECT_EQ(msg.find(secret), std::string::npos) << msg;

  // An env password source really works end to end.
  restic_repository env_repo = repo_;
  env_repo.location = tmp_ / "env-repo";
  env_repo.password = secret_source::from_env("SATORU_TEST_RESTIC_PASSWORD");
  restic_client env_client(env_repo, restic_timeout);
  auto init = env_client.init();
  ASSERT_TRUE(init) << init.err().message;
  auto snaps = env_client.snapshots();
  ASSERT_TRUE(snaps) << snaps.err().message;
  EXPECT_TRUE(snaps->empty());

  // The variable gone: an error naming it, not "repository missing".
  pw_var.reset();
  auto unset = env_client.exists();
  ASSERT_FALSE(unset) << "exists=" << *unset;
  EXPECT_NE(unset.err().message.find("SATORU_TEST_RESTIC_PASSWORD"), std::string::npos)
      << unset.err().message;
}

TEST_F(ResticTest, ResticMissingFoldersGiveOneClearLine) {
  auto c = ready_client();
  auto backup = c.backup(tmp_ / "no-such-folder", snapshot_tags("s", "t"), "h");
  ASSERT_FALSE(backup);
  EXPECT_EQ(backup.err().code, errc::not_found);
  EXPECT_TRUE(one_line(backup.err().message)) << backup.err().message;
  EXPECT_NE(backup.err().message.find("no-such-folder"), std::string::npos);

  restic_repository gone = repo_;
  gone.location = tmp_ / "no-such-repo";
  auto snaps = restic_client(gone, restic_timeout).snapshots();
  ASSERT_FALSE(snaps);
  EXPECT_EQ(snaps.err().code, errc::not_found);
  EXPECT_TRUE(one_line(snaps.err().message)) << snaps.err().message;
  EXPECT_NE(snaps.err().message.find("no restic repository at " + gone.location),
            std::string::npos)
      << snaps.err().message;
}

TEST_F(ResticTest, ResticRelativePathsSurviveTheBackupCwd) {
  // restic runs with cwd = the folder backed up: a relative repository or
  // password path must still mean what it meant for us.
  std::string old_cwd = fs::current_path();
  fs::current_path(tmp_.path());
  restic_repository rel;
  rel.location = "rel-repo";
  rel.password = secret_source::from_file("password");
  restic_client c(rel, restic_timeout);
  auto init = c.init();
  auto backup = init ? c.backup(make_staging("rel", 12), {"satoru"}, "h")
                     : expected<backup_summary>(init.err());
  fs::current_path(old_cwd);
  ASSERT_TRUE(init) << init.err().message;
  ASSERT_TRUE(backup) << backup.err().message;
  EXPECT_TRUE(fs::exists(tmp_ / "rel-repo/config"));
}

TEST_F(ResticTest, ResticCancelAndTimeoutAreReported) {
  auto c = ready_client();
  cancel_token cancel;
  cancel.cancel();
  auto cancelled = c.snapshots({}, cancel);
  ASSERT_FALSE(cancelled);
  EXPECT_EQ(cancelled.err().code, errc::cancelled) << cancelled.err().message;

  restic_client hurried(repo_, std::chrono::milliseconds(1));
  auto late = hurried.backup(make_staging("aa", 13), {"satoru"}, "h");
  ASSERT_FALSE(late);
  EXPECT_EQ(late.err().code, errc::timeout) << late.err().message;
}

TEST(ResticHelpers, RedactRepositoryDropsCredentials) {
  EXPECT_EQ(redact_repository("rest:http://u:p@host/"), "rest:http://host/");
  EXPECT_EQ(redact_repository("rest:https://user:s3cr%40t@example.com:8000/repo"),
            "rest:https://example.com:8000/repo");
  EXPECT_EQ(redact_repository("rest:http://token@host"), "rest:http://host");
  EXPECT_EQ(redact_repository("b2:bucket:path/x"), "b2:bucket:path/x");
  EXPECT_EQ(redact_repository("/var/lib/satoru/repo"), "/var/lib/satoru/repo");
  EXPECT_EQ(redact_repository("sftp:backup@host:/srv/repo"),
            "sftp:backup@host:/srv/repo");
  EXPECT_EQ(redact_repository("s3:https://s3.example.com/bucket"),
            "s3:https://s3.example.com/bucket");
  EXPECT_EQ(redact_repository("at rest:http://u:***@127.0.0.1:1/repo/config: refused"),
            "at rest:http://127.0.0.1:1/repo/config: refused");
}

TEST(ResticHelpers, RepositoriesFromConfig) {
  config cfg;
  cfg.restic_repo_path = "/srv/satoru/repos/restic/";
  cfg.restic_password = secret_source::from_file("/etc/satoru/restic.pass");
  auto local = local_repository(cfg);
  EXPECT_EQ(local.location, cfg.restic_repo_path);
  EXPECT_EQ(local.password.location(), "/etc/satoru/restic.pass");
  EXPECT_EQ(local.cache_dir, "/srv/satoru/repos/restic-cache");
  EXPECT_TRUE(local.b2_account_id.empty());
  EXPECT_FALSE(offsite_repository(cfg).has_value());

  cfg.restic_b2_repository = "b2:bucket:satoru";
  cfg.restic_b2_account_id = secret_source::from_env("B2_ID");
  cfg.restic_b2_account_key = secret_source::from_file("/etc/satoru/b2.key");
  auto off = offsite_repository(cfg);
  ASSERT_TRUE(off.has_value());
  EXPECT_EQ(off->location, "b2:bucket:satoru");
  EXPECT_EQ(off->password.location(), "/etc/satoru/restic.pass");
  EXPECT_EQ(off->b2_account_id.location(), "B2_ID");
  EXPECT_EQ(off->b2_account_key.location(), "/etc/satoru/b2.key");
  EXPECT_EQ(off->cache_dir, local.cache_dir);

  EXPECT_EQ(snapshot_tags("u-1", "abcd"),
            (std::vector<std::string>{"satoru", "site=u-1", "target=abcd"}));
}

} // namespace
