// The directory_rsync plugin, loaded from its .so, against a real sshd.

#include "edge_host.hpp"
#include "satoru/identity.hpp"
#include "satoru/plugin_host.hpp"
#include "satoru/plugin_loader.hpp"
#include "satoru/rsync.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

using namespace satoru;
using namespace satoru::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct recorded_event {
  std::string level, step, target, message;
  boost::json::object data;
};

/// Keeps every event so tests can assert on what the plugin reported.
class recording_sink final : public event_sink {
public:
  void emit(const std::string& level, const std::string& step, const std::string& target,
            const std::string& message, const boost::json::object& data) override {
    std::lock_guard<std::mutex> lock(mutex_);
    events_.push_back({level, step, target, message, data});
  }
  std::vector<recorded_event> events() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return events_;
  }
  const recorded_event* find(const std::string& step) const {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& e : events_)
      if (e.step == step) return &e;
    return nullptr;
  }

private:
  mutable std::mutex mutex_;
  std::vector<recorded_event> events_;
};

/// One entry of a folder tree, as lstat and readlink see it.
struct entry {
  char type = '?'; // f, d, l
  mode_t mode = 0;
  std::string content; // file bytes or link target
  ino_t inode = 0;
  time_t mtime = 0;
  bool operator==(const entry& o) const {
    return type == o.type && mode == o.mode && content == o.content;
  }
};

/// Walks a tree without following symlinks; keys are byte-exact relative names.
std::map<std::string, entry> snapshot_tree(const std::string& root) {
  std::map<std::string, entry> out;
  std::vector<std::string> stack{""};
  while (!stack.empty()) {
    std::string rel = stack.back();
    stack.pop_back();
    std::string dir = rel.empty() ? root : root + "/" + rel;
    std::error_code ec;
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
      std::string name = it->path().filename().string();
      std::string child = rel.empty() ? name : rel + "/" + name;
      std::string full = dir + "/" + name;
      struct stat st {};
      if (::lstat(full.c_str(), &st) != 0) continue;
      entry e;
      e.mode = st.st_mode & 07777;
      e.inode = st.st_ino;
      e.mtime = st.st_mtime;
      if (S_ISLNK(st.st_mode)) {
        e.type = 'l';
        e.mode = 0;
        char buf[4096];
        ssize_t n = ::readlink(full.c_str(), buf, sizeof buf);
        if (n > 0) e.content.assign(buf, static_cast<std::size_t>(n));
      } else if (S_ISDIR(st.st_mode)) {
        e.type = 'd';
        stack.push_back(child);
      } else if (S_ISREG(st.st_mode)) {
        e.type = 'f';
        e.content = read_file(full);
      }
      out[child] = e;
    }
  }
  return out;
}

std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f)
      out.push_back(static_cast<char>(c));
    else
      out +=
          "\\x" + std::string(1, "0123456789abcdef"[c >> 4]) + "0123456789abcdef"[c & 15];
  }
  return out;
}

void expect_same_tree(const std::string& expected_root, const std::string& actual_root) {
  auto want = snapshot_tree(expected_root);
  auto got = snapshot_tree(actual_root);
  for (const auto& [name, e] : want) {
    auto it = got.find(name);
    if (it == got.end()) {
      ADD_FAILURE() << "missing in staging: " << printable(name);
      continue;
    }
    EXPECT_EQ(e.type, it->second.type) << printable(name);
    EXPECT_EQ(e.mode, it->second.mode) << printable(name) << " mode";
    EXPECT_TRUE(e.content == it->second.content) << printable(name) << " content differs";
    if (e.type != 'l') {
      EXPECT_EQ(e.mtime, it->second.mtime) << printable(name) << " mtime";
    }
  }
  for (const auto& [name, e] : got)
    EXPECT_TRUE(want.count(name)) << "extra in staging: " << printable(name);
}

void make_dir(const std::string& path, mode_t mode = 0755) {
  fs::create_directories(path);
  ::chmod(path.c_str(), mode);
}

void write(const std::string& path, const std::string& content, mode_t mode = 0644) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
  ::chmod(path.c_str(), mode);
}

