#include "satoru/config.hpp"
#include "satoru/identity.hpp"

#include "edge_host.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using satoru::config_result;
using satoru::load_options;

std::string dump(const config_result& r) {
  std::string out;
  for (const auto& d : r.diagnostics)
    out += "  " + d.to_string() + "\n";
  return out.empty() ? "  (no diagnostics)\n" : out;
}

/// Passes when a diagnostic has exactly this pointer and message.
::testing::AssertionResult has_diag(const config_result& r, const std::string& pointer,
                                    const std::string& message) {
  for (const auto& d : r.diagnostics)
    if (d.pointer == pointer && d.message == message)
      return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "no diagnostic \"" << pointer << ": " << message << "\"; got:\n"
         << dump(r);
}

/// Passes when a diagnostic has this pointer and its message contains `part`.
::testing::AssertionResult has_diag_containing(const config_result& r,
                                               const std::string& pointer,
                                               const std::string& part) {
  for (const auto& d : r.diagnostics)
    if (d.pointer == pointer && d.message.find(part) != std::string::npos)
      return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "no diagnostic at \"" << pointer << "\" containing \"" << part << "\"; got:\n"
         << dump(r);
}

::testing::AssertionResult is_clean(const config_result& r) {
  if (r.diagnostics.empty() && r.value) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected a valid config; got:\n" << dump(r);
}

class ConfigTest : public ::testing::Test {
protected:
  ConfigTest()
      : file_(dir_.path() + "/satoru.json") {}

  /// The smallest valid config; tests change one thing at a time.
  static json::object base() {
    return json::parse(R"({
      "restic_password": {"env": "SATORU_TEST_UNSET_PASSWORD"},
      "ssh": {"identity_file": "keys/id_ed25519", "known_hosts_file": "keys/known_hosts"},
      "sites": [
        {"name": "alpha", "host": "10.0.0.1", "user": "backup",
         "targets": [{"mode": "directory", "path": "/srv/data"}]}
      ]
    })")
        .as_object();
  }

  static json::object& site(json::object& root, std::size_t i) {
    return root["sites"].as_array()[i].as_object();
  }
  static json::object& target(json::object& root, std::size_t s, std::size_t t) {
    return site(root, s)["targets"].as_array()[t].as_object();
  }
  static json::object second_site() {
    return json::parse(R"({"name": "beta", "host": "10.0.0.2", "user": "backup",
                           "targets": [{"mode": "sqlite_dump", "path": "/var/lib/app.db"}]})")
        .as_object();
  }

  config_result parse(const json::value& v, const load_options& opts = {}) const {
    return satoru::parse_config(json::serialize(v), file_, opts);
  }
  config_result parse_text(const std::string& text, const load_options& opts = {}) const {
    return satoru::parse_config(text, file_, opts);
  }

  std::string write_file(const std::string& name, const std::string& content,
                         mode_t mode) const {
    std::string path = dir_.path() + "/" + name;
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << content;
    ::chmod(path.c_str(), mode);
    return path;
  }

  static load_options with_modes() {
    load_options opts;
    opts.known_modes = [](const std::string&) {
      return std::vector<std::string>{"sqlite_dump", "directory"};
    };
    return opts;
  }

  satoru::testing::temp_dir dir_{"satoru-config-test"};
  std::string file_;
};

// -- defaults and paths ---------------------------------------------------------

TEST_F(ConfigTest, MinimalConfigGetsDefaults) {
  load_options opts;
  opts.default_plugin_dir = "/opt/satoru/plugins";
  auto r = parse(base(), opts);
  ASSERT_TRUE(is_clean(r));
  const auto& c = *r.value;
  EXPECT_EQ(c.file, file_);
  EXPECT_EQ(c.staging_root, dir_.path() + "/backups");
  EXPECT_EQ(c.restic_repo_path, dir_.path() + "/repos/restic");
  EXPECT_EQ(c.database_path, dir_.path() + "/satoru.db");
  EXPECT_EQ(c.plugin_dir, "/opt/satoru/plugins");
  EXPECT_EQ(c.restic_password.type(), satoru::secret_source::kind::env);
  EXPECT_EQ(c.restic_password.location(), "SATORU_TEST_UNSET_PASSWORD");
  EXPECT_EQ(c.retention.keep_daily, 7);
  EXPECT_EQ(c.retention.keep_weekly, 4);
  EXPECT_EQ(c.retention.keep_monthly, 6);
  EXPECT_FALSE(c.retention.keep_last);
  EXPECT_FALSE(c.retention.keep_within);
  EXPECT_EQ(c.restic_retention_interval_hours, 24);
  EXPECT_EQ(c.restic_sync_interval_hours, 24);
  EXPECT_FALSE(c.restic_b2_repository);
  EXPECT_TRUE(c.restic_b2_account_id.empty());
  EXPECT_TRUE(c.restic_b2_account_key.empty());
  EXPECT_EQ(c.job_worker_concurrency, 4);
  EXPECT_EQ(c.target_concurrency, 2);
  EXPECT_EQ(c.site_scan_interval_hours, 24);
  EXPECT_EQ(c.metrics_listen, "127.0.0.1:9464");
  EXPECT_EQ(c.preflight_timeout_seconds, 60);
  EXPECT_EQ(c.target_timeout_seconds, 21600);
  EXPECT_EQ(c.restic_timeout_seconds, 21600);
  EXPECT_EQ(c.sync_timeout_seconds, 43200);
  EXPECT_EQ(c.ssh.identity_file, dir_.path() + "/keys/id_ed25519");
  EXPECT_EQ(c.ssh.connect_timeout_seconds, 10);

  ASSERT_EQ(c.sites.size(), 1u);
  const auto& s = c.sites[0];
  EXPECT_EQ(s.name, "alpha");
  EXPECT_EQ(s.uuid, satoru::derive_site_uuid("alpha"));
  EXPECT_EQ(s.host, "10.0.0.1");
  EXPECT_EQ(s.port, 22);
  EXPECT_EQ(s.user, "backup");
  EXPECT_EQ(s.ssh.identity_file, dir_.path() + "/keys/id_ed25519");
  EXPECT_EQ(s.ssh.known_hosts_file, dir_.path() + "/keys/known_hosts");
  EXPECT_EQ(s.ssh.connect_timeout_seconds, 10);
  ASSERT_EQ(s.targets.size(), 1u);
  EXPECT_EQ(s.targets[0].mode, "directory");
  EXPECT_EQ(s.targets[0].path, "/srv/data");
  EXPECT_TRUE(s.targets[0].options.empty());
  EXPECT_EQ(s.targets[0].hash, satoru::target_hash("directory", "/srv/data"));
}

