#include "satoru/rsync.hpp"
#include "satoru/ssh_control.hpp"

#include "edge_host.hpp"
#include "satoru/files.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sys/stat.h>

using namespace satoru;

namespace {

bool has_word(const std::vector<std::string>& args, const std::string& word) {
  return std::find(args.begin(), args.end(), word) != args.end();
}

/// 127.0.0.1:1: nothing listens there, so ssh fails at once.
ssh_endpoint closed_port() {
  ssh_endpoint e;
  e.host = "127.0.0.1";
  e.port = 1;
  e.user = "nobody";
  e.identity_file = "/nonexistent/key";
  e.known_hosts_file = "/nonexistent/known_hosts";
  e.connect_timeout_seconds = 2;
  return e;
}

} // namespace

TEST(SshControl, SocketNameIsAShortHashThatFitsAUnixSocket) {
  auto path =
      control_socket_path("/run/satoru", "5390807e-36a6-557b-88ea-fde6c697393f", 42);
  ASSERT_EQ(path.size(), std::string("/run/satoru/").size() + 16);
  EXPECT_EQ(path.rfind("/run/satoru/", 0), 0u);
  EXPECT_NE(path, control_socket_path("/run/satoru",
                                      "5390807e-36a6-557b-88ea-fde6c697393f", 43));
  // ssh binds "<path>.<16 characters>" first; sun_path holds 107 bytes.
  EXPECT_EQ(control_socket_path(std::string(73, 'd'), "u", 1).size(), 90u);
  EXPECT_EQ(control_socket_path(std::string(74, 'd'), "u", 1), "");
}

TEST(SshControl, FolderBesideTheDatabaseIsMadePrivate) {
  satoru::testing::temp_dir tmp{"ssh-control"};
  const std::string db = tmp.path() + "/state/satoru.db";
  ::unsetenv("RUNTIME_DIRECTORY");
  auto dir = control_socket_dir(db);
  EXPECT_EQ(dir, tmp.path() + "/state/cm");
  ASSERT_TRUE(make_dirs(dir, 0755));
  ::chmod(dir.c_str(), 0755);
  ASSERT_TRUE(prepare_control_socket_dir(dir));
  struct stat st {};
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);

  // What a killed daemon left: gone at the next start, one line each.
  std::ofstream{dir + "/0123456789abcdef"} << "";
  auto lines = close_stale_control_masters(dir);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("0123456789abcdef"), std::string::npos) << lines[0];
  EXPECT_FALSE(std::filesystem::exists(dir + "/0123456789abcdef"));
}

TEST(SshControl, AMasterThatCannotOpenFallsBackToPlainConnectionsOnce) {
  satoru::testing::temp_dir tmp{"ssh-control"};
  std::vector<std::string> warnings;
  auto endpoint = closed_port();
  endpoint.control = std::make_shared<ssh_control_master>(
      tmp.path() + "/0123456789abcdef",
      [&](const std::string& why) { warnings.push_back(why); });

  for (int i = 0; i < 2; ++i) {
    auto args = ssh_command_args(endpoint);
    // The pinned options stay; no ControlPath to a master that is not there.
    EXPECT_TRUE(has_word(args, "StrictHostKeyChecking=yes"));
    for (const auto& a : args)
      EXPECT_EQ(a.find("ControlPath"), std::string::npos) << a;
  }
  ASSERT_EQ(warnings.size(), 1u) << "one warning per job, not per rsync";
  EXPECT_NE(warnings[0].find("127.0.0.1:1"), std::string::npos) << warnings[0];
  EXPECT_EQ(warnings[0].find('\n'), std::string::npos) << warnings[0];
}

TEST(SshControl, WithoutAMasterTheCommandIsUnchanged) {
  auto plain = closed_port();
  auto args = ssh_command_args(plain);
  for (const auto& a : args)
    EXPECT_EQ(a.find("Control"), std::string::npos) << a;
  auto options = ssh_control_options("/run/satoru/a b%c", "no");
  EXPECT_EQ(options, (std::vector<std::string>{"-o", "ControlMaster=no", "-o",
                                               "ControlPath=\"/run/satoru/a b%%c\""}));
}
