// A plugin author's path: install satoru and its plugin SDK, build a plugin
// outside the tree with find_package(Satoru) and satoru_add_plugin() alone,
// drop it into a plugin folder, and see satoru load it, serve its mode and
// back it up — while broken libraries and libraries built with another
// satoru version, C++ ABI, standard library ABI or Boost beside it are
// refused, each with a one-line reason.
#include "satoru_env.hpp"

#include "satoru/plugin_loader.hpp"
#include "satoru/process.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

using namespace satoru::testing;
namespace fs = std::filesystem;

namespace {

void write(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

/// The plugin: mode "hello" copies one remote file over the site's session.
/// NAME and MODE are compile definitions, so the same source also builds an
/// impostor that claims the shipped "directory" mode.
const char* hello_cpp = R"cpp(
#include <satoru/plugin.hpp>
#include <satoru/ssh.hpp>

#include <filesystem>
#include <fstream>

namespace {

class hello_handler final : public satoru::target_handler {
public:
  std::string name() const override { return HELLO_NAME; }
  std::string version() const override { return "0.0.1"; }
  std::vector<std::string> modes() const override { return {HELLO_MODE}; }
  std::vector<std::string> local_tools(const std::string&) const override { return {}; }
  std::vector<std::string> validate_options(const std::string&,
                                            const boost::json::object& options) const override {
    std::vector<std::string> problems;
    for (const auto& kv : options)
      problems.push_back(std::string(kv.key()) + ": unknown option (hello has none)");
    return problems;
  }
  std::vector<satoru::check_result> preflight(const satoru::target_spec& target,
                                              satoru::plugin_services& services) override {
    satoru::check_result c{"remote.path", satoru::check_result::level::fail, ""};
    auto shell = services.remote();
    if (!shell) {
      c.message = shell.err().message;
      return {c};
    }
    auto r = (*shell)->exec("test -r " + satoru::shell_quote(target.path),
                            std::chrono::seconds{30});
    if (r && r->exit_status == 0) {
      c.status = satoru::check_result::level::ok;
      c.message = target.path + " is readable";
    } else {
      c.message = target.path + " is not readable";
    }
    return {c};
  }
  satoru::pull_result pull(const satoru::target_spec& target,
                           satoru::plugin_services& services) override {
    satoru::pull_result result;
    auto shell = services.remote();
    if (!shell) {
      result.message = shell.err().message;
      return result;
    }
    auto r = (*shell)->exec("cat -- " + satoru::shell_quote(target.path),
                            std::chrono::seconds{60});
    if (!r || r->exit_status != 0) {
      result.message = "cat failed";
      return result;
    }
    std::error_code ec;
    std::filesystem::create_directories(target.staging_dir, ec);
    // Written in work_dir, renamed into staging: never a half file there.
    const std::string tmp = target.work_dir + "/hello.txt";
    std::ofstream(tmp, std::ios::binary) << r->out;
    std::filesystem::rename(tmp, target.staging_dir + "/hello.txt", ec);
    if (ec) {
      result.message = ec.message();
      return result;
    }
    services.event("ok", "pull.hello", "copied " + target.path, {{"bytes", r->out.size()}});
    result.outcome = satoru::pull_result::status::success;
    result.files = 1;
    result.bytes = r->out.size();
    return result;
  }
};

} // namespace

SATORU_PLUGIN(hello_handler)
)cpp";

/// Exports the entry points by hand with an ABI version no satoru has.
const char* wrong_abi_cpp = R"cpp(
#include <cstdint>
extern "C" __attribute__((visibility("default"))) std::uint32_t
satoru_plugin_abi_version() noexcept { return 999; }
extern "C" __attribute__((visibility("default"))) void* satoru_plugin_create() noexcept {
  return nullptr;
}
extern "C" __attribute__((visibility("default"))) void satoru_plugin_destroy(void*) noexcept {}
)cpp";

/// Headers of another Boost release, placed before the system's: what a
/// plugin built on a machine with another Boost would have compiled against.
const char* other_boost_version_hpp = R"cpp(
#ifndef BOOST_VERSION_HPP
#define BOOST_VERSION_HPP
#define BOOST_VERSION 108300
#define BOOST_LIB_VERSION "1_83"
#endif
)cpp";

/// satoru/version.hpp of another satoru release, placed before the SDK's.
const char* other_satoru_version_hpp = R"cpp(
#pragma once
#define SATORU_VERSION_STRING "0.0.9"
#define SATORU_VERSION_MAJOR 0
#define SATORU_VERSION_MINOR 0
#define SATORU_VERSION_PATCH 9
)cpp";