TEST_F(ConfigTest, AllKeysAreRead) {
  auto root = base();
  root["restic_retention_interval_hours"] = 12;
  root["restic_sync_interval_hours"] = 0;
  root["site_scan_interval_hours"] = 6;
  root["job_worker_concurrency"] = 8;
  root["target_concurrency"] = 3;
  root["preflight_timeout_seconds"] = 30;
  root["target_timeout_seconds"] = 100;
  root["restic_timeout_seconds"] = 200;
  root["sync_timeout_seconds"] = 300;
  root["metrics_listen"] = "[::1]:9100";
  root["restic_b2_repository"] = "rest:http://127.0.0.1:8000/repo";
  root["ssh"].as_object()["connect_timeout_seconds"] = 5;
  target(root, 0, 0)["options"] = json::parse(R"({"exclude": ["*.tmp"]})");
  site(root, 0)["port"] = 2222;
  site(root, 0)["uuid"] = "5F0C2A9E-3B7D-4C1E-9A8F-2D6B4E1C7A30";
  auto r = parse(root);
  ASSERT_TRUE(is_clean(r));
  const auto& c = *r.value;
  EXPECT_EQ(c.restic_retention_interval_hours, 12);
  EXPECT_EQ(c.restic_sync_interval_hours, 0);
  EXPECT_EQ(c.site_scan_interval_hours, 6);
  EXPECT_EQ(c.job_worker_concurrency, 8);
  EXPECT_EQ(c.target_concurrency, 3);
  EXPECT_EQ(c.preflight_timeout_seconds, 30);
  EXPECT_EQ(c.target_timeout_seconds, 100);
  EXPECT_EQ(c.restic_timeout_seconds, 200);
  EXPECT_EQ(c.sync_timeout_seconds, 300);
  EXPECT_EQ(c.metrics_listen, "[::1]:9100");
  EXPECT_EQ(c.restic_b2_repository, "rest:http://127.0.0.1:8000/repo");
  EXPECT_EQ(c.sites[0].port, 2222);
  EXPECT_EQ(c.sites[0].uuid, "5f0c2a9e-3b7d-4c1e-9a8f-2d6b4e1c7a30"); // lowercased
  EXPECT_EQ(c.sites[0].ssh.connect_timeout_seconds, 5);
  EXPECT_EQ(json::serialize(c.sites[0].targets[0].options), R"({"exclude":["*.tmp"]})");
}

TEST_F(ConfigTest, RelativePathsResolveAgainstTheConfigFolder) {
  auto root = base();
  root["staging_root"] = "../elsewhere/./staging/";
  root["restic_repo_path"] = "/abs/repo/../restic";
  root["database_path"] = "state/satoru.db";
  root["plugin_dir"] = "plugins";
  auto r = parse(root);
  ASSERT_TRUE(is_clean(r));
  std::string parent = fs::path(dir_.path()).parent_path().string();
  EXPECT_EQ(r.value->staging_root, parent + "/elsewhere/staging");
  EXPECT_EQ(r.value->restic_repo_path, "/abs/restic");
  EXPECT_EQ(r.value->database_path, dir_.path() + "/state/satoru.db");
  EXPECT_EQ(r.value->plugin_dir, dir_.path() + "/plugins");
}

TEST_F(ConfigTest, RemoteTargetPathsAreNormalized) {
  auto root = base();
  target(root, 0, 0)["path"] = "/srv//data/./";
  auto r = parse(root);
  ASSERT_TRUE(is_clean(r));
  EXPECT_EQ(r.value->sites[0].targets[0].path, "/srv/data");
  EXPECT_EQ(r.value->sites[0].targets[0].hash,
            satoru::target_hash("directory", "/srv/data"));
}

TEST_F(ConfigTest, TildeIsNotExpanded) {
  auto root = base();
  root["staging_root"] = "~/backups";
  auto r = parse(root);
  EXPECT_TRUE(has_diag_containing(r, "/staging_root", "is not expanded"));
}

TEST_F(ConfigTest, LoadingWritesNothing) {
  std::string path = write_file("satoru.json", json::serialize(base()), 0600);
  auto r = satoru::load_config(path);
  ASSERT_TRUE(is_clean(r));
  EXPECT_FALSE(fs::exists(r.value->database_path));
  EXPECT_FALSE(fs::exists(r.value->staging_root));
  EXPECT_FALSE(fs::exists(r.value->restic_repo_path));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_.path()), fs::directory_iterator()),
            1);
}

// -- syntax -------------------------------------------------------------------

TEST_F(ConfigTest, CommentsAndTrailingCommasAreAccepted) {
  auto r = parse_text(R"(// leading comment
{
  /* block comment */
  "restic_password": {"env": "X",},   // trailing comma inside
  "ssh": {"identity_file": "/k", "known_hosts_file": "/kh",},
  "sites": [
    {"name": "a", "host": "h", "user": "u", "targets": [{"mode": "directory", "path": "/x",},],},
  ],
}
// trailing comment
)");
  EXPECT_TRUE(is_clean(r));
}

TEST_F(ConfigTest, SyntaxErrorReportsLineAndColumn) {
  auto r = parse_text("{\n  \"sites\": [],\n  \"x\" 1\n}\n");
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_FALSE(r.value);
  const auto& d = r.diagnostics[0];
  EXPECT_EQ(d.pointer, "");
  EXPECT_EQ(d.message, "line 3, column 7: syntax error (unexpected '1')");
  EXPECT_EQ(d.to_string(), file_ + ": line 3, column 7: syntax error (unexpected '1')");
}

TEST_F(ConfigTest, SyntaxErrorColumnCountsCharactersNotBytes) {
  auto r = parse_text("{\"k\": \"äöü\" x}");
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_EQ(r.diagnostics[0].message, "line 1, column 13: syntax error (unexpected 'x')");
}

TEST_F(ConfigTest, IncompleteJsonIsASyntaxError) {
  auto r = parse_text("{\n  \"sites\": [\n");
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_EQ(r.diagnostics[0].message, "line 3, column 1: syntax error (incomplete JSON)");
}

TEST_F(ConfigTest, TextAfterTheValueIsASyntaxError) {
  auto r = parse_text("{}\n}");
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_EQ(r.diagnostics[0].message,
            "line 2, column 1: syntax error (unexpected text after the JSON value)");
}

TEST_F(ConfigTest, EmptyFileIsOneError) {
  auto r = parse_text("  \n");
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_EQ(r.diagnostics[0].pointer, "");
  EXPECT_EQ(r.diagnostics[0].message, "the file is empty (expected a JSON object)");
}

TEST_F(ConfigTest, RootMustBeAnObject) {
  auto r = parse_text("[1, 2]");
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_EQ(r.diagnostics[0].to_string(),
            file_ + ": the top-level value must be a JSON object");
}

