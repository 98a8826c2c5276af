// `satoru check-config` as an operator runs it: the shipped example passes,
// broken configs exit 2 naming every bad JSON pointer, nothing is written.
#include "satoru_env.hpp"

#include "satoru/process.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

using namespace satoru::testing;
namespace fs = std::filesystem;

namespace {

cli_result check_config(const std::string& path) {
  satoru::process_spec spec;
  spec.argv = {SATORU_BIN, "check-config", "--config", path};
  spec.inherit_environment = true; // the test's own satoru, run as a user would
  spec.timeout = std::chrono::seconds{60};
  auto r = satoru::run_process(spec);
  cli_result out;
  if (!r) return out;
  out.exit_code = r->exit_code;
  out.out = r->out;
  out.err = r->err;
  return out;
}

std::vector<std::string> listing(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    names.push_back(e.path().string());
  std::sort(names.begin(), names.end());
  return names;
}

int lines(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

} // namespace

TEST(CheckConfig, TheShippedExamplePasses) {
  auto r = check_config(std::string{SATORU_SOURCE_DIR} + "/config/satoru.example.json");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("ok (2 sites"), std::string::npos) << r.out;
}

TEST(CheckConfig, ReportsEveryErrorWithItsPointerAndWritesNothing) {
  temp_dir tmp;
  auto path = tmp / "satoru.json";
  std::ofstream(path) << R"({
    // comments and trailing commas are fine
    "restic_password_file": "pass",
    "database_path": "state/satoru.db",
    "job_worker_concurrency": -1,
    "site_scan_interval_hours": 1.5,
    "ssh": {"identity_file": "/k", "known_hosts_file": "/kh"},
    "sites": [
      {"name": "a", "host": "10.0.0.1", "user": "root", "port": 70000,
       "targets": [{"mode": "directory", "path": "relative/path"}]},
      {"name": "a", "host": "10.0.0.2", "user": "root", "hots": "x",
       "targets": [{"mode": "tarball", "path": "/srv"},
                   {"mode": "sqlite_dump", "path": "/db"},
                   {"mode": "sqlite_dump", "path": "/db"}]},
      {"name": "c", "host": "10.0.0.3",
       "targets": []},
    ],
  })";
  std::ofstream(tmp / "pass") << "secret-value\n";
  fs::permissions(tmp / "pass",
                  fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  auto before = listing(tmp.path());
  auto r = check_config(path);
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  for (auto pointer :
       {"/restic_password_file", "/job_worker_concurrency", "/site_scan_interval_hours",
        "/sites/0/port", "/sites/0/targets/0/path", "/sites/1/name", "/sites/1/hots",
        "/sites/1/targets/0/mode", "/sites/1/targets/2/path", "/sites/2/user"})
    EXPECT_NE(r.err.find(std::string{"satoru.json: "} + pointer + ":"), std::string::npos)
        << pointer << "\n"
        << r.err;
  EXPECT_NE(r.err.find("did you mean \"host\""), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("available: directory, postgres_dump, sqlite_dump"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("secret-value"), std::string::npos) << "a secret leaked";
  EXPECT_EQ(listing(tmp.path()), before) << "check-config wrote something";
}

TEST(CheckConfig, MissingFileAndInvalidJsonAreOneLineErrors) {
  temp_dir tmp;
  auto missing = check_config(tmp / "nope.json");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(lines(missing.err), 1) << missing.err;
  EXPECT_NE(missing.err.find("nope.json"), std::string::npos) << missing.err;

  auto path = tmp / "bad.json";
  std::ofstream(path) << "{\n  \"sites\": [\n    {\"name\": \"a\",,}\n  ]\n}\n";
  auto bad = check_config(path);
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(lines(bad.err), 1) << bad.err;
  EXPECT_NE(bad.err.find("line 3"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("column"), std::string::npos) << bad.err;

  auto dir = check_config(tmp.path());
  EXPECT_EQ(dir.exit_code, 2);
  EXPECT_EQ(lines(dir.err), 1) << dir.err;
}
