#include "satoru/plugin_loader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <dlfcn.h>
#include <filesystem>
#include <map>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace satoru {

namespace fs = std::filesystem;

namespace {

using abi_fn = std::uint32_t (*)();
using build_fn = const satoru_plugin_build_info* (*)();
using create_fn = target_handler* (*)();
using destroy_fn = void (*)(target_handler*);

/// Reads a stamp field by field, stopping at the builder's size: a stamp
/// from a later satoru may have more fields, one from an earlier fewer.
plugin_build to_build(const satoru_plugin_build_info& info) {
  using field_ptr = const char* const satoru_plugin_build_info::*;
  auto field = [&](std::size_t offset, field_ptr member) -> std::string {
    if (offset + sizeof(const char*) > info.size || !(info.*member))
      return "(not stamped)";
    return info.*member;
  };
#define SATORU_STAMP_FIELD(name)                                                         \
  field(offsetof(satoru_plugin_build_info, name), &satoru_plugin_build_info::name)
  return {SATORU_STAMP_FIELD(satoru_version), SATORU_STAMP_FIELD(compiler),
          SATORU_STAMP_FIELD(cxx_abi), SATORU_STAMP_FIELD(stdlib_abi),
          SATORU_STAMP_FIELD(boost_version)};
#undef SATORU_STAMP_FIELD
}

/// Why the file or folder at `path` may not hold plugin code ("" when it
/// may): satoru runs that code with all its rights, so only root and the
/// user satoru runs as may be able to change it. Symlinks are followed.
std::string write_access_problem(const fs::path& path, const char* what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return fmt::format("cannot read {} {}: {}", what, path.string(),
                       std::generic_category().message(errno));
  if (st.st_uid != 0 && st.st_uid != ::geteuid())
    return fmt::format("{} {} belongs to uid {}, not to root or the user satoru runs as "
                       "(uid {}); refused: give it to root (chown root)",
                       what, path.string(), st.st_uid, ::geteuid());
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    return fmt::format("{} {} is writable by its group or others (mode {:04o}); refused: "
                       "chmod go-w",
                       what, path.string(), st.st_mode & 07777);
  return "";
}

std::string dl_error() {
  const char* e = dlerror();
  return e ? e : "unknown dlopen error";
}

} // namespace

/// One dlopen'ed library and the handler it created.
struct plugin_registry::library {
  void* handle = nullptr;
  target_handler* handler = nullptr;
  destroy_fn destroy = nullptr;
  ~library() {
    if (handler && destroy) destroy(handler);
    // Plugins stay mapped until exit: a handler's code may still be on the
    // stack of a detached thread that outlives the registry during shutdown.
  }
};

plugin_registry::~plugin_registry() = default;

const plugin_build& host_build() {
  static const satoru_plugin_build_info info = SATORU_PLUGIN_BUILD_INFO;
  static const plugin_build build = to_build(info);
  return build;
}

std::string build_mismatch(const plugin_build& plugin, const plugin_build& host) {
  if (plugin.satoru_version != host.satoru_version)
    return fmt::format(
        "built for satoru {}, this is satoru {}: rebuild the plugin against "
        "this satoru's SDK (find_package(Satoru {} EXACT))",
        plugin.satoru_version, host.satoru_version, host.satoru_version);
  if (plugin.cxx_abi != host.cxx_abi)
    return fmt::format("built with {} ({}), satoru with {}: rebuild the plugin with the "
                       "compiler satoru was built with ({})",
                       plugin.cxx_abi, plugin.compiler, host.cxx_abi, host.compiler);
  if (plugin.stdlib_abi != host.stdlib_abi)
    return fmt::format(
        "built with the {}, satoru with the {}: rebuild the plugin without "
        "changing the standard library or its ABI (_GLIBCXX_USE_CXX11_ABI)",
        plugin.stdlib_abi, host.stdlib_abi);
  if (plugin.boost_version != host.boost_version)
    return fmt::format("built against {}, satoru against {}: rebuild the plugin against "
                       "{} (Boost.JSON objects cross the plugin boundary)",
                       plugin.boost_version, host.boost_version, host.boost_version);
  return "";
}

