#include "satoru/restic.hpp"

#include "edge_host.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sys/stat.h>

using namespace satoru;

namespace {

std::string env_value(const process_spec& spec, const std::string& key) {
  for (const auto& [k, v] : spec.env)
    if (k == key) return v;
  return "<unset>";
}

restic_repository remote(const std::string& location) {
  ::setenv("SATORU_TEST_B2_ID", "key-id-0001", 1);
  ::setenv("SATORU_TEST_B2_KEY", "very-secret-application-key", 1);
  restic_repository r;
  r.location = location;
  r.password = secret_source::from_env("SATORU_TEST_B2_KEY");
  r.b2_account_id = secret_source::from_env("SATORU_TEST_B2_ID");
  r.b2_account_key = secret_source::from_env("SATORU_TEST_B2_KEY");
  return r;
}

void expect_no_secret_in_argv(const process_spec& spec) {
  for (const auto& arg : spec.argv) {
    EXPECT_EQ(arg.find("very-secret"), std::string::npos) << arg;
    EXPECT_EQ(arg.find("key-id-0001"), std::string::npos) << arg;
  }
}

} // namespace

TEST(ResticCommand, NativeB2GetsTheB2Variables) {
  restic_client client{remote("b2:bucket:fleet"), std::chrono::seconds{10}};
  auto spec = client.command({"snapshots", "--json"});
  ASSERT_TRUE(spec) << spec.err().message;
  EXPECT_EQ(env_value(*spec, "B2_ACCOUNT_ID"), "key-id-0001");
  EXPECT_EQ(env_value(*spec, "B2_ACCOUNT_KEY"), "very-secret-application-key");
  EXPECT_EQ(env_value(*spec, "AWS_ACCESS_KEY_ID"), "<unset>");
  EXPECT_EQ(env_value(*spec, "RESTIC_REPOSITORY"), "b2:bucket:fleet");
  expect_no_secret_in_argv(*spec);
}

TEST(ResticCommand, TheS3EndpointOfB2GetsTheSameKeysAsAwsVariables) {
  restic_client client{remote("s3:https://s3.us-west-004.backblazeb2.com/bucket/fleet"),
                       std::chrono::seconds{10}};
  auto spec = client.command({"snapshots", "--json"});
  ASSERT_TRUE(spec) << spec.err().message;
  EXPECT_EQ(env_value(*spec, "AWS_ACCESS_KEY_ID"), "key-id-0001");
  EXPECT_EQ(env_value(*spec, "AWS_SECRET_ACCESS_KEY"), "very-secret-application-key");
  EXPECT_EQ(env_value(*spec, "B2_ACCOUNT_ID"), "<unset>");
  expect_no_secret_in_argv(*spec);
}

TEST(ResticCommand, APasswordFileIsPassedByPathNeverByValue) {
  satoru::testing::temp_dir tmp;
  auto pass = tmp / "pass";
  std::ofstream(pass) << "hunter2\n";
  ::chmod(pass.c_str(), 0600);
  restic_repository r;
  r.location = tmp / "repo";
  r.password = secret_source::from_file(pass);
  restic_client client{r, std::chrono::seconds{10}};
  auto spec = client.command({"init"});
  ASSERT_TRUE(spec) << spec.err().message;
  EXPECT_EQ(env_value(*spec, "RESTIC_PASSWORD_FILE"), pass);
  EXPECT_EQ(env_value(*spec, "RESTIC_PASSWORD"), "");
  for (const auto& arg : spec->argv)
    EXPECT_EQ(arg.find("hunter2"), std::string::npos);
  for (const auto& [k, v] : spec->env)
    EXPECT_EQ(v.find("hunter2"), std::string::npos) << k;
}