/// Names that break naive quoting, each a valid single path component.
const std::vector<std::string>& hostile_names() {
  static const std::vector<std::string> names{"name with spaces",
                                              "single'quote",
                                              "double\"quote",
                                              "$(touch pwned)",
                                              "semi;colon; echo hi",
                                              "-leading-dash",
                                              "new\nline",
                                              "bad\xff\xfe"
                                              "byte",
                                              "back\\slash",
                                              "star*and?[brackets]",
                                              "`backtick`",
                                              "tab\there",
                                              "mixed\\*[x]"};
  return names;
}

/// Environment of one test: an edge host, the plugin registry and a target.
class directory_plugin : public ::testing::Test {
protected:
  void SetUp() override { start_host({}); }

  void start_host(edge_host::options opts) {
    host_.reset();
    host_ = std::make_unique<edge_host>(tmp_ / "edge", std::move(opts));
    ASSERT_TRUE(host_->running());
    if (!registry_) {
      registry_ = plugin_registry::load(SATORU_PLUGIN_DIR);
      ASSERT_TRUE(registry_);
    }
    handler_ = registry_->find("directory");
    ASSERT_NE(handler_, nullptr)
        << "no plugin serves mode directory in " SATORU_PLUGIN_DIR;
  }

  target_spec spec_for(const std::string& path, boost::json::object options = {}) const {
    target_spec spec;
    spec.site_name = "edge";
    spec.site_uuid = "00000000-0000-5000-8000-000000000001";
    spec.mode = "directory";
    spec.path = path;
    spec.hash = target_hash(spec.mode, path);
    spec.options = std::move(options);
    spec.staging_dir = tmp_ / ("staging/" + spec.site_uuid + "/" + spec.hash);
    spec.work_dir = tmp_ / ("staging/" + spec.site_uuid + "/.work-" + spec.hash);
    return spec;
  }

  pull_result pull(const target_spec& spec, cancel_token cancel = {},
                   satoru::deadline dl = {}) {
    host_services services(host_->endpoint(), sink_, std::move(cancel), dl, spec.hash);
    auto r = handler_->pull(spec, services);
    // The host empties work_dir after every pull.
    std::error_code ec;
    fs::remove_all(spec.work_dir, ec);
    return r;
  }

  std::vector<check_result> preflight(const target_spec& spec) {
    host_services services(host_->endpoint(), sink_, cancel_token{}, satoru::deadline{},
                           spec.hash);
    return handler_->preflight(spec, services);
  }

  static const check_result* check(const std::vector<check_result>& checks,
                                   const std::string& name) {
    for (const auto& c : checks)
      if (c.name == name) return &c;
    return nullptr;
  }

  std::string remote(const std::string& rel) const {
    return host_->remote_root() + "/" + rel;
  }

  temp_dir tmp_{"satoru-dirplugin"};
  std::unique_ptr<edge_host> host_;
  std::shared_ptr<plugin_registry> registry_;
  target_handler* handler_ = nullptr;
  recording_sink sink_;
};

TEST_F(directory_plugin, registers_mode_and_tools) {
  EXPECT_EQ(handler_->name(), "directory_rsync");
  EXPECT_EQ(handler_->modes(), std::vector<std::string>{"directory"});
  auto tools = handler_->local_tools("directory");
  EXPECT_NE(std::find(tools.begin(), tools.end(), "rsync"), tools.end());
  EXPECT_NE(std::find(tools.begin(), tools.end(), "ssh"), tools.end());
}

TEST_F(directory_plugin, validates_options) {
  EXPECT_TRUE(handler_->validate_options("directory", {}).empty());
  EXPECT_TRUE(handler_
                  ->validate_options("directory",
                                     {{"compress", false},
                                      {"no_progress_timeout_seconds", 60},
                                      {"exclude", boost::json::array{"*.tmp", "cache/"}}})
                  .empty());
  auto problems =
      handler_->validate_options("directory", {{"compress", "yes"},
                                               {"no_progress_timeout_seconds", 0},
                                               {"exclude", boost::json::array{"ok", 3}},
                                               {"compres", true}});
  ASSERT_EQ(problems.size(), 4u);
  auto has = [&](const std::string& prefix) {
    return std::any_of(problems.begin(), problems.end(),
                       [&](const std::string& p) { return p.rfind(prefix, 0) == 0; });
  };
  EXPECT_TRUE(has("compress:"));
  EXPECT_TRUE(has("no_progress_timeout_seconds:"));
  EXPECT_TRUE(has("exclude/1:"));
  EXPECT_TRUE(has("compres: unknown option"));
  EXPECT_FALSE(
      handler_->validate_options("directory", {{"no_progress_timeout_seconds", 1.5}})
          .empty());
  EXPECT_FALSE(handler_->validate_options("directory", {{"exclude", "x"}}).empty());
  EXPECT_TRUE(handler_->validate_options("directory", {{"sudo", true}}).empty());
  EXPECT_FALSE(handler_->validate_options("directory", {{"sudo", "yes"}}).empty());
}

