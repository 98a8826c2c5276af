// Target mode "postgres_dump" (docs/plugins.md): one PostgreSQL database of
// the edge host, dumped there with `pg_dump --format=custom`, streamed over
// the site's pinned ssh straight into work_dir (no temp file on the edge
// host), checked with the local `pg_restore --list`, then renamed over the
// staged dump. Uses only the plugin SDK (<satoru/...> headers).
#include <satoru/files.hpp>
#include <satoru/plugin.hpp>
#include <satoru/rsync.hpp>
#include <satoru/ssh.hpp>

#include <algorithm>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const char* const mode_name = "postgres_dump";

/// Options of one target, read after validate_options accepted them.
struct pg_target {
  std::string socket_dir; ///< the parent of target.path: PGHOST
  std::string database;   ///< options.database, else the last component of path
  std::string user;
  int port = 5432;
  std::string pg_dump = "pg_dump";
  std::vector<std::string> extra_args;
  std::string staged_name; ///< <label>.dump in staging
};

/// pg_dump arguments the plugin sets itself: a user's copy would change the
/// format, the output or the connection behind its back.
bool reserved_argument(const std::string& arg) {
  static const std::vector<std::string> reserved = {
      "-f", "--file",     "-F", "--format", "-d", "--dbname",
      "-h", "--host",     "-p", "--port",   "-U", "--username",
      "-W", "--password", "-j", "--jobs",   "-w", "--no-password"};
  for (const auto& r : reserved)
    if (arg == r || (r.size() > 2 && arg.rfind(r + "=", 0) == 0) ||
        (r.size() == 2 && arg.rfind(r, 0) == 0))
      return true;
  return false;
}

bool plain_name(const std::string& s) {
  return !s.empty() && s.find_first_of("\n\r\0", 0, 3) == std::string::npos;
}

pg_target read_target(const satoru::target_spec& t) {
  pg_target p;
  fs::path path{t.path};
  p.socket_dir = path.parent_path().string();
  p.database = path.filename().string();
  p.staged_name = p.database + ".dump";
  const auto& o = t.options;
  if (auto* v = o.if_contains("database")) p.database = std::string(v->as_string());
  if (auto* v = o.if_contains("user")) p.user = std::string(v->as_string());
  if (auto* v = o.if_contains("port")) p.port = static_cast<int>(v->as_int64());
  if (auto* v = o.if_contains("pg_dump_path")) p.pg_dump = std::string(v->as_string());
  if (auto* v = o.if_contains("pg_dump_args"))
    for (const auto& a : v->as_array())
      p.extra_args.emplace_back(a.as_string());
  return p;
}

/// The remote command: connection settings as libpq variables (PGDATABASE
/// is never parsed as a connection string, unlike --dbname), no password
/// prompt, and `exec` so that a killed ssh ends pg_dump too.
std::string remote_command(const pg_target& p, const std::vector<std::string>& args) {
  using satoru::shell_quote;
  std::string cmd =
      "PGHOST=" + shell_quote(p.socket_dir) + " PGPORT=" + std::to_string(p.port) +
      " PGUSER=" + shell_quote(p.user) + " PGDATABASE=" + shell_quote(p.database) +
      " PGCONNECT_TIMEOUT=10 exec " + shell_quote(p.pg_dump) + " --no-password";
  for (const auto& a : args)
    cmd += " " + shell_quote(a);
  return cmd;
}

/// The last non-empty line of a tool's stderr: pg_dump's reason.
std::string last_line(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
    text.pop_back();
  auto nl = text.rfind('\n');
  return nl == std::string::npos ? text : text.substr(nl + 1);
}

/// Failures an operator must fix (wrong role, database or rights, a pg_dump
/// too old for the server) are not retried; a refused or dropped connection is.
satoru::failure_kind classify_pg_error(const std::string& message) {
  static const std::regex permanent(
      "does not exist|permission denied|authentication failed|server version mismatch|"
      "no pg_hba.conf entry|command not found|No such file");
  return std::regex_search(message, permanent) ? satoru::failure_kind::permanent
                                               : satoru::failure_kind::transient;
}

