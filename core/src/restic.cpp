// The restic adapter: every call of the restic CLI goes through here, with
// the repository in the child's environment (never argv) and the client's
// deadline and cancel token. Behaviour checked against restic 0.14.0; see
// tests/integration/restic_test.cpp for the facts it relies on.

#include "satoru/restic.hpp"

#include "satoru/plugin_host.hpp"
#include "satoru/text.hpp"
#include "satoru/time.hpp"

#include "restic_json.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string_view>
#include <system_error>
#include <thread>

#include <unistd.h>

namespace satoru {
namespace {

namespace fs = std::filesystem;
using env_list = std::vector<std::pair<std::string, std::string>>;

/// restic's own complaint is cut here: one readable line, not a dump.
constexpr std::size_t max_complaint = 400;
/// `snapshots --json` of a fleet's repository can pass process_spec's default
/// 4 MiB capture (about 500 bytes a snapshot); a cut list would not parse.
constexpr std::size_t listing_capture_limit = std::size_t{256} << 20;

/// Commands that take restic's exclusive lock: they wait for a lock they
/// meet (with backoff, within the client's deadline) instead of failing.
bool is_exclusive_command(const std::string& command) {
  return command == "forget" || command == "prune" || command == "check" ||
         command == "init";
}
constexpr std::chrono::milliseconds first_lock_backoff{1000};
constexpr std::chrono::milliseconds max_lock_backoff{30000};
/// `cat lock` of a vanished lock retries for ~40 s in restic 0.14.
constexpr std::chrono::milliseconds lock_read_timeout{15000};
/// A restore that writes nothing for this long is stopped (as a pull's
/// default stall limit).
constexpr std::chrono::milliseconds restore_no_progress_timeout{300'000};

/// Variables from the daemon's own environment that would change which
/// repository or password restic uses. They are blanked in every child:
/// restic 0.14 treats an empty variable as unset.
constexpr const char* inherited_restic_vars[] = {
    "RESTIC_REPOSITORY_FILE",       "RESTIC_PASSWORD",      "RESTIC_PASSWORD_FILE",
    "RESTIC_PASSWORD_COMMAND",      "RESTIC_KEY_HINT",      "RESTIC_FROM_REPOSITORY",
    "RESTIC_FROM_REPOSITORY_FILE",  "RESTIC_FROM_PASSWORD", "RESTIC_FROM_PASSWORD_FILE",
    "RESTIC_FROM_PASSWORD_COMMAND", "RESTIC_FROM_KEY_HINT"};

/// Variables whose values are secrets: scrubbed from every message we build.
bool is_secret_var(const std::string& key) {
  return key == "RESTIC_PASSWORD" || key == "RESTIC_FROM_PASSWORD" ||
         key == "B2_ACCOUNT_ID" || key == "B2_ACCOUNT_KEY" ||
         key == "AWS_ACCESS_KEY_ID" || key == "AWS_SECRET_ACCESS_KEY";
}

/// The variables restic reads the account credentials from. B2's key id and
/// application key work for both of its APIs: native `b2:` repositories read
/// B2_ACCOUNT_ID/B2_ACCOUNT_KEY, the S3-compatible endpoint (`s3:`) reads
/// them as AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.
std::pair<const char*, const char*> credential_vars(const std::string& location) {
  if (location.rfind("s3:", 0) == 0)
    return {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"};
  return {"B2_ACCOUNT_ID", "B2_ACCOUNT_KEY"};
}

void set_env(env_list& env, const std::string& key, std::string value) {
  for (auto& [k, v] : env)
    if (k == key) {
      v = std::move(value);
      return;
    }
  env.emplace_back(key, std::move(value));
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

std::vector<std::string> lines_of(std::string_view text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string line{trim(text.substr(pos, nl - pos))};
    if (!line.empty()) out.push_back(std::move(line));
    pos = nl + 1;
  }
  return out;
}

/// restic backends are named by a prefix; anything else is a local path.
bool has_backend_prefix(const std::string& location) {
  static const char* const prefixes[] = {
      "sftp:", "rest:", "s3:", "b2:", "azure:", "gs:", "swift:", "rclone:"};
  return std::any_of(std::begin(prefixes), std::end(prefixes),
                     [&](const char* p) { return starts_with(location, p); });
}

/// A local path made absolute: restic runs with cwd = the folder backed up,
/// where a relative repository or password file path would point elsewhere.
std::string absolute_path(const std::string& path) {
  std::error_code ec;
  fs::path abs = fs::absolute(path, ec);
  if (ec) return path;
  std::string out = abs.lexically_normal().string();
  while (out.size() > 1 && out.back() == '/')
    out.pop_back();
  return out;
}

/// The mean size of a local repository's pack files (its data/ folder):
/// what restic copy's pack meter is turned into bytes with. A stat per
/// pack, once per copy; 0 for a remote repository or none.
std::uint64_t mean_pack_bytes(const std::string& location) {
  if (has_backend_prefix(location)) return 0;
  const fs::path data =
      fs::path(starts_with(location, "local:") ? location.substr(6) : location) / "data";
  std::uint64_t bytes = 0, packs = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(data, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code size_ec;
    const auto size = it->is_regular_file(size_ec) ? it->file_size(size_ec) : 0;
    if (size_ec || size == 0) continue;
    bytes += size;
    ++packs;
  }
  return packs == 0 ? 0 : bytes / packs;
}

std::string env_location(const std::string& location) {
  if (has_backend_prefix(location)) return location;
  if (starts_with(location, "local:"))
    return "local:" + absolute_path(location.substr(6));
  return absolute_path(location);
}

/// The folder of a local repository ("" for a backend's).
std::string local_folder(const std::string& location) {
  if (has_backend_prefix(location)) return {};
  return env_location(location).substr(starts_with(location, "local:") ? 6 : 0);
}

/// Puts a repository's password where restic 0.14 reads it: a file source by
/// path (restic reads the file), an env source by value.
expected<void> add_password(env_list& env, const secret_source& source,
                            const std::string& file_var, const std::string& value_var,
                            const std::string& location) {
  switch (source.type()) {
  case secret_source::kind::file:
    // Same rule as the config loader, checked again because the file may
    // have changed since: restic would happily read a world-readable file.
    if (auto ok = source.check_permissions(); !ok) return ok.err();
    set_env(env, file_var, absolute_path(source.location()));
    set_env(env, value_var, "");
    return {};
  case secret_source::kind::env: {
    auto value = source.resolve();
    if (!value) return value.err();
    set_env(env, value_var, std::move(*value));
    set_env(env, file_var, "");
    return {};
  }
  case secret_source::kind::none:
    break;
  }
  return error{errc::invalid_argument, "no password configured for restic repository " +
                                           redact_repository(location)};
}

expected<void> add_secret(env_list& env, const secret_source& source,
                          const std::string& var) {
  if (source.empty()) return {};
  auto value = source.resolve();
  if (!value) return value.err();
  set_env(env, var, std::move(*value));
  return {};
}

/// The repository is missing (not unreachable, not locked): restic 0.14 says
/// "unable to open config file: stat .../config: no such file or directory"
/// for local paths and "<config/> does not exist" for REST. The hint line "Is
/// there a repository at the following location?" is printed for unreachable
/// servers too ("connection refused"), so it alone proves nothing.
bool says_repository_missing(std::string_view fatal) {
  return contains(fatal, "unable to open config file") &&
         (contains(fatal, "does not exist") ||
          contains(fatal, "no such file or directory"));
}

/// Removes every occurrence of the secret values from a message.
std::string scrub(std::string text, const std::vector<std::string>& secrets) {
  for (const auto& secret : secrets) {
    if (secret.empty()) continue;
    for (auto pos = text.find(secret); pos != std::string::npos;
         pos = text.find(secret, pos + 3))
      text.replace(pos, secret.size(), "***");
  }
  return redact_repository(text);
}

std::vector<std::string> secrets_of(const env_list& env) {
  std::vector<std::string> out;
  for (const auto& [key, value] : env)
    if (is_secret_var(key) && !value.empty()) out.push_back(value);
  return out;
}

/// One line from restic's stderr: the "Fatal: ..." line, with the complaints
/// printed before it (JSON error lines decoded, e.g. the packs `check` found
/// damaged), or else the last thing restic said.
std::string complaint(const std::string& err, const std::string& location) {
  std::string fatal;
  std::vector<std::string> before;
  bool skip_next = false;
  for (auto& line : lines_of(err)) {
    if (skip_next) { // the location printed after the hint line
      skip_next = false;
      continue;
    }
    if (starts_with(line, "Fatal: ")) {
      if (fatal.empty()) fatal = line.substr(7);
      continue;
    }
    if (starts_with(line, "Is there a repository at the following location?")) {
      skip_next = true;
      continue;
    }
    if (!fatal.empty()) continue;
    if (auto decoded = restic_json::parse_error_line(line))
      before.push_back(*decoded);
    else if (line.front() != '{')
      before.push_back(line);
  }
  std::string text;
  if (!fatal.empty()) {
    text = says_repository_missing(fatal)
               ? "no restic repository at " + redact_repository(location) + " (" + fatal +
                     ")"
               : fatal;
    if (!before.empty()) {
      text += ": " + before.front();
      if (before.size() > 1)
        text += " (and " + std::to_string(before.size() - 1) + " more)";
    }
  } else if (!before.empty()) {
    text = before.back();
  }
  if (text.size() > max_complaint) text = text.substr(0, max_complaint) + "...";
  return text;
}

errc classify(const std::string& err) {
  if (contains(err, "repository is already locked")) return errc::busy;
  if (contains(err, "wrong password or no key found")) return errc::invalid_argument;
  for (auto& line : lines_of(err))
    if (starts_with(line, "Fatal: ") && says_repository_missing(line))
      return errc::not_found;
  return errc::tool;
}

/// restic splits --tag values at commas (one --tag "a,b" = both a and b),
/// so a tag with a comma cannot be expressed; an empty one matches nothing.
expected<void> check_tags(const std::vector<std::string>& tags) {
  for (const auto& tag : tags)
    if (tag.empty() || tag.find(',') != std::string::npos)
      return error{errc::invalid_argument, "invalid restic tag \"" + tag +
                                               "\": tags must be non-empty and "
                                               "contain no comma"};
  return {};
}

bool is_hex_id(const std::string& id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

bool has_all_tags(const snapshot_info& s, const std::vector<std::string>& tags) {
  return std::all_of(tags.begin(), tags.end(), [&](const std::string& tag) {
    return std::find(s.tags.begin(), s.tags.end(), tag) != s.tags.end();
  });
}

std::string normal_path(const std::string& path) {
  std::string out = fs::path(path).lexically_normal().string();
  while (out.size() > 1 && out.back() == '/')
    out.pop_back();
  return out;
}

/// A path as a literal restic --include pattern (filepath.Match syntax).
std::string escape_pattern(const std::string& path) {
  std::string out;
  for (char c : path) {
    if (c == '*' || c == '?' || c == '[' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

/// Where `path` lives inside the snapshot's tree, relative to its root ("" =
/// the whole snapshot). backup() runs `restic backup .` from inside the
/// folder, and restic 0.14 then roots the tree at the folder's contents
/// (while `paths` records the absolute folder).
expected<std::string> inner_path(const std::string& path, const snapshot_info& snap) {
  std::string p = normal_path(path);
  if (p.empty() || p == "/" || p == ".") return std::string{};
  if (p.front() != '/') {
    for (const auto& part : fs::path(p))
      if (part == "..")
        return error{errc::invalid_argument,
                     "restore path " + path + " leaves the snapshot"};
    return p;
  }
  if (snap.paths.size() != 1)
    return error{errc::invalid_argument,
                 "snapshot " + snap.short_id + " holds " +
                     std::to_string(snap.paths.size()) +
                     " paths; give the path relative to its root"};
  std::string root = normal_path(snap.paths.front());
  if (p == root) return std::string{};
  if (root == "/" || starts_with(p, root + "/"))
    return p.substr(root == "/" ? 1 : root.size() + 1);
  return error{errc::not_found, "path " + path + " is not in snapshot " + snap.short_id +
                                    " (it holds " + root + ")"};
}

/// A path chosen for a partial restore, relative to the restored folder:
/// leading slashes dropped, lexically normal, never "" or leaving it.
expected<std::string> relative_restore_path(const std::string& path) {
  std::string p = normal_path(path);
  while (!p.empty() && p.front() == '/')
    p.erase(0, 1);
  if (p.empty() || p == ".")
    return error{errc::invalid_argument,
                 "restore path \"" + path + "\" names no file or folder"};
  for (const auto& part : fs::path(p))
    if (part == "..")
      return error{errc::invalid_argument, "restore path " + path + " leaves the target"};
  return p;
}

/// Moves `from` to `to`, merging folders into existing ones and replacing
/// files, like restic's own restore into a folder that is not empty.
expected<void> merge_move(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  auto to_status = fs::symlink_status(to, ec);
  auto from_status = fs::symlink_status(from, ec);
  if (ec) return error{errc::io, "cannot read " + from.string() + ": " + ec.message()};
  bool from_dir = fs::is_directory(from_status);
  if (fs::exists(to_status) && fs::is_directory(to_status)) {
    if (!from_dir)
      return error{errc::io,
                   "cannot restore file " + to.string() + ": a folder is in the way"};
    fs::directory_iterator it(from, ec), end;
    for (; !ec && it != end; it.increment(ec)) {
      auto moved = merge_move(it->path(), to / it->path().filename());
      if (!moved) return moved;
    }
    if (ec) return error{errc::io, "cannot list " + from.string() + ": " + ec.message()};
    // The restored folder's mode wins, as if restic had restored it in place.
    fs::permissions(to, from_status.permissions(), ec);
    fs::remove(from, ec);
    return {};
  }
  if (fs::exists(to_status) && from_dir) fs::remove(to, ec);
  fs::rename(from, to, ec);
  if (ec)
    return error{errc::io, "cannot move " + from.string() + " to " + to.string() + ": " +
                               ec.message()};
  return {};
}

/// Removes the private folder of a subfolder restore on every return path.
struct remove_on_exit {
  fs::path path;
  ~remove_on_exit() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

/// The event data of a lock: who holds it and since when.
boost::json::object lock_data(const restic_lock& lock, std::int64_t now) {
  return {{"host", lock.hostname},
          {"pid", lock.pid},
          {"uid", lock.uid},
          {"exclusive", lock.exclusive},
          {"since", format_time(lock.time_ms)},
          {"age_seconds", lock.time_ms > 0 ? (now - lock.time_ms) / 1000 : -1}};
}

} // namespace

std::int64_t snapshot_info::unix_ms() const {
  auto ns = restic_json::parse_time(time);
  return ns ? *ns / 1'000'000 : 0;
}

std::string snapshot_info::tag_value(const std::string& key) const {
  const std::string prefix = key + "=";
  for (const auto& tag : tags)
    if (starts_with(tag, prefix)) return tag.substr(prefix.size());
  return {};
}

restic_client::restic_client(restic_repository repo, std::chrono::milliseconds timeout)
    : repo_(std::move(repo))
    , timeout_(timeout) {}

expected<std::vector<std::pair<std::string, std::string>>>
restic_client::environment() const {
  if (repo_.location.empty())
    return error{errc::invalid_argument, "no restic repository configured"};
  env_list env;
  for (const char* var : inherited_restic_vars)
    env.emplace_back(var, "");
  set_env(env, "RESTIC_REPOSITORY", env_location(repo_.location));
  if (auto ok = add_password(env, repo_.password, "RESTIC_PASSWORD_FILE",
                             "RESTIC_PASSWORD", repo_.location);
      !ok)
    return ok.err();
  auto [id_var, key_var] = credential_vars(repo_.location);
  if (auto ok = add_secret(env, repo_.b2_account_id, id_var); !ok) return ok.err();
  if (auto ok = add_secret(env, repo_.b2_account_key, key_var); !ok) return ok.err();
  if (!repo_.cache_dir.empty())
    set_env(env, "RESTIC_CACHE_DIR", absolute_path(repo_.cache_dir));
  return env;
}

std::optional<process_user> restic_client::repository_user() const {
  auto user = owner_to_run_as(local_folder(repo_.location));
  // Root's powers stay (a restore sets the snapshot's owners, reads a
  // password file only root may read); only what restic creates changes
  // hands: its locks, packs and cache files belong to the repository's owner.
  if (user) user->keep_capabilities = true;
  return user;
}

std::int64_t restic_client::lock_uid() const {
  auto user = repository_user();
  return user ? static_cast<std::int64_t>(user->uid)
              : static_cast<std::int64_t>(::geteuid());
}

expected<process_spec> restic_client::command(std::vector<std::string> args,
                                              const std::string& cwd,
                                              const restic_repository* from) const {
  auto env = environment();
  if (!env) return env.err();
  if (from != nullptr) {
    if (from->location.empty())
      return error{errc::invalid_argument, "no source restic repository given"};
    set_env(*env, "RESTIC_FROM_REPOSITORY", env_location(from->location));
    if (auto ok = add_password(*env, from->password, "RESTIC_FROM_PASSWORD_FILE",
                               "RESTIC_FROM_PASSWORD", from->location);
        !ok)
      return ok.err();
    // restic 0.14 has one set of B2 variables for both repositories.
    bool ours = !repo_.b2_account_id.empty() || !repo_.b2_account_key.empty();
    bool theirs = !from->b2_account_id.empty() || !from->b2_account_key.empty();
    if (ours && theirs &&
        (repo_.b2_account_id.describe() != from->b2_account_id.describe() ||
         repo_.b2_account_key.describe() != from->b2_account_key.describe()))
      return error{errc::invalid_argument,
                   "restic 0.14 cannot use different B2 credentials for the source and "
                   "the destination repository"};
    if (!ours && theirs) {
      auto [id_var, key_var] = credential_vars(from->location);
      if (auto ok = add_secret(*env, from->b2_account_id, id_var); !ok) return ok.err();
      if (auto ok = add_secret(*env, from->b2_account_key, key_var); !ok) return ok.err();
    }
  }
  process_spec spec;
  spec.argv.reserve(args.size() + 1);
  spec.argv.emplace_back("restic");
  const bool reads =
      !args.empty() && (args[0] == "cat" || args[0] == "snapshots" ||
                        args[0] == "stats" || args[0] == "ls" || args[0] == "dump");
  for (auto& arg : args)
    spec.argv.push_back(std::move(arg));
  if (no_lock_ && reads) spec.argv.emplace_back("--no-lock");
  spec.run_as = repository_user();
  spec.env = std::move(*env);
  spec.cwd = cwd;
  spec.timeout = timeout_;
  return spec;
}

expected<process_result> restic_client::execute_once(const process_spec& spec,
                                                     const cancel_token& cancel,
                                                     const std::string& what,
                                                     bool accept_exit_3,
                                                     process_result* ended) const {
  const auto secrets = secrets_of(spec.env);
  auto result = run_process(spec, cancel);
  if (!result) return error{result.err().code, scrub(result.err().message, secrets)};
  const process_result& r = *result;
  if (r.exit_code == 0 || (accept_exit_3 && r.exit_code == 3)) return result;
  if (ended != nullptr) *ended = r;
  if (r.cancelled) return error{errc::cancelled, what + " was cancelled"};
  if (r.timed_out || r.stalled)
    return error{errc::timeout, scrub(r.describe(what), secrets)};
  if (r.term_signal != 0) return error{errc::tool, scrub(r.describe(what), secrets)};
  auto code = classify(r.err);
  std::string text;
  if (auto conflict = code == errc::busy ? parse_lock_conflict(r.err) : std::nullopt)
    text = what + " failed: the repository is locked (" + conflict->describe() + ")";
  else if (text = complaint(r.err, repo_.location); text.empty())
    text = r.describe(what);
  else
    text = what + " failed: " + text;
  return error{code, scrub(std::move(text), secrets)};
}

expected<process_result> restic_client::execute(process_spec spec,
                                                const cancel_token& cancel,
                                                const std::string& what,
                                                bool accept_exit_3) const {
  const auto until = deadline::after(timeout_);
  const bool waits =
      wait_all_ || (spec.argv.size() > 1 && is_exclusive_command(spec.argv[1]));
  auto backoff = first_lock_backoff;
  for (;;) {
    if (!until.infinite())
      spec.timeout = std::max(std::chrono::milliseconds{1}, until.remaining());
    process_result ended;
    auto r = execute_once(spec, cancel, what, accept_exit_3, &ended);
    if (r) return r;
    const errc code = r.err().code;
    // A child that died by a signal, its deadline or a cancel cannot remove
    // its lock: we do, before anyone meets it.
    if (ended.term_signal != 0 || ended.timed_out || ended.stalled || ended.cancelled) {
      if (tidy_)
        tidy_locks(ended.cancelled ? std::chrono::seconds{5} : std::chrono::seconds{20});
      return r;
    }
    const std::string& err = ended.err;
    if (code != errc::busy || !tidy_) return r;
    // Whoever holds it may be a dead process of ours: then go on at once.
    auto tidied = tidy_locks(std::chrono::seconds{20});
    if (!tidied.removed.empty()) continue;
    auto conflict = parse_lock_conflict(err);
    if (!waits || !conflict) return r;
    if (until.remaining() <= backoff)
      return error{errc::busy,
                   fmt::format("{}: the repository is still locked after waiting {} ({})",
                               what, format_duration(timeout_.count()),
                               conflict->describe())};
    report_wait(what, err, tidied.kept, backoff);
    for (auto slept = std::chrono::milliseconds{0}; slept < backoff;
         slept += std::chrono::milliseconds{100}) {
      if (cancel.cancelled()) return error{errc::cancelled, what + " was cancelled"};
      std::this_thread::sleep_for(std::chrono::milliseconds{100});
    }
    backoff = std::min(backoff * 2, max_lock_backoff);
  }
}

expected<process_result>
restic_client::execute_metered(process_spec spec, progress_format format,
                               const std::string& step, const cancel_token& cancel,
                               const std::string& what, bool accept_exit_3) const {
  if (events_ == nullptr) return execute(std::move(spec), cancel, what, accept_exit_3);
  // Into a pipe, restic's text meters (copy) print only their last line
  // unless given a rate; backup --json prints 60 status lines a second
  // anyway, and its last ones say 100%.
  if (format == progress_format::restic_copy)
    set_env(spec.env, "RESTIC_PROGRESS_FPS", "1");
  spec.progress_output = format;
  spec.progress_step = step;
  progress_feed feed{*events_, target_, spec};
  return execute(std::move(spec), cancel, what, accept_exit_3);
}

void restic_client::emit(const std::string& level, const std::string& message,
                         const boost::json::object& data) const {
  if (events_ != nullptr) events_->emit(level, "restic.lock", "", message, data);
}

void restic_client::report_wait(const std::string& what, const std::string& err,
                                const std::vector<restic_lock>& kept,
                                std::chrono::milliseconds backoff) const {
  auto conflict = parse_lock_conflict(err);
  if (!conflict) return;
  const auto now = now_ms();
  auto held = std::find_if(kept.begin(), kept.end(), [&](const restic_lock& l) {
    return !conflict->storage_id.empty() && starts_with(l.id, conflict->storage_id);
  });
  boost::json::object data;
  std::string whose;
  if (held != kept.end()) {
    data = lock_data(*held, now);
    whose = held->holder();
  } else {
    data = {{"host", conflict->hostname},
            {"pid", conflict->pid},
            {"exclusive", conflict->exclusive},
            {"age_seconds", conflict->age_ms < 0 ? -1 : conflict->age_ms / 1000}};
    whose = conflict->describe();
  }
  data["retry_in_seconds"] = backoff.count() / 1000;
  emit("warn",
       fmt::format("{} is waiting for the {} (restic calls a lock stale 30 minutes after "
                   "its last refresh); retrying in {}",
                   what, whose, format_duration(backoff.count())),
       data);
}

lock_cleanup restic_client::tidy_locks(std::chrono::milliseconds timeout) const {
  restic_client cleaner{repo_, timeout};
  cleaner.tidy_ = false;
  cleaner.events_ = events_;
  auto r = cleaner.clear_dead_locks(cancel_token{});
  return r ? std::move(*r) : lock_cleanup{};
}

expected<std::vector<restic_lock>>
restic_client::locks(const cancel_token& cancel) const {
  auto list = command({"list", "locks", "--no-lock"});
  if (!list) return list.err();
  auto listed = execute_once(*list, cancel, "restic list locks", false, nullptr);
  if (!listed) return listed.err();
  std::vector<std::string> ids;
  for (auto& line : lines_of(listed->out))
    if (line.size() == 64 && is_hex_id(line)) ids.push_back(line);
  std::vector<restic_lock> out;
  for (const auto& id : ids) {
    auto spec = command({"cat", "lock", id, "--no-lock"});
    if (!spec) return spec.err();
    // restic retries a vanished object for ~40 s; a lock that went away
    // while we looked (refreshed, released) is skipped, and so is one that
    // cannot be read (a restic killed while writing it leaves an empty
    // file): restic 0.14 ignores unreadable locks too, and we never remove
    // what we could not read.
    spec->timeout = std::min(spec->timeout, lock_read_timeout);
    auto r = execute_once(*spec, cancel, "restic cat lock", false, nullptr);
    if (!r) {
      if (r.err().code == errc::cancelled) return r.err();
      continue;
    }
    auto lock = restic_json::parse_lock(r->out);
    if (!lock) continue;
    lock->id = id;
    out.push_back(std::move(*lock));
  }
  return out;
}

expected<bool> restic_client::remove_lock(const std::string& id,
                                          const cancel_token& cancel) const {
  if (id.size() != 64 || !is_hex_id(id))
    return error{errc::invalid_argument, "invalid restic lock id \"" + id + "\""};
  const std::string& location = repo_.location;
  if (!has_backend_prefix(location)) {
    // A local repository: the lock is the file locks/<id>, exactly what
    // restic's own unlock deletes.
    fs::path file = fs::path(local_folder(location)) / "locks" / id;
    std::error_code ec;
    fs::remove(file, ec);
    if (ec)
      return error{errc::io,
                   "cannot remove restic lock " + file.string() + ": " + ec.message()};
    return true;
  }
  if (!starts_with(location, "rest:")) return false;
  // REST (restic's rest-server, rclone serve restic): DELETE /locks/<id>.
  // The URL may carry credentials, so curl reads it from its stdin config.
  std::string url = location.substr(5);
  if (url.empty() || url.back() != '/') url += '/';
  url += "locks/" + id;
  std::string quoted;
  for (char c : url) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  process_spec spec;
  spec.argv = {"curl", "--config", "-"};
  spec.stdin_data = "url = \"" + quoted +
                    "\"\nrequest = \"DELETE\"\nsilent\nshow-error\nfail\n"
                    "max-time = 30\n";
  spec.timeout = std::min(timeout_, std::chrono::milliseconds{std::chrono::seconds{40}});
  auto r = run_process(spec, cancel);
  if (!r)
    return error{errc::tool, "cannot remove restic lock " + id.substr(0, 8) + " on " +
                                 redact_repository(location) + ": " +
                                 redact_repository(r.err().message)};
  if (!r->ok())
    return error{errc::tool, "cannot remove restic lock " + id.substr(0, 8) + " on " +
                                 redact_repository(location) + ": " +
                                 redact_repository(std::string(trim(r->err)))};
  return true;
}

expected<lock_cleanup> restic_client::clear_dead_locks(const cancel_token& cancel) const {
  lock_cleanup out;
  auto found = locks(cancel);
  if (!found) return found.err();
  if (found->empty()) return out;
  const std::string host = lock_host_name();
  const auto now = now_ms();
  const auto own_uid = lock_uid();
  bool kept_here = false;
  for (auto& lock : *found) {
    const auto holder = classify_lock(lock, host, own_uid, probe_process(lock.pid), now);
    if (!removable(holder)) {
      kept_here = kept_here || (!host.empty() && lock.hostname == host);
      out.kept.push_back(std::move(lock));
      continue;
    }
    auto removed = remove_lock(lock.id, cancel);
    if (!removed) return removed.err();
    if (!*removed) {
      out.left.push_back(std::move(lock));
      continue;
    }
    emit("info",
         fmt::format("removed the {} from {} ({})", lock.holder(),
                     redact_repository(repo_.location),
                     holder == lock_holder::dead ? "that process of ours is gone"
                                                 : "stale: not refreshed for 30 minutes"),
         lock_data(lock, now));
    out.removed.push_back(std::move(lock));
  }
  // restic's own unlock for what this backend cannot delete: it removes
  // locks older than 30 minutes, but also every lock of this host whose PID
  // it cannot signal, a live one of another user included. So only when no
  // lock of this host is kept.
  if (out.left.empty() || kept_here) return out;
  if (auto r = unlock(cancel); !r) return r.err();
  auto after = locks(cancel);
  if (!after) return after.err();
  auto split =
      std::stable_partition(out.left.begin(), out.left.end(), [&](const restic_lock& l) {
        return std::any_of(after->begin(), after->end(),
                           [&](const restic_lock& a) { return a.id == l.id; });
      });
  for (auto it = split; it != out.left.end(); ++it) {
    emit("info", fmt::format("restic unlock removed the {}", it->holder()),
         lock_data(*it, now));
    out.removed.push_back(std::move(*it));
  }
  out.left.erase(split, out.left.end());
  return out;
}

expected<process_result>
restic_client::run(std::vector<std::string> args, const cancel_token& cancel,
                   const std::string& cwd,
                   std::vector<std::pair<std::string, std::string>> extra_env,
                   bool accept_exit_3) const {
  // "restic cat config", "restic snapshots": the subcommand words, no flags.
  std::string what = "restic";
  for (std::size_t i = 0; i < args.size() && i < 2 && !starts_with(args[i], "-"); ++i)
    what += " " + args[i];
  auto spec = command(std::move(args), cwd);
  if (!spec) return spec.err();
  for (auto& [key, value] : extra_env)
    set_env(spec->env, key, std::move(value));
  return execute(std::move(*spec), cancel, what, accept_exit_3);
}

expected<bool> restic_client::exists(const cancel_token& cancel) const {
  // Spec first: a password source that cannot be read is an error, not a
  // missing repository (ensure() would otherwise try to init).
  auto spec = command({"cat", "config"});
  if (!spec) return spec.err();
  auto r = execute(std::move(*spec), cancel, "restic cat config", false);
  if (r) return true;
  if (r.err().code == errc::not_found) return false;
  return r.err();
}

expected<void> restic_client::init(const restic_repository* copy_chunker_from,
                                   const cancel_token& cancel) const {
  std::vector<std::string> args{"init"};
  if (copy_chunker_from != nullptr) args.emplace_back("--copy-chunker-params");
  auto spec = command(std::move(args), {}, copy_chunker_from);
  if (!spec) return spec.err();
  auto r = execute(std::move(*spec), cancel, "restic init", false);
  if (!r) return r.err();
  return {};
}

expected<void> restic_client::ensure(const restic_repository* copy_chunker_from,
                                     const cancel_token& cancel) const {
  auto present = exists(cancel);
  if (!present) return present.err();
  if (*present) return {};
  return init(copy_chunker_from, cancel);
}

expected<backup_summary> restic_client::backup(const std::string& dir,
                                               const std::vector<std::string>& tags,
                                               const std::string& host,
                                               const cancel_token& cancel) const {
  if (auto ok = check_tags(tags); !ok) return ok.err();
  const std::string folder = absolute_path(dir);
  std::error_code ec;
  auto status = fs::status(folder, ec);
  if (!fs::exists(status))
    return error{errc::not_found, "backup source folder " + folder + " does not exist"};
  if (!fs::is_directory(status))
    return error{errc::invalid_argument, "backup source " + folder + " is not a folder"};

  std::vector<std::string> args{"backup", "--json"};
  if (!host.empty()) {
    args.emplace_back("--host");
    args.push_back(host);
  }
  for (const auto& tag : tags) {
    args.emplace_back("--tag");
    args.push_back(tag);
  }
  args.emplace_back(".");
  auto spec = command(std::move(args), folder);
  if (!spec) return spec.err();
  // Go's os.Getwd returns $PWD when it names the cwd, so the snapshot records
  // the folder as we name it (the staging path), not a symlink-resolved one.
  set_env(spec->env, "PWD", folder);

  std::optional<backup_summary> summary;
  std::vector<std::string> unreadable;
  std::size_t unreadable_count = 0;
  spec->on_stdout_line = [&summary](std::string_view line) {
    if (auto s = restic_json::parse_backup_summary(line)) summary = std::move(*s);
  };
  spec->on_stderr_line = [&](std::string_view line) {
    if (auto e = restic_json::parse_error_line(line)) {
      ++unreadable_count;
      if (unreadable.size() < 3) unreadable.push_back(std::move(*e));
    }
  };
  const auto secrets = secrets_of(spec->env);
  auto r = execute_metered(std::move(*spec), progress_format::restic_json, "snapshot",
                           cancel, "restic backup", true);
  if (!r) return r.err();
  if (!summary)
    return error{errc::tool, "restic backup of " + folder + " printed no summary"};
  if (r->exit_code == 3) {
    summary->warning = true;
    std::string text = std::to_string(unreadable_count) + " file(s) could not be read";
    if (unreadable_count == 0) text = "some source files could not be read";
    if (!unreadable.empty()) text += ": " + join(unreadable, "; ");
    if (unreadable_count > unreadable.size()) text += "; ...";
    summary->warning_message = scrub(std::move(text), secrets);
  }
  return std::move(*summary);
}

expected<std::vector<snapshot_info>>
restic_client::snapshots(const std::vector<std::string>& tags,
                         const cancel_token& cancel) const {
  if (auto ok = check_tags(tags); !ok) return ok.err();
  std::vector<std::string> args{"snapshots", "--json"};
  // One --tag with a comma-separated list = all of them (verified on 0.14);
  // repeated --tag flags would mean any of them.
  if (!tags.empty()) {
    args.emplace_back("--tag");
    args.push_back(join(tags, ","));
  }
  auto spec = command(std::move(args));
  if (!spec) return spec.err();
  spec->capture_limit = listing_capture_limit;
  auto r = execute(std::move(*spec), cancel, "restic snapshots", false);
  if (!r) return r.err();
  if (r->out.size() >= listing_capture_limit)
    return error{errc::tool, "restic snapshots printed more than 256 MiB"};
  return restic_json::parse_snapshots(r->out);
}

expected<std::vector<forget_group>>
restic_client::forget(const std::vector<std::string>& policy_flags,
                      const std::vector<std::string>& tags, const std::string& group_by,
                      const cancel_token& cancel) const {
  if (auto ok = check_tags(tags); !ok) return ok.err();
  // Without a tag filter the policy would apply to every snapshot in the
  // repository, including ones satoru did not make.
  if (tags.empty())
    return error{errc::invalid_argument, "restic forget needs a tag filter"};
  // Only --keep-* rules: --prune in particular must stay a separate step
  // (0.14 prints prune's text after the JSON), and the caller orders prune.
  for (const auto& flag : policy_flags)
    if (starts_with(flag, "-") && !starts_with(flag, "--keep-"))
      return error{errc::invalid_argument,
                   "restic forget: " + flag + " is not a retention policy flag"};
  if (policy_flags.empty())
    return error{errc::invalid_argument, "restic forget: empty retention policy"};

  std::vector<std::string> args{"forget", "--json", "--tag", join(tags, ",")};
  if (!group_by.empty()) {
    args.emplace_back("--group-by");
    args.push_back(group_by);
  }
  args.insert(args.end(), policy_flags.begin(), policy_flags.end());
  auto spec = command(std::move(args));
  if (!spec) return spec.err();
  spec->capture_limit = listing_capture_limit;
  auto r = execute(std::move(*spec), cancel, "restic forget", false);
  if (!r) return r.err();
  if (r->out.size() >= listing_capture_limit)
    return error{errc::tool, "restic forget printed more than 256 MiB"};
  return restic_json::parse_forget(r->out);
}

expected<void> restic_client::prune(const cancel_token& cancel) const {
  auto r = run({"prune"}, cancel);
  if (!r) return r.err();
  return {};
}

expected<void> restic_client::check(const cancel_token& cancel,
                                    const std::string& read_data_subset) const {
  std::vector<std::string> args{"check"};
  // "0%" means structure only; anything else was validated by the config
  // (digits, '%', '/', '.': never a flag).
  if (!read_data_subset.empty() && read_data_subset != "0%")
    args.push_back("--read-data-subset=" + read_data_subset);
  auto r = run(std::move(args), cancel);
  if (!r) return r.err();
  return {};
}

expected<void> restic_client::unlock(const cancel_token& cancel) const {
  auto r = run({"unlock"}, cancel);
  if (!r) return r.err();
  return {};
}

expected<repo_stats> restic_client::stats(const cancel_token& cancel) const {
  auto r = run({"stats", "--json", "--mode", "raw-data"}, cancel);
  if (!r) return r.err();
  return restic_json::parse_stats(r->out);
}

expected<std::vector<snapshot_node>> restic_client::ls(const std::string& snapshot,
                                                       const cancel_token& cancel) const {
  // Only hex ids: anything else could be read by restic as a flag.
  if (!is_hex_id(snapshot))
    return error{errc::invalid_argument, "invalid snapshot id \"" + snapshot + "\""};
  auto spec = command({"ls", "--json", snapshot});
  if (!spec) return spec.err();
  // A snapshot of many files lists far more than the default capture.
  spec->capture_limit = listing_capture_limit;
  auto r = execute(std::move(*spec), cancel, "restic ls", false);
  if (!r) return r.err();
  if (r->out.size() >= listing_capture_limit)
    return error{errc::tool, "restic ls: the listing of snapshot " + snapshot +
                                 " is larger than " +
                                 std::to_string(listing_capture_limit >> 20) + " MiB"};
  return restic_json::parse_ls(r->out);
}

expected<std::unique_ptr<process_reader>>
restic_client::dump(const std::string& snapshot, const std::string& path) const {
  if (!is_hex_id(snapshot))
    return error{errc::invalid_argument, "invalid snapshot id \"" + snapshot + "\""};
  // An absolute path: restic reads nothing starting with '/' as a flag.
  if (path.empty() || path.front() != '/' || path.find('\0') != std::string::npos)
    return error{errc::invalid_argument, "restic dump: not an absolute path: " + path};
  auto spec = command({"dump", snapshot, path});
  if (!spec) return spec.err();
  return start_process(*spec);
}

expected<std::vector<snapshot_change>>
restic_client::diff(const std::string& from, const std::string& to,
                    const cancel_token& cancel) const {
  for (const auto& id : {from, to})
    if (!is_hex_id(id))
      return error{errc::invalid_argument, "invalid snapshot id \"" + id + "\""};
  auto r = run({"diff", "--json", from, to}, cancel);
  if (!r) return r.err();
  return restic_json::parse_diff(r->out);
}

expected<std::int64_t> restic_client::copy_from(const restic_repository& source,
                                                const cancel_token& cancel) const {
  if (env_location(source.location) == env_location(repo_.location))
    return error{errc::invalid_argument,
                 "restic copy: source and destination are the same "
                 "repository"};
  // restic 0.14's copy has no --json and reports in prose ("snapshot X
  // saved", "skipping source snapshot X, was already copied"), so we count
  // what actually appeared in the destination instead: its snapshot ids
  // before and after. The sync actor is the only writer of the destination,
  // so the difference is exactly what this copy added.
  auto before = snapshots({}, cancel);
  if (!before) return before.err();
  std::set<std::string> known;
  for (const auto& s : *before)
    known.insert(s.id);

  auto spec = command({"copy"}, {}, &source);
  if (!spec) return spec.err();
  spec->progress_parser = copy_bytes_estimate{mean_pack_bytes(source.location)};
  const std::string what = "restic copy from " + redact_repository(source.location) +
                           " to " + redact_repository(repo_.location);
  auto r = execute_metered(std::move(*spec), progress_format::restic_copy, "copy", cancel,
                           what, false);
  if (!r) return r.err();

  auto after = snapshots({}, cancel);
  if (!after) return after.err();
  std::int64_t added = 0;
  for (const auto& s : *after)
    if (known.count(s.id) == 0) ++added;
  return added;
}

expected<snapshot_info>
restic_client::resolve_snapshot(const std::string& snapshot,
                                const std::vector<std::string>& tags,
                                const cancel_token& cancel) const {
  if (snapshot == "latest") {
    auto list = snapshots(tags, cancel);
    if (!list) return list.err();
    if (list->empty())
      return error{errc::not_found, tags.empty()
                                        ? "the repository has no snapshots"
                                        : "no snapshot tagged " + join(tags, ", ")};
    // Not restic's own "latest": that is per host and path group in 0.14, and
    // a restore wants the newest snapshot of the target, full stop.
    auto newest = std::max_element(
        list->begin(), list->end(), [](const snapshot_info& a, const snapshot_info& b) {
          auto ta = restic_json::parse_time(a.time), tb = restic_json::parse_time(b.time);
          if (ta && tb) return *ta < *tb;
          return a.time < b.time;
        });
    return *newest;
  }
  // Only hex ids: anything else could be read by restic as a flag.
  if (!is_hex_id(snapshot))
    return error{errc::invalid_argument, "invalid snapshot id \"" + snapshot + "\""};
  if (auto ok = check_tags(tags); !ok) return ok.err();
  auto spec = command({"snapshots", "--json", snapshot});
  if (!spec) return spec.err();
  auto r = execute(std::move(*spec), cancel, "restic snapshots", false);
  if (!r) return r.err();
  auto list = restic_json::parse_snapshots(r->out);
  if (!list) return list.err();
  // restic prints "Ignoring ..." and an empty list for unknown or ambiguous ids.
  if (list->size() != 1)
    return error{errc::not_found,
                 "no snapshot " + snapshot + " in " + redact_repository(repo_.location)};
  if (!has_all_tags(list->front(), tags))
    return error{errc::invalid_argument,
                 "snapshot " + snapshot + " is not tagged " + join(tags, ", ")};
  return list->front();
}

expected<void> restic_client::restore(const std::string& snapshot,
                                      const std::string& path, const std::string& target,
                                      const std::vector<std::string>& tags,
                                      const cancel_token& cancel,
                                      const std::vector<std::string>& only,
                                      std::int64_t bytes_total) const {
  if (target.empty())
    return error{errc::invalid_argument, "restore needs a target folder"};
  auto snap = resolve_snapshot(snapshot, tags, cancel);
  if (!snap) return snap.err();
  auto inner = inner_path(path, *snap);
  if (!inner) return inner.err();
  const fs::path to = absolute_path(target);
  // What to restore, relative to the snapshot's root: the subfolder, or the
  // chosen paths below it.
  std::vector<std::string> wanted;
  for (const auto& p : only) {
    auto rel = relative_restore_path(p);
    if (!rel) return rel.err();
    wanted.push_back(inner->empty() ? *rel : *inner + "/" + *rel);
  }
  if (wanted.empty() && !inner->empty()) wanted.push_back(*inner);

  // restic restores a path with its parents and follows symlinks it finds
  // in its target, so it restores into a private folder inside the target
  // (same filesystem: moves are renames), whose contents are moved up.
  std::error_code ec;
  fs::create_directories(to, ec);
  if (ec) return error{errc::io, "cannot create " + to.string() + ": " + ec.message()};
  std::string tmpl = (to / ".satoru-restore-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr)
    return error{errc::io, "cannot create a temporary folder in " + to.string() + ": " +
                               std::generic_category().message(errno)};
  remove_on_exit cleanup{tmpl};
  std::vector<std::string> args{"restore", snap->id, "--target", tmpl};
  for (const auto& w : wanted) {
    args.push_back("--include");
    args.push_back(escape_pattern("/" + w));
  }
  auto spec = command(std::move(args));
  if (!spec) return spec.err();
  /// restic 0.14's restore prints no progress at all, and the sizes under
  /// the folder it writes are no meter either: it preallocates each file at
  /// its full size when it creates it (a 40 MB file shows 40 MB a quarter
  /// of a second into a 10 s restore). What it has written (/proc/PID/io)
  /// moves with the data, so that is its meter, and its watchdog: a restore
  /// that writes nothing for restore_no_progress_timeout is a stall.
  spec->progress_output = progress_format::written_bytes;
  spec->progress_step = "restore";
  spec->progress_bytes_total =
      static_cast<std::uint64_t>(std::max<std::int64_t>(bytes_total, 0));
  spec->no_progress_timeout = restore_no_progress_timeout;
  auto r = execute_metered(std::move(*spec), progress_format::written_bytes, "restore",
                           cancel, "restic restore", false);
  if (!r) return r.err();
  for (const auto& w : wanted)
    if (!fs::exists(fs::symlink_status(fs::path(tmpl) / w, ec)))
      return error{errc::not_found, "path " + (only.empty() ? path : w) +
                                        " is not in snapshot " + snap->short_id};
  const fs::path restored = fs::path(tmpl) / *inner;
  auto status = fs::symlink_status(restored, ec);
  if (!inner->empty() && only.empty() && !fs::is_directory(status))
    return merge_move(restored, to / restored.filename());
  fs::directory_iterator it(restored, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    auto moved = merge_move(it->path(), to / it->path().filename());
    if (!moved) return moved;
  }
  if (ec)
    return error{errc::io, "cannot list " + restored.string() + ": " + ec.message()};
  return {};
}

std::int64_t restore_bytes(const std::vector<snapshot_node>& listed,
                           const std::vector<std::string>& paths) {
  auto relative = [](const std::string& path) {
    std::string out = fs::path(path).lexically_normal().string();
    while (!out.empty() && out.front() == '/')
      out.erase(0, 1);
    while (!out.empty() && out.back() == '/')
      out.pop_back();
    return out == "." ? std::string{} : out;
  };
  std::vector<std::string> wanted;
  for (const auto& p : paths)
    if (auto rel = relative(p); !rel.empty()) wanted.push_back(std::move(rel));
  std::int64_t bytes = 0;
  for (const auto& n : listed) {
    if (n.type != "file") continue;
    const auto rel = relative(n.path);
    const bool chosen =
        wanted.empty() || std::any_of(wanted.begin(), wanted.end(), [&](const auto& w) {
          return rel == w || rel.rfind(w + "/", 0) == 0;
        });
    if (chosen) bytes += n.size;
  }
  return bytes;
}

expected<std::string> restic_client::version() {
  return tool_version("restic", {"version"});
}

std::string restic_cache_dir(const config& cfg) {
  std::string repo = cfg.restic_repo_path;
  while (repo.size() > 1 && repo.back() == '/')
    repo.pop_back();
  if (repo.empty()) return {};
  return repo + "-cache";
}

restic_client local_restic(const config& cfg) {
  return restic_client{local_repository(cfg),
                       std::chrono::seconds{cfg.restic_timeout_seconds}};
}

restic_repository local_repository(const config& cfg) {
  restic_repository repo;
  repo.location = cfg.restic_repo_path;
  repo.password = cfg.restic_password;
  repo.cache_dir = restic_cache_dir(cfg);
  return repo;
}

std::optional<restic_repository> offsite_repository(const config& cfg) {
  if (!cfg.restic_b2_repository || cfg.restic_b2_repository->empty()) return std::nullopt;
  restic_repository repo;
  repo.location = *cfg.restic_b2_repository;
  repo.password = cfg.restic_password;
  repo.b2_account_id = cfg.restic_b2_account_id;
  repo.b2_account_key = cfg.restic_b2_account_key;
  repo.cache_dir = restic_cache_dir(cfg);
  return repo;
}

std::vector<std::string> snapshot_tags(const std::string& site_uuid,
                                       const std::string& target_hash) {
  return {"satoru", "site=" + site_uuid, "target=" + target_hash};
}

std::string redact_repository(const std::string& location) {
  // Drops the userinfo ("user:password@") of every "scheme://" URL in the
  // text, so this also cleans restic's messages that quote the repository.
  std::string out;
  std::size_t pos = 0;
  for (;;) {
    auto scheme = location.find("://", pos);
    if (scheme == std::string::npos) {
      out.append(location, pos, std::string::npos);
      return out;
    }
    const std::size_t host = scheme + 3;
    out.append(location, pos, host - pos);
    std::size_t end = location.find_first_of("/ \t\r\n\"'<>", host);
    if (end == std::string::npos) end = location.size();
    std::size_t at = std::string::npos;
    for (std::size_t i = host; i < end; ++i)
      if (location[i] == '@') at = i;
    pos = at == std::string::npos ? host : at + 1;
  }
}

} // namespace satoru