TEST_F(directory_plugin, round_trip_is_byte_exact) {
  const std::string src = remote("src");
  make_dir(src, 0750);
  write(src + "/plain.txt", "hello\n", 0644);
  write(src + "/private.key", "secret", 0600);
  write(src + "/run.sh", "#!/bin/sh\necho hi\n", 0755);
  write(src + "/odd-mode", "x", 0604);
  std::string binary(1 << 20, '\0');
  std::mt19937 rng(42);
  for (auto& c : binary)
    c = static_cast<char>(rng());
  write(src + "/blob.bin", binary, 0640);
  for (const auto& name : hostile_names()) {
    write(src + "/" + name, "content of " + name, 0644);
    make_dir(src + "/dir " + name, 0711);
    write(src + "/dir " + name + "/" + name, name, 0600);
  }
  make_dir(src + "/empty", 0700);
  make_dir(src + "/sub dir/empty too", 0755);
  write(src + "/sub dir/nested/deep.txt", "deep", 0644);
  ASSERT_EQ(::symlink("plain.txt", (src + "/link to plain").c_str()), 0);
  ASSERT_EQ(::symlink("/nonexistent/target", (src + "/dangling").c_str()), 0);
  ASSERT_EQ(::symlink("sub dir", (src + "/dir link").c_str()), 0);
  ASSERT_EQ(::symlink("../plain.txt", (src + "/sub dir/up link").c_str()), 0);
  ASSERT_EQ(::link((src + "/plain.txt").c_str(), (src + "/hard link").c_str()), 0);

  auto spec = spec_for(src);
  auto r = pull(spec);
  ASSERT_EQ(r.outcome, pull_result::status::success) << r.message;
  expect_same_tree(src, spec.staging_dir);
  EXPECT_GT(r.files, 20u);
  EXPECT_GT(r.bytes, 100'000u); // the random megabyte cannot shrink much
  EXPECT_FALSE(fs::exists(host_->remote_root() + "/pwned"));

  // Symlinks stay symlinks, hard links stay hard links.
  struct stat st {};
  ASSERT_EQ(::lstat((spec.staging_dir + "/link to plain").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  auto tree = snapshot_tree(spec.staging_dir);
  EXPECT_EQ(tree["plain.txt"].inode, tree["hard link"].inode);

  const auto* stats = sink_.find("pull.stats");
  ASSERT_NE(stats, nullptr);
  EXPECT_EQ(stats->level, "ok");
  EXPECT_EQ(stats->data.at("bytes_received").to_number<std::uint64_t>(), r.bytes);

  // A second pull of an unchanged tree transfers no file.
  auto again = pull(spec);
  ASSERT_EQ(again.outcome, pull_result::status::success) << again.message;
  EXPECT_EQ(again.files, 0u);
  expect_same_tree(src, spec.staging_dir);
}

TEST_F(directory_plugin, hostile_root_paths_are_pulled_exactly) {
  for (const auto& name : hostile_names()) {
    const std::string src = remote("roots/" + name);
    write(src + "/inside.txt", "inside " + name);
    auto spec = spec_for(src);
    auto r = pull(spec);
    ASSERT_EQ(r.outcome, pull_result::status::success)
        << printable(name) << ": " << r.message;
    expect_same_tree(src, spec.staging_dir);
  }
  // A sibling that a glob would match must not be pulled instead.
  write(remote("globs/sa") + "/which", "wrong");
  write(remote("globs/s[a]") + "/which", "right");
  auto spec = spec_for(remote("globs/s[a]"));
  auto r = pull(spec);
  ASSERT_EQ(r.outcome, pull_result::status::success) << r.message;
  EXPECT_EQ(read_file(spec.staging_dir + "/which"), "right");
  EXPECT_FALSE(fs::exists(host_->remote_root() + "/pwned"));
  EXPECT_FALSE(fs::exists(host_->home() + "/pwned"));
  EXPECT_FALSE(fs::exists(
      std::string(std::getenv("HOME") ? std::getenv("HOME") : "/root") + "/pwned"));
}

TEST_F(directory_plugin, deleted_remote_files_leave_staging) {
  const std::string src = remote("data");
  write(src + "/keep.txt", "keep");
  write(src + "/gone.txt", "gone");
  write(src + "/old/dir/file", "old");
  auto spec = spec_for(src);
  ASSERT_EQ(pull(spec).outcome, pull_result::status::success);
  ASSERT_TRUE(fs::exists(spec.staging_dir + "/gone.txt"));
  fs::remove(src + "/gone.txt");
  fs::remove_all(src + "/old");
  write(src + "/new.txt", "new");
  auto r = pull(spec);
  ASSERT_EQ(r.outcome, pull_result::status::success) << r.message;
  EXPECT_FALSE(fs::exists(spec.staging_dir + "/gone.txt"));
  EXPECT_FALSE(fs::exists(spec.staging_dir + "/old"));
  EXPECT_EQ(read_file(spec.staging_dir + "/new.txt"), "new");
  expect_same_tree(src, spec.staging_dir);
}

TEST_F(directory_plugin, excluded_files_are_not_staged) {
  const std::string src = remote("data");
  write(src + "/keep.txt", "keep");
  write(src + "/cache/big.bin", "cache");
  write(src + "/x.tmp", "tmp");
  auto spec = spec_for(src);
  ASSERT_EQ(pull(spec).outcome, pull_result::status::success);
  ASSERT_TRUE(fs::exists(spec.staging_dir + "/x.tmp"));
  spec.options = {{"exclude", boost::json::array{"*.tmp", "/cache/"}},
                  {"compress", false}};
  auto r = pull(spec);
  ASSERT_EQ(r.outcome, pull_result::status::success) << r.message;
  EXPECT_TRUE(fs::exists(spec.staging_dir + "/keep.txt"));
  EXPECT_FALSE(fs::exists(spec.staging_dir + "/x.tmp"));
  EXPECT_FALSE(fs::exists(spec.staging_dir + "/cache"));
}

TEST_F(directory_plugin, missing_remote_path_fails_with_rsyncs_message) {
  auto spec = spec_for(remote("does not exist"));
  auto r = pull(spec);
  EXPECT_EQ(r.outcome, pull_result::status::failed);
  EXPECT_NE(r.message.find("No such file or directory"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("exit code 23"), std::string::npos) << r.message;
}

TEST_F(directory_plugin, wrong_host_key_fails) {
  auto spec = spec_for(remote("data"));
  write(remote("data") + "/f", "x");
  // Pin another key: rsync's ssh must refuse, like the libssh session would.
  std::ofstream(host_->known_hosts_file(), std::ios::trunc)
      << "[127.0.0.1]:" << host_->port()
      << " ssh-ed25519 "
         "AAAAC3NzaC1lZDI1NTE5AAAAIAc3oa0Nn6Xbu0W3W0wIvOOKGcoqbSSmMwjYxN8bIqIz\n";
  host_services services(host_->endpoint(), sink_, cancel_token{}, satoru::deadline{},
                         spec.hash);
  auto r = handler_->pull(spec, services);
  EXPECT_EQ(r.outcome, pull_result::status::failed);
  EXPECT_NE(r.message.find("Host key verification failed"), std::string::npos)
      << r.message;
}

TEST_F(directory_plugin, preflight_passes_on_hostile_paths_and_runs_nothing_else) {
  for (const auto& name : hostile_names()) {
    const std::string path = remote("pre/" + name);
    make_dir(path);
    write(path + "/f", std::string(1000, 'f'));
    auto checks = preflight(spec_for(path));
    // The size probe: the file and the folder's own entry (du's apparent
    // size), whatever the name holds.
    const auto* size = check(checks, "remote.size");
    ASSERT_NE(size, nullptr);
    EXPECT_GE(size->remote_bytes, 1000) << printable(name) << ": " << size->message;
    EXPECT_LT(size->remote_bytes, 1000 + 64 * 1024) << printable(name);
    const auto* p = check(checks, "remote.path");
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->status, check_result::level::ok)
        << printable(name) << ": " << p->message;
    const auto* rs = check(checks, "remote.rsync");
    ASSERT_NE(rs, nullptr);
    EXPECT_EQ(rs->status, check_result::level::ok) << rs->message;
    EXPECT_NE(rs->message.find("rsync 3."), std::string::npos) << rs->message;
  }
  const std::string pwned = host_->remote_root() + "/pwned";
  for (const std::string& path :
       {host_->remote_root() + "/x; touch " + pwned,
        host_->remote_root() + "/$(touch " + pwned + ")",
        host_->remote_root() + "/`touch " + pwned + "`",
        host_->remote_root() + "/x\ntouch " + pwned,
        host_->remote_root() + "/x' ; touch " + pwned + " ; '"}) {
    auto checks = preflight(spec_for(path));
    const auto* p = check(checks, "remote.path");
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->status, check_result::level::fail) << printable(path);
    EXPECT_NE(p->message.find("does not exist"), std::string::npos) << p->message;
    EXPECT_FALSE(fs::exists(pwned))
        << "remote command injection through " << printable(path);
  }
}

TEST_F(directory_plugin, preflight_reports_missing_and_non_folder_paths) {
  write(remote("a file"), "x");
  auto checks = preflight(spec_for(remote("a file")));
  ASSERT_NE(check(checks, "remote.path"), nullptr);
  EXPECT_EQ(check(checks, "remote.path")->status, check_result::level::fail);
  EXPECT_NE(check(checks, "remote.path")->message.find("not a folder"),
            std::string::npos);
  checks = preflight(spec_for(remote("nothing here")));
  EXPECT_EQ(check(checks, "remote.path")->status, check_result::level::fail);
  // Bad options show up as a failed check too.
  checks = preflight(spec_for(remote("nothing here"), {{"bogus", 1}}));
  ASSERT_NE(check(checks, "options"), nullptr);
  EXPECT_EQ(check(checks, "options")->status, check_result::level::fail);
}

TEST_F(directory_plugin, preflight_fails_when_remote_rsync_is_missing) {
  // An empty PATH folder: only shell builtins remain on the edge host.
  const std::string empty = tmp_ / "empty-bin";
  make_dir(empty);
  edge_host::options opts;
  opts.remote_path = empty;
  start_host(opts);
  make_dir(remote("data"));
  auto checks = preflight(spec_for(remote("data")));
  const auto* p = check(checks, "remote.path");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->status, check_result::level::ok) << p->message;
  const auto* rs = check(checks, "remote.rsync");
  ASSERT_NE(rs, nullptr);
  EXPECT_EQ(rs->status, check_result::level::fail);
  EXPECT_NE(rs->message.find("not installed"), std::string::npos) << rs->message;
}

TEST_F(directory_plugin, stalled_transfer_is_killed) {
  // The edge host's "rsync" swallows its input and never answers: a stall.
  const std::string bin = tmp_ / "stall-bin";
  write(bin + "/rsync", "#!/bin/sh\nexec cat >/dev/null\n", 0755);
  edge_host::options opts;
  opts.remote_path = bin + ":/usr/bin:/bin";
  start_host(opts);
  write(remote("data/f"), "x");
  auto spec = spec_for(remote("data"), {{"no_progress_timeout_seconds", 2}});
  auto started = std::chrono::steady_clock::now();
  auto r = pull(spec);
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(r.outcome, pull_result::status::failed);
  EXPECT_NE(r.message.find("no progress for 2 s"), std::string::npos) << r.message;
  EXPECT_LT(took, 15s);
  EXPECT_TRUE(snapshot_tree(spec.staging_dir).empty());
}

TEST_F(directory_plugin, vanished_files_are_a_warning_with_the_rest_staged) {
  // A local "rsync" that runs the real one and then reports exit 24, the
  // code rsync uses when source files vanished during the transfer.
  const std::string bin = tmp_ / "vanish-bin";
  write(bin + "/rsync",
        "#!/bin/sh\n/usr/bin/rsync \"$@\" || exit $?\n"
        "echo 'file has vanished: \"/srv/data/rotated.log\"' >&2\nexit 24\n",
        0755);
  const std::string old_path =
      std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin";
  ::setenv("PATH", (bin + ":" + old_path).c_str(), 1);
  write(remote("data/f"), "x");
  auto spec = spec_for(remote("data"));
  auto r = pull(spec);
  ::setenv("PATH", old_path.c_str(), 1);
  EXPECT_EQ(r.outcome, pull_result::status::warning) << r.message;
  EXPECT_NE(r.message.find("vanished"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("rotated.log"), std::string::npos) << r.message;
  const auto* e = sink_.find("pull.vanished");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->level, "warn");
  EXPECT_EQ(read_file(spec.staging_dir + "/f"), "x");
}

TEST_F(directory_plugin, cancel_leaves_no_partial_file_in_staging) {
  const std::string src = remote("big");
  std::string blob(64 << 20, '\0');
  std::mt19937_64 rng(7);
  for (std::size_t i = 0; i + 8 <= blob.size(); i += 8) {
    auto v = rng();
    std::memcpy(&blob[i], &v, 8);
  }
  write(src + "/a.bin", blob);
  write(src + "/small.txt", "small");
  auto spec = spec_for(src);
  cancel_token cancel;
  std::thread canceller([&] {
    // Cancel as soon as rsync has started writing its temp file.
    for (int i = 0; i < 500; ++i) {
      std::error_code ec;
      if (fs::exists(spec.work_dir + "/rsync-tmp", ec) &&
          !fs::is_empty(spec.work_dir + "/rsync-tmp", ec))
        break;
      std::this_thread::sleep_for(10ms);
    }
    cancel.cancel();
  });
  host_services services(host_->endpoint(), sink_, cancel, satoru::deadline{}, spec.hash);
  auto r = handler_->pull(spec, services);
  canceller.join();
  if (r.outcome == pull_result::status::success)
    GTEST_SKIP() << "the pull beat the cancel";
  EXPECT_NE(r.message.find("cancel"), std::string::npos) << r.message;
  // Whatever is in staging is complete.
  for (const auto& [name, e] : snapshot_tree(spec.staging_dir)) {
    if (e.type != 'f') continue;
    EXPECT_EQ(e.content, read_file(src + "/" + name)) << name << " is partial";
  }
}

TEST_F(directory_plugin, concurrent_pulls_do_not_interfere) {
  std::vector<target_spec> specs;
  for (int i = 0; i < 4; ++i) {
    const std::string src = remote("multi/" + std::to_string(i));
    for (int j = 0; j < 20; ++j)
      write(src + "/f" + std::to_string(j), std::string(1000 * (i + 1), char('a' + i)));
    specs.push_back(spec_for(src));
  }
  std::vector<pull_result> results(specs.size());
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < specs.size(); ++i)
    threads.emplace_back([&, i] { results[i] = pull(specs[i]); });
  for (auto& t : threads)
    t.join();
  for (std::size_t i = 0; i < specs.size(); ++i) {
    EXPECT_EQ(results[i].outcome, pull_result::status::success) << results[i].message;
    expect_same_tree(specs[i].path, specs[i].staging_dir);
  }
}