/// What docs/plugins.md tells authors to write: find_package(Satoru) and
/// satoru_add_plugin(), nothing else. The mismatched builds below differ
/// from `hello` only in one compile setting each.
const char* cmake_lists = R"cmake(
cmake_minimum_required(VERSION 3.25)
project(hello_plugin LANGUAGES CXX)
find_package(Satoru REQUIRED)
function(hello name mode)
  satoru_add_plugin(NAME ${name} SOURCES hello.cpp)
  target_compile_definitions(satoru_plugin_${name} PRIVATE HELLO_NAME="${name}"
    HELLO_MODE="${mode}")
endfunction()
hello(hello hello)
target_compile_options(satoru_plugin_hello PRIVATE -Wall -Wextra -Werror)
hello(zz_duplicate directory)
satoru_add_plugin(NAME wrong_abi SOURCES wrong_abi.cpp)
# -fabi-version=11 is GCC 7's C++ ABI (__GXX_ABI_VERSION 1011).
hello(old_cxx_abi old_cxx_abi)
target_compile_options(satoru_plugin_old_cxx_abi PRIVATE -fabi-version=11 -Wno-abi)
hello(old_string_abi old_string_abi)
target_compile_definitions(satoru_plugin_old_string_abi PRIVATE _GLIBCXX_USE_CXX11_ABI=0)
hello(other_boost other_boost)
target_include_directories(satoru_plugin_other_boost BEFORE PRIVATE
  ${CMAKE_SOURCE_DIR}/other-boost)
hello(other_version other_version)
target_include_directories(satoru_plugin_other_version BEFORE PRIVATE
  ${CMAKE_SOURCE_DIR}/other-satoru)
)cmake";

int sh(const std::string& command, std::string* out = nullptr) {
  return run_shell(command + " 2>&1", out);
}

/// Installs satoru's runtime and SDK components into DIR/prefix, as the
/// satoru and satoru-dev packages hold them, builds the example plugins in
/// DIR/build and assembles DIR/plugins as an operator would: the shipped
/// plugins, the new one, and seven that must be refused. Returns what failed,
/// or "".
std::string prepare_example(const std::string& dir) {
  const std::string prefix = dir + "/prefix";
  std::string out;
  for (const char* component : {"runtime", "dev"})
    if (sh("cmake --install " + satoru::shell_quote(SATORU_BINARY_DIR) + " --prefix " +
               satoru::shell_quote(prefix) + " --component " + component,
           &out) != 0)
      return "cmake --install failed:\n" + out;
  const std::string src = dir + "/src", build = dir + "/build";
  write(src + "/CMakeLists.txt", cmake_lists);
  write(src + "/hello.cpp", hello_cpp);
  write(src + "/wrong_abi.cpp", wrong_abi_cpp);
  write(src + "/other-boost/boost/version.hpp", other_boost_version_hpp);
  write(src + "/other-satoru/satoru/version.hpp", other_satoru_version_hpp);
  if (sh("cmake -S " + satoru::shell_quote(src) + " -B " + satoru::shell_quote(build) +
             " -DCMAKE_PREFIX_PATH=" + satoru::shell_quote(prefix) +
             " -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build " +
             satoru::shell_quote(build) + " -j2",
         &out) != 0)
    return "building the plugins failed:\n" + out;
  const std::string plugins = dir + "/plugins";
  fs::create_directories(plugins);
  for (const auto& f : fs::directory_iterator(SATORU_PLUGIN_DIR))
    if (f.path().extension() == ".so")
      fs::copy_file(f.path(), plugins + "/" + f.path().filename().string());
  for (const char* name : {"hello", "zz-duplicate", "wrong-abi", "old-cxx-abi",
                           "old-string-abi", "other-boost", "other-version"})
    fs::copy_file(build + "/plugins/libsatoru-plugin-" + std::string(name) + ".so",
                  plugins + "/libsatoru-plugin-" + std::string(name) + ".so");
  write(plugins + "/libsatoru-plugin-not-a-library.so", "this is not an ELF file\n");
  return "";
}

/// Marks a prepared example folder complete, for the tests that reuse it.
const char* ready_marker = "/ready";

/// Under ctest the example is prepared once per run by the fixture test
/// sdk.build_example_plugins (`--prepare DIR`, see main), and every test here
/// reads it from SATORU_SDK_EXAMPLE_DIR: building it takes a minute of both
/// cores. Run alone, the suite prepares its own in a temporary folder.
struct OutOfTreePlugin : ::testing::Test {
  static inline temp_dir* own = nullptr;
  static inline std::string root;
  static inline std::string plugin_dir;
  static inline std::string setup_error;

  static void SetUpTestSuite() {
    if (const char* prepared = std::getenv("SATORU_SDK_EXAMPLE_DIR")) {
      root = prepared;
      if (!fs::exists(root + ready_marker))
        setup_error = "the example plugins are not prepared in " + root +
                      " (the fixture test sdk.build_example_plugins does that)";
    } else {
      own = new temp_dir("satoru-oot");
      root = own->path();
      setup_error = prepare_example(root);
    }
    plugin_dir = root + "/plugins";
  }

