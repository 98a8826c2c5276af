#include "satoru/files.hpp"

#include "edge_host.hpp"
#include "satoru_env.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

using namespace satoru;

namespace {

namespace fs = std::filesystem;

std::string text_in(const std::string& path) {
  auto text = read_whole_file(path);
  return text ? *text : std::string{"<unreadable>"};
}

} // namespace

// Someone who can write to the folder plants symlinks where a secret file
// is about to be written (the old fixed temp name, and the file itself):
// nothing is ever written through them.
TEST(AtomicWrite, NeverWritesThroughAPlantedSymlink) {
  satoru::testing::temp_dir tmp{"satoru-files"};
  auto victim = tmp / "victim";
  auto other = tmp / "other-victim";
  satoru::testing::write_text(victim, "precious\n");
  satoru::testing::write_text(other, "also precious\n");
  auto path = tmp / "web-users.json";
  ASSERT_EQ(::symlink(victim.c_str(), (path + ".tmp").c_str()), 0);
  ASSERT_EQ(::symlink(other.c_str(), path.c_str()), 0);

  ASSERT_TRUE(write_file_atomically(path, "{\"users\": []}\n"));

  EXPECT_EQ(text_in(victim), "precious\n");
  EXPECT_EQ(text_in(other), "also precious\n");
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode)) << "the symlink at the target was replaced";
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(text_in(path), "{\"users\": []}\n");
  // No temp file is left beside it (the planted symlink stays as it was).
  for (const auto& entry : fs::directory_iterator(tmp.path())) {
    auto name = entry.path().filename().string();
    EXPECT_TRUE(name == "victim" || name == "other-victim" || name == "web-users.json" ||
                name == "web-users.json.tmp")
        << name;
  }
  EXPECT_TRUE(fs::is_symlink(path + ".tmp"));
}

// Root writing a file the daemon's user must read gives it to that user
// (still 0600), before it appears under its name.
TEST(AtomicWrite, GivesTheFileToTheOwnerAsked) {
  ASSERT_EQ(::geteuid(), 0u) << "chown needs root (the tests run as root)";
  satoru::testing::temp_dir tmp{"satoru-files"};
  auto path = tmp / "web-tokens.json";
  ASSERT_TRUE(write_file_atomically(path, "{}\n", file_owner{65534, 65534}));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);
  EXPECT_EQ(st.st_gid, 65534u);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}