std::shared_ptr<plugin_registry> plugin_registry::load(const std::string& dir) {
  auto registry = std::make_shared<plugin_registry>();
  std::error_code ec;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    auto name = entry.path().filename().string();
    if (name.rfind("libsatoru-plugin-", 0) == 0 && entry.path().extension() == ".so")
      files.push_back(entry.path());
  }
  if (ec) {
    registry->problems_.push_back({dir, "cannot read plugin folder: " + ec.message()});
    return registry;
  }
  std::sort(files.begin(), files.end());
  const std::string dir_problem = write_access_problem(dir, "plugin_dir");
  for (const auto& file : files) {
    auto refuse = [&](const std::string& why) {
      registry->problems_.push_back({file.string(), why});
    };
    // Checked before dlopen, which already runs the library's constructors.
    if (auto why =
            dir_problem.empty() ? write_access_problem(file, "plugin file") : dir_problem;
        !why.empty()) {
      refuse(why);
      continue;
    }
    // Lazily first: a library built with another C++ or standard library
    // ABI usually misses symbols too (std::string's mangling differs), and
    // its build stamp says why far better than "undefined symbol".
    void* handle = dlopen(file.c_str(), RTLD_LAZY | RTLD_LOCAL);
    if (!handle) {
      refuse("cannot load: " + dl_error());
      continue;
    }
    auto abi = reinterpret_cast<abi_fn>(dlsym(handle, "satoru_plugin_abi_version"));
    auto create = reinterpret_cast<create_fn>(dlsym(handle, "satoru_plugin_create"));
    auto destroy = reinterpret_cast<destroy_fn>(dlsym(handle, "satoru_plugin_destroy"));
    if (!abi || !create || !destroy) {
      refuse("not a satoru plugin: missing satoru_plugin_* entry points (use "
             "SATORU_PLUGIN)");
      dlclose(handle);
      continue;
    }
    auto version = abi();
    if (version != plugin_abi_version) {
      refuse(
          fmt::format("plugin ABI version {}, this satoru needs {}; rebuild the plugin "
                      "against this satoru's headers",
                      version, plugin_abi_version));
      dlclose(handle);
      continue;
    }
    // Checked before any C++ object crosses: std::string, std::function,
    // Boost.JSON and our error types must have the same layout on both sides.
    auto build_stamp = reinterpret_cast<build_fn>(dlsym(handle, "satoru_plugin_build"));
    const satoru_plugin_build_info* info = build_stamp ? build_stamp() : nullptr;
    if (!info) {
      refuse(
          "no build stamp (satoru_plugin_build): rebuild the plugin with SATORU_PLUGIN "
          "from this satoru's SDK");
      dlclose(handle);
      continue;
    }
    auto build = to_build(*info);
    if (auto why = build_mismatch(build, host_build()); !why.empty()) {
      refuse(why);
      dlclose(handle);
      continue;
    }
    // Now every symbol must resolve, before any of its code runs.
    if (void* bound = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL); !bound) {
      refuse("cannot load: " + dl_error());
      dlclose(handle);
      continue;
    } else {
      dlclose(bound); // the same handle, counted twice
    }
    auto lib = std::make_unique<library>();
    lib->handle = handle;
    lib->destroy = destroy;
    lib->handler = create();
    if (!lib->handler) {
      refuse("the plugin failed to create its handler");
      continue;
    }
    loaded_plugin p;
    p.file = file.string();
    p.abi_version = version;
    p.build = std::move(build);
    p.handler = lib->handler;
    try {
      p.name = lib->handler->name();
      p.version = lib->handler->version();
      p.modes = lib->handler->modes();
    } catch (const std::exception& e) {
      refuse(std::string{"the plugin threw while describing itself: "} + e.what());
      continue;
    } catch (...) {
      refuse("the plugin threw while describing itself");
      continue;
    }
    if (auto r = registry->add_loaded(std::move(p)); !r) {
      refuse(r.err().message);
      continue;
    }
    registry->libraries_.push_back(std::move(lib));
  }
  return registry;
}

std::shared_ptr<plugin_registry> plugin_registry::shared(const std::string& dir) {
  static std::mutex mutex;
  static std::map<std::string, std::shared_ptr<plugin_registry>> cache;
  std::lock_guard<std::mutex> guard{mutex};
  auto& slot = cache[dir];
  if (!slot) slot = load(dir);
  return slot;
}

expected<void> plugin_registry::add_loaded(loaded_plugin plugin) {
  if (plugin.modes.empty())
    return error{errc::plugin, fmt::format("plugin {} serves no mode", plugin.name)};
  for (const auto& mode : plugin.modes)
    for (const auto& other : plugins_)
      if (std::find(other.modes.begin(), other.modes.end(), mode) != other.modes.end())
        return error{
            errc::plugin,
            fmt::format("mode \"{}\" is already served by plugin {} ({}); refused", mode,
                        other.name, other.file.empty() ? "built in" : other.file)};
  plugins_.push_back(std::move(plugin));
  return {};
}

expected<void> plugin_registry::add(std::unique_ptr<target_handler> handler) {
  loaded_plugin p;
  p.name = handler->name();
  p.version = handler->version();
  p.modes = handler->modes();
  p.abi_version = plugin_abi_version;
  p.build = host_build();
  p.handler = handler.get();
  if (auto r = add_loaded(std::move(p)); !r) return r;
  owned_.push_back(std::move(handler));
  return {};
}

target_handler* plugin_registry::find(const std::string& mode) const {
  for (const auto& p : plugins_)
    if (std::find(p.modes.begin(), p.modes.end(), mode) != p.modes.end())
      return p.handler;
  return nullptr;
}

std::vector<std::string> plugin_registry::modes() const {
  std::vector<std::string> out;
  for (const auto& p : plugins_)
    out.insert(out.end(), p.modes.begin(), p.modes.end());
  std::sort(out.begin(), out.end());
  return out;
}

std::string default_plugin_dir() {
  if (const char* env = std::getenv("SATORU_PLUGIN_DIR"); env && *env) return env;
  // A binary run from an install prefix uses the installed plugins: those
  // beside it (<exe>/../lib/satoru/plugins, so `cmake --install --prefix P`
  // works for any P), else the configured prefix's; one run from the build
  // tree uses the plugins built beside it.
  std::error_code ec;
  auto exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && exe.string().rfind(SATORU_BUILD_DIR, 0) != 0) {
    auto beside = exe.parent_path().parent_path() / SATORU_PLUGIN_INSTALL_SUBDIR;
    if (fs::is_directory(beside, ec)) return beside.lexically_normal().string();
    if (fs::is_directory(SATORU_PLUGIN_INSTALL_DIR, ec)) return SATORU_PLUGIN_INSTALL_DIR;
  }
  return SATORU_PLUGIN_BUILD_DIR;
}

} // namespace satoru
