#pragma once

#include "satoru/plugin.hpp"

#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace satoru {

/// A build stamp (satoru_plugin_build_info) as text: what a plugin was built
/// with, or this satoru.
struct plugin_build {
  std::string satoru_version;
  std::string compiler; ///< informative; not compared
  std::string cxx_abi;
  std::string stdlib_abi;
  std::string boost_version;
};

/// The stamp of this satoru: what a plugin must have been built with.
const plugin_build& host_build();

/// Why a library built with `plugin` cannot be loaded by a satoru built with
/// `host` (one line naming what differs, and what to rebuild with), or "".
std::string build_mismatch(const plugin_build& plugin, const plugin_build& host);

struct loaded_plugin {
  std::string file; ///< library path ("" for built-in handlers in tests)
  std::string name;
  std::string version;
  std::vector<std::string> modes;
  std::uint32_t abi_version = 0;
  plugin_build build; ///< what it was built with (equal to host_build())
  target_handler* handler = nullptr;
};

/// Why a library in plugin_dir was refused; the others keep working.
struct plugin_problem {
  std::string file;
  std::string message; ///< one line: "ABI version 0, satoru needs 1"
};

/// The target handlers available to this process: every
/// libsatoru-plugin-*.so in a folder, loaded with dlopen and checked.
class plugin_registry {
public:
  plugin_registry() = default;
  ~plugin_registry();
  plugin_registry(const plugin_registry&) = delete;
  plugin_registry& operator=(const plugin_registry&) = delete;

  /// Loads every plugin in `dir` (sorted by file name). A library that cannot
  /// be opened, lacks the entry points, has another ABI version, was built
  /// for another satoru version, C++ ABI, standard library ABI or Boost
  /// version, or serves a mode already served is refused and recorded in
  /// problems().
  static std::shared_ptr<plugin_registry> load(const std::string& dir);

  /// The registry for `dir`, loaded once per process.
  static std::shared_ptr<plugin_registry> shared(const std::string& dir);

  /// Adds an in-process handler (tests, embedding). Refused like a library
  /// when one of its modes is taken.
  expected<void> add(std::unique_ptr<target_handler> handler);

  const std::vector<loaded_plugin>& plugins() const { return plugins_; }
  const std::vector<plugin_problem>& problems() const { return problems_; }
  /// The handler serving `mode`, or nullptr.
  target_handler* find(const std::string& mode) const;
  std::vector<std::string> modes() const;

private:
  expected<void> add_loaded(loaded_plugin plugin);
  struct library;
  std::vector<loaded_plugin> plugins_;
  std::vector<plugin_problem> problems_;
  std::vector<std::unique_ptr<library>> libraries_;
  std::vector<std::unique_ptr<target_handler>> owned_;
};

/// Where plugins are looked for when the config sets no plugin_dir:
/// $SATORU_PLUGIN_DIR, else <exe>/../lib/satoru/plugins when it exists, else
/// the build tree's plugin folder.
std::string default_plugin_dir();

} // namespace satoru
