#include "cli_context.hpp"

#include "satoru/plugin_loader.hpp"

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <iostream>

namespace satoru::cli {

void fail(int code, const std::string& message) {
  std::cerr << "satoru: " << message << "\n";
  throw exit_request{code};
}

std::vector<std::string> available_modes(const std::string& plugin_dir) {
  return plugin_registry::shared(plugin_dir)->modes();
}

std::shared_ptr<plugin_registry> plugins_or_exit(const config& cfg) {
  auto registry = plugin_registry::shared(cfg.plugin_dir);
  // A refused plugin is reported, the others keep working.
  for (const auto& p : registry->problems())
    std::cerr << "satoru: plugin " << p.file << " refused: " << p.message << "\n";
  return registry;
}

config load_config_or_exit(const global_options& opts) {
  load_options lo;
  lo.known_modes = available_modes;
  lo.check_options = [](const std::string& dir, const std::string& mode,
                        const boost::json::object& options) -> std::vector<std::string> {
    auto* handler = plugin_registry::shared(dir)->find(mode);
    if (!handler) return {};
    try {
      return handler->validate_options(mode, options);
    } catch (...) {
      return {"the plugin failed to check these options"};
    }
  };
  lo.default_plugin_dir = default_plugin_dir();
  auto path = default_config_path(opts.config_path);
  auto result = load_config(path, lo);
  if (!result.diagnostics.empty()) {
    for (const auto& d : result.diagnostics)
      std::cerr << d.to_string() << "\n";
    throw exit_request{exit_usage};
  }
  return std::move(*result.value);
}

store open_store_or_exit(const config& cfg) {
  auto db = store::open(cfg.database_path);
  if (!db) fail(exit_failed, db.err().message);
  if (auto r = db->sync_config(cfg.sites); !r) fail(exit_failed, r.err().message);
  return std::move(*db);
}

std::optional<store> open_read_only_or_exit(const config& cfg) {
  auto db = store::open_read_only(cfg.database_path);
  if (db) return std::move(*db);
  if (db.err().code == errc::not_found) return std::nullopt;
  fail(exit_failed, db.err().message);
}

namespace {

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

} // namespace

const site_config& site_or_exit(const config& cfg, const std::string& name) {
  if (auto site = cfg.find_site(name)) return *site;
  std::vector<std::pair<std::size_t, std::string>> ranked;
  for (const auto& s : cfg.sites)
    ranked.emplace_back(edit_distance(name, s.name), s.name);
  std::sort(ranked.begin(), ranked.end());
  std::string hint;
  for (std::size_t i = 0; i < ranked.size() && i < 3; ++i)
    hint += (i ? ", " : "") + ranked[i].second;
  fail(exit_usage, "unknown site \"" + name + "\"" +
                       (hint.empty() ? std::string{" (no sites are configured)"}
                                     : " (closest: " + hint + ")"));
}

void print_json(const boost::json::value& value) {
  std::cout << boost::json::serialize(value) << "\n";
}

} // namespace satoru::cli
