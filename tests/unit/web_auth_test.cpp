// The web console's pure parts: password hashes, the users file, sessions,
// the login limiter and request text parsing.
#include "edge_host.hpp"

#include "satoru/web/http_text.hpp"
#include "satoru/web/login_limiter.hpp"
#include "satoru/web/password.hpp"
#include "satoru/web/sessions.hpp"
#include "satoru/web/users_file.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sys/stat.h>

namespace {

using namespace satoru::web;
using satoru::testing::temp_dir;

/// The cheapest cost verify_password accepts: these tests check behaviour, not cost.
const scrypt_params cheap{10, 8, 1};

TEST(WebPassword, HashVerifiesOnlyItsOwnPassword) {
  auto hash = hash_password("correct horse", cheap);
  ASSERT_TRUE(hash) << hash.err().message;
  EXPECT_TRUE(std::regex_match(
      *hash,
      std::regex(R"(\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=)")))
      << *hash;
  EXPECT_TRUE(verify_password("correct horse", *hash));
  EXPECT_FALSE(verify_password("correct horsE", *hash));
  EXPECT_FALSE(verify_password("", *hash));
  // A fresh salt every time: equal passwords do not give equal hashes.
  EXPECT_NE(*hash, *hash_password("correct horse", cheap));
}

TEST(WebPassword, TheDefaultCostIsScryptN32768) {
  auto hash = hash_password("pw");
  ASSERT_TRUE(hash);
  EXPECT_EQ(hash->rfind("$scrypt$ln=15,r=8,p=1$", 0), 0u) << *hash;
  EXPECT_TRUE(verify_password("pw", *hash));
}

TEST(WebPassword, MalformedOrCostlyHashesNeverMatch) {
  auto hash = *hash_password("pw", cheap);
  std::string rest = hash.substr(hash.find("$", 8));
  EXPECT_FALSE(verify_password("pw", "$scrypt$ln=30,r=8,p=1" + rest)); // hours of work
  EXPECT_FALSE(verify_password("pw", "$scrypt$ln=10,r=8,p=1,x=1" + rest));
  EXPECT_FALSE(verify_password("pw", "$argon2id$" + hash.substr(8)));
  EXPECT_FALSE(verify_password("pw", hash.substr(0, hash.size() - 4)));
  EXPECT_FALSE(verify_password("pw", ""));
}

TEST(WebPassword, ConstantTimeEqualComparesWholeStrings) {
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "abcd"));
  EXPECT_FALSE(constant_time_equal(std::string("a\0b", 3), std::string("a\0c", 3)));
}

TEST(WebUsersFile, PutUserWritesAPrivateFileAndReplacesByName) {
  temp_dir dir;
  std::string path = dir / "users.json";
  ASSERT_TRUE(put_user(path, {"ana", role::viewer, "$scrypt$one"}));
  ASSERT_TRUE(put_user(path, {"bo", role::operator_, "$scrypt$two"}));
  ASSERT_TRUE(put_user(path, {"ana", role::operator_, "$scrypt$three"}));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto users = load_users(path);
  ASSERT_TRUE(users) << users.err().message;
  ASSERT_EQ(users->size(), 2u);
  EXPECT_EQ((*users)[0].name, "ana");
  EXPECT_EQ((*users)[0].role, role::operator_);
  EXPECT_EQ((*users)[0].hash, "$scrypt$three");
  EXPECT_EQ((*users)[1].name, "bo");
}

TEST(WebUsersFile, RefusesAReadableFileAndNamesBadEntries) {
  temp_dir dir;
  std::string path = dir / "users.json";
  EXPECT_FALSE(load_users(path));
  EXPECT_TRUE(load_users(path, true));
  std::ofstream(path)
      << R"({"users": [{"name": "ana", "role": "admin", "password_hash": "x"}]})";
  ::chmod(path.c_str(), 0644);
  auto loose = load_users(path);
  ASSERT_FALSE(loose);
  EXPECT_NE(loose.err().message.find("chmod 600"), std::string::npos)
      << loose.err().message;
  ::chmod(path.c_str(), 0600);
  auto bad = load_users(path);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.err().message,
            path + ": /users/0/role: must be \"viewer\" or \"operator\"");
  EXPECT_FALSE(valid_user_name("a b"));
  EXPECT_FALSE(valid_user_name("<script>"));
  EXPECT_TRUE(valid_user_name("ana.b-c_1"));
}