TEST(rsync_helpers, stats_parser_reads_separators_and_ignores_progress) {
  const std::string out =
      "\r          0   0%    0.00kB/s    0:00:00 (xfr#0, ir-chk=1000/1051)\r"
      "\nNumber of files: 1,051 (reg: 1,000, dir: 51)\n"
      "Number of created files: 3 (reg: 3)\n"
      "Number of deleted files: 2 (reg: 2)\n"
      "Number of regular files transferred: 1,000\n"
      "Total file size: 1,234,567 bytes\n"
      "Total transferred file size: 34,567 bytes\n"
      "Literal data: 4,567 bytes\nMatched data: 30,000 bytes\n"
      "File list size: 54\n"
      "Total bytes sent: 43\nTotal bytes received: 12,115\n";
  auto s = parse_rsync_stats(out);
  EXPECT_TRUE(s.parsed);
  EXPECT_EQ(s.files, 1051u);
  EXPECT_EQ(s.created_files, 3u);
  EXPECT_EQ(s.deleted_files, 2u);
  EXPECT_EQ(s.regular_files_transferred, 1000u);
  EXPECT_EQ(s.total_file_size, 1234567u);
  EXPECT_EQ(s.transferred_file_size, 34567u);
  EXPECT_EQ(s.literal_data, 4567u);
  EXPECT_EQ(s.matched_data, 30000u);
  EXPECT_EQ(s.bytes_sent, 43u);
  EXPECT_EQ(s.bytes_received, 12115u);
  EXPECT_FALSE(parse_rsync_stats("nothing here").parsed);
}