  static void TearDownTestSuite() {
    delete own;
    own = nullptr;
  }

  void SetUp() override { ASSERT_EQ(setup_error, "") << setup_error; }

  static std::string file(const std::string& name) {
    return plugin_dir + "/libsatoru-plugin-" + name + ".so";
  }
};

} // namespace

TEST_F(OutOfTreePlugin, InstalledSdkHasTheHeadersLibraryAndCMakePackage) {
  const std::string prefix = root + "/prefix";
  EXPECT_TRUE(fs::exists(prefix + "/include/satoru/plugin.hpp"));
  EXPECT_TRUE(fs::exists(prefix + "/include/satoru/version.hpp"));
  std::string cmake_files;
  sh("cd " + satoru::shell_quote(prefix) + " && find . -path '*/cmake/Satoru/*' | sort",
     &cmake_files);
  for (const char* f : {"SatoruConfig.cmake", "SatoruConfigVersion.cmake",
                        "SatoruTargets.cmake", "SatoruPlugin.cmake"})
    EXPECT_TRUE(contains(cmake_files, std::string("/cmake/Satoru/") + f + "\n"))
        << f << " missing in:\n"
        << cmake_files;
  std::string libs;
  sh("find " + satoru::shell_quote(prefix) + " -name 'libsatoru-core.so*'", &libs);
  EXPECT_TRUE(contains(libs, "libsatoru-core.so\n")) << libs;
  // Nothing but satoru's own headers: the rest come from system packages.
  std::string others;
  sh("cd " + satoru::shell_quote(prefix) +
         "/include && find . -type f ! -path './satoru/*'",
     &others);
  EXPECT_EQ(others, "");
  // Every satoru header the public ones include was installed.
  std::string missing;
  sh("cd " + satoru::shell_quote(prefix) +
         "/include && grep -ho '#include \"satoru/[a-z_]*\\.hpp\"' -r satoru"
         " | sed 's/#include \"//; s/\"//' | sort -u | while read -r h; do [ -f \"$h\" ] "
         "|| echo "
         "\"$h\"; done",
     &missing);
  EXPECT_EQ(missing, "");
}

TEST_F(OutOfTreePlugin, LoadsBesideTheShippedOnesAndBrokenLibrariesAreRefused) {
  auto registry = satoru::plugin_registry::load(plugin_dir);
  ASSERT_NE(registry->find("hello"), nullptr);
  EXPECT_EQ(registry->find("hello")->name(), "hello");
  EXPECT_NE(registry->find("directory"), nullptr);
  EXPECT_NE(registry->find("sqlite_dump"), nullptr);
  // The impostor did not take the shipped mode over.
  EXPECT_EQ(registry->find("directory")->name(), "directory_rsync");
  EXPECT_EQ(
      registry->modes(),
      (std::vector<std::string>{"directory", "hello", "postgres_dump", "sqlite_dump"}));
  for (const auto& p : registry->plugins())
    EXPECT_EQ(p.abi_version, satoru::plugin_abi_version) << p.name;

  std::map<std::string, std::string> refused;
  for (const auto& p : registry->problems())
    refused[p.file] = p.message;
  EXPECT_EQ(refused.size(), 7u);
  for (const auto& [f, why] : refused)
    EXPECT_EQ(why.find('\n'), std::string::npos) << "not one line: " << why;
  EXPECT_TRUE(contains(refused[file("wrong-abi")], "ABI version 999"))
      << refused[file("wrong-abi")];
  EXPECT_TRUE(contains(refused[file("wrong-abi")],
                       "needs " + std::to_string(satoru::plugin_abi_version)))
      << refused[file("wrong-abi")];
  EXPECT_TRUE(contains(refused[file("not-a-library")], "cannot load"))
      << refused[file("not-a-library")];
  EXPECT_TRUE(contains(refused[file("zz-duplicate")],
                       "\"directory\" is already served by "
                       "plugin directory_rsync"))
      << refused[file("zz-duplicate")];

  // Each stamp field that differs is named with both values.
  const auto& host = satoru::host_build();
  EXPECT_EQ(host.satoru_version, SATORU_VERSION_STRING);
  EXPECT_TRUE(contains(refused[file("other-version")],
                       "built for satoru 0.0.9, this is satoru " + host.satoru_version))
      << refused[file("other-version")];
  EXPECT_TRUE(
      contains(refused[file("old-cxx-abi")], "built with Itanium C++ ABI 1011 (GCC"))
      << refused[file("old-cxx-abi")];
  EXPECT_TRUE(contains(refused[file("old-cxx-abi")], "satoru with " + host.cxx_abi))
      << refused[file("old-cxx-abi")];
  EXPECT_TRUE(
      contains(refused[file("old-string-abi")],
               "built with the libstdc++ pre-C++11 ABI, satoru with the libstdc++ "
               "C++11 ABI"))
      << refused[file("old-string-abi")];
  EXPECT_TRUE(contains(refused[file("other-boost")],
                       "built against Boost 1_83, satoru against " + host.boost_version))
      << refused[file("other-boost")];
}