TEST(WebSessions, IdsAreRandom256BitAndExpireWhenIdleOrOld) {
  session_limits limits;
  limits.idle_ms = 1000;
  limits.absolute_ms = 5000;
  session_store sessions(limits);
  auto id = sessions.create("ana", role::operator_, 0);
  ASSERT_TRUE(id);
  EXPECT_TRUE(std::regex_match(*id, std::regex("[0-9a-f]{64}")));
  EXPECT_NE(*id, *sessions.create("ana", role::operator_, 0));
  auto s = sessions.find(*id, 900);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->user, "ana");
  EXPECT_EQ(s->role, role::operator_);
  // Used every 900 ms it stays alive until its absolute expiry.
  for (std::int64_t t = 1800; t < 5000; t += 900)
    EXPECT_TRUE(sessions.find(*id, t)) << t;
  EXPECT_FALSE(sessions.find(*id, 5000));
  EXPECT_FALSE(sessions.find(*id, 5100)); // removed, not only refused

  auto idle = *sessions.create("bo", role::viewer, 10000);
  EXPECT_FALSE(sessions.find(idle, 11000));
  EXPECT_FALSE(sessions.find("", 10000));
  EXPECT_FALSE(sessions.find(std::string(64, '0'), 10000));

  auto ended = *sessions.create("bo", role::viewer, 20000);
  sessions.remove(ended);
  EXPECT_FALSE(sessions.find(ended, 20001));
}

TEST(WebSessions, TheOldestGoWhenTheStoreIsFull) {
  session_limits limits;
  limits.max_sessions = 2;
  session_store sessions(limits);
  auto first = *sessions.create("a", role::viewer, 1);
  auto second = *sessions.create("b", role::viewer, 2);
  auto third = *sessions.create("c", role::viewer, 3);
  EXPECT_EQ(sessions.size(), 2u);
  EXPECT_FALSE(sessions.find(first, 4));
  EXPECT_TRUE(sessions.find(second, 4));
  EXPECT_TRUE(sessions.find(third, 4));
}

TEST(WebLoginLimiter, BlocksAnAddressAndNameAfterMaxFailuresUntilTheWindowEnds) {
  login_limits limits;
  limits.max_failures = 3;
  limits.window_ms = 10000;
  login_limiter limiter(limits);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(limiter.retry_after("10.0.0.1", "ana", 1000 + i), 0);
    limiter.record_failure("10.0.0.1", "ana", 1000 + i);
  }
  EXPECT_EQ(limiter.retry_after("10.0.0.1", "ana", 2000), 9000);
  EXPECT_EQ(limiter.retry_after("10.0.0.2", "ana", 2000), 0); // per address
  // ...and per name: behind a shared proxy another user still logs in.
  EXPECT_EQ(limiter.retry_after("10.0.0.1", "bo", 2000), 0);
  EXPECT_EQ(limiter.retry_after("10.0.0.1", "ana", 11000), 0);
  // A success clears the count.
  limiter.record_failure("10.0.0.3", "ana", 0);
  limiter.record_failure("10.0.0.3", "ana", 1);
  limiter.record_success("10.0.0.3", "ana");
  limiter.record_failure("10.0.0.3", "ana", 2);
  limiter.record_failure("10.0.0.3", "ana", 3);
  EXPECT_EQ(limiter.retry_after("10.0.0.3", "ana", 4), 0);
}

TEST(WebSessions, RememberTheFingerprintOfTheirUsersEntry) {
  web_credential ana{"ana", role::operator_, "$scrypt$first"};
  auto first = credential_fingerprint(ana);
  EXPECT_EQ(first, credential_fingerprint(ana));
  auto other_password = ana;
  other_password.hash = "$scrypt$second";
  auto other_role = ana;
  other_role.role = role::viewer;
  EXPECT_NE(first, credential_fingerprint(other_password));
  EXPECT_NE(first, credential_fingerprint(other_role));
  session_store sessions;
  auto id = sessions.create("ana", role::operator_, 0, first);
  ASSERT_TRUE(id);
  EXPECT_EQ(sessions.find(*id, 1)->credential, first);
}

TEST(WebHttpText, ParsesFormsCookiesAndOrigins) {
  auto form = parse_form("user=ana&password=p%40ss+word%26x&empty=&=v&user2");
  ASSERT_TRUE(form);
  EXPECT_EQ(form->at("user"), "ana");
  EXPECT_EQ(form->at("password"), "p@ss word&x");
  EXPECT_EQ(form->at("empty"), "");
  EXPECT_EQ(form->at("user2"), "");
  EXPECT_FALSE(parse_form("a=%4"));
  EXPECT_FALSE(parse_form("a=%zz"));
  EXPECT_EQ(cookie_value("a=1; satoru_session=abc; b=2", "satoru_session"), "abc");
  EXPECT_EQ(cookie_value("xsatoru_session=abc", "satoru_session"), "");
  EXPECT_EQ(html_escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  EXPECT_TRUE(same_origin("http://127.0.0.1:9465", "127.0.0.1:9465"));
  EXPECT_TRUE(same_origin("https://console.example", "console.example"));
  EXPECT_FALSE(same_origin("http://evil.example", "127.0.0.1:9465"));
  EXPECT_FALSE(same_origin("null", "127.0.0.1:9465"));
  EXPECT_EQ(split_target("/a?b=1").second, "b=1");
  EXPECT_EQ(split_target("/a").first, "/a");
}

} // namespace
