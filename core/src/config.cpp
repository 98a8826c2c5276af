#include "satoru/config.hpp"

#include "config_json.hpp"
#include "satoru/identity.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <fcntl.h>
#include <filesystem>
#include <map>
#include <string_view>
#include <system_error>
#include <unistd.h>

namespace satoru {

// ---------------------------------------------------------------------------
// Small public pieces

std::vector<std::string> retention_policy::restic_flags() const {
  std::vector<std::string> flags;
  // A count of 0 means "not by this rule"; restic 0.14 treats 0 the same way,
  // but leaving the flag out keeps the command line honest.
  auto add = [&flags](const char* flag, const std::optional<int>& count) {
    if (count && *count > 0) {
      flags.emplace_back(flag);
      flags.push_back(std::to_string(*count));
    }
  };
  add("--keep-last", keep_last);
  add("--keep-hourly", keep_hourly);
  add("--keep-daily", keep_daily);
  add("--keep-weekly", keep_weekly);
  add("--keep-monthly", keep_monthly);
  add("--keep-yearly", keep_yearly);
  if (keep_within && !keep_within->empty()) {
    flags.emplace_back("--keep-within");
    flags.push_back(*keep_within);
  }
  return flags;
}

const site_config* config::find_site(const std::string& name) const {
  for (const auto& site : sites)
    if (site.name == name) return &site;
  return nullptr;
}

std::string config_diagnostic::to_string() const {
  std::string out;
  // "cannot read satoru.json: ..." already names the file; saying it twice
  // reads like a stutter.
  bool names_file = pointer.empty() && message.rfind("cannot read " + file + ":", 0) == 0;
  if (!file.empty() && !names_file) out += file + ": ";
  if (!pointer.empty()) out += pointer + ": ";
  return out + message;
}

std::string default_config_path(const std::string& from_flag) {
  if (!from_flag.empty()) return from_flag;
  // An empty variable is treated as unset: `SATORU_CONFIG= satoru ...` is a
  // common way to "clear" it in a shell.
  if (const char* env = std::getenv("SATORU_CONFIG"); env != nullptr && *env != '\0')
    return env;
  return "/etc/satoru/satoru.json";
}

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using key_list = std::vector<std::string_view>;

const key_list top_level_keys = {
    "$schema", // lets editors find satoru.schema.json; ignored otherwise
    "staging_root",
    "restic_repo_path",
    "restic_password_file",
    "restic_password",
    "restic_retention_policy",
    "restic_retention_interval_hours",
    "restic_sync_interval_hours",
    "restic_b2_retention_policy",
    "restic_b2_retention_interval_hours",
    "check_interval_hours",
    "check_read_data_subset",
    "restic_b2_check_interval_hours",
    "restore_drill_interval_hours",
    "restore_drill_max_age_days",
    "disk_min_free",
    "restic_b2_repository",
    "restic_b2_account_id",
    "restic_b2_account_key",
    "job_worker_concurrency",
    "target_concurrency",
    "site_scan_interval_hours",
    "database_path",
    "metrics_listen",
    "web_listen",
    "web_users_file",
    "web_tokens_file",
    "web_allow_plaintext",
    "web_tls_certificate",
    "web_tls_key",
    "web_allowed_hosts",
    "plugin_dir",
    "ssh",
    "preflight_timeout_seconds",
    "target_timeout_seconds",
    "restic_timeout_seconds",
    "sync_timeout_seconds",
    "retry_max_attempts",
    "retry_initial_delay_seconds",
    "retry_max_delay_seconds",
    "job_history_days",
    "sites",
};
const key_list retention_keys = {"keep_last",   "keep_hourly",  "keep_daily",
                                 "keep_weekly", "keep_monthly", "keep_yearly",
                                 "keep_within"};
const key_list secret_keys = {"file", "env"};
const key_list disk_min_free_keys = {"percent", "bytes"};
const key_list ssh_keys = {"identity_file", "known_hosts_file",
                           "connect_timeout_seconds"};
const key_list site_keys = {"name", "uuid", "host", "port",
                            "user", "sudo", "ssh",  "targets"};
const key_list target_keys = {"mode", "path", "options"};

constexpr long long int_max = INT_MAX;

/// A value found under a key, with its JSON pointer; `value` is null when the
/// key is absent (the pointer then says where it would be).
struct node {
  const json::value* value = nullptr;
  std::string pointer;
  explicit operator bool() const { return value != nullptr; }
};

/// One layer of ssh settings (top level or a site); a key that is present
/// but invalid still counts as given, so it is reported once, not again as
/// "required" for every site.
struct ssh_layer {
  std::optional<std::string> identity_file, known_hosts_file;
  std::optional<int> connect_timeout_seconds;
  bool identity_given = false, known_hosts_given = false;
};

bool has_control_or_space(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f || u == ' ';
  });
}

bool has_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

bool is_valid_site_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() == '-') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' ||
           c == '-';
  });
}

bool is_env_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name.front())))
    return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

