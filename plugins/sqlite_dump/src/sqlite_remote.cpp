#include "sqlite_remote.hpp"

#include "satoru/ssh.hpp"

#include <cstdlib>
#include <random>
#include <sstream>

namespace satoru::plugins::sqlite {

namespace {

/// The header every SQLite 3 database file starts with (before its NUL).
constexpr const char* sqlite_magic = "SQLite format 3";

std::string q(const std::string& s) {
  return shell_quote(s);
}

} // namespace

std::string temp_prefix(const std::string& remote_tmp_dir,
                        const std::string& target_hash) {
  std::string dir = remote_tmp_dir;
  while (dir.size() > 1 && dir.back() == '/')
    dir.pop_back();
  return (dir == "/" ? "" : dir) + "/satoru-" + target_hash + ".";
}

std::string run_prefix(const std::string& remote_tmp_dir, const std::string& target_hash,
                       const std::string& token) {
  return temp_prefix(remote_tmp_dir, target_hash) + token + ".";
}

std::string new_run_token() {
  std::random_device random;
  std::uniform_int_distribution<int> digit(0, 15);
  std::string token;
  for (int i = 0; i < 16; ++i)
    token.push_back("0123456789abcdef"[digit(random)]);
  return token;
}

std::string glob_of(const std::string& prefix) {
  return q(prefix) + "*";
}

std::string cleanup_script(const std::string& folders, int older_than_minutes) {
  // The working folder of the process in the pid file is compared with the
  // temp folder (both resolved), so a pid that was reused by an unrelated
  // process since the pid file was written is never signalled. The age test
  // uses `find -mmin`, which BusyBox has too.
  std::string age_test;
  if (older_than_minutes > 0)
    age_test = "  [ -n \"$(find \"$d\" -maxdepth 0 -mmin +" +
               std::to_string(older_than_minutes) + " 2>/dev/null)\" ] || continue\n";
  return "rc=0\n"
         "for d in " +
         folders +
         "; do\n"
         "  [ -d \"$d\" ] || continue\n" +
         age_test +
         "  if [ -r \"$d/pid\" ]; then\n"
         "    p=$(cat \"$d/pid\" 2>/dev/null)\n"
         "    real=$(cd \"$d\" 2>/dev/null && pwd -P)\n"
         "    case \"$p\" in ''|*[!0-9]*) p= ;; esac\n"
         "    if [ -n \"$p\" ] && [ -n \"$real\" ] &&"
         " [ \"$(readlink \"/proc/$p/cwd\" 2>/dev/null)\" = \"$real\" ]; then\n"
         "      kill -TERM \"$p\" 2>/dev/null\n"
         "      i=0\n"
         "      while [ $i -lt 30 ] &&"
         " [ \"$(readlink \"/proc/$p/cwd\" 2>/dev/null)\" = \"$real\" ]; do\n"
         "        sleep 0.1 2>/dev/null || sleep 1; i=$((i+1))\n"
         "      done\n"
         "      [ \"$(readlink \"/proc/$p/cwd\" 2>/dev/null)\" = \"$real\" ] &&"
         " kill -KILL \"$p\" 2>/dev/null\n"
         "    fi\n"
         "  fi\n"
         "  rm -rf -- \"$d\" 2>/dev/null || { sleep 1; rm -rf -- \"$d\"; }\n"
         "  [ -e \"$d\" ] && rc=1\n"
         "done\n"
         "exit $rc\n";
}

std::string sudo_probe_command(const std::string& sudo_helper,
                               const std::string& db_path) {
  return "sudo -n " + q(sudo_helper) + " probe " + q(db_path);
}

std::string fingerprint_script() {
  return "fp=\n"
         "for f in \"$db\" \"$db-wal\"; do\n"
         // An empty WAL holds nothing: the same as none (a read-only open
         // of a WAL database, ours included, leaves one behind).
         "  case $f in \"$db\") [ -e \"$f\" ] ;; *) [ -s \"$f\" ] ;; esac ||"
         " { fp=\"$fp -\"; continue; }\n"
         "  s=$(stat -c '%s:%i:%y:%z' \"$f\" 2>/dev/null) &&"
         " h=$(od -An -tx1 -N100 \"$f\" 2>/dev/null) || { fp=; break; }\n"
         "  case $s in *.000000000*|*:[0-9][0-9]\\ *) fp=; break ;; esac\n"
         "  fp=\"$fp $(printf '%s' \"$s|$h\" | tr -d ' \\n')\"\n"
         "done\n";
}

std::string copy_script(const copy_request& r) {
  std::string s = "umask 077\n";
  // Leftovers of runs that were killed before their own cleanup; only old
  // ones: a young folder may be another server's copy in progress.
  s += "( " +
       cleanup_script(glob_of(temp_prefix(r.remote_tmp_dir, r.target_hash)),
                      leftover_age_minutes) +
       ") >/dev/null 2>&1\n";
  s += "db=" + q(r.db_path) + "\n";
  if (r.sudo_helper.empty()) {
    s += "if [ ! -e \"$db\" ]; then echo 'satoru-error missing'; exit 0; fi\n"
         "if [ ! -f \"$db\" ]; then echo 'satoru-error notfile'; exit 0; fi\n"
         "if [ ! -r \"$db\" ]; then echo 'satoru-error unreadable'; exit 0; fi\n"
         "command -v sqlite3 >/dev/null 2>&1 || { echo 'satoru-error nosqlite3'; exit 0; "
         "}\n";
  }
  if (r.gzip)
    s += "command -v gzip >/dev/null 2>&1 || { echo 'satoru-error nogzip'; exit 0; }\n";
  else
    s += "command -v rsync >/dev/null 2>&1 || { echo 'satoru-error norsync'; exit 0; }\n";
  if (r.sudo_helper.empty()) {
    // An empty file is a valid (empty) database to SQLite.
    s += "if [ -s \"$db\" ]; then\n"
         "  h=$(dd if=\"$db\" bs=15 count=1 2>/dev/null)\n"
         "  [ \"$h\" = '" +
         std::string(sqlite_magic) +
         "' ] || { echo 'satoru-error notsqlite'; exit 0; }\n"
         "fi\n"
         "ver=$(sqlite3 --version </dev/null 2>&1 | head -n 1)\n"
         "echo \"satoru-version $ver\"\n"
         "echo \"satoru-size $(wc -c < \"$db\")\"\n" +
         fingerprint_script() + "echo \"satoru-fingerprint $fp\"\n";
  } else {
    // The helper answers with the same lines and exits 3 after an error
    // line; any other failure is sudo's (its message is on stderr).
    s += "out=$(" + sudo_probe_command(r.sudo_helper, r.db_path) +
         " </dev/null)\n"
         "rc=$?\n"
         "printf '%s\\n' \"$out\"\n"
         "[ $rc -eq 0 ] || { [ $rc -eq 3 ] || echo 'satoru-error sudo'; exit 0; }\n"
         "ver=$(printf '%s\\n' \"$out\" | sed -n 's/^satoru-version //p')\n"
         "fp=$(printf '%s\\n' \"$out\" | sed -n 's/^satoru-fingerprint //p')\n";
  }
  if (!r.unchanged_if.empty())
    s += "if [ -n \"$fp\" ] && [ \"$fp\" = " + q(r.unchanged_if) +
         " ]; then echo satoru-unchanged; exit 0; fi\n";
  // VACUUM INTO appeared in SQLite 3.27.0.
  s += "case $ver in [4-9].*|3.2[7-9].*|3.[3-9][0-9].*|3.[1-9][0-9][0-9].*) vi=yes ;;"
       " *) vi=no ;; esac\n";
  if (r.method == "vacuum")
    s += "[ $vi = yes ] || { echo 'satoru-error novacuum'; exit 0; }\n";
  s += std::string("m=") + (r.method == "backup" ? "backup" : "$vi") +
       "\n"
       "[ \"$m\" = yes ] && m=vacuum_into\n"
       "[ \"$m\" = no ] && m=backup\n"
       "d=$(mktemp -d " +
       q(run_prefix(r.remote_tmp_dir, r.target_hash, r.token) + "XXXXXXXXXX") +
       ") || { echo 'satoru-error mktemp'; exit 0; }\n"
       "echo \"satoru-tmp $d\"\n"
       "echo \"satoru-method $m\"\n"
       "cd \"$d\" || exit 90\n";
  // Each long step runs in the background with its pid in "pid", so the
  // cleanup of a cancelled pull can stop it (its working folder is $d).
  // -init /dev/null keeps the remote user's ~/.sqliterc out; -bail turns any
  // error into an exit status. -readonly: the copy only reads, and a
  // read-write open would roll back the hot journal of a crashed application
  // (changing the production database). With sudo the pid is sudo's: the
  // edge user may signal it, and sudo relays the signal to the helper, which
  // stops sqlite3 and removes its own copy; the copy arrives through the
  // redirect, so the file belongs to the edge user and root never opens a
  // path in this folder.
  if (r.sudo_helper.empty())
    s += "if [ $m = vacuum_into ]; then sql=\"VACUUM INTO '" +
         std::string(remote_copy_name) + "'\"; else sql='.backup " + remote_copy_name +
         "'; fi\n"
         "sqlite3 -init /dev/null -readonly -bail -batch \"$db\" '.timeout 10000' "
         "\"$sql\" "
         "</dev/null &\n";
  else
    s += "sudo -n " + q(r.sudo_helper) + " copy $m \"$db\" </dev/null > " +
         remote_copy_name + " &\n";
  s += "echo $! > pid\n"
       "wait $!\n"
       "rc=$?\n"
       "[ $rc -eq 0 ] || { echo \"satoru-copy-failed copy $rc\"; exit 0; }\n";
  // The copy's size before gzip: the most the server lets the download
  // inflate to.
  if (r.gzip)
    s += std::string("echo \"satoru-copy-size $(wc -c < ") + remote_copy_name +
         ")\"\n"
         "gzip -1 -c " +
         remote_copy_name + " > " + remote_copy_name +
         ".gz &\n"
         "echo $! > pid\n"
         "wait $!\n"
         "rc=$?\n"
         "[ $rc -eq 0 ] || { echo \"satoru-copy-failed gzip $rc\"; exit 0; }\n"
         "rm -f " +
         remote_copy_name + "\n";
  s += "echo satoru-copied\n";
  return s;
}

copy_answer parse_copy(const std::string& out) {
  copy_answer a;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto value = [&](const char* key) -> const char* {
      std::string k = std::string(key) + " ";
      return line.compare(0, k.size(), k) == 0 ? line.c_str() + k.size() : nullptr;
    };
    if (auto v = value("satoru-error"))
      a.error = v;
    else if (auto v = value("satoru-version"))
      a.sqlite_version = v;
    else if (auto v = value("satoru-size"))
      a.size = std::strtoull(v, nullptr, 10);
    else if (auto v = value("satoru-copy-size"))
      a.copy_size = std::strtoll(v, nullptr, 10);
    else if (auto v = value("satoru-tmp"))
      a.temp_dir = v;
    else if (auto v = value("satoru-fingerprint"))
      a.fingerprint = v;
    else if (auto v = value("satoru-method"))
      a.method = v;
    else if (auto v = value("satoru-copy-failed"))
      a.copy_failed = v;
    else if (line == "satoru-unchanged")
      a.unchanged = true;
    else if (line == "satoru-copied")
      a.copied = true;
  }
  return a;
}