TEST_F(ConfigTest, MissingFileIsOneFileLevelError) {
  std::string path = dir_.path() + "/nope.json";
  auto r = satoru::load_config(path);
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_FALSE(r.value);
  EXPECT_EQ(r.diagnostics[0].file, path);
  EXPECT_EQ(r.diagnostics[0].pointer, "");
  EXPECT_EQ(r.diagnostics[0].to_string(),
            "cannot read " + path + ": No such file or directory");
}

TEST_F(ConfigTest, DirectoryIsUnreadable) {
  auto r = satoru::load_config(dir_.path());
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_EQ(r.diagnostics[0].message, "cannot read " + dir_.path() + ": Is a directory");
}

TEST_F(ConfigTest, EndlessFileIsRefused) {
  auto r = satoru::load_config("/dev/zero");
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_EQ(r.diagnostics[0].to_string(),
            "cannot read /dev/zero: file is larger than 16 MiB");
}

TEST_F(ConfigTest, DuplicateJsonKeysAreErrors) {
  auto r = parse_text(R"({
    "restic_password": {"env": "X"},
    "ssh": {"identity_file": "/k", "known_hosts_file": "/kh"},
    "sites": [{"name": "a", "host": "h", "host": "h2", "user": "u", "targets": []}]
  })");
  EXPECT_TRUE(has_diag(r, "/sites/0/host",
                       "duplicate key \"host\" (only the last one would be used)"));
}

TEST_F(ConfigTest, GarbageNeverThrows) {
  for (const std::string& text : std::vector<std::string>{
           "\xff\xfe", std::string(5000, '['), "{\"sites\": [[[[]]]]}", "null",
           "{\"sites\": [null, 1, \"x\"]}"}) {
    config_result r;
    EXPECT_NO_THROW(r = parse_text(text));
    EXPECT_FALSE(r.value);
    EXPECT_FALSE(r.diagnostics.empty());
  }
}

// -- unknown keys and types ----------------------------------------------------

TEST_F(ConfigTest, UnknownKeysAreErrorsWithAHint) {
  auto root = base();
  site(root, 0)["hots"] = "x";
  root["stagin_root"] = "/x";
  root["colour"] = 1;
  target(root, 0, 0)["pth"] = "/y";
  root["restic_retention_policy"] = json::parse(R"({"keep_dayly": 3, "keep_last": 1})");
  auto r = parse(root);
  EXPECT_TRUE(
      has_diag(r, "/sites/0/hots", "unknown key \"hots\" (did you mean \"host\"?)"));
  EXPECT_TRUE(has_diag(r, "/stagin_root",
                       "unknown key \"stagin_root\" (did you mean \"staging_root\"?)"));
  EXPECT_TRUE(has_diag(r, "/colour", "unknown key \"colour\""));
  EXPECT_TRUE(has_diag(r, "/sites/0/targets/0/pth",
                       "unknown key \"pth\" (did you mean \"path\"?)"));
  EXPECT_TRUE(has_diag(r, "/restic_retention_policy/keep_dayly",
                       "unknown key \"keep_dayly\" (did you mean \"keep_daily\"?)"));
  EXPECT_FALSE(r.value);
}

TEST_F(ConfigTest, UnknownKeyPointerIsEscaped) {
  auto root = base();
  root["a/b~c"] = 1;
  auto r = parse(root);
  EXPECT_TRUE(has_diag(r, "/a~1b~0c", "unknown key \"a/b~c\""));
}

TEST_F(ConfigTest, WrongTypesAreErrors) {
  auto root = base();
  site(root, 0)["port"] = "22";
  site(root, 0)["host"] = 5;
  target(root, 0, 0)["options"] = json::array{};
  root["job_worker_concurrency"] = true;
  root["staging_root"] = nullptr;
  root["ssh"].as_object()["connect_timeout_seconds"] = "10";
  auto r = parse(root);
  EXPECT_TRUE(has_diag(r, "/sites/0/port", "must be an integer"));
  EXPECT_TRUE(has_diag(r, "/sites/0/host", "must be a string"));
  EXPECT_TRUE(has_diag(r, "/sites/0/targets/0/options", "must be an object"));
  EXPECT_TRUE(has_diag(r, "/job_worker_concurrency", "must be an integer"));
  EXPECT_TRUE(has_diag(r, "/staging_root", "must be a string"));
  EXPECT_TRUE(has_diag(r, "/ssh/connect_timeout_seconds", "must be an integer"));
}

TEST_F(ConfigTest, ContainersMustHaveTheirTypes) {
  auto root = base();
  root["ssh"] = "x";
  root["sites"] = json::object{};
  auto r = parse(root);
  EXPECT_TRUE(has_diag(r, "/ssh", "must be an object"));
  EXPECT_TRUE(has_diag(r, "/sites", "must be an array"));

  root = base();
  root["sites"].as_array().push_back("beta");
  site(root, 0)["targets"] = json::array{"x"};
  r = parse(root);
  EXPECT_TRUE(has_diag(r, "/sites/1", "must be an object"));
  EXPECT_TRUE(has_diag(r, "/sites/0/targets/0", "must be an object"));
}

TEST_F(ConfigTest, MissingRequiredKeysPointWhereTheKeyWouldBe) {
  auto root = base();
  root["sites"].as_array().push_back(second_site());
  site(root, 1).erase("user");
  site(root, 0).erase("host");
  target(root, 0, 0).erase("path");
  target(root, 1, 0).erase("mode");
  auto r = parse(root);
  EXPECT_TRUE(has_diag(r, "/sites/1/user", "required"));
  EXPECT_TRUE(has_diag(r, "/sites/0/host", "required"));
  EXPECT_TRUE(has_diag(r, "/sites/0/targets/0/path", "required"));
  EXPECT_TRUE(has_diag(r, "/sites/1/targets/0/mode", "required"));
  EXPECT_EQ(r.diagnostics.size(), 4u) << dump(r);

  root = base();
  site(root, 0).erase("name");
  site(root, 0).erase("targets");
  r = parse(root);
  EXPECT_TRUE(has_diag(r, "/sites/0/name", "required"));
  EXPECT_TRUE(has_diag(r, "/sites/0/targets", "required"));
}

TEST_F(ConfigTest, NoSitesIsValid) {
  auto root = base();
  root.erase("sites");
  EXPECT_TRUE(is_clean(parse(root)));
  root["sites"] = json::array{};
  EXPECT_TRUE(is_clean(parse(root)));
}