class postgres_dump_handler final : public satoru::target_handler {
public:
  std::string name() const override { return mode_name; }
  std::string version() const override { return "1.0.0"; }
  std::vector<std::string> modes() const override { return {mode_name}; }
  std::vector<std::string> local_tools(const std::string&) const override {
    return {"ssh", "pg_restore"};
  }

  std::vector<std::string> validate_options(const std::string&,
                                            const boost::json::object& o) const override {
    std::vector<std::string> problems;
    for (const auto& kv : o) {
      const std::string key{kv.key()};
      const auto& v = kv.value();
      if (key == "user" || key == "database") {
        if (!v.is_string() || !plain_name(std::string(v.as_string())))
          problems.push_back(key + ": must be a non-empty string on one line");
      } else if (key == "port") {
        if (!v.is_int64() || v.as_int64() < 1 || v.as_int64() > 65535)
          problems.push_back("port: must be an integer 1..65535");
      } else if (key == "pg_dump_path") {
        if (!v.is_string() || v.as_string().empty() || v.as_string()[0] != '/' ||
            !plain_name(std::string(v.as_string())))
          problems.push_back("pg_dump_path: must be an absolute path");
      } else if (key == "pg_dump_args") {
        if (!v.is_array()) {
          problems.push_back("pg_dump_args: must be an array of strings");
          continue;
        }
        for (const auto& a : v.as_array()) {
          if (!a.is_string() || a.as_string().empty() || a.as_string()[0] != '-') {
            problems.push_back("pg_dump_args: every entry must be an option starting "
                               "with '-' (the database is options.database)");
          } else if (reserved_argument(std::string(a.as_string()))) {
            problems.push_back("pg_dump_args: \"" + std::string(a.as_string()) +
                               "\" is set by satoru (format, output, connection)");
          }
        }
      } else if (key == "sudo") {
        if (!v.is_bool()) problems.push_back("sudo: must be true or false");
      } else {
        problems.push_back(key + ": unknown option (postgres_dump takes user, database, "
                                 "port, pg_dump_path, pg_dump_args)");
      }
    }
    if (!o.contains("user"))
      problems.push_back("user: required (the PostgreSQL role pg_dump connects as)");
    return problems;
  }

  std::vector<satoru::check_result> preflight(const satoru::target_spec& t,
                                              satoru::plugin_services& s) override {
    return satoru::guarded(
        [&] { return checks(t, s); },
        [](const std::string& what) -> std::vector<satoru::check_result> {
          return {{"remote.connect", satoru::check_result::level::fail,
                   "postgres_dump: " + what}};
        });
  }

  satoru::pull_result pull(const satoru::target_spec& t,
                           satoru::plugin_services& s) override {
    return satoru::guarded([&] { return dump(t, s); },
                           [](const std::string& what) {
                             satoru::pull_result r;
                             r.message = "postgres_dump: " + what;
                             r.failure = satoru::failure_kind::permanent;
                             return r;
                           });
  }

private:
  std::vector<satoru::check_result> checks(const satoru::target_spec& t,
                                           satoru::plugin_services& s) {
    using level = satoru::check_result::level;
    std::vector<satoru::check_result> out;
    if (fs::path(t.path).parent_path() == fs::path(t.path).root_path() ||
        fs::path(t.path).filename().empty()) {
      out.push_back({"options", level::fail,
                     "path must be <socket directory>/<name>, e.g. "
                     "/var/run/postgresql/appdb"});
      return out;
    }
    auto p = read_target(t);
    auto shell = s.remote();
    if (!shell) {
      out.push_back({"remote.ssh", level::fail, shell.err().message});
      return out;
    }
    // pg_dump present, and its version.
    auto v = (*shell)->exec(satoru::shell_quote(p.pg_dump) + " --version", 30s);
    if (!v || v->exit_status != 0) {
      out.push_back({"remote.pg_dump", level::fail,
                     p.pg_dump + " is not runnable on the edge host" +
                         (v ? ": " + last_line(v->err) : ": " + v.err().message)});
      return out;
    }
    out.push_back({"remote.pg_dump", level::ok, last_line(v->out)});
    if (t.options.contains("sudo") && t.options.at("sudo").as_bool())
      out.push_back({"remote.sudo", level::warn,
                     "sudo is not used by postgres_dump: pg_dump connects as the "
                     "configured role"});
    // Connect as the role: a schema-only dump of no schema reads the catalog
    // and fails like the real one would (role, database, pg_hba.conf, and a
    // server newer than pg_dump: "server version mismatch").
    auto c = (*shell)->exec(
        remote_command(p, {"--schema-only", "--format=plain", "--exclude-schema=*"}) +
            " | sed -n 's/^-- Dumped from database version /server /p'",
        60s);
    if (!c || !c->err.empty() || c->out.empty()) {
      std::string why = c ? last_line(c->err) : c.err().message;
      out.push_back({"remote.connect", level::fail,
                     "cannot dump database \"" + p.database + "\" as \"" + p.user +
                         "\" at " + p.socket_dir + " port " + std::to_string(p.port) +
                         ": " + (why.empty() ? "no output" : why)});
      return out;
    }
    out.push_back({"remote.connect", level::ok,
                   "connected to \"" + p.database + "\" as \"" + p.user + "\", " +
                       last_line(c->out) + ", " + last_line(v->out)});
    return out;
  }