std::string rsync_path_removing(const std::string& temp_dir) {
  return "sh -c " + q("rsync \"$@\"; r=$?; rm -rf -- " + q(temp_dir) + "; exit $r") +
         " sh";
}

std::string tmp_probe_script(const std::string& remote_tmp_dir) {
  return "umask 077\n"
         "b=" +
         q(remote_tmp_dir) +
         "\n"
         "[ -d \"$b\" ] || { echo 'satoru-error nodir'; exit 0; }\n"
         "d=$(mktemp -d \"$b/satoru-preflight.XXXXXXXXXX\") || { echo 'satoru-error "
         "mktemp'; "
         "exit 0; }\n"
         "w=fail\n"
         "printf 'satoru\\n' > \"$d/probe\" && [ \"$(cat \"$d/probe\")\" = satoru ] && "
         "w=ok\n"
         "rm -rf -- \"$d\"\n"
         "[ -e \"$d\" ] && { echo 'satoru-error norm'; exit 0; }\n"
         "[ \"$w\" = ok ] || { echo 'satoru-error nowrite'; exit 0; }\n"
         "echo satoru-ok\n"
         "df -Pk \"$b\" 2>/dev/null\n";
}

std::optional<std::uint64_t> df_available_kib(const std::string& df_output) {
  std::istringstream in(df_output);
  std::string line;
  bool header = false;
  while (std::getline(in, line)) {
    if (!header) {
      header = line.rfind("Filesystem", 0) == 0;
      continue;
    }
    std::istringstream fields(line);
    std::string fs, total, used, avail;
    if (fields >> fs >> total >> used >> avail) {
      char* end = nullptr;
      auto n = std::strtoull(avail.c_str(), &end, 10);
      if (end && *end == '\0') return n;
    }
    return std::nullopt;
  }
  return std::nullopt;
}

version parse_version(const std::string& text) {
  version v;
  const char* p = text.c_str();
  char* end = nullptr;
  long parts[3] = {0, 0, 0};
  for (int i = 0; i < 3; ++i) {
    if (*p < '0' || *p > '9') {
      if (i < 2) return v;
      break;
    }
    parts[i] = std::strtol(p, &end, 10);
    p = end;
    if (*p == '.')
      ++p;
    else
      break;
  }
  v.major = static_cast<int>(parts[0]);
  v.minor = static_cast<int>(parts[1]);
  v.patch = static_cast<int>(parts[2]);
  v.valid = true;
  return v;
}

bool at_least(const version& v, int major, int minor, int patch) {
  if (v.major != major) return v.major > major;
  if (v.minor != minor) return v.minor > minor;
  return v.patch >= patch;
}

std::string base_name(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/')
    p.pop_back();
  auto slash = p.find_last_of('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

} // namespace satoru::plugins::sqlite