TEST_F(ConfigTest, SeveralErrorsAreAllReported) {
  auto root = base();
  root["sites"].as_array().push_back(second_site());
  site(root, 0)["port"] = 70000;
  site(root, 1)["name"] = "alpha";
  target(root, 1, 0)["path"] = "relative/app.db";
  root["job_worker_concurrency"] = 0;
  root["metrics_listen"] = "localhost";
  root["tpyo"] = 1;
  auto r = parse(root);
  EXPECT_FALSE(r.value);
  EXPECT_EQ(r.diagnostics.size(), 6u) << dump(r);
  EXPECT_TRUE(has_diag(r, "/sites/0/port", "must be between 1 and 65535"));
  EXPECT_TRUE(has_diag_containing(r, "/sites/1/name", "duplicate site name"));
  EXPECT_TRUE(has_diag(r, "/sites/1/targets/0/path", "must be an absolute path"));
  EXPECT_TRUE(has_diag(r, "/job_worker_concurrency", "must be >= 1"));
  EXPECT_TRUE(has_diag_containing(r, "/metrics_listen", "must be host:port"));
  EXPECT_TRUE(has_diag(r, "/tpyo", "unknown key \"tpyo\""));
  for (const auto& d : r.diagnostics)
    EXPECT_EQ(d.file, file_);
}

// -- sites and targets ----------------------------------------------------------

TEST_F(ConfigTest, DuplicateSiteNamePointsAtTheSecond) {
  auto root = base();
  root["sites"].as_array().push_back(second_site());
  root["sites"].as_array().push_back(second_site());
  auto r = parse(root);
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_TRUE(has_diag(r, "/sites/2/name",
                       "duplicate site name \"beta\" (already used by /sites/1)"));
}

TEST_F(ConfigTest, DuplicateTargetInASite) {
  auto root = base();
  auto& targets = site(root, 0)["targets"].as_array();
  targets.push_back(json::parse(R"({"mode": "sqlite_dump", "path": "/srv/data"})"));
  targets.push_back(json::parse(R"({"mode": "directory", "path": "/srv/data/"})"));
  auto r = parse(root);
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r); // same path, other mode is fine
  EXPECT_TRUE(has_diag(r, "/sites/0/targets/2/path",
                       "duplicate target: mode \"directory\" with path \"/srv/data\" is "
                       "already /sites/0/targets/0"));
}

TEST_F(ConfigTest, SameTargetInTwoSitesIsFine) {
  auto root = base();
  auto beta = second_site();
  beta["targets"] = json::parse(R"([{"mode": "directory", "path": "/srv/data"}])");
  root["sites"].as_array().push_back(beta);
  EXPECT_TRUE(is_clean(parse(root)));
}

TEST_F(ConfigTest, UnknownModeListsTheAvailableOnes) {
  auto root = base();
  site(root, 0)["targets"].as_array().push_back(
      json::parse(R"({"mode": "tarball", "path": "/x"})"));
  auto r = parse(root, with_modes());
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_EQ(r.diagnostics[0].to_string(),
            file_ + ": /sites/0/targets/1/mode: unknown mode \"tarball\"; available: "
                    "directory, sqlite_dump");
  // Without known_modes every mode is accepted.
  EXPECT_TRUE(is_clean(parse(root)));
}

TEST_F(ConfigTest, KnownModesGetsTheResolvedPluginDir) {
  auto root = base();
  root["plugin_dir"] = "lib/plugins/";
  std::string seen;
  load_options opts;
  opts.known_modes = [&seen](const std::string& dir) {
    seen = dir;
    return std::vector<std::string>{};
  };
  auto r = parse(root, opts);
  EXPECT_EQ(seen, dir_.path() + "/lib/plugins");
  EXPECT_TRUE(has_diag(r, "/sites/0/targets/0/mode",
                       "unknown mode \"directory\"; no plugins found in " + seen));
}

TEST_F(ConfigTest, KnownModesThatThrowIsReportedOnce) {
  auto root = base();
  root["sites"].as_array().push_back(second_site());
  load_options opts;
  opts.known_modes = [](const std::string&) -> std::vector<std::string> {
    throw std::runtime_error("boom");
  };
  auto r = parse(root, opts);
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_TRUE(has_diag_containing(r, "/plugin_dir", "cannot list the plugins"));
}

TEST_F(ConfigTest, PortMustBeInRange) {
  for (int port : {0, -1, 65536}) {
    auto root = base();
    site(root, 0)["port"] = port;
    EXPECT_TRUE(has_diag(parse(root), "/sites/0/port", "must be between 1 and 65535"))
        << port;
  }
  for (int port : {1, 65535}) {
    auto root = base();
    site(root, 0)["port"] = port;
    EXPECT_TRUE(is_clean(parse(root))) << port;
  }
}

TEST_F(ConfigTest, RemoteTargetPathMustBeAbsolute) {
  auto root = base();
  root["sites"].as_array().push_back(second_site());
  root["sites"].as_array().push_back(second_site());
  site(root, 2)["name"] = "gamma";
  target(root, 2, 0)["path"] = "var/lib/app.db";
  target(root, 0, 0)["path"] = "";
  auto r = parse(root);
  EXPECT_TRUE(has_diag(r, "/sites/2/targets/0/path", "must be an absolute path"));
  EXPECT_TRUE(has_diag(r, "/sites/0/targets/0/path", "must not be empty"));
}

TEST_F(ConfigTest, SiteNamesAreChecked) {
  const std::string rule =
      "must be 1 to 64 characters from A-Z a-z 0-9 . _ - and not start with '-'";
  for (const std::string& bad :
       std::vector<std::string>{"-lead", "a b", "a/b", "ü", std::string(65, 'a')}) {
    auto root = base();
    site(root, 0)["name"] = bad;
    EXPECT_TRUE(has_diag(parse(root), "/sites/0/name", rule)) << bad;
  }
  auto root = base();
  site(root, 0)["name"] = "";
  EXPECT_TRUE(has_diag(parse(root), "/sites/0/name", "must not be empty"));
  for (const std::string& good : std::vector<std::string>{
           "edge-01.example_a", "A", std::string(64, 'z'), "_x", "0"}) {
    root = base();
    site(root, 0)["name"] = good;
    EXPECT_TRUE(is_clean(parse(root))) << good;
  }
}