  satoru::pull_result dump(const satoru::target_spec& t, satoru::plugin_services& s) {
    satoru::pull_result result;
    auto p = read_target(t);
    const auto& e = s.endpoint();
    if (e.host.empty() || e.host.front() == '-') {
      result.message = "invalid host \"" + e.host + "\"";
      result.failure = satoru::failure_kind::permanent;
      return result;
    }
    for (const auto& dir : {t.work_dir, t.staging_dir})
      if (auto r = satoru::make_dirs(dir); !r) {
        result.message = r.err().message;
        return result;
      }
    const std::string partial = t.work_dir + "/" + p.staged_name + ".partial";
    const std::string staged = t.staging_dir + "/" + p.staged_name;

    // ssh's stdout goes straight into the file: the dump never sits in
    // memory or in a temp file on the edge host.
    std::vector<std::string> dump_args{"--format=custom"};
    dump_args.insert(dump_args.end(), p.extra_args.begin(), p.extra_args.end());
    satoru::process_spec spec;
    spec.argv = {"sh", "-c", "exec \"$@\" > \"$0\"", partial};
    for (auto& a : satoru::ssh_command_args(e))
      spec.argv.push_back(std::move(a));
    spec.argv.insert(spec.argv.end(), {"--", e.host, remote_command(p, dump_args)});
    auto run = s.run(spec);
    std::error_code ec;
    if (!run || !run->ok()) {
      fs::remove(partial, ec);
      std::string why = run ? last_line(run->err) : run.err().message;
      if (run && (run->timed_out || run->cancelled))
        why = run->describe("pg_dump over ssh");
      result.message = "pg_dump of \"" + p.database + "\" failed: " +
                       (why.empty() ? run->describe("pg_dump over ssh") : why) +
                       "; the last good dump stays staged";
      result.failure = classify_pg_error(result.message);
      return result;
    }
    const auto bytes = fs::file_size(partial, ec);

    // The archive must be complete and readable before it replaces anything.
    satoru::process_spec list;
    list.argv = {"pg_restore", "--list", partial};
    auto listed = s.run(list);
    if (!listed || !listed->ok() ||
        listed->out.find("; Archive created at") == std::string::npos) {
      fs::remove(partial, ec);
      result.message = "the dump of \"" + p.database + "\" failed pg_restore --list: " +
                       (listed ? last_line(listed->err) : listed.err().message) +
                       "; the last good dump stays staged";
      return result;
    }
    const auto entries = std::count(listed->out.begin(), listed->out.end(), '\n');
    fs::rename(partial, staged, ec);
    if (ec) {
      fs::remove(partial, ec);
      result.message = "cannot stage " + staged + ": " + ec.message();
      return result;
    }
    s.event("ok", "pull.dump",
            "dumped \"" + p.database + "\" (" + std::to_string(bytes) +
                " bytes, checked)",
            {{"bytes", bytes}, {"database", p.database}, {"list_lines", entries}});
    result.outcome = satoru::pull_result::status::success;
    result.bytes = bytes;
    result.files = 1;
    return result;
  }
};

} // namespace

SATORU_PLUGIN(postgres_dump_handler)