/// restic's duration syntax for --keep-within: one or more <number><unit>
/// with units y, m, d, h, e.g. "30d" or "1y2m3d4h". Sets `nonzero` when the
/// duration keeps anything at all.
bool is_restic_duration(std::string_view text, bool& nonzero) {
  nonzero = false;
  if (text.empty()) return false;
  std::string seen;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t start = i;
    bool digit_nonzero = false;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      digit_nonzero |= text[i] != '0';
      ++i;
    }
    if (i == start || i - start > 9 || i == text.size()) return false;
    char unit = text[i++];
    if (std::string_view("ymdh").find(unit) == std::string_view::npos) return false;
    if (seen.find(unit) != std::string::npos) return false;
    seen += unit;
    nonzero |= digit_nonzero;
  }
  return true;
}

/// restic check's --read-data-subset values satoru accepts: "x%" with x a
/// number from 0 to 100 (decimals allowed; "0%" = read no data) or "n/t"
/// with 1 <= n <= t (restic's own syntax; digits only, so never a flag).
bool is_data_subset(std::string_view text) {
  auto digits = [](std::string_view t) {
    return !t.empty() && t.size() <= 9 && std::all_of(t.begin(), t.end(), [](char c) {
      return std::isdigit(static_cast<unsigned char>(c));
    });
  };
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    auto n = text.substr(0, slash), t = text.substr(slash + 1);
    return digits(n) && digits(t) && std::stoll(std::string(n)) >= 1 &&
           std::stoll(std::string(n)) <= std::stoll(std::string(t));
  }
  if (text.size() < 2 || text.back() != '%') return false;
  auto number = text.substr(0, text.size() - 1);
  auto dot = number.find('.');
  auto whole = number.substr(0, dot);
  if (!digits(whole) ||
      (dot != std::string_view::npos && !digits(number.substr(dot + 1))))
    return false;
  return std::stod(std::string(number)) <= 100.0;
}

/// A size like "5GiB", "500 MB", "1T" or "1048576" (bytes): a whole number
/// and an optional unit (B, K/KB/KiB, M/MB/MiB, G/GB/GiB, T/TB/TiB; all
/// binary, as df -h shows them).
std::optional<std::int64_t> parse_size(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])))
    ++i;
  if (i == 0 || i > 15) return std::nullopt;
  std::int64_t number = std::stoll(std::string(text.substr(0, i)));
  auto unit = text.substr(i);
  while (!unit.empty() && unit.front() == ' ')
    unit.remove_prefix(1);
  static const std::pair<std::string_view, int> units[] = {
      {"", 0},    {"B", 0}, {"K", 1},  {"KB", 1},  {"KiB", 1}, {"M", 2},  {"MB", 2},
      {"MiB", 2}, {"G", 3}, {"GB", 3}, {"GiB", 3}, {"T", 4},   {"TB", 4}, {"TiB", 4}};
  for (const auto& [name, power] : units)
    if (unit == name) {
      for (int p = 0; p < power; ++p) {
        if (number > (std::int64_t{1} << 52)) return std::nullopt;
        number *= 1024;
      }
      return number;
    }
  return std::nullopt;
}

/// Whether a valid listen address binds to loopback only.
bool is_loopback_listen(std::string_view text) {
  std::string_view host = text.substr(0, text.rfind(':'));
  return host == "localhost" || host == "[::1]" || host.substr(0, 4) == "127.";
}

