// The web console's config keys (docs/reference.md, docs/console.md).
#include "edge_host.hpp"

#include "satoru/config.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <fstream>
#include <sys/stat.h>

namespace {

namespace json = boost::json;
using satoru::testing::temp_dir;

class WebConfig : public ::testing::Test {
protected:
  satoru::config_result parse(const json::object& web) {
    json::object root = json::parse(R"({
      "restic_password": {"env": "SATORU_TEST_UNSET_PASSWORD"},
      "ssh": {"identity_file": "id", "known_hosts_file": "known_hosts"},
      "sites": []
    })")
                            .as_object();
    for (const auto& [key, value] : web)
      root[key] = value;
    return satoru::parse_config(json::serialize(root), file_);
  }

  /// "satoru.json: /pointer: message" lines, for assertions and failures.
  static std::string errors(const satoru::config_result& r) {
    std::string out;
    for (const auto& d : r.diagnostics)
      out += d.to_string() + "\n";
    return out;
  }

  std::string write(const std::string& name, mode_t mode) {
    std::string path = dir_ / name;
    std::ofstream(path) << "x\n";
    ::chmod(path.c_str(), mode);
    return path;
  }

  temp_dir dir_;
  std::string file_ = dir_ / "satoru.json";
};

TEST_F(WebConfig, TheConsoleIsOffUnlessWebListenIsSet) {
  auto r = parse({});
  ASSERT_TRUE(r.value) << errors(r);
  EXPECT_EQ(r.value->web_listen, "");
  EXPECT_FALSE(r.value->web_allow_plaintext);
}

TEST_F(WebConfig, LoopbackNeedsOnlyAUsersFileThatMayNotExistYet) {
  auto r =
      parse({{"web_listen", "127.0.0.1:9465"}, {"web_users_file", "web-users.json"}});
  ASSERT_TRUE(r.value) << errors(r);
  EXPECT_EQ(r.value->web_listen, "127.0.0.1:9465");
  EXPECT_EQ(r.value->web_users_file, dir_ / "web-users.json");
  EXPECT_EQ(errors(parse({{"web_listen", "127.0.0.1:9465"}})),
            file_ + ": /web_users_file: required when web_listen is set\n");
}

TEST_F(WebConfig, BadValuesAreNamedByPointer) {
  write("web-users.json", 0644);
  auto r = parse({{"web_listen", "127.0.0.1"},
                  {"web_users_file", "web-users.json"},
                  {"web_allow_plaintext", "yes"}});
  std::string e = errors(r);
  EXPECT_NE(e.find(file_ + ": /web_listen: must be host:port"), std::string::npos) << e;
  EXPECT_NE(e.find(file_ + ": /web_users_file: secret file " + (dir_ / "web-users.json") +
                   " is readable by group or others"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find(file_ + ": /web_allow_plaintext: must be true or false"),
            std::string::npos)
      << e;
}

TEST_F(WebConfig, AllowedHostsAreNamesWithoutPortsKeptInLowerCase) {
  auto r =
      parse({{"web_listen", "127.0.0.1:9465"},
             {"web_users_file", "web-users.json"},
             {"web_allowed_hosts", json::array{"Backup.Example.com", "backup-server"}}});
  ASSERT_TRUE(r.value) << errors(r);
  EXPECT_EQ(r.value->web_allowed_hosts,
            (std::vector<std::string>{"backup.example.com", "backup-server"}));
  auto bad =
      parse({{"web_listen", "127.0.0.1:9465"},
             {"web_users_file", "web-users.json"},
             {"web_allowed_hosts", json::array{"ok.example", "bad.example:443", ""}}});
  EXPECT_FALSE(bad.value);
  EXPECT_TRUE(errors(bad).find("/web_allowed_hosts/1: must be a host name") !=
              std::string::npos)
      << errors(bad);
  EXPECT_TRUE(errors(bad).find("/web_allowed_hosts/2: must not be empty") !=
              std::string::npos)
      << errors(bad);
  EXPECT_FALSE(parse({{"web_allowed_hosts", "backup.example.com"}}).value)
      << "an array, not a string";
}

TEST_F(WebConfig, BeyondLoopbackWithoutTlsIsRefusedUnlessPlaintextIsAllowed) {
  std::string e =
      errors(parse({{"web_listen", "0.0.0.0:9465"}, {"web_users_file", "u"}}));
  EXPECT_NE(e.find(file_ + ": /web_listen: listens beyond loopback without TLS"),
            std::string::npos)
      << e;
  auto allowed = parse({{"web_listen", "0.0.0.0:9465"},
                        {"web_users_file", "u"},
                        {"web_allow_plaintext", true}});
  EXPECT_TRUE(allowed.value) << errors(allowed);
  for (const char* loopback : {"localhost:9465", "[::1]:9465", "127.0.0.2:1"})
    EXPECT_TRUE(parse({{"web_listen", loopback}, {"web_users_file", "u"}}).value)
        << loopback;
}

TEST_F(WebConfig, TlsFilesAreCheckedAndTlsAllowsListeningBeyondLoopback) {
  write("cert.pem", 0644);
  write("loose.key", 0644);
  write("tls.key", 0600);
  std::string e = errors(parse({{"web_tls_certificate", "cert.pem"}}));
  EXPECT_EQ(e, file_ + ": /web_tls_key: required with web_tls_certificate\n");
  e = errors(
      parse({{"web_tls_certificate", "missing.pem"}, {"web_tls_key", "loose.key"}}));
  EXPECT_NE(e.find("/web_tls_certificate: " + (dir_ / "missing.pem") + " does not exist"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("/web_tls_key: secret file"), std::string::npos) << e;
  auto tls = parse({{"web_listen", "0.0.0.0:9465"},
                    {"web_users_file", "u"},
                    {"web_tls_certificate", "cert.pem"},
                    {"web_tls_key", "tls.key"}});
  ASSERT_TRUE(tls.value) << errors(tls);
  EXPECT_EQ(tls.value->web_tls_certificate, dir_ / "cert.pem");
  EXPECT_EQ(tls.value->web_tls_key, dir_ / "tls.key");
}

TEST_F(WebConfig, TheTokensFileMayNotExistYetButMustBePrivate) {
  auto r = parse({{"web_tokens_file", "tokens.json"}});
  ASSERT_TRUE(r.value) << errors(r);
  EXPECT_EQ(r.value->web_tokens_file, dir_ / "tokens.json");
  write("tokens.json", 0644);
  std::string e = errors(parse({{"web_tokens_file", "tokens.json"}}));
  EXPECT_EQ(e.rfind(file_ + ": /web_tokens_file: ", 0), 0u) << e;
}

} // namespace