TEST_F(ConfigTest, UuidsAreCheckedAndUnique) {
  auto root = base();
  site(root, 0)["uuid"] = "not-a-uuid";
  EXPECT_TRUE(has_diag(parse(root), "/sites/0/uuid",
                       "must be a UUID like \"123e4567-e89b-12d3-a456-426614174000\""));

  root = base();
  root["sites"].as_array().push_back(second_site());
  site(root, 0)["uuid"] = "5f0c2a9e-3b7d-4c1e-9a8f-2d6b4e1c7a30";
  site(root, 1)["uuid"] = "5F0C2A9E-3B7D-4C1E-9A8F-2D6B4E1C7A30";
  auto r = parse(root);
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_TRUE(
      has_diag(r, "/sites/1/uuid",
               "duplicate uuid \"5f0c2a9e-3b7d-4c1e-9a8f-2d6b4e1c7a30\" (already used "
               "by /sites/0)"));

  // A configured uuid equal to another site's derived one is a clash too.
  root = base();
  root["sites"].as_array().push_back(second_site());
  site(root, 1)["uuid"] = satoru::derive_site_uuid("alpha");
  EXPECT_TRUE(has_diag_containing(parse(root), "/sites/1/uuid", "duplicate uuid"));
}

TEST_F(ConfigTest, HostAndUserAreChecked) {
  auto root = base();
  site(root, 0)["host"] = "";
  site(root, 0)["user"] = "-oProxyCommand=x";
  auto r = parse(root);
  EXPECT_TRUE(has_diag(r, "/sites/0/host", "must not be empty"));
  EXPECT_TRUE(has_diag(r, "/sites/0/user", "must not start with '-'"));
  root = base();
  site(root, 0)["host"] = "a host";
  EXPECT_TRUE(has_diag(parse(root), "/sites/0/host",
                       "must not contain spaces or control characters"));
}

// -- numbers ---------------------------------------------------------------------

TEST_F(ConfigTest, IntervalsAreNonNegativeIntegers) {
  for (const char* key : {"restic_retention_interval_hours", "restic_sync_interval_hours",
                          "site_scan_interval_hours"}) {
    auto root = base();
    root[key] = -1;
    EXPECT_TRUE(has_diag(parse(root), std::string("/") + key,
                         "must be >= 0 (0 = never scheduled)"));
    root[key] = 1.5;
    EXPECT_TRUE(has_diag(parse(root), std::string("/") + key,
                         "must be an integer (0 = never scheduled)"));
    root[key] = "24";
    EXPECT_FALSE(parse(root).value);
    root[key] = 0;
    auto r = parse(root);
    ASSERT_TRUE(is_clean(r));
    root[key] = 48.0; // an integral number written with a fraction is still an integer
    EXPECT_TRUE(is_clean(parse(root)));
  }
  auto root = base();
  root["site_scan_interval_hours"] = 1e12;
  EXPECT_TRUE(
      has_diag(parse(root), "/site_scan_interval_hours", "must be at most 2147483647"));
}

TEST_F(ConfigTest, ConcurrencyAndTimeoutsArePositive) {
  for (const char* key :
       {"job_worker_concurrency", "target_concurrency", "preflight_timeout_seconds",
        "target_timeout_seconds", "restic_timeout_seconds", "sync_timeout_seconds"}) {
    auto root = base();
    root[key] = 0;
    EXPECT_TRUE(has_diag(parse(root), std::string("/") + key, "must be >= 1"));
    root[key] = -3;
    EXPECT_TRUE(has_diag(parse(root), std::string("/") + key, "must be >= 1"));
  }
}

TEST_F(ConfigTest, ConnectTimeoutIsBounded) {
  for (int value : {0, 3601}) {
    auto root = base();
    root["ssh"].as_object()["connect_timeout_seconds"] = value;
    EXPECT_TRUE(has_diag(parse(root), "/ssh/connect_timeout_seconds",
                         "must be between 1 and 3600"));
  }
}

TEST_F(ConfigTest, MetricsListenIsHostPort) {
  for (const char* bad : {"9464", ":9464", "localhost:", "localhost:0", "localhost:65536",
                          "::1:9464", "[::1]9464", "host:94a4", "a b:1"}) {
    auto root = base();
    root["metrics_listen"] = bad;
    EXPECT_TRUE(has_diag(parse(root), "/metrics_listen",
                         "must be host:port with a port from 1 to 65535, e.g. "
                         "\"127.0.0.1:9464\""))
        << bad;
  }
  for (const char* good : {"0.0.0.0:9100", "localhost:65535", "[::1]:9464"}) {
    auto root = base();
    root["metrics_listen"] = good;
    auto r = parse(root);
    ASSERT_TRUE(is_clean(r)) << good;
    EXPECT_EQ(r.value->metrics_listen, good);
  }
}

// -- retention ---------------------------------------------------------------------

TEST_F(ConfigTest, GivenRetentionReplacesTheDefault) {
  auto root = base();
  root["restic_retention_policy"] =
      json::parse(R"({"keep_last": 2, "keep_within": "1y2m3d4h"})");
  auto r = parse(root);
  ASSERT_TRUE(is_clean(r));
  const auto& p = r.value->retention;
  EXPECT_EQ(p.keep_last, 2);
  EXPECT_FALSE(p.keep_daily);
  EXPECT_FALSE(p.keep_weekly);
  EXPECT_FALSE(p.keep_monthly);
  EXPECT_EQ(p.keep_within, "1y2m3d4h");
  EXPECT_EQ(p.restic_flags(),
            (std::vector<std::string>{"--keep-last", "2", "--keep-within", "1y2m3d4h"}));
}

TEST_F(ConfigTest, RetentionFlagsInOrder) {
  satoru::retention_policy p;
  p.keep_last = 2;
  p.keep_hourly = 0; // 0 = not by this rule
  p.keep_daily = 7;
  p.keep_weekly = 4;
  p.keep_monthly = 6;
  p.keep_yearly = 1;
  p.keep_within = "30d";
  EXPECT_EQ(p.restic_flags(),
            (std::vector<std::string>{"--keep-last", "2", "--keep-daily", "7",
                                      "--keep-weekly", "4", "--keep-monthly", "6",
                                      "--keep-yearly", "1", "--keep-within", "30d"}));
  EXPECT_TRUE(satoru::retention_policy{}.restic_flags().empty());
}

TEST_F(ConfigTest, RetentionMustKeepSomething) {
  for (const char* policy : {"{}", R"({"keep_daily": 0})", R"({"keep_within": "0d"})"}) {
    auto root = base();
    root["restic_retention_policy"] = json::parse(policy);
    EXPECT_TRUE(has_diag_containing(parse(root), "/restic_retention_policy",
                                    "must keep something"))
        << policy;
  }
}

TEST_F(ConfigTest, RetentionCountsAreNonNegativeIntegers) {
  auto root = base();
  root["restic_retention_policy"] = json::parse(
      R"({"keep_daily": -1, "keep_weekly": 1.5, "keep_monthly": "6", "keep_yearly": 2})");
  auto r = parse(root);
  EXPECT_TRUE(has_diag(r, "/restic_retention_policy/keep_daily", "must be >= 0"));
  EXPECT_TRUE(has_diag(r, "/restic_retention_policy/keep_weekly", "must be an integer"));
  EXPECT_TRUE(has_diag(r, "/restic_retention_policy/keep_monthly", "must be an integer"));
  EXPECT_EQ(r.diagnostics.size(), 3u) << dump(r); // no "must keep something" on top
}

