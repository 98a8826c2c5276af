// The loader runs only plugin code that no one but root and the user satoru
// runs as can change: plugin_dir and each plugin file.
#include "edge_host.hpp"

#include "satoru/plugin_loader.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include <sys/stat.h>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;

/// The refusal of `file` in `registry` ("" when it was not refused).
std::string refusal_of(const satoru::plugin_registry& registry, const std::string& file) {
  for (const auto& p : registry.problems())
    if (p.file == file) return p.message;
  return "";
}

/// A plugin_dir holding a copy of the build's directory_rsync plugin.
struct copied_plugin {
  satoru::testing::temp_dir dir{"satoru-plugin-perms"};
  std::string file = dir / "libsatoru-plugin-directory-rsync.so";
  copied_plugin() {
    fs::copy_file(std::string(SATORU_PLUGIN_DIR) + "/libsatoru-plugin-directory-rsync.so",
                  file);
    ::chmod(dir.path().c_str(), 0755);
    ::chmod(file.c_str(), 0755);
  }
};

} // namespace

TEST(PluginLoader, TheBuildsPluginsLoad) {
  auto registry = satoru::plugin_registry::load(SATORU_PLUGIN_DIR);
  for (const auto& p : registry->problems())
    ADD_FAILURE() << p.file << ": " << p.message;
  EXPECT_NE(registry->find("directory"), nullptr);
}

TEST(PluginLoader, APluginFileOthersCanWriteIsRefusedWithTheReason) {
  copied_plugin plugin;
  EXPECT_NE(satoru::plugin_registry::load(plugin.dir.path())->find("directory"), nullptr);
  ASSERT_EQ(::chmod(plugin.file.c_str(), 0775), 0);
  auto group = satoru::plugin_registry::load(plugin.dir.path());
  EXPECT_EQ(group->find("directory"), nullptr);
  EXPECT_EQ(refusal_of(*group, plugin.file),
            "plugin file " + plugin.file +
                " is writable by its group or others (mode 0775); refused: chmod go-w");
  ASSERT_EQ(::chmod(plugin.file.c_str(), 0757), 0);
  EXPECT_EQ(satoru::plugin_registry::load(plugin.dir.path())->find("directory"), nullptr);
}

TEST(PluginLoader, APluginFileOfAnotherUserIsRefusedWithTheReason) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give the file away";
  copied_plugin plugin;
  ASSERT_EQ(::chown(plugin.file.c_str(), 4242, 4242), 0);
  auto registry = satoru::plugin_registry::load(plugin.dir.path());
  EXPECT_EQ(registry->find("directory"), nullptr);
  EXPECT_EQ(refusal_of(*registry, plugin.file),
            "plugin file " + plugin.file +
                " belongs to uid 4242, not to root or the user satoru runs as (uid 0); "
                "refused: give it to root (chown root)");
}

TEST(PluginLoader, APluginDirOthersCanWriteRefusesEveryPluginInIt) {
  copied_plugin plugin;
  ASSERT_EQ(::chmod(plugin.dir.path().c_str(), 0777), 0);
  auto registry = satoru::plugin_registry::load(plugin.dir.path());
  EXPECT_EQ(registry->find("directory"), nullptr);
  EXPECT_EQ(refusal_of(*registry, plugin.file),
            "plugin_dir " + plugin.dir.path() +
                " is writable by its group or others (mode 0777); refused: chmod go-w");
}