TEST(rsync_helpers, ssh_command_quotes_every_path_for_rsyncs_parser) {
  ssh_endpoint ep;
  ep.host = "edge.example";
  ep.port = 2222;
  ep.user = "backup";
  ep.identity_file = "/keys/my key's";
  ep.known_hosts_file = "/etc/satoru/known hosts";
  ep.connect_timeout_seconds = 7;
  auto cmd = rsync_ssh_command(ep);
  EXPECT_NE(cmd.find("'-i' '/keys/my key''s'"), std::string::npos) << cmd;
  EXPECT_NE(cmd.find("'-p' '2222'"), std::string::npos) << cmd;
  EXPECT_NE(cmd.find("'UserKnownHostsFile=\"/etc/satoru/known hosts\"'"),
            std::string::npos)
      << cmd;
  for (const char* opt :
       {"StrictHostKeyChecking=yes", "BatchMode=yes", "GlobalKnownHostsFile=/dev/null",
        "IdentitiesOnly=yes", "ConnectTimeout=7"})
    EXPECT_NE(cmd.find(opt), std::string::npos) << opt;
  EXPECT_NE(cmd.find("'-F' '/dev/null'"), std::string::npos) << cmd;

  auto src = rsync_remote_path(ep, "/srv/a*b?[c]", true);
  ASSERT_TRUE(src);
  EXPECT_EQ(*src, "edge.example:/srv/a\\*b\\?\\[c\\]/");
  // Components without wildcards are taken literally by the remote rsync.
  EXPECT_EQ(*rsync_remote_path(ep, "/a\\b/c]/d[\\", false),
            "edge.example:/a\\b/c]/d\\[\\\\");
  ep.host = "-oProxyCommand=x";
  EXPECT_FALSE(rsync_remote_path(ep, "/srv", true));
  ep.host = "::1";
  EXPECT_EQ(*rsync_remote_path(ep, "/srv", false), "[::1]:/srv");
}