TEST_F(ConfigTest, KeepWithinIsAResticDuration) {
  for (const char* good : {"30d", "1y2m3d4h", "12h", "2m"}) {
    auto root = base();
    root["restic_retention_policy"] = json::object{{"keep_within", good}};
    EXPECT_TRUE(is_clean(parse(root))) << good;
  }
  for (const char* bad : {"30", "d", "30 d", "1w", "1d1d", "-1d", "30D", "1.5d"}) {
    auto root = base();
    root["restic_retention_policy"] = json::object{{"keep_within", bad}};
    EXPECT_TRUE(has_diag(parse(root), "/restic_retention_policy/keep_within",
                         "must be a restic duration like \"30d\" or \"1y2m3d4h\""))
        << bad;
  }
}

TEST_F(ConfigTest, RetentionMustBeAnObject) {
  auto root = base();
  root["restic_retention_policy"] = 7;
  EXPECT_TRUE(has_diag(parse(root), "/restic_retention_policy", "must be an object"));
}

// -- ssh -----------------------------------------------------------------------------

TEST_F(ConfigTest, SiteSshOverridesKeyByKey) {
  auto root = base();
  root["ssh"].as_object()["connect_timeout_seconds"] = 20;
  root["sites"].as_array().push_back(second_site());
  site(root, 1)["ssh"] =
      json::parse(R"({"identity_file": "/keys/beta", "connect_timeout_seconds": 3})");
  auto r = parse(root);
  ASSERT_TRUE(is_clean(r));
  const auto& alpha = r.value->sites[0].ssh;
  const auto& beta = r.value->sites[1].ssh;
  EXPECT_EQ(alpha.identity_file, dir_.path() + "/keys/id_ed25519");
  EXPECT_EQ(alpha.connect_timeout_seconds, 20);
  EXPECT_EQ(beta.identity_file, "/keys/beta");
  EXPECT_EQ(beta.known_hosts_file, dir_.path() + "/keys/known_hosts");
  EXPECT_EQ(beta.connect_timeout_seconds, 3);
}

TEST_F(ConfigTest, SshFilesAreRequiredAfterMerging) {
  auto root = base();
  root.erase("ssh");
  root["sites"].as_array().push_back(second_site());
  site(root, 1)["ssh"] =
      json::parse(R"({"identity_file": "k", "known_hosts_file": "kh"})");
  auto r = parse(root);
  ASSERT_EQ(r.diagnostics.size(), 2u) << dump(r);
  EXPECT_EQ(r.diagnostics[0].to_string(),
            file_ +
                ": /sites/0/ssh/identity_file: required (set it here or in the top-level "
                "ssh object)");
  EXPECT_TRUE(has_diag(r, "/sites/0/ssh/known_hosts_file",
                       "required (set it here or in the top-level ssh object)"));
}

TEST_F(ConfigTest, SshFilesNeedNotExist) {
  auto root = base();
  root["ssh"].as_object()["identity_file"] = "/nonexistent/key";
  EXPECT_TRUE(is_clean(parse(root)));
}

TEST_F(ConfigTest, InvalidTopLevelSshIsReportedOnce) {
  auto root = base();
  root["sites"].as_array().push_back(second_site());
  root["ssh"].as_object()["identity_file"] = 3;
  auto r = parse(root);
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_TRUE(has_diag(r, "/ssh/identity_file", "must be a string"));
}

// -- secrets -------------------------------------------------------------------------

TEST_F(ConfigTest, PasswordFileShorthand) {
  std::string pass = write_file("secrets/restic.pass", "s3cret\n", 0600);
  auto root = base();
  root.erase("restic_password");
  root["restic_password_file"] = "secrets/restic.pass";
  auto r = parse(root);
  ASSERT_TRUE(is_clean(r));
  EXPECT_EQ(r.value->restic_password.type(), satoru::secret_source::kind::file);
  EXPECT_EQ(r.value->restic_password.location(), pass);

  root.erase("restic_password_file");
  root["restic_password"] = json::object{{"file", pass}};
  r = parse(root);
  ASSERT_TRUE(is_clean(r));
  EXPECT_EQ(r.value->restic_password.location(), pass);
  EXPECT_EQ(*r.value->restic_password.resolve(), "s3cret");
}

TEST_F(ConfigTest, PasswordIsRequiredOnce) {
  auto root = base();
  root.erase("restic_password");
  auto r = parse(root);
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_EQ(r.diagnostics[0].pointer, "/restic_password_file");
  EXPECT_EQ(r.diagnostics[0].message.rfind("required", 0), 0u);

  root = base();
  root["restic_password_file"] = "/x";
  EXPECT_TRUE(has_diag(parse(root), "/restic_password",
                       "give either restic_password or restic_password_file, not both"));
}

TEST_F(ConfigTest, SecretFileMustExist) {
  auto root = base();
  root.erase("restic_password");
  root["restic_password_file"] = "/x/pass";
  auto r = parse(root);
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_EQ(r.diagnostics[0].to_string(),
            file_ + ": /restic_password_file: secret file /x/pass does not exist");
}

TEST_F(ConfigTest, SecretFileMustBePrivate) {
  std::string pass = write_file("pass", "hunter2-topsecret\n", 0644);
  auto root = base();
  root.erase("restic_password");
  root["restic_password_file"] = "pass";
  root["restic_b2_repository"] = "b2:bucket:path";
  root["restic_b2_account_id"] = json::object{{"file", pass}};
  root["restic_b2_account_key"] = json::object{{"env", "B2_KEY"}};
  auto r = parse(root);
  ASSERT_EQ(r.diagnostics.size(), 2u) << dump(r);
  const std::string message =
      "secret file " + pass + " is readable by group or others (mode 0644); chmod 600 it";
  EXPECT_TRUE(has_diag(r, "/restic_password_file", message));
  EXPECT_TRUE(has_diag(r, "/restic_b2_account_id/file", message));
  EXPECT_EQ(r.diagnostics[0].to_string(), file_ + ": /restic_password_file: " + message);

  ::chmod(pass.c_str(), 0620);
  EXPECT_TRUE(has_diag_containing(parse(root), "/restic_password_file",
                                  "is writable by group or others (mode 0620)"));
  ::chmod(pass.c_str(), 0400);
  EXPECT_TRUE(is_clean(parse(root)));
}

