#include "satoru/secret.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/stat.h>

namespace {

namespace fs = std::filesystem;
using satoru::errc;
using satoru::secret_source;

class SecretSourceTest : public ::testing::Test {
protected:
  SecretSourceTest() {
    std::string pattern =
        (fs::temp_directory_path() / "satoru-secret-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
  }
  ~SecretSourceTest() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
    ::unsetenv("SATORU_TEST_SECRET");
  }

  std::string write(const std::string& name, const std::string& content, mode_t mode) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    ::chmod(path.c_str(), mode);
    return path;
  }

  std::string dir_;
};

TEST_F(SecretSourceTest, DefaultIsNone) {
  secret_source none;
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(none.type(), secret_source::kind::none);
  EXPECT_EQ(none.describe(), "none");
  auto value = none.resolve();
  ASSERT_FALSE(value);
  EXPECT_EQ(value.err().code, errc::invalid_argument);
  EXPECT_FALSE(none.check());
  EXPECT_TRUE(none.check_permissions());
}

TEST_F(SecretSourceTest, DescribeNamesTheSourceOnly) {
  auto file = secret_source::from_file("/etc/satoru/restic.pass");
  EXPECT_EQ(file.type(), secret_source::kind::file);
  EXPECT_EQ(file.location(), "/etc/satoru/restic.pass");
  EXPECT_EQ(file.describe(), "file /etc/satoru/restic.pass");
  auto env = secret_source::from_env("RESTIC_PASSWORD");
  EXPECT_EQ(env.type(), secret_source::kind::env);
  EXPECT_EQ(env.describe(), "env RESTIC_PASSWORD");
  EXPECT_FALSE(env.empty());
}

TEST_F(SecretSourceTest, ResolveFromFileStripsOneTrailingNewline) {
  EXPECT_EQ(*secret_source::from_file(write("a", "pw\n", 0600)).resolve(), "pw");
  EXPECT_EQ(*secret_source::from_file(write("b", "pw\r\n", 0600)).resolve(), "pw");
  EXPECT_EQ(*secret_source::from_file(write("c", "pw", 0400)).resolve(), "pw");
  EXPECT_EQ(*secret_source::from_file(write("d", "pw\n\n", 0600)).resolve(), "pw\n");
  EXPECT_EQ(*secret_source::from_file(write("e", " p w \n", 0600)).resolve(), " p w ");
}

TEST_F(SecretSourceTest, FileReadableByOthersIsRefused) {
  const std::string secret = "hunter2-topsecret";
  std::string path = write("pass", secret + "\n", 0644);
  auto source = secret_source::from_file(path);
  auto value = source.resolve();
  ASSERT_FALSE(value);
  EXPECT_EQ(value.err().code, errc::invalid_argument);
  EXPECT_EQ(value.err().message,
            "secret file " + path +
                " is readable by group or others (mode 0644); chmod 600 it");
  EXPECT_EQ(value.err().message.find(secret), std::string::npos);
  EXPECT_FALSE(source.check());
  EXPECT_EQ(source.check_permissions().err().message, value.err().message);

  ::chmod(path.c_str(), 0640);
  EXPECT_NE(source.resolve().err().message.find("(mode 0640)"), std::string::npos);
  ::chmod(path.c_str(), 0602);
  EXPECT_NE(
      source.resolve().err().message.find("is writable by group or others (mode 0602)"),
      std::string::npos);
  ::chmod(path.c_str(), 0601);
  EXPECT_NE(source.resolve().err().message.find("is accessible by group or others"),
            std::string::npos);
  ::chmod(path.c_str(), 0600);
  EXPECT_EQ(*source.resolve(), secret);
  EXPECT_TRUE(source.check());
  EXPECT_TRUE(source.check_permissions());
}

TEST_F(SecretSourceTest, MissingFile) {
  auto source = secret_source::from_file(dir_ + "/missing");
  auto value = source.resolve();
  ASSERT_FALSE(value);
  EXPECT_EQ(value.err().code, errc::not_found);
  EXPECT_EQ(value.err().message, "secret file " + dir_ + "/missing does not exist");
  EXPECT_EQ(source.check_permissions().err().message, value.err().message);
}

TEST_F(SecretSourceTest, EmptyFileIsRefused) {
  for (const char* content : {"", "\n", "\r\n"}) {
    std::string path = write("empty", content, 0600);
    auto value = secret_source::from_file(path).resolve();
    ASSERT_FALSE(value);
    EXPECT_EQ(value.err().message, "secret file " + path + " is empty");
    // Emptiness needs the content: check() finds it, check_permissions() does not look.
    EXPECT_FALSE(secret_source::from_file(path).check());
    EXPECT_TRUE(secret_source::from_file(path).check_permissions());
  }
}

TEST_F(SecretSourceTest, DirectoryIsRefused) {
  ::chmod(dir_.c_str(), 0700);
  auto value = secret_source::from_file(dir_).resolve();
  ASSERT_FALSE(value);
  EXPECT_EQ(value.err().message, "secret file " + dir_ + " is not a regular file");
}

TEST_F(SecretSourceTest, HugeFileIsRefused) {
  std::string path = write("big", std::string(100 * 1024, 'x'), 0600);
  auto value = secret_source::from_file(path).resolve();
  ASSERT_FALSE(value);
  EXPECT_EQ(value.err().message, "secret file " + path + " is larger than 64 KiB");
}

TEST_F(SecretSourceTest, ResolveFromEnvironment) {
  auto source = secret_source::from_env("SATORU_TEST_SECRET");
  ::unsetenv("SATORU_TEST_SECRET");
  auto value = source.resolve();
  ASSERT_FALSE(value);
  EXPECT_EQ(value.err().code, errc::not_found);
  EXPECT_EQ(value.err().message, "environment variable SATORU_TEST_SECRET is not set");
  EXPECT_FALSE(source.check());
  EXPECT_TRUE(source.check_permissions()); // env need not be set at load time

  ::setenv("SATORU_TEST_SECRET", "", 1);
  EXPECT_EQ(source.resolve().err().message,
            "environment variable SATORU_TEST_SECRET is empty");

  ::setenv("SATORU_TEST_SECRET", "v4lue\n", 1);
  EXPECT_EQ(*source.resolve(),
            "v4lue\n"); // taken as is: only files get a newline stripped
  EXPECT_TRUE(source.check());
}

} // namespace