/// "host:port" or "[v6]:port" with a port in 1..65535.
bool is_listen_address(std::string_view text) {
  std::size_t colon;
  if (!text.empty() && text.front() == '[') {
    std::size_t close = text.find("]:");
    if (close == std::string_view::npos || close < 2) return false;
    colon = close + 1;
  } else {
    colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    if (text.substr(0, colon).find(':') != std::string_view::npos) return false;
  }
  if (has_control_or_space(text.substr(0, colon))) return false;
  std::string_view port = text.substr(colon + 1);
  if (port.empty() || port.size() > 5) return false;
  if (!std::all_of(port.begin(), port.end(),
                   [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    return false;
  int value = std::stoi(std::string(port));
  return value >= 1 && value <= 65535;
}

std::string lowercase(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string strip_trailing_slashes(std::string s) {
  while (s.size() > 1 && s.back() == '/')
    s.pop_back();
  return s;
}

std::string join(const std::vector<std::string>& items, const char* separator) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

/// Reads and validates one config document; collects every problem instead
/// of stopping at the first, so an operator fixes a file in one round.
class loader {
public:
  loader(std::string file, const load_options& opts)
      : file_(std::move(file))
      , opts_(opts) {
    std::error_code ec;
    fs::path absolute = fs::absolute(file_.empty() ? fs::path(".") : fs::path(file_), ec);
    base_dir_ = ec ? fs::path("/") : absolute.lexically_normal().parent_path();
  }

  config_result load(std::string_view text) {
    config_result result;
    try {
      config cfg = build(text);
      if (diagnostics_.empty()) result.value = std::move(cfg);
    } catch (const std::exception& e) {
      fail_file(std::string("internal error while loading the config: ") + e.what());
    } catch (...) {
      fail_file("internal error while loading the config");
    }
    result.diagnostics = std::move(diagnostics_);
    return result;
  }

private:
  // -- reporting ------------------------------------------------------------

  void fail(std::string pointer, std::string message) {
    diagnostics_.push_back(
        config_diagnostic{file_, std::move(pointer), std::move(message)});
  }
  void fail_file(std::string message) { fail("", std::move(message)); }

  // -- generic accessors ------------------------------------------------------

  node child(const json::object& obj, const std::string& pointer,
             std::string_view key) const {
    auto it = obj.find(json::string_view(key.data(), key.size()));
    std::string child_pointer = pointer + "/" + config_detail::pointer_escape(key);
    return node{it == obj.end() ? nullptr : &it->value(), std::move(child_pointer)};
  }

  node element(const json::array& arr, const std::string& pointer,
               std::size_t index) const {
    return node{&arr[index], pointer + "/" + std::to_string(index)};
  }

  /// Like child(), but reports the key as required when it is absent.
  node need(const json::object& obj, const std::string& pointer, std::string_view key) {
    node n = child(obj, pointer, key);
    if (!n) fail(n.pointer, "required");
    return n;
  }

  /// Reports keys not in `allowed`, with a hint when one is a likely typo.
  /// Returns true when every key is known.
  bool reject_unknown_keys(const json::object& obj, const std::string& pointer,
                           const key_list& allowed) {
    bool all_known = true;
    for (const auto& member : obj) {
      std::string_view key(member.key().data(), member.key().size());
      if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
      all_known = false;
      std::string message = "unknown key \"" + std::string(key) + "\"";
      if (std::string hint = config_detail::closest_match(key, allowed); !hint.empty())
        message += " (did you mean \"" + hint + "\"?)";
      fail(pointer + "/" + config_detail::pointer_escape(key), std::move(message));
    }
    return all_known;
  }

  const json::object* object_of(const node& n) {
    if (!n) return nullptr;
    if (const auto* obj = n.value->if_object()) return obj;
    fail(n.pointer, "must be an object");
    return nullptr;
  }

  const json::array* array_of(const node& n) {
    if (!n) return nullptr;
    if (const auto* arr = n.value->if_array()) return arr;
    fail(n.pointer, "must be an array");
    return nullptr;
  }

  /// A non-empty string, or nullopt (reported unless absent).
  std::optional<std::string> string_of(const node& n) {
    if (!n) return std::nullopt;
    const auto* s = n.value->if_string();
    if (s == nullptr) {
      fail(n.pointer, "must be a string");
      return std::nullopt;
    }
    if (s->empty()) {
      fail(n.pointer, "must not be empty");
      return std::nullopt;
    }
    return std::string(s->data(), s->size());
  }

  /// An integer in [min, max]. Accepts integral JSON numbers written as 24.0
  /// or 1e2 (parsed as doubles), rejects 1.5, strings and booleans.
  std::optional<bool> bool_of(const node& n) {
    if (!n) return std::nullopt;
    if (const auto* b = n.value->if_bool()) return *b;
    fail(n.pointer, "must be true or false");
    return std::nullopt;
  }

  std::optional<int> integer_of(const node& n, long long min, long long max,
                                const char* hint = "") {
    if (!n) return std::nullopt;
    long double number;
    if (const auto* i = n.value->if_int64())
      number = static_cast<long double>(*i);
    else if (const auto* u = n.value->if_uint64())
      number = static_cast<long double>(*u);
    else if (const auto* d = n.value->if_double();
             d && std::isfinite(*d) && std::trunc(*d) == *d)
      number = *d;
    else {
      fail(n.pointer, std::string("must be an integer") + hint);
      return std::nullopt;
    }
    if (number < min || number > max) {
      if (max != int_max)
        fail(n.pointer, "must be between " + std::to_string(min) + " and " +
                            std::to_string(max) + hint);
      else if (number < min)
        fail(n.pointer, "must be >= " + std::to_string(min) + hint);
      else
        fail(n.pointer, "must be at most " + std::to_string(max));
      return std::nullopt;
    }
    return static_cast<int>(number);
  }

  /// Local paths are relative to the config file's folder, so a config
  /// works the same from any working directory.
  std::string resolve_local(const std::string& path) const {
    fs::path p(path);
    fs::path absolute = p.is_absolute() ? p : base_dir_ / p;
    return strip_trailing_slashes(absolute.lexically_normal().string());
  }

  std::optional<std::string> local_path_of(const node& n) {
    auto text = string_of(n);
    if (!text) return std::nullopt;
    if (text->front() == '~') {
      fail(n.pointer,
           "\"~\" is not expanded here; use an absolute path or one relative to "
           "the config file's folder");
      return std::nullopt;
    }
    if (has_control(*text)) {
      fail(n.pointer, "must not contain control characters");
      return std::nullopt;
    }
    return resolve_local(*text);
  }

  // -- secrets ----------------------------------------------------------------

  /// `"key": "path"`: a secret file; checks existence and mode, never reads it.
  std::optional<secret_source> file_secret_of(const node& n) {
    auto path = local_path_of(n);
    if (!path) return std::nullopt;
    auto source = secret_source::from_file(*path);
    if (auto ok = source.check_permissions(); !ok) {
      fail(n.pointer, ok.err().message);
      return std::nullopt;
    }
    return source;
  }

  /// `{"file": P}` or `{"env": VAR}`.
  std::optional<secret_source> secret_of(const node& n) {
    const auto* obj = object_of(n);
    if (obj == nullptr) return std::nullopt;
    bool all_known = reject_unknown_keys(*obj, n.pointer, secret_keys);
    node file = child(*obj, n.pointer, "file");
    node env = child(*obj, n.pointer, "env");
    if (file && env) {
      fail(n.pointer, "give either \"file\" or \"env\", not both");
      return std::nullopt;
    }
    if (file) return file_secret_of(file);
    if (env) {
      auto name = string_of(env);
      if (!name) return std::nullopt;
      if (!is_env_name(*name)) {
        fail(env.pointer,
             "must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)");
        return std::nullopt;
      }
      return secret_source::from_env(*name);
    }
    if (all_known) fail(n.pointer, "must be {\"file\": PATH} or {\"env\": VARIABLE}");
    return std::nullopt;
  }

  // -- sections ---------------------------------------------------------------

  void load_paths(const json::object& root, config& cfg) {
    auto path_or = [&](std::string_view key, const char* fallback) {
      node n = child(root, "", key);
      if (!n) return resolve_local(fallback);
      return local_path_of(n).value_or(std::string());
    };
    cfg.staging_root = path_or("staging_root", "backups");
    cfg.restic_repo_path = path_or("restic_repo_path", "repos/restic");
    cfg.database_path = path_or("database_path", "satoru.db");

    if (node n = child(root, "", "plugin_dir")) {
      cfg.plugin_dir = local_path_of(n).value_or(std::string());
      plugin_dir_valid_ = !cfg.plugin_dir.empty();
      plugin_dir_pointer_ = n.pointer;
    } else {
      std::string dir = opts_.default_plugin_dir;
#ifdef SATORU_PLUGIN_INSTALL_DIR
      if (dir.empty()) dir = SATORU_PLUGIN_INSTALL_DIR;
#endif
      if (!dir.empty()) {
        std::error_code ec;
        fs::path absolute = fs::absolute(dir, ec);
        dir = strip_trailing_slashes(
            (ec ? fs::path(dir) : absolute).lexically_normal().string());
      }
      cfg.plugin_dir = dir;
      plugin_dir_pointer_ = "/plugin_dir";
    }
  }

  void load_secrets(const json::object& root, config& cfg) {
    node password_file = child(root, "", "restic_password_file");
    node password = child(root, "", "restic_password");
    if (password_file && password) {
      fail(password.pointer,
           "give either restic_password or restic_password_file, not both");
    } else if (password_file) {
      if (auto s = file_secret_of(password_file)) cfg.restic_password = *s;
    } else if (password) {
      if (auto s = secret_of(password)) cfg.restic_password = *s;
    } else {
      fail(password_file.pointer,
           "required (or \"restic_password\": {\"file\": PATH} or {\"env\": VARIABLE})");
    }

    node repository = child(root, "", "restic_b2_repository");
    if (repository) {
      if (auto s = string_of(repository)) {
        if (has_control(*s))
          fail(repository.pointer, "must not contain control characters");
        else
          cfg.restic_b2_repository = *s;
      }
    }
    node account_id = child(root, "", "restic_b2_account_id");
    node account_key = child(root, "", "restic_b2_account_key");
    if (account_id)
      if (auto s = secret_of(account_id)) cfg.restic_b2_account_id = *s;
    if (account_key)
      if (auto s = secret_of(account_key)) cfg.restic_b2_account_key = *s;
    // The credentials come as a pair, and a b2: repository cannot be
    // opened without them; better to say so now than at the first sync.
    bool b2 = cfg.restic_b2_repository && cfg.restic_b2_repository->rfind("b2:", 0) == 0;
    if (account_id && !account_key)
      fail(account_key.pointer, "required when restic_b2_account_id is set");
    else if (account_key && !account_id)
      fail(account_id.pointer, "required when restic_b2_account_key is set");
    else if (b2 && !account_id && !account_key) {
      fail(account_id.pointer, "required for a b2: repository");
      fail(account_key.pointer, "required for a b2: repository");
    }
  }

  /// restic_retention_policy, then restic_b2_retention_policy (the local
  /// one when absent).
  void load_retention(const json::object& root, config& cfg) {
    cfg.retention = retention_policy{};
    cfg.retention.keep_daily = 7;
    cfg.retention.keep_weekly = 4;
    cfg.retention.keep_monthly = 6;
    if (node n = child(root, "", "restic_retention_policy"))
      load_policy(n, cfg.retention);
    cfg.b2_retention = cfg.retention;
    if (node n = child(root, "", "restic_b2_retention_policy"))
      load_policy(n, cfg.b2_retention);
  }

  /// disk_min_free: {"percent": 0..100, "bytes": "5GiB" | number}; a given
  /// object replaces the default (10 %) entirely.
  void load_disk_min_free(const json::object& root, config& cfg) {
    node n = child(root, "", "disk_min_free");
    if (!n) return;
    const auto* obj = object_of(n);
    if (obj == nullptr) return;
    if (!reject_unknown_keys(*obj, n.pointer, disk_min_free_keys)) return;
    cfg.disk_min_free_percent = 0;
    cfg.disk_min_free_bytes = 0;
    if (node p = child(*obj, n.pointer, "percent"))
      if (auto v = integer_of(p, 0, 100)) cfg.disk_min_free_percent = *v;
    if (node b = child(*obj, n.pointer, "bytes")) {
      std::optional<std::int64_t> size;
      if (const auto* text = b.value->if_string())
        size = parse_size(std::string_view(text->data(), text->size()));
      else if (auto v = integer_of(b, 0, int_max))
        size = *v;
      if (size)
        cfg.disk_min_free_bytes = *size;
      else if (b.value->is_string())
        fail(b.pointer, "must be a size like \"5GiB\", \"500MiB\" or a number of bytes");
    }
  }

  /// One retention policy object; `out` changes only when it is valid.
  void load_policy(const node& n, retention_policy& out) {
    const auto* obj = object_of(n);
    if (obj == nullptr) return;
    bool valid = reject_unknown_keys(*obj, n.pointer, retention_keys);
    retention_policy policy;
    bool keeps_something = false;
    auto count = [&](std::string_view key, std::optional<int>& out) {
      node c = child(*obj, n.pointer, key);
      if (!c) return;
      out = integer_of(c, 0, int_max);
      if (!out)
        valid = false;
      else if (*out > 0)
        keeps_something = true;
    };
    count("keep_last", policy.keep_last);
    count("keep_hourly", policy.keep_hourly);
    count("keep_daily", policy.keep_daily);
    count("keep_weekly", policy.keep_weekly);
    count("keep_monthly", policy.keep_monthly);
    count("keep_yearly", policy.keep_yearly);
    if (node within = child(*obj, n.pointer, "keep_within")) {
      auto text = string_of(within);
      bool nonzero = false;
      if (!text)
        valid = false;
      else if (!is_restic_duration(*text, nonzero)) {
        fail(within.pointer, "must be a restic duration like \"30d\" or \"1y2m3d4h\"");
        valid = false;
      } else {
        policy.keep_within = *text;
        keeps_something |= nonzero;
      }
    }
    // An empty policy would make `restic forget` drop every snapshot (or,
    // in other versions, none): both are surprises, so refuse it.
    if (valid && !keeps_something)
      fail(n.pointer,
           "must keep something: set at least one of keep_last, keep_hourly, "
           "keep_daily, keep_weekly, keep_monthly, keep_yearly (> 0) or keep_within");
    if (valid && keeps_something) out = policy;
  }

  void load_numbers(const json::object& root, config& cfg) {
    auto number = [&](std::string_view key, int& out, long long min, long long max,
                      const char* hint = "") {
      if (node n = child(root, "", key))
        if (auto v = integer_of(n, min, max, hint)) out = *v;
    };
    const char* never = " (0 = never scheduled)";
    number("restic_retention_interval_hours", cfg.restic_retention_interval_hours, 0,
           int_max, never);
    number("restic_sync_interval_hours", cfg.restic_sync_interval_hours, 0, int_max,
           never);
    number("restic_b2_retention_interval_hours", cfg.restic_b2_retention_interval_hours,
           0, int_max, never);
    number("check_interval_hours", cfg.check_interval_hours, 0, int_max, never);
    number("restic_b2_check_interval_hours", cfg.restic_b2_check_interval_hours, 0,
           int_max, never);
    number("restore_drill_interval_hours", cfg.restore_drill_interval_hours, 0, int_max,
           never);
    number("restore_drill_max_age_days", cfg.restore_drill_max_age_days, 1, int_max);
    if (node n = child(root, "", "check_read_data_subset")) {
      if (auto s = string_of(n)) {
        if (is_data_subset(*s))
          cfg.check_read_data_subset = *s;
        else
          fail(n.pointer, "must be a percentage like \"2%\", a fraction like \"1/7\", "
                          "or \"0%\" to read no data");
      }
    }
    load_disk_min_free(root, cfg);
    number("site_scan_interval_hours", cfg.site_scan_interval_hours, 0, int_max, never);
    number("job_worker_concurrency", cfg.job_worker_concurrency, 1, int_max);
    number("target_concurrency", cfg.target_concurrency, 1, int_max);
    number("preflight_timeout_seconds", cfg.preflight_timeout_seconds, 1, int_max);
    number("target_timeout_seconds", cfg.target_timeout_seconds, 1, int_max);
    number("restic_timeout_seconds", cfg.restic_timeout_seconds, 1, int_max);
    number("sync_timeout_seconds", cfg.sync_timeout_seconds, 1, int_max);
    number("retry_max_attempts", cfg.retry_max_attempts, 1, 100, " (1 = never retry)");
    number("retry_initial_delay_seconds", cfg.retry_initial_delay_seconds, 0, int_max);
    number("retry_max_delay_seconds", cfg.retry_max_delay_seconds, 0, int_max);
    number("job_history_days", cfg.job_history_days, 0, int_max, " (0 = keep forever)");

    if (auto s = listen_address_of(child(root, "", "metrics_listen"), "127.0.0.1:9464"))
      cfg.metrics_listen = *s;
  }

  /// A "host:port" string, or nullopt (reported unless absent).
  std::optional<std::string> listen_address_of(const node& n, const char* example) {
    auto s = string_of(n);
    if (s && !is_listen_address(*s)) {
      fail(n.pointer, "must be host:port with a port from 1 to 65535, e.g. \"" +
                          std::string(example) + "\"");
      return std::nullopt;
    }
    return s;
  }

  /// web_allowed_hosts: the names (no port) a browser may reach the console
  /// by, beside its listen address and localhost; kept in lower case.
  void load_allowed_hosts(const node& n, config& cfg) {
    const auto* arr = array_of(n);
    if (arr == nullptr) return;
    for (std::size_t j = 0; j < arr->size(); ++j) {
      node e = element(*arr, n.pointer, j);
      auto name = string_of(e);
      if (!name) continue;
      bool valid =
          name->size() <= 253 && std::all_of(name->begin(), name->end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-';
          });
      if (!valid) {
        fail(e.pointer, "must be a host name like \"backup.example.com\" (letters, "
                        "digits, '.' and '-'; no port)");
        continue;
      }
      std::transform(name->begin(), name->end(), name->begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      cfg.web_allowed_hosts.push_back(*name);
    }
  }

  /// The web console's keys (docs/console.md). A console reachable beyond
  /// loopback must not send passwords and session cookies in the clear
  /// unless the operator says a TLS proxy in front does the encryption.
  void load_web(const json::object& root, config& cfg) {
    node listen = child(root, "", "web_listen");
    if (auto s = listen_address_of(listen, "127.0.0.1:9465")) cfg.web_listen = *s;
    node users = child(root, "", "web_users_file");
    if (auto path = local_path_of(users)) {
      cfg.web_users_file = *path;
      // `satoru web-user add` creates it; once it exists it must be private.
      auto ok = secret_source::from_file(*path).check_permissions();
      if (!ok && ok.err().code != errc::not_found) fail(users.pointer, ok.err().message);
    } else if (!users && !cfg.web_listen.empty()) {
      fail(users.pointer, "required when web_listen is set");
    }
    // `satoru web-token add` creates it; absent = no bearer tokens.
    if (auto path = local_path_of(child(root, "", "web_tokens_file"))) {
      cfg.web_tokens_file = *path;
      auto ok = secret_source::from_file(*path).check_permissions();
      if (!ok && ok.err().code != errc::not_found)
        fail(child(root, "", "web_tokens_file").pointer, ok.err().message);
    }
    if (node n = child(root, "", "web_allow_plaintext"))
      cfg.web_allow_plaintext = bool_of(n).value_or(false);
    node cert = child(root, "", "web_tls_certificate");
    node key = child(root, "", "web_tls_key");
    if (auto path = local_path_of(cert)) {
      if (!fs::is_regular_file(*path))
        fail(cert.pointer, *path + " does not exist or is not a regular file");
      else
        cfg.web_tls_certificate = *path;
    }
    if (key)
      if (auto source = file_secret_of(key)) cfg.web_tls_key = source->location();
    if (bool(cert) != bool(key))
      fail(cert ? key.pointer : cert.pointer,
           "required with " + std::string(cert ? "web_tls_certificate" : "web_tls_key"));
    load_allowed_hosts(child(root, "", "web_allowed_hosts"), cfg);
    if (!cfg.web_listen.empty() && !is_loopback_listen(cfg.web_listen) && !cert &&
        !cfg.web_allow_plaintext)
      fail(listen.pointer, "listens beyond loopback without TLS: passwords and session "
                           "cookies would cross the network in the clear; listen on "
                           "127.0.0.1, or set web_allow_plaintext to true behind a "
                           "TLS-terminating proxy");
  }

  ssh_layer ssh_layer_of(const node& n) {
    ssh_layer layer;
    const auto* obj = object_of(n);
    if (obj == nullptr) {
      // Reported already; do not pile "required" errors on top of it.
      layer.identity_given = layer.known_hosts_given = n.value != nullptr;
      return layer;
    }
    reject_unknown_keys(*obj, n.pointer, ssh_keys);
    if (node f = child(*obj, n.pointer, "identity_file")) {
      layer.identity_given = true;
      layer.identity_file = local_path_of(f);
    }
    if (node f = child(*obj, n.pointer, "known_hosts_file")) {
      layer.known_hosts_given = true;
      layer.known_hosts_file = local_path_of(f);
    }
    if (node t = child(*obj, n.pointer, "connect_timeout_seconds"))
      layer.connect_timeout_seconds = integer_of(t, 1, 3600);
    return layer;
  }

  /// A host or user name that ends up on an ssh/rsync command line: a
  /// leading '-' would be read as an option there.
  std::optional<std::string> remote_name_of(const node& n) {
    auto s = string_of(n);
    if (!s) return std::nullopt;
    if (has_control_or_space(*s)) {
      fail(n.pointer, "must not contain spaces or control characters");
      return std::nullopt;
    }
    if (s->front() == '-') {
      fail(n.pointer, "must not start with '-'");
      return std::nullopt;
    }
    return s;
  }

  /// The target modes the plugins offer; nullptr when every mode is accepted
  /// or listing them failed (reported once).
  const std::vector<std::string>* known_modes(const config& cfg) {
    if (!opts_.known_modes || modes_failed_) return nullptr;
    if (!modes_) {
      if (!plugin_dir_valid_) return nullptr;
      try {
        auto modes = opts_.known_modes(cfg.plugin_dir);
        std::sort(modes.begin(), modes.end());
        modes_ = std::move(modes);
      } catch (const std::exception& e) {
        modes_failed_ = true;
        fail(plugin_dir_pointer_,
             "cannot list the plugins in " + cfg.plugin_dir + ": " + e.what());
        return nullptr;
      }
    }
    return &*modes_;
  }

  /// `site_sudo`: the site's "sudo", every target's default for options.sudo.
  void load_targets(const node& n, const config& cfg, site_config& site, bool site_sudo) {
    const auto* arr = array_of(n);
    if (arr == nullptr) return;
    std::map<std::pair<std::string, std::string>, std::string>
        seen; // (mode, path) -> pointer
    for (std::size_t j = 0; j < arr->size(); ++j) {
      node t = element(*arr, n.pointer, j);
      const auto* obj = object_of(t);
      if (obj == nullptr) continue;
      reject_unknown_keys(*obj, t.pointer, target_keys);
      target_config target;
      bool valid = true;

      node mode = need(*obj, t.pointer, "mode");
      if (auto m = string_of(mode)) {
        target.mode = *m;
        if (const auto* modes = known_modes(cfg);
            modes && std::find(modes->begin(), modes->end(), *m) == modes->end()) {
          std::string message = "unknown mode \"" + *m + "\"; ";
          message += modes->empty() ? "no plugins found in " + cfg.plugin_dir
                                    : "available: " + join(*modes, ", ");
          fail(mode.pointer, std::move(message));
          valid = false;
        }
      } else {
        valid = false;
      }

      node path = need(*obj, t.pointer, "path");
      if (auto p = string_of(path)) {
        if (p->front() != '/') {
          fail(path.pointer, "must be an absolute path");
          valid = false;
        } else if (p->find('\0') != std::string::npos) {
          // Newlines and other odd bytes are legal in file names and the
          // remote commands quote them; only NUL cannot be passed at all.
          fail(path.pointer, "must not contain a NUL character");
          valid = false;
        } else {
          // Normal form, so that "/srv/app/" and "/srv/app" are one target
          // with one hash (and one staging folder) rather than two.
          target.path = strip_trailing_slashes(fs::path(*p).lexically_normal().string());
        }
      } else {
        valid = false;
      }

      if (node options = child(*obj, t.pointer, "options")) {
        if (const auto* o = object_of(options))
          target.options = *o;
        else
          valid = false;
      }

      // The site's "sudo" is every target's default; a target's own
      // options.sudo wins. Plugins read it from the options they are given.
      if (site_sudo && !target.options.contains("sudo")) target.options["sudo"] = true;

      if (valid && opts_.check_options && known_modes(cfg)) {
        for (auto& problem :
             opts_.check_options(cfg.plugin_dir, target.mode, target.options)) {
          fail(t.pointer + "/options", std::move(problem));
          valid = false;
        }
      }

      if (!valid) continue;
      auto [it, inserted] =
          seen.emplace(std::make_pair(target.mode, target.path), t.pointer);
      if (!inserted) {
        fail(path.pointer, "duplicate target: mode \"" + target.mode + "\" with path \"" +
                               target.path + "\" is already " + it->second);
        continue;
      }
      target.hash = target_hash(target.mode, target.path);
      site.targets.push_back(std::move(target));
    }
  }

  void load_sites(const json::object& root, const ssh_layer& top, config& cfg) {
    node n = child(root, "", "sites");
    if (!n) return; // a fresh install may start with no sites
    const auto* arr = array_of(n);
    if (arr == nullptr) return;
    std::map<std::string, std::string> names; // name -> pointer
    std::map<std::string, std::string> uuids; // uuid -> site pointer
    for (std::size_t i = 0; i < arr->size(); ++i) {
      node s = element(*arr, n.pointer, i);
      const auto* obj = object_of(s);
      if (obj == nullptr) continue;
      reject_unknown_keys(*obj, s.pointer, site_keys);
      site_config site;
      bool valid = true;

      node name = need(*obj, s.pointer, "name");
      if (auto v = string_of(name)) {
        if (!is_valid_site_name(*v)) {
          fail(name.pointer, "must be 1 to 64 characters from A-Z a-z 0-9 . _ - "
                             "and not start with '-'");
          valid = false;
        } else if (auto [it, inserted] = names.emplace(*v, s.pointer); !inserted) {
          fail(name.pointer,
               "duplicate site name \"" + *v + "\" (already used by " + it->second + ")");
          valid = false;
        } else {
          site.name = *v;
        }
      } else {
        valid = false;
      }

      node uuid = child(*obj, s.pointer, "uuid");
      if (uuid) {
        if (auto v = string_of(uuid)) {
          std::string lowered = lowercase(*v);
          if (is_valid_uuid(lowered))
            site.uuid = lowered;
          else {
            fail(uuid.pointer,
                 "must be a UUID like \"123e4567-e89b-12d3-a456-426614174000\"");
            valid = false;
          }
        } else {
          valid = false;
        }
      } else if (!site.name.empty()) {
        site.uuid = derive_site_uuid(site.name);
      }
      if (!site.uuid.empty()) {
        auto [it, inserted] = uuids.emplace(site.uuid, s.pointer);
        // Derived uuids are only computed for names not seen before, so a
        // clash always involves a configured uuid (or a name that derives
        // to another site's configured uuid).
        if (!inserted) {
          fail(uuid ? uuid.pointer : name.pointer, "duplicate uuid \"" + site.uuid +
                                                       "\" (already used by " +
                                                       it->second + ")");
          valid = false;
        }
      }

      if (auto v = remote_name_of(need(*obj, s.pointer, "host")))
        site.host = *v;
      else
        valid = false;
      if (auto v = remote_name_of(need(*obj, s.pointer, "user")))
        site.user = *v;
      else
        valid = false;
      if (node port = child(*obj, s.pointer, "port")) {
        if (auto v = integer_of(port, 1, 65535))
          site.port = *v;
        else
          valid = false;
      }

      // Run the edge side under `sudo -n`; plugins see it as options.sudo.
      bool sudo = false;
      if (node n = child(*obj, s.pointer, "sudo")) {
        if (auto v = bool_of(n))
          sudo = *v;
        else
          valid = false;
      }

      node ssh = child(*obj, s.pointer, "ssh");
      ssh_layer own = ssh ? ssh_layer_of(ssh) : ssh_layer{};
      const std::string ssh_pointer = s.pointer + "/ssh";
      const char* hint = "(set it here or in the top-level ssh object)";
      auto merge = [&](const std::optional<std::string>& mine, bool mine_given,
                       const std::optional<std::string>& theirs, bool theirs_given,
                       const char* key, std::string& out) {
        if (mine_given)
          out = mine.value_or(std::string());
        else if (theirs_given)
          out = theirs.value_or(std::string());
        else
          fail(ssh_pointer + "/" + key, std::string("required ") + hint);
        if (out.empty()) valid = false;
      };
      merge(own.identity_file, own.identity_given, top.identity_file, top.identity_given,
            "identity_file", site.ssh.identity_file);
      merge(own.known_hosts_file, own.known_hosts_given, top.known_hosts_file,
            top.known_hosts_given, "known_hosts_file", site.ssh.known_hosts_file);
      site.ssh.connect_timeout_seconds = own.connect_timeout_seconds.value_or(
          top.connect_timeout_seconds.value_or(site.ssh.connect_timeout_seconds));

      load_targets(need(*obj, s.pointer, "targets"), cfg, site, sudo);
      if (valid) cfg.sites.push_back(std::move(site));
    }
  }

  config build(std::string_view text) {
    config cfg;
    cfg.file = file_;
    auto parsed = config_detail::parse_json(text);
    if (!parsed.error.empty()) {
      fail_file(std::move(parsed.error));
      return cfg;
    }
    for (const auto& [pointer, key] : parsed.duplicate_keys)
      fail(pointer, "duplicate key \"" + key + "\" (only the last one would be used)");
    const auto* root = parsed.value.if_object();
    if (root == nullptr) {
      fail_file("the top-level value must be a JSON object");
      return cfg;
    }
    reject_unknown_keys(*root, "", top_level_keys);
    if (node schema = child(*root, "", "$schema")) (void)string_of(schema);

    load_paths(*root, cfg);
    load_secrets(*root, cfg);
    load_retention(*root, cfg);
    load_numbers(*root, cfg);
    load_web(*root, cfg);

    ssh_layer top;
    if (node ssh = child(*root, "", "ssh")) top = ssh_layer_of(ssh);
    cfg.ssh.identity_file = top.identity_file.value_or(std::string());
    cfg.ssh.known_hosts_file = top.known_hosts_file.value_or(std::string());
    cfg.ssh.connect_timeout_seconds =
        top.connect_timeout_seconds.value_or(cfg.ssh.connect_timeout_seconds);

    load_sites(*root, top, cfg);
    return cfg;
  }

  std::string file_;
  const load_options& opts_;
  fs::path base_dir_;
  std::vector<config_diagnostic> diagnostics_;
  bool plugin_dir_valid_ = true;
  std::string plugin_dir_pointer_;
  std::optional<std::vector<std::string>> modes_;
  bool modes_failed_ = false;
};

/// A config is a few KiB; a limit keeps `--config /dev/zero` from eating memory.
constexpr std::size_t max_config_size = 16 * 1024 * 1024;

/// Reads the whole file; the reason on failure ("No such file or directory").
bool read_file(const std::string& path, std::string& out, std::string& error_text) {
  auto reason = [](int err) { return std::generic_category().message(err); };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error_text = reason(errno);
    return false;
  }
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      error_text = reason(errno);
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > max_config_size) {
      error_text = "file is larger than 16 MiB";
      ::close(fd);
      return false;
    }
  }
  ::close(fd);
  return true;
}

} // namespace

config_result parse_config(const std::string& text, const std::string& path,
                           const load_options& opts) {
  try {
    return loader(path, opts).load(text);
  } catch (...) {
    // load() catches everything; this guards the loader's constructor.
    config_result result;
    result.diagnostics.push_back({path, "", "internal error while loading the config"});
    return result;
  }
}

config_result load_config(const std::string& path, const load_options& opts) {
  try {
    std::string text, error_text;
    if (!read_file(path, text, error_text)) {
      config_result result;
      result.diagnostics.push_back({path, "", "cannot read " + path + ": " + error_text});
      return result;
    }
    return parse_config(text, path, opts);
  } catch (...) {
    config_result result;
    result.diagnostics.push_back({path, "", "internal error while loading the config"});
    return result;
  }
}

} // namespace satoru