TEST_F(ConfigTest, SecretFileMustBeARegularFile) {
  auto root = base();
  root["restic_password"] = json::object{{"file", dir_.path()}};
  ::chmod(dir_.path().c_str(), 0700);
  EXPECT_TRUE(has_diag(parse(root), "/restic_password/file",
                       "secret file " + dir_.path() + " is not a regular file"));
}

TEST_F(ConfigTest, DiagnosticsNeverContainTheSecret) {
  const std::string secret = "hunter2-topsecret";
  std::string pass = write_file("pass", secret + "\n", 0644);
  std::string ok = write_file("ok.pass", secret, 0600);
  auto root = base();
  root["restic_password"] = json::object{{"file", pass}};
  root["restic_b2_account_id"] = json::object{{"file", ok}, {"env", "X"}};
  root["restic_b2_account_key"] = json::object{{"file", ok}, {"fiel", 1}};
  root["sites"] = 1;
  auto r = parse(root);
  ASSERT_FALSE(r.diagnostics.empty());
  for (const auto& d : r.diagnostics) {
    EXPECT_EQ(d.to_string().find(secret), std::string::npos) << d.to_string();
    EXPECT_EQ(d.to_string().find("hunter2"), std::string::npos) << d.to_string();
  }
}

TEST_F(ConfigTest, SecretSourceObjectsAreChecked) {
  auto root = base();
  root["restic_password"] = json::object{};
  EXPECT_TRUE(has_diag(parse(root), "/restic_password",
                       "must be {\"file\": PATH} or {\"env\": VARIABLE}"));
  root["restic_password"] = json::object{{"file", "/a"}, {"env", "B"}};
  EXPECT_TRUE(has_diag(parse(root), "/restic_password",
                       "give either \"file\" or \"env\", not both"));
  root["restic_password"] = json::object{{"fiel", "/a"}};
  auto r = parse(root);
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_TRUE(has_diag(r, "/restic_password/fiel",
                       "unknown key \"fiel\" (did you mean \"file\"?)"));
  root["restic_password"] = json::object{{"env", "1BAD-NAME"}};
  EXPECT_TRUE(has_diag_containing(parse(root), "/restic_password/env",
                                  "must be an environment variable name"));
  root["restic_password"] = "/plain/string";
  EXPECT_TRUE(has_diag(parse(root), "/restic_password", "must be an object"));
}

TEST_F(ConfigTest, EnvSecretNeedNotBeSetAtLoadTime) {
  ::unsetenv("SATORU_TEST_UNSET_PASSWORD");
  auto r = parse(base());
  ASSERT_TRUE(is_clean(r));
  EXPECT_FALSE(r.value->restic_password.resolve());
}

// -- off-site repository --------------------------------------------------------------

TEST_F(ConfigTest, B2RepositoryIsANonEmptyString) {
  auto root = base();
  root["restic_b2_repository"] = "";
  EXPECT_TRUE(has_diag(parse(root), "/restic_b2_repository", "must not be empty"));
  root["restic_b2_repository"] = 5;
  EXPECT_TRUE(has_diag(parse(root), "/restic_b2_repository", "must be a string"));
}

TEST_F(ConfigTest, B2CredentialsComeAsAPair) {
  auto root = base();
  root["restic_b2_repository"] = "b2:bucket:satoru";
  auto r = parse(root);
  EXPECT_TRUE(has_diag(r, "/restic_b2_account_id", "required for a b2: repository"));
  EXPECT_TRUE(has_diag(r, "/restic_b2_account_key", "required for a b2: repository"));

  root["restic_b2_account_id"] = json::object{{"env", "B2_ID"}};
  EXPECT_TRUE(has_diag(parse(root), "/restic_b2_account_key",
                       "required when restic_b2_account_id is set"));

  root["restic_b2_account_key"] = json::object{{"env", "B2_KEY"}};
  r = parse(root);
  ASSERT_TRUE(is_clean(r));
  EXPECT_EQ(r.value->restic_b2_account_id.describe(), "env B2_ID");
  EXPECT_EQ(r.value->restic_b2_account_key.describe(), "env B2_KEY");

  // Other repository kinds need no B2 credentials.
  root = base();
  root["restic_b2_repository"] = "rest:http://127.0.0.1:8000/repo";
  EXPECT_TRUE(is_clean(parse(root)));
}

TEST_F(ConfigTest, OffsiteRetentionChecksAndDrillsHaveDefaultsAndAreValidated) {
  auto root = base();
  auto defaults = parse(root);
  ASSERT_TRUE(is_clean(defaults));
  const auto& d = *defaults.value;
  EXPECT_EQ(d.restic_b2_retention_interval_hours, 168);
  EXPECT_EQ(d.b2_retention.restic_flags(), d.retention.restic_flags())
      << "the off-site policy defaults to the local one";
  EXPECT_EQ(d.check_interval_hours, 24);
  EXPECT_EQ(d.check_read_data_subset, "2%");
  EXPECT_EQ(d.restic_b2_check_interval_hours, 168);
  EXPECT_EQ(d.restore_drill_interval_hours, 24);
  EXPECT_EQ(d.restore_drill_max_age_days, 7);

  root["restic_retention_policy"] = {{"keep_last", 5}};
  root["restic_b2_retention_policy"] = {{"keep_daily", 30}};
  root["check_read_data_subset"] = "1/7";
  auto set = parse(root);
  ASSERT_TRUE(is_clean(set));
  EXPECT_EQ(set.value->b2_retention.restic_flags(),
            (std::vector<std::string>{"--keep-daily", "30"}));
  EXPECT_EQ(set.value->retention.restic_flags(),
            (std::vector<std::string>{"--keep-last", "5"}));
  EXPECT_EQ(set.value->check_read_data_subset, "1/7");

  for (const char* bad : {"2", "101%", "-1%", "--help", "0/7", "8/7", "x%"}) {
    root["check_read_data_subset"] = bad;
    auto r = parse(root);
    EXPECT_TRUE(has_diag_containing(r, "/check_read_data_subset", "percentage")) << bad;
  }
  root["check_read_data_subset"] = "0%";
  EXPECT_EQ(d.disk_min_free_percent, 10);
  EXPECT_EQ(d.disk_min_free_bytes, 0);
  root["disk_min_free"] = json::parse(R"({"percent": 5, "bytes": "5GiB"})");
  auto disk = parse(root);
  ASSERT_TRUE(is_clean(disk));
  EXPECT_EQ(disk.value->disk_min_free_percent, 5);
  EXPECT_EQ(disk.value->disk_min_free_bytes, 5LL << 30);
  root["disk_min_free"] = json::parse(R"({"bytes": "5 parsecs"})");
  EXPECT_TRUE(has_diag_containing(parse(root), "/disk_min_free/bytes", "size like"));
  root["disk_min_free"] = json::parse(R"({"percent": 150})");
  EXPECT_TRUE(has_diag_containing(parse(root), "/disk_min_free/percent", "between"));
  root.erase("disk_min_free");
  root["restic_b2_retention_policy"] = json::object{};
  EXPECT_TRUE(has_diag_containing(parse(root), "/restic_b2_retention_policy",
                                  "must keep something"));
}