TEST_F(OutOfTreePlugin, CliListsItChecksConfigsWithItAndBacksItUp) {
  satoru_env env{"satoru-oot-env"};
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  const std::string note = host.remote_root() + "/note's $(x).txt";
  host.write_file(note, "greetings from the edge\n");
  env.config["plugin_dir"] = plugin_dir;
  env.add_site("edge", host, {{"hello", note}});
  env.write_config();

  auto r = env.run({"plugins", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto listing = boost::json::parse(r.out).as_object();
  EXPECT_EQ(listing.at("abi_version").as_int64(), satoru::plugin_abi_version);
  std::vector<std::string> names;
  for (auto& p : listing.at("plugins").as_array()) {
    names.push_back(std::string(p.at("name").as_string()));
    if (p.at("name").as_string() == "hello") {
      EXPECT_EQ(p.at("version").as_string(), "0.0.1");
      EXPECT_EQ(p.at("file").as_string(), file("hello"));
      EXPECT_EQ(boost::json::serialize(p.at("modes")), R"(["hello"])");
      EXPECT_EQ(p.at("abi_version").as_int64(), satoru::plugin_abi_version);
      // Its build stamp is shown, and it is this satoru's.
      EXPECT_EQ(p.at("build"), listing.at("build"));
      EXPECT_EQ(p.at("build").at("satoru_version").as_string(), SATORU_VERSION_STRING);
      EXPECT_TRUE(contains(std::string(p.at("build").at("cxx_abi").as_string()),
                           "Itanium C++ ABI"));
    }
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"directory_rsync", "hello", "postgres_dump",
                                             "sqlite_dump"}));
  std::map<std::string, std::string> refused;
  for (auto& p : listing.at("refused").as_array())
    refused[std::string(p.at("file").as_string())] =
        std::string(p.at("reason").as_string());
  EXPECT_EQ(refused.size(), 7u) << r.out;
  EXPECT_TRUE(contains(refused[file("wrong-abi")], "999")) << r.out;
  EXPECT_TRUE(contains(refused[file("other-boost")], "Boost 1_83")) << r.out;

  // The table says the same to a human.
  r = env.run({"plugins"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "hello")) << r.out;
  EXPECT_TRUE(contains(r.out, "refused")) << r.out;
  EXPECT_TRUE(contains(r.out, "ABI version 999")) << r.out;
  EXPECT_TRUE(contains(r.out, "built for satoru 0.0.9")) << r.out;

  r = env.run({"check-config"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;

  // A backup through the real binary: preflight, pull, snapshot, restore.
  r = env.run({"run", "edge", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "pull.hello")) << r.out;
  r = env.run({"restore", "edge", note, "--to", env.path("restored")});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(read_file(env.path("restored") + "/hello.txt"), "greetings from the edge\n");

  // A mode nobody serves fails the check and names the ones available.
  env.config["sites"]
      .as_array()[0]
      .as_object()["targets"]
      .as_array()[0]
      .as_object()["mode"] = "helo";
  env.write_config();
  r = env.run({"check-config"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_TRUE(contains(r.err, "available: directory, hello, postgres_dump, sqlite_dump"))
      << r.err;
}

TEST_F(OutOfTreePlugin, PluginsCommandWorksWithoutAConfig) {
  satoru::process_spec spec;
  spec.argv = {SATORU_BIN, "plugins", "--plugin-dir", plugin_dir, "--json"};
  spec.inherit_environment = true; // the test's own satoru, run as a user would
  spec.timeout = std::chrono::seconds{30};
  auto p = satoru::run_process(spec);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->exit_code, 0) << p->out << p->err;
  auto listing = boost::json::parse(p->out).as_object();
  EXPECT_EQ(listing.at("plugins").as_array().size(), 4u);
  EXPECT_EQ(listing.at("refused").as_array().size(), 7u);
}

/// `--prepare DIR`: prepare the example in DIR (emptied first) and exit; the
/// fixture test sdk.build_example_plugins. Otherwise run the tests.
int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--prepare") {
    const std::string dir = argv[2];
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(dir);
    fs::permissions(dir, fs::perms::owner_all);
    const std::string error = prepare_example(dir);
    if (!error.empty()) {
      std::cerr << error << "\n";
      return 1;
    }
    write(dir + ready_marker, "");
    return 0;
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