TEST(rsync_helpers, error_summary_prefers_the_cause) {
  EXPECT_EQ(
      rsync_error_summary(
          "rsync: [sender] change_dir \"/x\" failed: No such file or directory (2)\n"
          "rsync error: some files/attrs were not transferred (see previous errors) "
          "(code 23) at main.c(1338) [Receiver=3.2.7]\n"
          "rsync: [Receiver] write error: Broken pipe (32)\n"),
      "rsync: [sender] change_dir \"/x\" failed: No such file or directory (2)");
  EXPECT_EQ(
      rsync_error_summary("Host key verification failed.\r\n"
                          "rsync: connection unexpectedly closed (0 bytes received so "
                          "far) [Receiver]\n"
                          "rsync error: unexplained error (code 255) at io.c(232)\n"),
      "Host key verification failed.");
  EXPECT_EQ(rsync_error_summary("rsync error: timeout (code 30) at io.c(1) [x]\n"),
            "rsync error: timeout (code 30)");
}

} // namespace

TEST(rsync_helpers, partial_report_tells_unreadable_vanished_and_the_top_folder_apart) {
  rsync_partial_report p;
  for (const char* line :
       {"rsync: [sender] opendir \"/srv/x/locked\" failed: Permission denied (13)",
        "rsync: [sender] send_files failed to open \"/srv/x/a \\\"q\\\" b\": Permission "
        "denied (13)",
        "file has vanished: \"/srv/x/rotated.log\"",
        "rsync: [generator] failed to set times on \"/staging/x\": Operation not "
        "permitted (1)",
        "rsync error: some files/attrs were not transferred (see previous errors) (code "
        "23) at main.c(1394) [sender=3.2.7]"})
    p.add_line(line);
  EXPECT_EQ(p.unreadable,
            (std::vector<std::string>{"/srv/x/locked", "/srv/x/a \\\"q\\\" b"}));
  EXPECT_EQ(p.vanished, std::vector<std::string>{"/srv/x/rotated.log"});
  EXPECT_TRUE(p.top_folder_error.empty());
  p.add_line("rsync: [sender] change_dir \"/srv/x\" failed: Permission denied (13)");
  EXPECT_EQ(p.top_folder_error,
            "rsync: [sender] change_dir \"/srv/x\" failed: Permission denied (13)");
  EXPECT_EQ(rsync_partial_report::first_few({"a", "b", "c", "d"}, 2), "a, b and 2 more");
}