// -- the shipped files ---------------------------------------------------------------

TEST(ConfigExample, LoadsCleanly) {
  std::string path = std::string(SATORU_SOURCE_DIR) + "/config/satoru.example.json";
  load_options opts;
  opts.known_modes = [](const std::string&) {
    return std::vector<std::string>{"directory", "sqlite_dump"};
  };
  auto r = satoru::load_config(path, opts);
  ASSERT_TRUE(is_clean(r));
  const auto& c = *r.value;
  ASSERT_EQ(c.sites.size(), 2u);
  EXPECT_NE(c.find_site("store-berlin-01"), nullptr);
  EXPECT_EQ(c.find_site("store-hamburg-02")->port, 2222);
  EXPECT_EQ(c.find_site("store-hamburg-02")->ssh.connect_timeout_seconds, 30);
  EXPECT_EQ(c.restic_password.type(), satoru::secret_source::kind::env);
  EXPECT_TRUE(c.restic_b2_repository.has_value());
  bool directory = false, sqlite = false;
  for (const auto& s : c.sites)
    for (const auto& t : s.targets) {
      directory |= t.mode == "directory";
      sqlite |= t.mode == "sqlite_dump";
    }
  EXPECT_TRUE(directory);
  EXPECT_TRUE(sqlite);
}

/// Every key the schema documents is one the loader knows (and the other way
/// round, for the top level), so editors and check-config agree.
TEST(ConfigSchema, MatchesTheLoaderKeys) {
  std::ifstream in(std::string(SATORU_SOURCE_DIR) + "/config/satoru.schema.json");
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  auto schema = json::parse(text).as_object();
  const auto& properties = schema.at("properties").as_object();

  std::vector<std::string> keys;
  for (const auto& p : properties)
    keys.emplace_back(p.key());
  EXPECT_EQ(keys.size(), 42u); // 35 + the seven web_* keys

  // A config holding every schema key (with junk values) yields type errors
  // but never "unknown key".
  json::object everything;
  for (const auto& key : keys)
    everything[key] = json::array{};
  auto r = satoru::parse_config(json::serialize(everything), "/tmp/schema-check.json");
  for (const auto& d : r.diagnostics)
    EXPECT_EQ(d.message.find("unknown key"), std::string::npos) << d.to_string();

  const auto& defs = schema.at("$defs").as_object();
  for (const char* def : {"site", "target", "ssh"}) {
    json::object obj;
    for (const auto& p : defs.at(def).at("properties").as_object())
      obj[p.key()] = nullptr;
    json::object root{{"sites", json::array{}}};
    if (std::string(def) == "ssh")
      root["ssh"] = obj;
    else if (std::string(def) == "site")
      root["sites"].as_array().push_back(obj);
    else
      root["sites"].as_array().push_back(json::object{{"targets", json::array{obj}}});
    r = satoru::parse_config(json::serialize(root), "/tmp/schema-check.json");
    for (const auto& d : r.diagnostics)
      EXPECT_EQ(d.message.find("unknown key"), std::string::npos) << d.to_string();
  }
}

// -- small API -------------------------------------------------------------------------

TEST(ConfigPath, FlagThenEnvironmentThenDefault) {
  const char* saved = std::getenv("SATORU_CONFIG");
  std::string saved_value = saved ? saved : "";
  ::setenv("SATORU_CONFIG", "/from/env.json", 1);
  EXPECT_EQ(satoru::default_config_path("/from/flag.json"), "/from/flag.json");
  EXPECT_EQ(satoru::default_config_path(""), "/from/env.json");
  ::setenv("SATORU_CONFIG", "", 1);
  EXPECT_EQ(satoru::default_config_path(""), "/etc/satoru/satoru.json");
  ::unsetenv("SATORU_CONFIG");
  EXPECT_EQ(satoru::default_config_path(""), "/etc/satoru/satoru.json");
  if (saved) ::setenv("SATORU_CONFIG", saved_value.c_str(), 1);
}

TEST(ConfigDiagnostic, ToString) {
  EXPECT_EQ((satoru::config_diagnostic{"satoru.json", "/sites/2/targets/0/path",
                                       "must be an absolute path"})
                .to_string(),
            "satoru.json: /sites/2/targets/0/path: must be an absolute path");
  EXPECT_EQ(
      (satoru::config_diagnostic{"satoru.json", "", "line 3, column 7: syntax error (x)"})
          .to_string(),
      "satoru.json: line 3, column 7: syntax error (x)");
  EXPECT_EQ((satoru::config_diagnostic{"", "/a", "m"}).to_string(), "/a: m");
}

TEST_F(ConfigTest, FindSite) {
  auto root = base();
  root["sites"].as_array().push_back(second_site());
  auto r = parse(root);
  ASSERT_TRUE(is_clean(r));
  ASSERT_NE(r.value->find_site("beta"), nullptr);
  EXPECT_EQ(r.value->find_site("beta")->host, "10.0.0.2");
  EXPECT_EQ(r.value->find_site("gamma"), nullptr);
}

} // namespace

// -- sudo on the edge -------------------------------------------------------------

TEST_F(ConfigTest, SiteSudoIsEveryTargetsDefaultAndATargetMayOptOut) {
  auto root = base();
  site(root, 0)["sudo"] = true;
  site(root, 0)["targets"].as_array().push_back(json::parse(
      R"({"mode": "directory", "path": "/srv/other", "options": {"sudo": false}})"));
  auto r = parse(root);
  ASSERT_TRUE(is_clean(r));
  EXPECT_EQ(r.value->sites[0].targets[0].options.at("sudo"), json::value(true));
  EXPECT_EQ(r.value->sites[0].targets[1].options.at("sudo"), json::value(false));
  // Without the site's "sudo", the options stay as written.
  auto plain = parse(base());
  ASSERT_TRUE(is_clean(plain));
  EXPECT_FALSE(plain.value->sites[0].targets[0].options.contains("sudo"));
}

TEST_F(ConfigTest, SiteSudoMustBeABoolean) {
  auto root = base();
  site(root, 0)["sudo"] = "yes";
  EXPECT_TRUE(has_diag(parse(root), "/sites/0/sudo", "must be true or false"));
}
